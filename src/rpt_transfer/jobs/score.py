"""Score job: every sample of one model on one benchmark, checked by the benchmark's verifier.

Scoring is separate from generation so a fixed scorer re-scores without a GPU. A sample the verifier
cannot handle becomes a row with a reason; the job fails only when too many do.
"""

import pandas as pd
import pyarrow as pa

from rpt_transfer.analysis.tables import accuracy_table
from rpt_transfer.cpus import available_cpus
from rpt_transfer.errors import JobError
from rpt_transfer.hashing import canonical_json
from rpt_transfer.jobs.context import JobContext
from rpt_transfer.jobs.generate import PART, benchmark_for
from rpt_transfer.jobs.rows import SCORE_SCHEMA, from_parquet, to_parquet
from rpt_transfer.scoring import Scorer, Verdict, get_scorer
from rpt_transfer.scoring.batch import SCORER_ERROR, score_batch
from rpt_transfer.scoring.toolchains import toolchain_versions
from rpt_transfer.store import Manifest

MAX_SCORER_ERROR_RATE = 0.05
BATCH = 256
"""Samples per call of the scorer's batch form (and per progress update)."""
SUMMARY_METRICS = ("accuracy", "n_items", "n_samples", "truncated_rate", "no_answer_rate", "error_rate")


def read_generations(ctx: JobContext) -> pa.Table:
    """All shards' generation rows, each part verified against its manifest."""
    tables = []
    for dep in ctx.dep_jobs():
        manifest = ctx.store.manifest(dep.key)
        assert manifest is not None  # run_job checked every dependency is done
        tables += [from_parquet(ctx.store.read_object(dep.key, obj.name)) for obj in manifest.objects]
    return pa.concat_tables(tables)


def verdicts(scorer: Scorer, rows: list[dict], references: dict[str, str]) -> list[Verdict]:
    """One verdict per row: generation errors as they are, the rest through `score_batch`."""
    todo = [index for index, row in enumerate(rows) if row["error"] is None]
    pairs = [(rows[i]["completion"], references[rows[i]["item_id"]]) for i in todo]
    scored = score_batch(scorer, pairs, [rows[i]["finish_reason"] for i in todo])
    result = [Verdict(0.0, None, "generation_error", row["error"] or "") for row in rows]
    for index, verdict in zip(todo, scored, strict=True):
        result[index] = verdict
    return result


def score_rows(ctx: JobContext) -> list[dict]:
    """Score rows for every generated sample of this job's model and benchmark."""
    identity = ctx.job.inputs["benchmark"]
    bench = benchmark_for(identity)
    scorer = get_scorer(bench.scorer)
    references = {item.id: item.reference for item in bench.items(options=identity.get("options"))}
    generations = read_generations(ctx).to_pylist()
    available_cpus()  # a bad RPT_CPUS stops the job here, not as a scorer error on every sample
    toolchain = canonical_json(toolchain_versions(bench.scorer))  # recorded, not in the id: see rows.py
    ctx.progress.start(len(generations), f"score {ctx.job.context['model']} × {bench.name}")
    rows = []
    for start in range(0, len(generations), BATCH):
        batch = generations[start : start + BATCH]
        for row, verdict in zip(batch, verdicts(scorer, batch, references), strict=True):
            generation_job = row.pop("job")
            row.pop("prompt")
            rows.append(
                {
                    **row,
                    "generation_job": generation_job,
                    "job": ctx.job.id,
                    "benchmark_domain": bench.domain,
                    "scorer": bench.scorer,
                    **verdict._asdict(),
                    "toolchain": toolchain,
                }
            )
        ctx.progress.advance(len(batch))
    failed = sum(row["reason"] == SCORER_ERROR for row in rows)
    if rows and failed / len(rows) > MAX_SCORER_ERROR_RATE:
        example = next(row["explanation"] for row in rows if row["reason"] == SCORER_ERROR)
        raise JobError(
            f"scorer {bench.scorer} failed on {failed}/{len(rows)} samples of {bench.name}: {example}"
        )
    return rows


def summarise(rows: list[dict]) -> dict[str, float]:
    """Accuracy (mean over items of the per-item mean over samples) and the rates worth watching."""
    (cell,) = accuracy_table(pd.DataFrame(rows)).to_dict("records")
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
    rows = score_rows(ctx)
    with ctx.begin() as writer:
        writer.put_bytes(PART, to_parquet(rows, SCORE_SCHEMA))
        manifest = writer.commit()
    track(ctx, summarise(rows))
    return manifest
