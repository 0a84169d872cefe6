"""`rpt-transfer plan --estimate`: prompts, samples, tokens and GPU-hours per model, each with its source."""

import json
import math
from pathlib import Path
from typing import Any

import pytest

from conftest import needs_benchmark_data, run_cli, tiny_study, write_study
from rpt_transfer.estimate import Estimate, estimate_plan
from rpt_transfer.estimate_tokens import BYTES_PER_TOKEN, CHAT_OVERHEAD_TOKENS
from rpt_transfer.generation.prompting import render_prompt
from rpt_transfer.jobs.generate import PART, benchmark_for
from rpt_transfer.jobs.rows import GENERATION_SCHEMA, to_parquet
from rpt_transfer.plan import Job, Plan
from rpt_transfer.runner import Loaded, load_and_resolve
from rpt_transfer.throughput import (
    Figure,
    GpuPeak,
    Prefill,
    SizeClass,
    ThroughputTable,
    TrainingCosts,
    gpu_hours,
    load_table,
    params_from_config,
    params_from_name,
)
from rpt_transfer.tiny.tokenizer import build_tokenizer

COMMIT = "a" * 40
BASE_COMMIT = "b" * 40


def hub_study(store: str, **changes: Any) -> dict:
    """A study of two Hub models pinned to commits (nothing is downloaded: planning only)."""
    study = {
        "study": "hubby",
        "kind": "observational",
        "store": store,
        "models": {
            "base": {"hub": "org/Base-7B", "revision": BASE_COMMIT},
            "rpt": {"hub": "org/open-rs3", "revision": COMMIT},
        },
        "pairs": [{"name": "p", "rpt": "rpt", "base": "base", "domains": ["math"], "algorithm": "grpo"}],
        "benchmarks": ["smoke"],
        "limit": 6,
        "sampling": {"temperature": 0.6, "max_tokens": 64, "n": 3, "seed": 0},
        "resources": {"shards": 2},
    }
    study.update(changes)
    return study


def loaded(tmp_path: Path, study: dict) -> Loaded:
    return load_and_resolve(write_study(tmp_path / "study.yaml", study), check_store=False)


def run_estimate(tmp_path: Path, study: dict, table: ThroughputTable | None = None) -> tuple[Estimate, Plan]:
    found = loaded(tmp_path, study)
    plan = found.plan()
    return estimate_plan(plan, found.study, found.store, table), plan


def generate_jobs(plan: Plan, model: str) -> list[Job]:
    return [job for job in plan.jobs if job.kind == "generate" and job.context["model"] == model]


def user_texts(job: Job) -> list[str]:
    """The user messages of a generate job's shard, as the generate job renders them."""
    bench = benchmark_for(job.inputs["benchmark"])
    shard = job.inputs["shard"]
    items = bench.items(job.inputs["limit"], job.inputs["benchmark"].get("options"))
    return [bench.render_prompt(item) for item in items[shard["start"] : shard["stop"]]]


def approximate(text: str, chat: bool = True) -> int:
    return math.ceil(len(text.encode()) / BYTES_PER_TOKEN) + (CHAT_OVERHEAD_TOKENS if chat else 0)


def by_name(estimate: Estimate) -> dict:
    return {model.name: model for model in estimate.models}


def test_totals_equal_the_plan_counts(tmp_path: Path) -> None:
    estimate, plan = run_estimate(tmp_path, tiny_study(str(tmp_path / "store")))
    counts, totals = plan.counts(), estimate.totals()
    assert (totals["prompts"], totals["samples"]) == (counts["prompts"], counts["samples"])
    assert [m.name for m in estimate.models] == ["base", "rpt"]
    for model in estimate.models:
        jobs = generate_jobs(plan, model.name)
        assert model.prompts == sum(job.context["items"] for job in jobs)
        assert model.samples == sum(job.context["items"] * job.inputs["sampling"]["n"] for job in jobs)


def test_tiny_models_count_with_their_own_tokenizer(tmp_path: Path) -> None:
    estimate, plan = run_estimate(tmp_path, tiny_study(str(tmp_path / "store")))
    tokenizer = build_tokenizer()
    for model in estimate.models:
        texts = [text for job in generate_jobs(plan, model.name) for text in user_texts(job)]
        rendered = [render_prompt(tokenizer, [{"role": "user", "content": t}], "chat") for t in texts]
        expected = sum(len(tokenizer(text, add_special_tokens=False)["input_ids"]) for text in rendered)
        assert model.token_count == "tiny character tokenizer"
        assert model.prompt_tokens == expected
        assert expected != sum(approximate(text) for text in texts)  # it really is not the approximation


