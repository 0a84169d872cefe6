"""The vLLM backend end to end against a double of vLLM held to the committed API snapshot.

The double (tests/fake_vllm/vllm) takes only the snapshot's keywords, exposes only its attributes, and
really generates with transformers on the project's tiny model, so prompts, seeds, stop strings, finish
reasons and token counts are checked on real text. What only a GPU can show is listed in docs/vllm.md.
"""

import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from rpt_transfer.errors import RptError
from rpt_transfer.generation import GenRequest, GenResult, SamplingParams, load_backend
from rpt_transfer.generation.base import sample_seed
from rpt_transfer.generation.hf import HFBackend
from rpt_transfer.generation.vllm import VLLMBackend
from rpt_transfer.generation.vllm_surface import load_snapshot
from rpt_transfer.generation.weights import safetensors_parameters
from tiny_generation import MAX_POSITIONS, ask, train_arith_model
from tiny_generation import REQUESTS as ALL_REQUESTS

FAKE_ROOT = Path(__file__).resolve().parents[1] / "fake_vllm"
ENV = ("VLLM_BATCH_INVARIANT", "VLLM_ENABLE_V1_MULTIPROCESSING")


REQUESTS = ALL_REQUESTS[:4]


def without_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset vLLM's switches for the test, and put back whatever was there afterwards."""
    for name in ENV:
        monkeypatch.setenv(name, "placeholder")
        monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def vllm() -> Iterator[ModuleType]:
    """The double, first on sys.path: a real vllm (never expected here) or an earlier import cannot win."""
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in sys.modules if n == "vllm" or n.startswith("vllm.")]:
            patch.delitem(sys.modules, name)
        without_env(patch)
        patch.syspath_prepend(str(FAKE_ROOT))
        import vllm as double

        assert Path(double.__file__).resolve().is_relative_to(FAKE_ROOT)
        yield double
        sys.modules.pop("vllm", None)


@pytest.fixture(autouse=True)
def fresh_calls(vllm: ModuleType) -> None:
    vllm.CALLS.clear()
    vllm.READS.clear()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_arith_model(tmp_path_factory.mktemp("tiny-lm"))


@pytest.fixture(scope="module")
def raw(vllm: ModuleType, model_dir: Path) -> VLLMBackend:
    return VLLMBackend(model_dir, "raw")


@pytest.fixture(scope="module")
def chat(vllm: ModuleType, model_dir: Path) -> VLLMBackend:
    return VLLMBackend(model_dir, "chat")


@pytest.fixture(scope="module")
def hf(model_dir: Path) -> dict[str, HFBackend]:
    return {mode: HFBackend(model_dir, mode, device="cpu", batch_size=4) for mode in ("raw", "chat")}


def outcome(results: list[GenResult]) -> list[tuple[str, int, str, str, int, int]]:
    return [
        (r.request_id, r.sample_index, r.completion, r.finish_reason, r.prompt_tokens, r.completion_tokens)
        for r in results
    ]


def calls(vllm: ModuleType, key: str) -> list[dict]:
    return [arguments for name, arguments in vllm.CALLS if name == key]


def test_the_double_is_the_one_imported(vllm: ModuleType, raw: VLLMBackend) -> None:
    assert raw._vllm is vllm
    assert vllm.__version__ == load_snapshot()["vllm_version"]


def test_rows_come_in_request_then_sample_order(raw: VLLMBackend) -> None:
    seen: list[int] = []
    results = raw.generate(
        REQUESTS, SamplingParams(temperature=1.0, max_tokens=8, n=3), on_progress=seen.append
    )
    assert [(r.request_id, r.sample_index) for r in results] == [
        (q.request_id, i) for q in REQUESTS for i in range(3)
    ]
    assert sum(seen) == len(results) == 12
    assert all(r.error is None for r in results)


