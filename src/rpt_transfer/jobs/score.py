"""Score job: every sample of one model on one benchmark, checked by the benchmark's verifier.

Scoring is separate from generation so a fixed scorer re-scores without a GPU. A sample the verifier
cannot handle becomes a row with a reason; the job fails only when too many do.

Each row carries the strict and the flexible verdict (`Verdict.resolved()`). A timeout counts only after one
re-run alone (`confirm_timeouts`: the row says `rerun`). A scorer that runs programs records the sandbox's
isolation level in every row and in the manifest (`runtime.sandbox_isolation`), and a machine below the
minimum level fails the job before it scores anything. A `toolchain_missing` verdict fails the job unless
the study accepts missing toolchains (`scoring.missing_toolchains: exclude`): evaluation never counts it 0.
"""

from typing import NamedTuple

import pandas as pd
import pyarrow as pa

from rpt_transfer.analysis.tables import accuracy_table
from rpt_transfer.cpus import available_cpus
from rpt_transfer.errors import JobError
from rpt_transfer.hashing import canonical_json
from rpt_transfer.jobs.context import JobContext
from rpt_transfer.jobs.generate import PART, benchmark_for
from rpt_transfer.jobs.rows import SCORE_SCHEMA, from_parquet, to_parquet
from rpt_transfer.scoring import Context, Scorer, Verdict, get_scorer, sandbox
from rpt_transfer.scoring.batch import SCORER_ERROR, confirm_timeouts, score_batch
from rpt_transfer.scoring.toolchains import toolchain_versions
from rpt_transfer.store import Manifest

MAX_SCORER_ERROR_RATE = 0.05
BATCH = 256
"""Samples per call of the scorer's batch form (and per progress update)."""
SUMMARY_METRICS = (
    "accuracy",
    "accuracy_flexible",
    "format_rate",
    "n_items",
    "n_samples",
    "truncated_rate",
    "no_answer_rate",
    "error_rate",
    "n_excluded",
)
TOOLCHAIN_MISSING = "toolchain_missing"
ISOLATION_NOTE = "sandbox_isolation"
"""Key of the manifest's `runtime` entry that names the sandbox isolation level the job ran under."""


def read_generations(ctx: JobContext) -> pa.Table:
    """All shards' generation rows, each part verified against its manifest."""
    tables = []
    for dep in ctx.dep_jobs():
        manifest = ctx.store.manifest(dep.key)
        assert manifest is not None  # run_job checked every dependency is done
        tables += [from_parquet(ctx.store.read_object(dep.key, obj.name)) for obj in manifest.objects]
    return pa.concat_tables(tables)


class Item(NamedTuple):
    """What scoring needs of one benchmark item."""

    reference: str
    context: Context


def verdicts(scorer: Scorer, rows: list[dict], items: dict[str, Item]) -> tuple[list[Verdict], list[bool]]:
    """One resolved verdict per row, and whether it is a timeout's re-run; generation errors as they are."""
    todo = [index for index, row in enumerate(rows) if row["error"] is None]
    pairs = [(rows[i]["completion"], items[rows[i]["item_id"]].reference) for i in todo]
    contexts = [items[rows[i]["item_id"]].context for i in todo]
    scored = score_batch(scorer, pairs, [rows[i]["finish_reason"] for i in todo], contexts)
    scored, reran = confirm_timeouts(scorer, pairs, contexts, scored)  # the pool is idle between batches
    result = [
        Verdict(0.0, None, "generation_error", row["error"] or "", 0.0, None, format_followed=False)
        for row in rows
    ]
    rerun = [False] * len(rows)
    for index, verdict, again in zip(todo, scored, reran, strict=True):
        result[index], rerun[index] = verdict.resolved(), again
    return result, rerun


def isolation_level(scorer: Scorer, name: str) -> str | None:
    """The sandbox isolation level this job's programs run under (None for scorers that run none).

    Asked once, before scoring: a machine below the configured minimum fails the job in one line here.
    """
    if not scorer.runs_programs:
        return None
    try:
        return sandbox.isolation()
    except sandbox.SandboxError as err:  # below RPT_SANDBOX_MIN here; a bad setting says so itself
        raise JobError(f"scorer {name} cannot run programs on this machine: {err}") from None


def row_of(row: dict, verdict: Verdict, job: dict[str, str | None], rerun: bool) -> dict:
    """One score row from a generation row, its resolved verdict and the job's columns."""
    generation_job = row.pop("job")
    row.pop("prompt")
    return {
        **row,
        "generation_job": generation_job,
        "job": job["job"],
        "benchmark_domain": job["benchmark_domain"],
        "scorer": job["scorer"],
        "extracted": verdict.extracted,
        "correct": verdict.correct,
        "reason": verdict.reason,
        "explanation": verdict.explanation,
        "toolchain": job["toolchain"],
        "correct_flexible": verdict.flexible,
        "extracted_flexible": verdict.flexible_extracted,
        "format_followed": verdict.format_followed,
        "isolation": job["isolation"],
        "rerun": rerun,
    }