def test_hub_models_without_a_local_tokenizer_use_the_stated_approximation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    study = hub_study(str(tmp_path / "store"))
    study["models"]["base"]["prompt_mode"] = "raw"
    estimate, plan = run_estimate(tmp_path, study)
    models = by_name(estimate)
    for name, chat in (("base", False), ("rpt", True)):
        texts = [text for job in generate_jobs(plan, name) for text in user_texts(job)]
        assert models[name].prompt_tokens == sum(approximate(text, chat) for text in texts)
        assert models[name].token_count.startswith(f"≈ UTF-8 bytes / {BYTES_PER_TOKEN}")
    assert "chat template" in models["rpt"].token_count and "chat" not in models["base"].token_count


def test_a_tokenizer_in_the_local_hub_cache_is_used(tmp_path: Path) -> None:
    cache = tmp_path / "hub-cache"
    build_tokenizer().save_pretrained(cache / "models--org--open-rs3" / "snapshots" / COMMIT)
    spec = write_study(tmp_path / "study.yaml", hub_study(str(tmp_path / "store")))
    result = run_cli("plan", str(spec), "--estimate", "--json", env={"HF_HUB_CACHE": str(cache)})
    assert result.returncode == 0, result.stderr
    models = {m["name"]: m for m in json.loads(result.stdout)["models"]}
    assert models["rpt"]["token_count"] == f"tokenizer of org/open-rs3@{COMMIT[:7]} (local cache)"
    assert models["base"]["token_count"].startswith("≈ UTF-8 bytes")  # its snapshot is not cached
    plan = loaded(tmp_path, hub_study(str(tmp_path / "store"))).plan()
    tokenizer = build_tokenizer()
    texts = [text for job in generate_jobs(plan, "rpt") for text in user_texts(job)]
    rendered = [render_prompt(tokenizer, [{"role": "user", "content": t}], "chat") for t in texts]
    assert models["rpt"]["prompt_tokens"] == sum(
        len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in rendered
    )


def commit_rows(found: Loaded, job: Job, lengths: list[int | None]) -> None:
    """Commit generation rows for one job through the real store API (None: a failed sample)."""
    rows = [
        {
            "study": found.study.study,
            "job": job.id,
            "model": job.context["model"],
            "model_ref": json.dumps(job.inputs["model"]),
            "benchmark": job.context["benchmark"],
            "item_id": f"item-{index}",
            "sample_index": 0,
            "prompt_hash": "0" * 16,
            "prompt": "p",
            "completion": "" if length is None else "x" * length,
            "finish_reason": "error" if length is None else "stop",
            "prompt_tokens": 5,
            "completion_tokens": 0 if length is None else length,
            "error": "timed out" if length is None else None,
            "engine": "{}",
        }
        for index, length in enumerate(lengths)
    ]
    with found.store.begin(job.key, job_id=job.id, kind="generate", inputs=job.inputs) as writer:
        writer.put_bytes(PART, to_parquet(rows, GENERATION_SCHEMA))


def test_completion_lengths_come_from_finished_jobs_of_the_same_model(tmp_path: Path) -> None:
    study = tiny_study(str(tmp_path / "store"), resources={"shards": 2, "expected_completion_tokens": 7})
    found = loaded(tmp_path, study)
    plan = found.plan()
    base_jobs = generate_jobs(plan, "base")
    commit_rows(found, base_jobs[0], [10, 20])
    commit_rows(found, base_jobs[1], [30, None])  # the failed sample does not count
    models = by_name(estimate_plan(plan, found.study, found.store))
    base, rpt = models["base"], models["rpt"]
    assert (base.completion_from, base.completion_tokens) == ("measured", base.samples * 20)
    assert base.completion_detail == "mean 20 tokens over 3 finished samples"
    assert (rpt.completion_from, rpt.completion_tokens) == ("spec", rpt.samples * 7)


def test_without_finished_jobs_or_spec_value_max_tokens_is_the_upper_bound(tmp_path: Path) -> None:
    overrides = {"smoke_facts": {"max_tokens": 9}}
    estimate, plan = run_estimate(tmp_path, tiny_study(str(tmp_path / "store"), overrides=overrides))
    for model in estimate.models:
        jobs = generate_jobs(plan, model.name)
        expected = sum(
            j.context["items"] * j.inputs["sampling"]["n"] * j.inputs["sampling"]["max_tokens"] for j in jobs
        )
        assert (model.completion_from, model.completion_tokens) == ("max_tokens", expected)
        assert model.completion_detail == "upper bound: max_tokens 6, 9 per sample"