def test_each_sample_is_its_own_request_with_a_derived_seed(vllm: ModuleType, raw: VLLMBackend) -> None:
    raw.generate(REQUESTS, SamplingParams(temperature=1.0, max_tokens=4, n=2))
    sent = calls(vllm, "SamplingParams")
    assert [s["seed"] for s in sent] == [sample_seed(q.seed, i) for q in REQUESTS for i in range(2)]
    assert {s["n"] for s in sent} == {1}
    (generate,) = calls(vllm, "LLM.generate")
    assert len(generate["prompts"]) == len(generate["sampling_params"]) == 8
    ids = [raw.tokenizer(raw.prompt_text(q.messages))["input_ids"] for q in REQUESTS]
    assert [p["prompt_token_ids"] for p in generate["prompts"]] == [i for i in ids for _ in range(2)]


def test_samples_do_not_depend_on_batch_or_n(raw: VLLMBackend) -> None:
    params = SamplingParams(temperature=1.0, top_p=0.9, max_tokens=12, n=3)
    together = raw.generate(REQUESTS, params)
    one_by_one = [result for request in REQUESTS for result in raw.generate([request], params)]
    assert outcome(together) == outcome(one_by_one)
    first = raw.generate(REQUESTS, params.model_copy(update={"n": 1}))
    assert outcome(first) == [row for row in outcome(together) if row[1] == 0]
    assert len({r.completion for r in together}) > 1  # really sampled


@pytest.mark.parametrize("mode", ["raw", "chat"])
def test_prompts_and_greedy_samples_match_the_hf_backend(
    mode: str, raw: VLLMBackend, chat: VLLMBackend, hf: dict[str, HFBackend]
) -> None:
    backend = {"raw": raw, "chat": chat}[mode]
    requests = [
        *REQUESTS,
        GenRequest("two", [{"role": "user", "content": "Q: 1+1=?"}, {"role": "user", "content": "A:"}], 9),
    ]
    params = SamplingParams(max_tokens=10)
    ours, theirs = backend.generate(requests, params), hf[mode].generate(requests, params)
    assert [r.prompt_text for r in ours] == [r.prompt_text for r in theirs]
    assert outcome(ours) == outcome(theirs)
    if mode == "chat":
        assert ours[0].prompt_text == "<bos><|user|>Q: 3+4=?\nA:\n<|assistant|>"
    else:
        assert (
            ours[-1].prompt_text == "Q: 1+1=?\n\nA:" and ours[-1].prompt_tokens == len("Q: 1+1=?\n\nA:") + 1
        )


def test_stop_string_cuts_the_completion(raw: VLLMBackend) -> None:
    params = SamplingParams(temperature=1.0, max_tokens=12, seed=0)
    full = raw.generate([ask("a", "Q:", seed=7)], params)[0].completion
    assert len(full) >= 3, full
    stop = full[2]
    cut = raw.generate([ask("a", "Q:", seed=7)], params.model_copy(update={"stop": ["never", stop, ""]}))[0]
    assert cut.completion == full[: full.index(stop)]
    assert cut.finish_reason == "stop"
    assert cut.completion_tokens == full.index(stop) + 1  # one character per token, the stop's included


def test_max_tokens_ends_with_length(raw: VLLMBackend) -> None:
    result = raw.generate([ask("a", "Q: 3+4=?\nA:")], SamplingParams(max_tokens=1))[0]
    assert (result.finish_reason, result.completion_tokens, len(result.completion)) == ("length", 1, 1)


def test_end_of_sequence_ends_with_stop_and_is_not_shown(raw: VLLMBackend) -> None:
    result = raw.generate([ask("a", "Q: 3+4=?\nA:")], SamplingParams(max_tokens=20))[0]
    assert result.finish_reason == "stop"
    assert result.completion_tokens == len(result.completion) + 1
    assert "<eos>" not in result.completion


@pytest.mark.parametrize("reason", ["abort", "error", "repetition", None])
def test_other_finish_reasons_are_error_rows(
    reason: str | None, vllm: ModuleType, raw: VLLMBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vllm, "FINISH_OVERRIDE", [reason])
    results = raw.generate(REQUESTS[:2], SamplingParams(max_tokens=4, n=2))
    assert [(r.request_id, r.finish_reason, r.completion) for r in results] == [
        (q.request_id, "error", "") for q in REQUESTS[:2] for _ in range(2)
    ]
    assert all(r.error and repr(reason) in r.error for r in results)
    assert all(r.prompt_tokens > 0 for r in results)


