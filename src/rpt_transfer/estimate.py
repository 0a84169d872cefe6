"""What a study will cost before it runs: prompts, samples, tokens, GPU-hours per model (`plan --estimate`).

Prompt tokens come from the real benchmark items (`estimate_tokens`). Completion lengths come from finished
generate jobs of the same model in the store, else the spec's `resources.expected_completion_tokens`, else
each job's max_tokens as an upper bound. GPU-hours come from measured vLLM throughputs (`throughput`). Every
number says where it came from, and a number nobody measured is left out rather than guessed.

Train jobs of an interventional study get a lower bound of their own: the rollouts they generate (prompts per
step x steps x rollouts x mean response length) at the same measured rates for the base model's size class,
plus the policy update as FLOPs (`training` in `throughput.yaml`: 6 x parameters x tokens at an assumed
utilisation of the GPU's bf16 peak).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow.compute as pc

from rpt_transfer.errors import StoreError
from rpt_transfer.estimate_tokens import (
    BYTES_PER_TOKEN,
    CHAT_OVERHEAD_TOKENS,
    Counter,
    PromptTokens,
    counter_for,
    origin,
)
from rpt_transfer.hashing import canonical_json
from rpt_transfer.jobs.rows import from_parquet
from rpt_transfer.manifest import MANIFEST_NAME
from rpt_transfer.plan import Job, Plan
from rpt_transfer.spec import InterventionalStudy, ObservationalStudy
from rpt_transfer.store import Store
from rpt_transfer.throughput import (
    Figure,
    ThroughputTable,
    TrainingCosts,
    gpu_hours,
    load_table,
    params_from_config,
    params_from_name,
)
from rpt_transfer.training.config import TrainHyper

GENERATIONS = "generations"


@dataclass
class ModelEstimate:
    """One model's share of the study, with where each number came from."""

    name: str
    prompts: int = 0
    samples: int = 0
    prompt_tokens: int = 0
    uncounted_prompts: int = 0
    """Prompts whose benchmark items could not be read here; their tokens are not in `prompt_tokens`."""
    token_count: str = ""
    """How prompt tokens were counted: the model's tokenizer, or the stated approximation."""
    completion_tokens: float = 0.0
    completion_from: str = ""
    """`measured`, `spec` or `max_tokens` (an upper bound)."""
    completion_detail: str = ""
    size_b: float | None = None
    """Billions of parameters, when known."""
    size_from: str = ""
    size_class: str | None = None
    gpu_hours: dict[str, float | None] = field(default_factory=dict)
    """GPU type -> GPU-hours (a lower bound), None where no measured figure covers this model."""


@dataclass
class TrainEstimate:
    """One train job's rollouts and updates, and their GPU-hours (lower bounds), with where each came from."""

    name: str
    """The trained model."""
    base: str
    size_b: float | None = None
    """Billions of parameters of the base model (training keeps the architecture)."""
    size_from: str = ""
    size_class: str | None = None
    steps: int | None = None
    """Optimiser steps; None when the run's example count is not known when planning."""
    steps_from: str = ""
    prompts: int = 0
    """Prompts rolled out: steps x prompts per step."""
    samples: int = 0
    """Rollouts: prompts x rollouts per prompt."""
    response_tokens: float = 0.0
    """Mean tokens per rollout."""
    response_from: str = ""
    """`spec` (resources.expected_completion_tokens, at most max_new_tokens) or `max_new_tokens` (a bound)."""
    tokens: float = 0.0
    """Rollout tokens generated and trained on: samples x response tokens (prompt tokens left out)."""
    rollout_gpu_hours: dict[str, float | None] = field(default_factory=dict)
    update_gpu_hours: dict[str, float | None] = field(default_factory=dict)
    gpu_hours: dict[str, float | None] = field(default_factory=dict)
    """Rollouts plus updates, where both are known."""


