import subprocess
import sys
from pathlib import Path

import pytest

from rpt_transfer.errors import RptError
from rpt_transfer.generation import GenRequest, GenResult, SamplingParams, load_backend
from rpt_transfer.generation.hf import HFBackend
from tiny_generation import MAX_POSITIONS, REQUESTS, ask, train_arith_model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_arith_model(tmp_path_factory.mktemp("tiny-lm"))


@pytest.fixture(scope="module")
def raw(model_dir: Path) -> HFBackend:
    return HFBackend(model_dir, "raw", device="cpu", batch_size=4)


@pytest.fixture(scope="module")
def chat(model_dir: Path) -> HFBackend:
    return HFBackend(model_dir, "chat", device="cpu", batch_size=4)


def completions(results: list[GenResult]) -> list[tuple[str, str, str, int]]:
    return [(r.request_id, r.completion, r.finish_reason, r.completion_tokens) for r in results]


def one_by_one(backend: HFBackend, params: SamplingParams) -> list[GenResult]:
    return [result for request in REQUESTS for result in backend.generate([request], params)]


def test_greedy_is_the_same_in_any_batch(raw: HFBackend) -> None:
    params = SamplingParams(max_tokens=12)
    batched = raw.generate(REQUESTS, params)
    assert completions(batched) == completions(one_by_one(raw, params))
    assert [r.request_id for r in batched] == [r.request_id for r in REQUESTS]
    assert any(r.completion.strip() for r in batched)


def test_samples_are_the_same_in_any_batch(raw: HFBackend) -> None:
    params = SamplingParams(temperature=1.0, top_p=0.9, max_tokens=12, n=3)
    batched = raw.generate(REQUESTS, params)
    assert [(r.request_id, r.sample_index) for r in batched] == [
        (q.request_id, i) for q in REQUESTS for i in range(3)
    ]
    assert completions(batched) == completions(one_by_one(raw, params))


def test_seeds_and_sample_indices_give_different_samples(raw: HFBackend) -> None:
    params = SamplingParams(temperature=1.5, max_tokens=10, n=4)
    by_seed = raw.generate([ask(f"s{seed}", "Q:", seed=seed) for seed in range(6)], params)
    assert len({r.completion for r in by_seed if r.sample_index == 0}) > 1
    assert len({r.completion for r in by_seed if r.request_id == "s0"}) > 1
    assert completions(raw.generate([ask("s0", "Q:", seed=0)], params)) == completions(by_seed[:4])


def test_stop_string_cuts_the_completion(raw: HFBackend) -> None:
    params = SamplingParams(temperature=1.0, max_tokens=12, seed=0)
    full = raw.generate([ask("a", "Q:", seed=7)], params)[0].completion
    assert len(full) >= 3, full
    stop = full[2]
    cut = raw.generate([ask("a", "Q:", seed=7)], params.model_copy(update={"stop": ["never", stop]}))[0]
    assert cut.completion == full[: full.index(stop)]
    assert cut.finish_reason == "stop"
    assert cut.completion_tokens == full.index(stop) + 1  # one character per token


def test_max_tokens_ends_with_length(raw: HFBackend) -> None:
    result = raw.generate([ask("a", "Q: 3+4=?\nA:")], SamplingParams(max_tokens=1))[0]
    assert (result.finish_reason, result.completion_tokens, len(result.completion)) == ("length", 1, 1)


def test_end_of_sequence_ends_with_stop(raw: HFBackend) -> None:
    result = raw.generate([ask("a", "Q: 3+4=?\nA:")], SamplingParams(max_tokens=20))[0]
    assert result.finish_reason == "stop"
    assert result.completion_tokens == len(result.completion) + 1  # the <eos> counts, is not shown


def test_prompt_text_and_token_counts(raw: HFBackend, chat: HFBackend) -> None:
    messages = [{"role": "user", "content": "Q: 1+1=?"}, {"role": "user", "content": "A:"}]
    params = SamplingParams(max_tokens=4)
    raw_result = raw.generate([GenRequest("r", messages, 0)], params)[0]
    assert raw_result.prompt_text == "Q: 1+1=?\n\nA:"
    assert raw_result.prompt_tokens == len("Q: 1+1=?\n\nA:") + 1  # <bos>
    chat_result = chat.generate([ask("c", "Q: 1+1=?")], params)[0]
    assert chat_result.prompt_text == "<bos><|user|>Q: 1+1=?\n<|assistant|>"
    assert chat_result.prompt_tokens == len("Q: 1+1=?\n") + 3  # <bos>, <|user|>, <|assistant|>


def test_overlong_prompt_is_an_error_row(raw: HFBackend) -> None:
    params = SamplingParams(max_tokens=8, n=2)
    requests = [ask("ok", "Q: 3+4=?\nA:"), ask("too-long", "x" * (MAX_POSITIONS - 8)), ask("ok2", "Q:")]
    seen: list[int] = []
    results = raw.generate(requests, params, on_progress=seen.append)
    assert [(r.request_id, r.finish_reason) for r in results if r.finish_reason == "error"] == [
        ("too-long", "error")
    ] * 2
    assert all(r.error and "positions" in r.error for r in results if r.request_id == "too-long")
    assert [r.request_id for r in results] == ["ok", "ok", "too-long", "too-long", "ok2", "ok2"]
    assert all(r.error is None and r.finish_reason != "error" for r in results if r.request_id != "too-long")
    assert sum(seen) == len(results)


def test_load_backend_builds_hf(model_dir: Path) -> None:
    backend = load_backend("hf", model_path=model_dir, prompt_mode="raw", device="cpu")
    assert isinstance(backend, HFBackend) and backend.device.type == "cpu"


def test_bad_model_path_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(RptError, match="not a local HF checkpoint"):
        HFBackend(tmp_path, "raw")


def test_generation_import_is_light() -> None:
    code = "import sys, rpt_transfer.generation; assert not {'torch', 'transformers'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_engine_versions_name_the_libraries_device_and_dtype(raw: HFBackend) -> None:
    import platform

    import torch
    import transformers

    assert raw.engine_versions() == {
        "backend": "hf@1",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "device": f"cpu ({platform.machine()})",
        "dtype": "float32",
    }


def test_cpu_threads_follow_available_cpus(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """torch's default is every core of the node; in a pod it must be the pod's CPUs (here RPT_CPUS)."""
    import torch

    previous = torch.get_num_threads()
    monkeypatch.setenv("RPT_CPUS", "1")
    try:
        torch.set_num_threads(previous + 1)
        HFBackend(model_dir, "raw", device="cpu")
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(previous)


def test_top_k_one_samples_the_greedy_token(raw: HFBackend) -> None:
    """top_k keeps the k likeliest tokens: with k = 1 any temperature decodes greedily; k = 0 is off."""
    greedy = raw.generate(REQUESTS, SamplingParams(max_tokens=8))
    top_one = raw.generate(REQUESTS, SamplingParams(max_tokens=8, temperature=5.0, top_k=1, seed=3))
    assert completions(top_one) == completions(greedy)
    hot = raw.generate(REQUESTS, SamplingParams(max_tokens=8, temperature=5.0, seed=3))
    assert completions(hot) != completions(greedy)


def test_top_k_off_leaves_job_ids_as_before() -> None:
    """top_k 0 (off) is left out of the sampling identity, so ids planned before it existed stay put."""
    assert "top_k" not in SamplingParams().identity()
    assert SamplingParams(top_k=20).identity()["top_k"] == 20