def test_engine_settings_are_passed_explicitly(vllm: ModuleType, model_dir: Path) -> None:
    VLLMBackend(
        model_dir, "raw", tensor_parallel_size=1, gpu_memory_utilization=0.5, max_model_len=48,
        dtype="bfloat16", enforce_eager=True, enable_prefix_caching=False, seed=3,
    )  # fmt: skip
    (engine,) = calls(vllm, "LLM.__init__")
    assert engine == {
        "model": str(model_dir),
        "tokenizer": str(model_dir),
        "tensor_parallel_size": 1,
        "gpu_memory_utilization": 0.5,
        "max_model_len": 48,
        "dtype": "bfloat16",
        "enforce_eager": True,
        "enable_prefix_caching": False,
        "seed": 3,
        "generation_config": "vllm",
    }


def test_engine_versions_record_versions_settings_and_switches(raw: VLLMBackend, model_dir: Path) -> None:
    import torch
    import transformers

    engine = raw.engine_versions()
    assert engine == {
        "backend": "vllm@1",
        "vllm": load_snapshot()["vllm_version"],
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cuda": torch.version.cuda or "none",
        "driver": engine["driver"],
        "device": "unknown",  # no GPU here
        "dtype": "float16",  # the engine's choice for "auto" on a float32 checkpoint, not the setting
        "tensor_parallel_size": "1",
        "max_model_len": str(MAX_POSITIONS),  # the engine's effective value
        "gpu_memory_utilization": "0.9",
        "enforce_eager": "False",
        "enable_prefix_caching": "True",
        "engine_seed": "0",
        "generation_config": "vllm",
        "VLLM_BATCH_INVARIANT": "unset",
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
        "sample_seeds": "sample_seed(request seed, sample index)",
    }
    assert engine["driver"] and all(isinstance(v, str) for v in engine.values())