@dataclass
class Estimate:
    """The estimate of one plan: a row per model, notes on what is missing, and the figures' sources."""

    study: str
    gpus: list[str]
    models: list[ModelEstimate]
    notes: list[str]
    sources: list[Figure]
    train: list[TrainEstimate] = field(default_factory=list)
    """A row per train job (interventional studies)."""
    training: TrainingCosts | None = None
    """The constants of the train rows, with their sources."""

    def totals(self) -> dict[str, Any]:
        """Sums over models; GPU-hours over the models a figure covers, with how many those are."""
        hours = {
            gpu: [h for m in self.models if (h := m.gpu_hours.get(gpu)) is not None] for gpu in self.gpus
        }
        train = {gpu: [h for r in self.train if (h := r.gpu_hours.get(gpu)) is not None] for gpu in self.gpus}
        updates = {
            gpu: [h for r in self.train if (h := r.update_gpu_hours.get(gpu)) is not None]
            for gpu in self.gpus
        }
        return {
            "prompts": sum(m.prompts for m in self.models),
            "samples": sum(m.samples for m in self.models),
            "prompt_tokens": sum(m.prompt_tokens for m in self.models),
            "uncounted_prompts": sum(m.uncounted_prompts for m in self.models),
            "completion_tokens": sum(m.completion_tokens for m in self.models),
            "gpu_hours": {gpu: sum(values) for gpu, values in hours.items()},
            "gpu_hours_models": {gpu: len(values) for gpu, values in hours.items()},
            "models": len(self.models),
            "train_jobs": len(self.train),
            "train_samples": sum(r.samples for r in self.train),
            "train_tokens": sum(r.tokens for r in self.train),
            "train_gpu_hours": {gpu: sum(values) for gpu, values in train.items()},
            "train_gpu_hours_jobs": {gpu: len(values) for gpu, values in train.items()},
            "train_update_gpu_hours": {gpu: sum(values) for gpu, values in updates.items()},
            "train_update_gpu_hours_jobs": {gpu: len(values) for gpu, values in updates.items()},
            "study_gpu_hours": {gpu: sum(hours[gpu]) + sum(train[gpu]) for gpu in self.gpus},
        }

    def to_json(self) -> dict[str, Any]:
        """Everything the table and notes say, as plain data (`plan --estimate --json`)."""
        return {
            "study": self.study,
            "gpus": self.gpus,
            "models": [asdict(m) for m in self.models],
            "train": [asdict(r) for r in self.train],
            "totals": self.totals(),
            "notes": self.notes,
            "sources": [
                {**figure.model_dump(mode="json"), "prefill_tokens_per_s": figure.prefill_tokens_per_s}
                for figure in self.sources
            ],
            "training": self.training.model_dump(mode="json") if self.training is not None else None,
            "assumptions": {
                "approximate_bytes_per_token": BYTES_PER_TOKEN,
                "approximate_chat_overhead_tokens": CHAT_OVERHEAD_TOKENS,
                "gpu_hours": "lower bound: (prompt tokens / prefill rate + completion tokens / decode rate) "
                "× the measured run's GPUs / 3600",
                "train_gpu_hours": TRAIN_HOURS_RULE,
            },
        }


TRAIN_HOURS_RULE = (
    "lower bound per train job: rollouts (steps × prompts per step × rollouts per prompt × mean response "
    "tokens) / decode rate × the measured run's GPUs / 3600, plus the update, update_flops_per_param_token "
    "× parameters × those tokens / (mfu × the GPU's bf16 peak) / 3600; prompt tokens left out"
)


JOBS_READ_PER_MODEL = 16
"""Finished generate jobs read per model for its mean completion length."""


def estimate_plan(
    plan: Plan,
    study: ObservationalStudy | InterventionalStudy,
    store: Store,
    table: ThroughputTable | None = None,
) -> Estimate:
    """The estimate of a plan's generate jobs, reading finished jobs (if any) from the store."""
    table = table or load_table()
    by_model: dict[str, list[Job]] = defaultdict(list)
    for job in plan.jobs:
        if job.kind == "generate":
            by_model[job.context["model"]].append(job)
    refs = {name: jobs[0].inputs["model"] for name, jobs in by_model.items()}
    notes: list[str] = []
    measured = _measured_completions(store, {canonical_json(ref) for ref in refs.values()}, notes)
    sizes = _sizes(study, {name: origin(ref, plan) for name, ref in refs.items()})
    tokens, counters = PromptTokens(), {}
    models = []
    for name, jobs in by_model.items():
        source = origin(refs[name], plan)
        mode = jobs[0].inputs["prompt_mode"]
        key = canonical_json([source, mode])
        if key not in counters:
            counters[key] = counter_for(source, mode)
        model = _model(name, jobs, counters[key], tokens)
        model.completion_tokens, model.completion_from, model.completion_detail = _completions(
            jobs, measured.get(canonical_json(refs[name])), study.resources.expected_completion_tokens
        )
        model.size_b, model.size_from = sizes[name]
        _add_gpu_hours(model, table)
        models.append(model)
    notes += _notes(models, tokens, study, table)
    train = [_train_estimate(job, plan, study, table) for job in plan.jobs if job.kind == "train"]
    if train:
        notes += _train_notes(train, table)
    return Estimate(plan.study, list(table.gpus), models, notes, list(table.figures), train, table.training)