def figure(**changes: Any) -> Figure:
    values = {
        "id": "f",
        "gpu": "H100",
        "size": "7-8B",
        "model": "m",
        "vllm": "0",
        "gpus": 1,
        "decode_tokens_per_s": 100.0,
        "prefill": Prefill(input_tokens=5000, seconds=5.0),
        "measured": "test",
        "url": "https://example.org",
    }
    return Figure(**{**values, **changes})


def test_gpu_hours_arithmetic() -> None:
    # 3.6M prompt tokens at 1000/s and 360k completion tokens at 100/s: an hour each
    assert gpu_hours(3_600_000, 360_000, figure()) == pytest.approx(2.0)
    assert gpu_hours(3_600_000, 360_000, figure(gpus=4)) == pytest.approx(8.0)  # the measured run's GPUs
    assert gpu_hours(3_600_000, 360_000, figure(prefill=None)) == pytest.approx(1.0)  # decode only


def test_gpu_hours_per_model_from_its_size_class(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    table = ThroughputTable(
        gpus=["H100", "L40S"],
        size_classes=[SizeClass(name="7-8B", min_b=6.5, max_b=9.0)],
        figures=[figure()],
    )
    estimate, _ = run_estimate(tmp_path, hub_study(str(tmp_path / "store")), table)
    models = by_name(estimate)
    rpt = models["rpt"]
    assert (rpt.size_b, rpt.size_from) == (7.0, "its base base (RPT keeps the architecture)")
    for model in models.values():
        hours = (model.prompt_tokens / 1000 + model.completion_tokens / 100) / 3600
        assert model.gpu_hours == {"H100": pytest.approx(hours), "L40S": None}
    assert "no figure for L40S × 7-8B: base, rpt" in estimate.notes
    assert estimate.totals()["gpu_hours"]["H100"] == pytest.approx(2 * models["base"].gpu_hours["H100"])


def test_model_sizes_from_hub_ids_and_configs() -> None:
    names = {
        "agentica-org/DeepScaleR-1.5B-Preview": 1.5,
        "Qwen/Qwen2.5-Coder-7B": 7.0,
        "andrewzh/Absolute_Zero_Reasoner-Coder-7b": 7.0,
        "allenai/OLMo-2-1124-13B-Instruct": 13.0,
        "Qwen/Qwen3-4B": 4.0,
        "knoveleng/Open-RS3": None,
        "mistralai/Mixtral-8x7B-v0.1": None,
    }
    assert {name: params_from_name(name) for name in names} == names
    qwen25_7b = {
        "model_type": "qwen2",
        "hidden_size": 3584,
        "num_hidden_layers": 28,
        "vocab_size": 152064,
        "intermediate_size": 18944,
        "num_attention_heads": 28,
        "num_key_value_heads": 4,
        "tie_word_embeddings": False,
    }
    assert params_from_config(qwen25_7b) == pytest.approx(7.61, abs=0.01)  # the model card says 7.61B
    assert params_from_config({**qwen25_7b, "model_type": "mamba"}) is None


def test_the_packaged_table_gives_a_source_for_every_figure() -> None:
    table = load_table()
    classes = {size.name for size in table.size_classes}
    cells = [(f.gpu, f.size) for f in table.figures]
    assert len(cells) == len(set(cells))
    for row in table.figures:
        assert row.gpu in table.gpus and row.size in classes
        assert row.url.startswith("https://") and row.measured and row.vllm and row.model


def test_unreadable_items_are_left_out_and_said(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rpt_transfer.benchmarks import usaco

    data = tmp_path / "data"
    (data / usaco.TESTS_DIR).mkdir(parents=True)
    (data / usaco.DICT_FILE).write_text("not the USACO dict\n")
    monkeypatch.setenv("RPT_BENCHMARK_DATA", str(data))
    estimate, plan = run_estimate(
        tmp_path, tiny_study(str(tmp_path / "store"), benchmarks=["smoke", "usaco"])
    )
    base = by_name(estimate)["base"]
    assert base.uncounted_prompts == sum(
        j.context["items"] for j in generate_jobs(plan, "base") if j.context["benchmark"] == "usaco"
    )
    assert base.uncounted_prompts > 0 and base.prompt_tokens > 0
    assert any(note.startswith("benchmark usaco: items not read here") for note in estimate.notes)


@needs_benchmark_data("gsm8k")
def test_prompt_tokens_come_from_the_real_items(
    tmp_path: Path, data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    estimate, plan = run_estimate(
        tmp_path, hub_study(str(tmp_path / "store"), benchmarks=["gsm8k"], limit=40)
    )
    texts = [text for job in generate_jobs(plan, "base") for text in user_texts(job)]
    assert len(texts) == 40 and "Janet" in texts[0]  # the first GSM8K test question
    assert by_name(estimate)["base"].prompt_tokens == sum(approximate(text) for text in texts)


def test_cli_prints_the_table_notes_and_sources(tmp_path: Path) -> None:
    spec = write_study(tmp_path / "study.yaml", tiny_study(str(tmp_path / "store")))
    result = run_cli("plan", str(spec), "--estimate")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "estimate of study mini" in out and "H100 GPU-h" in out and "A100 GPU-h" in out
    assert "prompt tokens by tiny character tokenizer: base, rpt" in out
    assert "notes:" in out and "size unknown (tiny model built here), no GPU-hours: base" in out
    assert "sources:" in out
    for row in load_table().figures:
        assert f"[{row.id}]" in out and row.url in out
    as_json = run_cli("plan", str(spec), "--estimate", "--json")
    assert as_json.returncode == 0, as_json.stderr
    payload = json.loads(as_json.stdout)
    assert payload["totals"]["prompts"] == 16 and payload["totals"]["samples"] == 32
    assert {source["id"] for source in payload["sources"]} == {row.id for row in load_table().figures}


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    missing = run_cli("plan", str(tmp_path / "nope.yaml"), "--estimate")
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
    assert missing.stderr.startswith("error: ") and "no such study file" in missing.stderr
    spec = write_study(tmp_path / "study.yaml", tiny_study(str(tmp_path / "store")))
    with_kind = run_cli("plan", str(spec), "--estimate", "--kind", "generate")
    assert with_kind.returncode == 2 and len(with_kind.stderr.strip().splitlines()) == 1
    assert "--kind 'generate'" in with_kind.stderr


def train_study(
    store: str, training: dict[str, Any], data: dict[str, Any] | None = None, **changes: Any
) -> dict:
    """An interventional study of a pinned 7B Hub base trained on one synthetic domain (planning only)."""
    study = {
        "study": "trainy",
        "kind": "interventional",
        "store": store,
        "models": {"base": {"hub": "org/Base-7B", "revision": BASE_COMMIT}},
        "base": "base",
        "training": {"rollouts_per_prompt": 4, "prompts_per_step": 8, "max_new_tokens": 512, **training},
        "train": [
            {
                "name": "math-rl",
                "domain": "math",
                "data": data or {"benchmark": "smoke_arith", "examples": 32},
            }
        ],
        "benchmarks": ["smoke"],
        "limit": 2,
        "sampling": {"max_tokens": 8, "n": 1},
    }
    study.update(changes)
    return study


def costs(**changes: Any) -> TrainingCosts:
    values = {
        "update_flops_per_param_token": 6,
        "update_flops_source": "test",
        "mfu": 0.5,
        "mfu_source": "test",
        "peaks": [GpuPeak(gpu="H100", bf16_dense_tflops=1000.0, source="test", url="https://example.org")],
    }
    return TrainingCosts(**{**values, **changes})


def small_table() -> ThroughputTable:
    return ThroughputTable(
        gpus=["H100", "L40S"],
        size_classes=[SizeClass(name="7-8B", min_b=6.5, max_b=9.0)],
        figures=[figure()],
        training=costs(),
    )


def test_train_jobs_get_rollout_and_update_gpu_hours(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    study = train_study(str(tmp_path / "store"), {"epochs": 2}, resources={"expected_completion_tokens": 100})
    estimate, plan = run_estimate(tmp_path, study, small_table())
    (row,) = estimate.train
    assert (row.name, row.base, row.size_b, row.size_class) == ("math-rl", "base", 7.0, "7-8B")
    assert (row.steps, row.steps_from) == (8, "2 epoch(s) of 32 examples")  # 64 prompts / 8 per step
    assert (row.prompts, row.samples, row.response_tokens, row.response_from) == (64, 256, 100.0, "spec")
    assert row.tokens == 256 * 100
    rollout = 256 * 100 / 100 / 3600  # decode at 100 tok/s on the figure's one GPU; prompts not counted
    update = 6 * 7e9 * 256 * 100 / (0.5 * 1000e12) / 3600
    assert row.rollout_gpu_hours == {"H100": pytest.approx(rollout), "L40S": None}
    assert row.update_gpu_hours == {"H100": pytest.approx(update), "L40S": None}
    assert row.gpu_hours == {"H100": pytest.approx(rollout + update), "L40S": None}
    totals = estimate.totals()
    assert totals["train_jobs"] == 1 and totals["train_gpu_hours_jobs"] == {"H100": 1, "L40S": 0}
    generation = totals["gpu_hours"]["H100"]
    assert totals["study_gpu_hours"]["H100"] == pytest.approx(generation + rollout + update)
    assert (
        "no figure for L40S × 7-8B: rollouts of math-rl have no GPU-hours (their update part is shown)"
        in (estimate.notes)
    )
    assert "no bf16 peak for L40S: train updates on it have no GPU-hours" in estimate.notes
    assert any(note.startswith("train GPU-hours are lower bounds") for note in estimate.notes)
    assert [j.context["model"] for j in plan.jobs if j.kind == "train"] == ["math-rl"]


def test_train_rows_follow_steps_max_new_tokens_and_unknown_sizes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    (row,) = run_estimate(tmp_path, train_study(str(tmp_path / "store"), {"steps": 5}), small_table())[
        0
    ].train
    assert (row.steps, row.steps_from, row.samples) == (5, "steps", 5 * 8 * 4)
    assert (row.response_tokens, row.response_from) == (512.0, "max_new_tokens")  # an upper bound
    capped = train_study(
        str(tmp_path / "store"), {"steps": 5}, resources={"expected_completion_tokens": 9000}
    )
    assert (
        run_estimate(tmp_path, capped, small_table())[0].train[0].response_tokens == 512
    )  # not over the max
    data = tmp_path / "train.jsonl"
    data.write_text('{"id": "a", "prompt": "1+1?", "reference": "2"}\n', encoding="utf-8")
    unknown = train_study(str(tmp_path / "store"), {"epochs": 1}, {"path": str(data), "scorer": "math"})
    estimate, _ = run_estimate(tmp_path, unknown, small_table())
    (row,) = estimate.train
    assert row.steps is None and row.samples == 0 and row.gpu_hours == {"H100": None, "L40S": None}
    assert (
        "train steps unknown (epochs of a data set of unknown size), no GPU-hours: math-rl" in estimate.notes
    )


def test_cli_prints_the_training_table_its_constants_and_the_study_total(tmp_path: Path) -> None:
    spec = write_study(tmp_path / "study.yaml", train_study(str(tmp_path / "store"), {"steps": 3}))
    result = run_cli("plan", str(spec), "--estimate")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "estimate of study trainy" in out and "training in study trainy" in out
    assert "H100 update GPU-h" in out and "A100 rollout GPU-h" in out
    assert (
        "steps from steps: math-rl" in out and "tokens per rollout from max_new_tokens, an upper bound" in out
    )
    table = load_table()
    assert table.training is not None
    for peak in table.training.peaks:
        assert f"{peak.gpu} bf16 peak {peak.bf16_dense_tflops:g} TFLOPS" in out and peak.url in out
    assert "study GPU-hours, lower bound (generation + training where figures exist): H100 " in out
    as_json = run_cli("plan", str(spec), "--estimate", "--json")
    assert as_json.returncode == 0, as_json.stderr
    payload = json.loads(as_json.stdout)
    (row,) = payload["train"]
    assert row["name"] == "math-rl" and row["samples"] == 3 * 8 * 4 and row["size_b"] == 7.0
    assert payload["totals"]["train_samples"] == 96 and payload["training"]["mfu"] == table.training.mfu
    assert "train_gpu_hours" in payload["assumptions"]
    observational = run_cli(
        "plan", str(write_study(tmp_path / "o.yaml", tiny_study(str(tmp_path / "s")))), "--estimate"
    )
    assert observational.returncode == 0 and "training in study" not in observational.stdout
    assert "study GPU-hours" not in observational.stdout


def test_the_packaged_training_constants_name_their_sources() -> None:
    training = load_table().training
    assert training is not None and 0 < training.mfu <= 1 and training.update_flops_per_param_token == 6
    assert training.update_flops_source and training.mfu_source
    assert {peak.gpu for peak in training.peaks} == set(load_table().gpus)
    assert all(peak.url.startswith("https://") and peak.source for peak in training.peaks)