def test_switches_are_set_before_the_engine_starts(
    vllm: ModuleType, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    without_env(monkeypatch)
    backend = VLLMBackend(model_dir, "raw", batch_invariant=True)
    assert vllm.ENGINE_ENV[-1] == {"VLLM_BATCH_INVARIANT": "1", "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
    assert backend.engine_versions()["VLLM_BATCH_INVARIANT"] == "1"
    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "1")  # the user's choice stands, and is recorded
    monkeypatch.delenv("VLLM_BATCH_INVARIANT")
    backend = VLLMBackend(model_dir, "raw")
    assert vllm.ENGINE_ENV[-1] == {"VLLM_BATCH_INVARIANT": None, "VLLM_ENABLE_V1_MULTIPROCESSING": "1"}
    assert backend.engine_versions()["VLLM_ENABLE_V1_MULTIPROCESSING"] == "1"
    assert os.environ.get("VLLM_BATCH_INVARIANT") is None


def test_effective_sampling_is_what_was_sent(vllm: ModuleType, raw: VLLMBackend) -> None:
    params = SamplingParams(temperature=0.7, top_p=0.8, max_tokens=5, stop=["\n", ""], n=2)
    raw.generate(REQUESTS[:1], params)
    effective = raw.effective_sampling(params)
    assert [{k: v for k, v in s.items() if k != "seed"} for s in calls(vllm, "SamplingParams")] == [
        effective
    ] * 2
    assert effective["stop"] == ["\n"] and effective["n"] == 1 and effective["top_k"] == 0
    assert effective["include_stop_str_in_output"] is False and effective["skip_special_tokens"] is True
    greedy = raw.effective_sampling(SamplingParams(temperature=0, top_p=0.5))
    assert (greedy["top_p"], greedy["top_k"]) == (1.0, 0)  # what vLLM does at temperature 0, said up front
    json.dumps(effective)  # fit for a manifest


def test_top_k_is_sent_when_on(raw: VLLMBackend) -> None:
    on = SamplingParams(temperature=1.0).model_copy(update={"top_k": 5})
    assert raw.effective_sampling(on)["top_k"] == 5
    assert raw.effective_sampling(SamplingParams(temperature=1.0))["top_k"] == 0  # vLLM 0.33: 0 is off


def test_every_keyword_and_attribute_used_is_in_the_snapshot(vllm: ModuleType, raw: VLLMBackend) -> None:
    """The double enforces the snapshot; this also lists what the backend used, against the snapshot."""
    snapshot = load_snapshot()
    raw.generate(
        REQUESTS[:2],
        SamplingParams(temperature=1.0, max_tokens=6, stop=["="], n=2),
        on_progress=lambda k: None,
    )
    used: dict[str, set[str]] = {}
    for key, arguments in vllm.CALLS:
        used.setdefault(key, set()).update(arguments)
    assert set(used) == {"TokensPrompt", "SamplingParams", "LLM.generate"}
    assert used["TokensPrompt"] <= set(snapshot["TokensPrompt"]["fields"])
    assert used["SamplingParams"] <= set(snapshot["SamplingParams"]["fields"])
    assert used["LLM.generate"] <= {p["name"] for p in snapshot["LLM.generate"]["params"]}
    read = {(cls, attr) for cls, attr in vllm.READS}
    assert {
        ("RequestOutput", "outputs"),
        ("CompletionOutput", "token_ids"),
        ("CompletionOutput", "finish_reason"),
    } <= read
    for cls, attr in read:
        entry = snapshot["LLM.__init__" if cls == "LLM" else cls]
        assert attr in entry.get("attributes", entry.get("fields")), (cls, attr)
    # ...and the double refuses anything else, as the pinned vLLM would.
    with pytest.raises(TypeError, match="bogus"):
        vllm.SamplingParams(n=1, bogus=True)
    with pytest.raises(TypeError, match="bogus"):
        vllm.TokensPrompt(prompt_token_ids=[1], bogus=1)
    with pytest.raises(TypeError, match="enable_bogus"):
        vllm.LLM(model="m", enable_bogus=True)
    completion = vllm.CompletionOutput(index=0, text="", token_ids=[], cumulative_logprob=None, logprobs=None)
    with pytest.raises(AttributeError, match="no attribute 'num_tokens'"):
        _ = completion.num_tokens


def one_line_error(call, *fields: str) -> str:
    with pytest.raises(RptError) as err:
        call()
    message = str(err.value)
    assert "\n" not in message, message
    assert all(field in message for field in fields), message
    return message


@pytest.mark.parametrize(
    ("settings", "fields"),
    [
        ({"prompt_mode": "xml"}, ["prompt_mode", "'xml'", "chat, raw"]),
        ({"tensor_parallel_size": 0}, ["tensor_parallel_size", "0"]),
        ({"gpu_memory_utilization": 0.0}, ["gpu_memory_utilization", "(0, 1]"]),
        ({"gpu_memory_utilization": 1.5}, ["gpu_memory_utilization", "1.5"]),
        ({"dtype": "int8"}, ["dtype", "'int8'", "auto, bfloat16, float16, float32"]),
        ({"max_model_len": 0}, ["max_model_len", "at least 1"]),
        ({"max_model_len": MAX_POSITIONS + 1}, ["max_model_len=65", "64 positions"]),
    ],
)
def test_bad_settings_fail_on_one_line_before_loading(
    settings: dict, fields: list[str], vllm: ModuleType, model_dir: Path
) -> None:
    arguments = {"model_path": model_dir, "prompt_mode": "raw"} | settings
    one_line_error(lambda: VLLMBackend(**arguments), *fields)
    assert calls(vllm, "LLM.__init__") == []  # refused before the engine


def test_missing_checkpoint_or_chat_template_fail_on_one_line(
    vllm: ModuleType, model_dir: Path, tmp_path: Path
) -> None:
    one_line_error(lambda: VLLMBackend(tmp_path, "raw"), "config.json", str(tmp_path))
    plain = tmp_path / "no-template"
    shutil.copytree(model_dir, plain)
    (plain / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((plain / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (plain / "tokenizer_config.json").write_text(json.dumps(config))
    one_line_error(lambda: VLLMBackend(plain, "chat"), "no chat template", "'raw'")
    assert calls(vllm, "LLM.__init__") == []
    assert isinstance(VLLMBackend(plain, "raw"), VLLMBackend)


def test_overlong_prompt_fails_on_one_line_before_generating(vllm: ModuleType, raw: VLLMBackend) -> None:
    requests = [ask("ok", "Q: 3+4=?\nA:"), ask("too-long", "x" * (MAX_POSITIONS - 8)), ask("ok2", "Q:")]
    message = one_line_error(
        lambda: raw.generate(requests, SamplingParams(max_tokens=8)),
        "'too-long'", "57 prompt tokens", "max_tokens=8", "max_model_len=64", "lower max_tokens to 7",
    )  # fmt: skip
    assert "raise max_model_len" in message
    assert calls(vllm, "LLM.generate") == []
    fits = raw.generate(requests, SamplingParams(max_tokens=7))
    assert [r.finish_reason for r in fits if r.request_id == "too-long"] in (["length"], ["stop"])


def test_limit_follows_the_engines_max_model_len(vllm: ModuleType, model_dir: Path) -> None:
    short = VLLMBackend(model_dir, "raw", max_model_len=20)
    assert short.engine_versions()["max_model_len"] == "20"
    prompt = [ask("a", "Q: 3+4=?\nA:")]  # 12 tokens with <bos>
    one_line_error(
        lambda: short.generate(prompt, SamplingParams(max_tokens=9)), "max_model_len=20", "to 8 or less"
    )
    assert short.generate(prompt, SamplingParams(max_tokens=8))[0].finish_reason != "error"


@pytest.mark.parametrize("temperature", [0.005, 2.5])
def test_temperatures_vllm_would_change_or_refuse_fail_on_one_line(
    temperature: float, raw: VLLMBackend
) -> None:
    one_line_error(
        lambda: raw.generate(REQUESTS, SamplingParams(temperature=temperature)), "temperature", "0.01 to 2.0"
    )


def test_no_requests_no_engine_call(vllm: ModuleType, raw: VLLMBackend) -> None:
    assert raw.generate([], SamplingParams()) == []
    assert calls(vllm, "LLM.generate") == []


def test_load_backend_builds_vllm(vllm: ModuleType, model_dir: Path) -> None:
    backend = load_backend("vllm", model_path=model_dir, prompt_mode="chat", max_model_len=32)
    assert isinstance(backend, VLLMBackend) and backend.max_model_len == 32


def test_engine_refusals_become_one_line_errors(vllm: ModuleType, model_dir: Path, tmp_path: Path) -> None:
    """With RoPE scaling the backend leaves the context check to vLLM, whose ValueError becomes one line."""
    scaled = tmp_path / "scaled"
    shutil.copytree(model_dir, scaled)
    config = json.loads((scaled / "config.json").read_text())
    config["rope_parameters"] = {"rope_theta": 10000.0, "rope_type": "linear", "factor": 2.0}
    (scaled / "config.json").write_text(json.dumps(config))
    one_line_error(lambda: VLLMBackend(scaled, "raw", max_model_len=100), "engine refused to start", "(100)")


def test_the_parameter_count_comes_from_the_checkpoint_and_equals_what_hf_loaded(
    raw: VLLMBackend, hf: dict[str, HFBackend], tmp_path: Path
) -> None:
    """vLLM's weights live in its engine workers, so the leaderboard's size is read from the safetensors
    headers of the folder vLLM loads; it must equal the parameters the HF backend counts after loading it."""
    assert raw.parameter_count == hf["raw"].parameter_count > 0
    assert safetensors_parameters(tmp_path) is None  # no weights there: unknown, never a guess