def _model(name: str, jobs: list[Job], counter: Counter, tokens: PromptTokens) -> ModelEstimate:
    """Prompts, samples and prompt tokens of one model's generate jobs."""
    model = ModelEstimate(name, token_count=counter.label)
    for job in jobs:
        items = job.context["items"]
        model.prompts += items
        model.samples += items * job.inputs["sampling"]["n"]
        counted = tokens.job_tokens(job, counter)
        if counted is None:
            model.uncounted_prompts += items
        else:
            model.prompt_tokens += counted
    return model


def _completions(
    jobs: list[Job], measured: tuple[int, int] | None, expected: int | None
) -> tuple[float, str, str]:
    """Completion tokens of a model's samples, and where the length per sample comes from."""
    samples = sum(job.context["items"] * job.inputs["sampling"]["n"] for job in jobs)
    if measured is not None and measured[1] > 0:
        mean = measured[0] / measured[1]
        return samples * mean, "measured", f"mean {mean:,.0f} tokens over {measured[1]:,} finished samples"
    if expected is not None:
        return samples * expected, "spec", f"resources.expected_completion_tokens: {expected:,}"
    bound = sum(
        job.context["items"] * job.inputs["sampling"]["n"] * job.inputs["sampling"]["max_tokens"]
        for job in jobs
    )
    limits = sorted({job.inputs["sampling"]["max_tokens"] for job in jobs})
    return bound, "max_tokens", f"upper bound: max_tokens {', '.join(f'{n:,}' for n in limits)} per sample"


def _measured_completions(store: Store, refs: set[str], notes: list[str]) -> dict[str, tuple[int, int]]:
    """Model ref -> (completion tokens, samples) over the store's finished generate jobs of that model.

    Only jobs whose manifest exists, only the objects it lists (verified), and only samples without an
    error; at most `JOBS_READ_PER_MODEL` jobs per model, in job id order, since each part is downloaded
    whole (completions included). An unreachable store is not an error here: the estimate falls back and
    says so.
    """
    found: dict[str, tuple[int, int]] = {}
    read: dict[str, int] = {}
    try:
        keys = store.list_keys(f"{GENERATIONS}/")
        jobs = sorted(
            {k.split("/")[1] for k in keys if k.count("/") == 2 and k.endswith(f"/{MANIFEST_NAME}")}
        )
        for job_id in jobs:
            prefix = f"{GENERATIONS}/{job_id}"
            manifest = store.manifest(prefix)
            ref = canonical_json(manifest.inputs.get("model")) if manifest is not None else None
            if manifest is None or manifest.kind != "generate" or ref not in refs:
                continue
            if read.get(ref, 0) >= JOBS_READ_PER_MODEL:  # a mean needs no more; a paper study has 64
                continue
            read[ref] = read.get(ref, 0) + 1
            for info in manifest.objects:
                if info.name.endswith(".parquet"):
                    rows = from_parquet(store.read_object(prefix, info.name), ["completion_tokens", "error"])
                    lengths = rows.filter(pc.is_null(rows["error"]))["completion_tokens"].drop_null()
                    total, count = found.get(ref, (0, 0))
                    found[ref] = (total + int(pc.sum(lengths).as_py() or 0), count + len(lengths))
    except StoreError as err:
        notes.append(f"finished jobs not read ({err}); completion lengths fall back to spec or max_tokens")
    return found