def score_rows(ctx: JobContext) -> tuple[list[dict], dict[str, str]]:
    """Score rows for every generated sample of this job's model and benchmark, and how the job ran."""
    identity = ctx.job.inputs["benchmark"]
    bench = benchmark_for(identity)
    scorer = get_scorer(bench.scorer)
    items = {
        item.id: Item(item.reference, dict(item.metadata))
        for item in bench.items(options=identity.get("options"))
    }
    generations = read_generations(ctx).to_pylist()
    available_cpus()  # a bad RPT_CPUS stops the job here, not as a scorer error on every sample
    level = isolation_level(scorer, bench.scorer)
    job = {
        "job": ctx.job.id,
        "benchmark_domain": bench.domain,
        "scorer": bench.scorer,
        "toolchain": canonical_json(toolchain_versions(bench.scorer)),  # recorded, not in the id: rows.py
        "isolation": level,
    }
    ctx.progress.start(len(generations), f"score {ctx.job.context['model']} × {bench.name}")
    rows = []
    for start in range(0, len(generations), BATCH):
        batch = generations[start : start + BATCH]
        scored, rerun = verdicts(scorer, batch, items)
        rows += [row_of(*row, job, again) for *row, again in zip(batch, scored, rerun, strict=True)]
        ctx.progress.advance(len(batch))
    check_failures(rows, bench.name, bench.scorer, ctx.job.inputs.get("scoring", {}))
    return rows, ({ISOLATION_NOTE: level} if level is not None else {})


def check_failures(rows: list[dict], benchmark: str, scorer: str, scoring: dict[str, str]) -> None:
    """Fail the job when too many samples are scorer errors, or any toolchain is missing unless accepted."""
    failed = sum(row["reason"] == SCORER_ERROR for row in rows)
    if rows and failed / len(rows) > MAX_SCORER_ERROR_RATE:
        example = next(row["explanation"] for row in rows if row["reason"] == SCORER_ERROR)
        raise JobError(f"scorer {scorer} failed on {failed}/{len(rows)} samples of {benchmark}: {example}")
    missing = [row["explanation"] for row in rows if row["reason"] == TOOLCHAIN_MISSING]
    if missing and scoring.get("missing_toolchains", "fail") == "fail":
        which = "; ".join(sorted(set(missing))[:3])
        raise JobError(
            f"{benchmark}: {len(missing)} of {len(rows)} samples cannot be scored here, a toolchain is"
            f" missing ({which}); install it, or accept with `scoring: {{missing_toolchains: exclude}}`"
            " in the study spec (those samples are then left out of accuracy, not counted 0)"
        )


def summarise(rows: list[dict]) -> dict[str, float]:
    """Accuracy under both policies, the format rate and the rates worth watching, for MLflow.

    Accuracy is the mean over items of the per-item mean over samples; rows excluded from accuracy
    (accepted missing toolchains) are only counted (`n_excluded`).
    """
    table = accuracy_table(pd.DataFrame(rows))
    if table.empty:  # every row excluded: nothing scored, so no accuracy
        cell = {name: float("nan") for name in SUMMARY_METRICS} | {"n_items": 0, "n_samples": 0}
        return cell | {"n_excluded": float(len(rows))}
    (cell,) = table.to_dict("records")
    return {name: float(cell[name]) for name in SUMMARY_METRICS}


def track(ctx: JobContext, metrics: dict[str, float]) -> None:
    """Mirror this (model, benchmark) result into MLflow under the study's parent run (idempotent).

    The run is what `rpt-transfer track sync` would make from the committed parquet: same code, same run.
    """
    tracker = ctx.tracker
    if tracker is None:
        return
    from rpt_transfer.tracking_sync import sync_score  # mlflow only where tracking is on

    sync_score(tracker, ctx.plan, ctx.store, ctx.job, tracker.study_run(ctx.plan.study), metrics)


def run(ctx: JobContext) -> Manifest:
    """Score, commit, then mirror to MLflow (the aggregate job re-syncs MLflow if this last step fails)."""
    rows, runtime = score_rows(ctx)
    with ctx.begin() as writer:
        writer.put_bytes(PART, to_parquet(rows, SCORE_SCHEMA))
        for key, value in runtime.items():
            writer.note_runtime(key, value)
        manifest = writer.commit()
    track(ctx, summarise(rows))
    return manifest