def _sizes(
    study: ObservationalStudy | InterventionalStudy, sources: dict[str, dict[str, Any]]
) -> dict[str, tuple[float | None, str]]:
    """Billions of parameters per model and where that comes from; an RPT model has its base's size."""
    sizes = {name: _size(source) for name, source in sources.items()}
    if isinstance(study, ObservationalStudy):
        for pair in study.pairs:
            base = sizes.get(pair.base)
            if sizes.get(pair.rpt, (None, ""))[0] is None and base is not None and base[0] is not None:
                sizes[pair.rpt] = (base[0], f"its base {pair.base} (RPT keeps the architecture)")
    return sizes


def _size(source: dict[str, Any]) -> tuple[float | None, str]:
    """A model's size from its Hub id, else from a config.json already in the local cache."""
    if "tiny" in source:
        return None, "tiny model built here"
    if "hub" not in source:
        return None, "store checkpoint of unknown size"
    billions = params_from_name(source["hub"])
    if billions is not None:
        return billions, "Hub id"
    config = _cached_config(source["hub"], source["revision"])
    billions = params_from_config(config) if config is not None else None
    if billions is not None:
        return billions, "config.json (local cache)"
    return None, "not in its Hub id, and no usable config.json in the local cache"


def _cached_config(repo: str, revision: str) -> dict[str, Any] | None:
    """The model's config.json from the local huggingface_hub cache, or None; never downloads."""
    import json
    from pathlib import Path

    from huggingface_hub import try_to_load_from_cache

    path = try_to_load_from_cache(repo, "config.json", revision=revision)
    if not isinstance(path, str):
        return None
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _add_gpu_hours(model: ModelEstimate, table: ThroughputTable) -> None:
    """GPU-hours per GPU type where a measured figure covers the model's size class."""
    size = table.size_class(model.size_b) if model.size_b is not None else None
    model.size_class = size.name if size is not None else None
    for gpu in table.gpus:
        figure = table.figure(gpu, size.name) if size is not None else None
        model.gpu_hours[gpu] = (
            None if figure is None else gpu_hours(model.prompt_tokens, model.completion_tokens, figure)
        )


def _notes(
    models: list[ModelEstimate],
    tokens: PromptTokens,
    study: ObservationalStudy | InterventionalStudy,
    table: ThroughputTable,
) -> list[str]:
    """What the reader must know: missing figures and sizes, unread items, and what the bound assumes."""
    notes = []
    missing: dict[str, list[str]] = defaultdict(list)
    for model in models:
        for gpu, hours in model.gpu_hours.items():
            if hours is None and model.size_class is not None:
                missing[f"{gpu} × {model.size_class}"].append(model.name)
    notes += [f"no figure for {cell}: {', '.join(names)}" for cell, names in missing.items()]
    unsized = [m for m in models if m.size_b is None]
    notes += [f"size unknown ({m.size_from}), no GPU-hours: {m.name}" for m in unsized]
    outside = [m for m in models if m.size_b is not None and m.size_class is None]
    notes += [f"no size class holds {m.size_b:g}B, no GPU-hours: {m.name}" for m in outside]
    notes += [
        f"benchmark {bench}: items not read here, so its prompt tokens are left out ({problem})"
        for bench, problem in tokens.problems.items()
    ]
    if study.resources.backend != "vllm":
        notes.append(
            f"the study's backend is {study.resources.backend}; the figures are vLLM's, so it takes longer"
        )
    if study.resources.gpus_per_job > 1:
        notes.append(
            f"each generate job asks for {study.resources.gpus_per_job} GPUs; GPU-hours are the measured "
            "GPUs' (N GPUs are at best N times as fast, so more per job never takes fewer GPU-hours)"
        )
    notes.append(
        "GPU-hours are lower bounds: prompt tokens / prefill rate + completion tokens / decode rate, at "
        "rates measured with continuous batching of short ShareGPT-like requests sent all at once (see "
        "sources); long completions fit fewer sequences into the KV cache and decode slower; each prompt is "
        "prefilled once for all its samples"
    )
    return notes


def _train_estimate(
    job: Job, plan: Plan, study: ObservationalStudy | InterventionalStudy, table: ThroughputTable
) -> TrainEstimate:
    """One train job's rollouts, tokens and GPU-hours per GPU type (None where a figure is missing)."""
    hyper = TrainHyper.model_validate(job.inputs["hyperparameters"])
    row = TrainEstimate(job.context["model"], job.context.get("base_model", "?"))
    row.size_b, row.size_from = _size(origin(job.inputs["base"], plan))
    size = table.size_class(row.size_b) if row.size_b is not None else None
    row.size_class = size.name if size is not None else None
    examples = job.inputs["data"].get("examples")
    if hyper.steps is not None:
        row.steps, row.steps_from = hyper.steps, "steps"
    elif examples:
        row.steps = hyper.total_steps(examples)
        row.steps_from = f"{hyper.epochs:g} epoch(s) of {examples:,} examples"
    else:
        row.steps_from = "epochs of a data set whose size is not known when planning (`examples` not given)"
    expected = study.resources.expected_completion_tokens
    if expected is not None:
        row.response_tokens = float(min(expected, hyper.max_new_tokens))
        row.response_from = "spec"
    else:
        row.response_tokens, row.response_from = float(hyper.max_new_tokens), "max_new_tokens"
    if row.steps is not None:
        row.prompts = row.steps * hyper.prompts_per_step
        row.samples = row.prompts * hyper.rollouts_per_prompt
        row.tokens = row.samples * row.response_tokens
    for gpu in table.gpus:
        figure = table.figure(gpu, size.name) if size is not None else None
        peak = table.training.peak(gpu) if table.training is not None else None
        known = row.steps is not None
        row.rollout_gpu_hours[gpu] = gpu_hours(0, row.tokens, figure) if known and figure else None
        row.update_gpu_hours[gpu] = (
            update_gpu_hours(row.size_b, row.tokens, table.training, peak.bf16_dense_tflops)
            if known and peak is not None and table.training is not None and row.size_b is not None
            else None
        )
        parts = (row.rollout_gpu_hours[gpu], row.update_gpu_hours[gpu])
        row.gpu_hours[gpu] = None if None in parts else sum(p for p in parts if p is not None)
    return row


def update_gpu_hours(size_b: float, tokens: float, costs: TrainingCosts, peak_tflops: float) -> float:
    """GPU-hours of the policy updates: FLOPs per parameter and token × parameters × tokens at mfu × peak."""
    flops = costs.update_flops_per_param_token * size_b * 1e9 * tokens
    return flops / (costs.mfu * peak_tflops * 1e12) / 3600


def _train_notes(rows: list[TrainEstimate], table: ThroughputTable) -> list[str]:
    """What the train rows leave out, and why a row or GPU has no hours."""
    notes = []
    unknown = [r.name for r in rows if r.steps is None]
    if unknown:
        notes.append(
            f"train steps unknown (epochs of a data set of unknown size), no GPU-hours: {', '.join(unknown)}"
        )
    unsized = [r.name for r in rows if r.size_b is None]
    if unsized:
        notes.append(f"train base size unknown, no GPU-hours: {', '.join(unsized)}")
    missing: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        for gpu, hours in row.rollout_gpu_hours.items():
            if hours is None and row.steps is not None and row.size_b is not None:
                missing[f"{gpu} × {row.size_class or f'{row.size_b:g}B'}"].append(row.name)
    notes += [
        f"no figure for {cell}: rollouts of {', '.join(names)} have no GPU-hours (their update part is shown)"
        for cell, names in missing.items()
    ]
    if table.training is None:
        notes.append("no training constants in throughput.yaml: train updates have no GPU-hours")
    else:
        no_peak = [gpu for gpu in table.gpus if table.training.peak(gpu) is None]
        notes += [f"no bf16 peak for {gpu}: train updates on it have no GPU-hours" for gpu in no_peak]
        notes.append(
            "train GPU-hours are lower bounds: rollouts at the serving rates above (prompt tokens not "
            "counted: training data is not read when planning), plus the update as "
            f"{table.training.update_flops_per_param_token:g} × parameters × rollout tokens at "
            f"{table.training.mfu:.0%} of the GPU's bf16 peak; left out: the old-policy and reference "
            "log-probability passes (2 × parameters × tokens each), gradient-checkpointing recompute, weight "
            "syncs to vLLM, dynamic-sampling retries, start-up and checkpoint saves"
        )
    return notes
