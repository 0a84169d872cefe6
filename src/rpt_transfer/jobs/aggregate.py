"""Aggregate job: every score of the study into the report, mirrored to the study's MLflow parent run.

The report folder holds `metrics.json`, the headline numbers the parent run shows, so `track sync` can
rebuild that run from the store. MLflow is written before the manifest is committed, so a failed sync
leaves the job undone and a re-run repairs it; the sync is `tracking_sync.sync_study`, the same code as
`rpt-transfer track sync`, so every train and score run of the study is brought up to date here too.

The readers below take a plan and a store rather than a job context, so `rpt-transfer report` can
re-render a report from whatever score jobs are finished, with the same numbers the job would give.

The report folder also holds `pairs.json` (`analysis.leaderboard_pairs`): per pair, where each model's
weights came from and the settings fingerprint, which the leaderboard keys its rows by. Once the report is
committed the leaderboard is rebuilt from every report in the store (`rebuild_leaderboard`).
"""

import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from rpt_transfer.analysis import PairInfo, ReportResult, write_report
from rpt_transfer.analysis.comparability import OWN_SAMPLING
from rpt_transfer.analysis.leaderboard_pairs import PAIRS_FILE, ModelSource, PairsFile, pairs_file
from rpt_transfer.jobs.context import JobContext
from rpt_transfer.jobs.generate import PARAMETERS_NOTE
from rpt_transfer.jobs.models import model_source
from rpt_transfer.jobs.rows import SCORE_SCHEMA, from_parquet
from rpt_transfer.model_defaults import FIELDS as MODEL_FIELDS
from rpt_transfer.plan import Job, Plan
from rpt_transfer.store import Manifest, Store, software_versions

REPORT_METRICS = "metrics.json"
"""File of the report folder with the headline metrics (the parent MLflow run's metrics)."""


UNREAD_COLUMNS = ("completion", "extracted_flexible")
"""Score columns no table or summary reads, whose size grows with the completions: never loaded."""
PRESENCE_COLUMNS = ("extracted",)
"""Score columns read only for whether they are null (`analysis.samples.format_followed`): loaded as an
empty string where set, so an extracted program as long as its completion costs no memory."""


def read_scores(plan: Plan, store: Store, score_jobs: Sequence[Job]) -> pd.DataFrame:
    """All score rows of the given (finished) jobs, named by this plan (rows may come from another study).

    Only the columns the analysis reads are loaded (`UNREAD_COLUMNS`, `PRESENCE_COLUMNS`), so memory
    does not grow with the completions; the parts are joined as Arrow tables and converted once.
    """
    tables = []
    for job in score_jobs:
        manifest = store.manifest(job.key)
        assert manifest is not None  # callers pass finished jobs only
        for obj in manifest.objects:
            table = score_table(store.read_object(job.key, obj.name))
            for name, value in (("study", plan.study), ("model", job.context["model"])):
                column = pa.repeat(pa.scalar(value, pa.string()), table.num_rows)
                if name in table.column_names:
                    table = table.set_column(table.column_names.index(name), name, column)
                else:
                    table = table.append_column(name, column)
            tables.append(table)
    return pa.concat_tables(tables, promote_options="permissive").to_pandas()


def score_table(data: bytes) -> pa.Table:
    """One stored score part with the columns the analysis reads (see `read_scores`)."""
    table = from_parquet(data, columns=[name for name in SCORE_SCHEMA.names if name not in UNREAD_COLUMNS])
    for name in PRESENCE_COLUMNS:
        if name in table.column_names:
            column = table.column(name)
            present = pc.if_else(
                pc.is_valid(column), pa.scalar("", column.type), pa.scalar(None, column.type)
            )
            table = table.set_column(table.column_names.index(name), name, present)
    return table


def score_frame(ctx: JobContext) -> pd.DataFrame:
    """All score rows of the study, named by this plan (stored rows may come from another study's run)."""
    return read_scores(ctx.plan, ctx.store, ctx.dep_jobs())


def evaluation_settings(plan: Plan, score_jobs: Sequence[Job]) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (model, benchmark): how it was sampled, prompted and scored, as flat keys for comparison.

    Under `sampling_defaults: model` each model samples at its own temperature, top_p and top_k by the
    study's design: those keys are `own_sampling.*`, which the report names when they differ but compares
    anyway (`comparability.NOTE_ONLY`); the provenance names each model's values and their source.
    """
    settings = {}
    for job in score_jobs:
        generate_job = plan.job(job.deps[0])
        generate = generate_job.inputs
        own = set(MODEL_FIELDS) if "sampling_defaults" in generate_job.context else set()
        settings[(job.context["model"], job.context["benchmark"])] = {
            **{f"{OWN_SAMPLING if k in own else 'sampling'}.{k}": v for k, v in generate["sampling"].items()},
            "limit": generate["limit"],
            "benchmark_version": job.inputs["benchmark"]["version"],
            "scorer": f"{job.inputs['scorer']['name']}@{job.inputs['scorer']['version']}",
            "prompt_mode": generate["prompt_mode"],
            "backend": generate["backend"],
        }
    return settings


def study_provenance(plan: Plan, aggregate: Job, score_jobs: Sequence[Job]) -> dict[str, Any]:
    """What produced the numbers: spec hash, jobs, model revisions, sampling, scorers and software."""
    generate = [plan.job(job.deps[0]) for job in score_jobs]
    sampling: dict[str, dict[str, str]] = {}
    for job in generate:
        sampling.setdefault(job.context["benchmark"], {})[job.context["model"]] = str(job.inputs["sampling"])
    return {
        "study": plan.study,
        "spec_sha": plan.spec_sha,
        "aggregate_job": aggregate.id,
        "score_jobs": ", ".join(sorted(job.id for job in score_jobs)),
        "models": {job.context["model"]: _describe(job.inputs["model"], plan) for job in generate},
        "prompt_mode": {job.context["model"]: job.inputs["prompt_mode"] for job in generate},
        "sampling": {
            bench: next(iter(set(by_model.values()))) if len(set(by_model.values())) == 1 else by_model
            for bench, by_model in sorted(sampling.items())
        },
        **model_sampling(generate),
        "scorers": {
            job.context["benchmark"]: f"{job.inputs['scorer']['name']}@{job.inputs['scorer']['version']}"
            for job in score_jobs
        },
        "software": software_versions(),
    }


def model_sampling(generate: Sequence[Job]) -> dict[str, dict[str, str]]:
    """Per model, the values `sampling_defaults: model` took from its generation_config.json, and where.

    As the plan recorded them, so the report says where each model's numbers came from; studies that
    sample every model alike get nothing, so their reports stay as they were.
    """
    defaults = {
        job.context["model"]: job.context["sampling_defaults"]
        for job in generate
        if "sampling_defaults" in job.context
    }
    if not defaults:
        return {}
    shown = {}
    for model, found in sorted(defaults.items()):
        values = ", ".join(f"{key}={value}" for key, value in found["values"].items())
        shown[model] = f"{values} from {found['source']}" if values else f"none: {found['source']}"
    return {"sampling_defaults": shown}


def provenance(ctx: JobContext) -> dict:
    """What produced the numbers: spec hash, jobs, models, sampling and software."""
    return study_provenance(ctx.plan, ctx.job, ctx.dep_jobs())


def _describe(ref: dict, plan: Plan) -> str:
    source = model_source(ref, plan)
    return f"{source['model_source']} @ {source['revision']}"


def study_pairs(aggregate: Job) -> list[PairInfo]:
    """The study's RPT/base pairs, from the aggregate job's inputs, as the analysis expects them."""
    return [
        PairInfo(
            name=p["name"],
            rpt_model=p["rpt"],
            base_model=p["base"],
            rpt_domains=tuple(p["domains"]),
            algorithm=p["algorithm"],
        )
        for p in aggregate.inputs["pairs"]
    ]


def pairs(ctx: JobContext) -> list[PairInfo]:
    """The study's RPT/base pairs as the analysis expects them."""
    return study_pairs(ctx.job)


def model_sources(plan: Plan, store: Store, score_jobs: Sequence[Job]) -> dict[str, ModelSource]:
    """Per model name: where its weights came from, and its parameter count where a generate job counted it.

    The count is a runtime note of the generate manifests (`generate.PARAMETERS_NOTE`: the HF and vLLM
    backends, not a server). One manifest per model: every shard of it loaded the same weights with the
    same backend, so its first shard says what all would.
    """
    found: dict[str, ModelSource] = {}
    for job in (plan.job(score.deps[0]) for score in score_jobs):
        name = job.context["model"]
        if name in found:
            continue
        manifest = store.manifest(job.key)
        counted = manifest.runtime.get(PARAMETERS_NOTE) if manifest is not None else None
        source = model_source(job.inputs["model"], plan)
        found[name] = ModelSource(
            name=name,
            source=source["model_source"],
            revision=source["revision"],
            parameters=int(counted) if counted else None,
        )
    return found


def report_pairs(plan: Plan, store: Store, aggregate: Job, score_jobs: Sequence[Job]) -> PairsFile:
    """The report's `pairs.json`: each pair's model sources and settings fingerprint."""
    return pairs_file(
        plan.study,
        study_pairs(aggregate),
        model_sources(plan, store, score_jobs),
        evaluation_settings(plan, score_jobs),
    )


def rebuild_leaderboard(ctx: JobContext) -> None:
    """Rebuild the leaderboard from every report in the store, and log it where tracking is on.

    Called after the study's report is committed. The leaderboard is a view over all studies: a problem
    there (another study's unreadable report, MLflow down) must neither fail this job nor undo its report,
    since the job would then run again for nothing. So any error is one warning line on stderr, and
    `rpt-transfer leaderboard` rebuilds it later.
    """
    from rpt_transfer.analysis.leaderboard import build_leaderboard, log_leaderboard

    try:
        built = build_leaderboard(ctx.store)
        if ctx.tracker is not None:
            log_leaderboard(ctx.tracker, ctx.store, built)
    except Exception as error:  # any error: see the docstring, the committed report must stand
        print(
            f"warning: leaderboard not rebuilt ({type(error).__name__}: {error}); the report of "
            f"{ctx.plan.study} is committed; run `rpt-transfer leaderboard` to rebuild it",
            file=sys.stderr,
            flush=True,
        )


def write_report_folder(
    out: Path,
    *,
    study: str,
    scores: pd.DataFrame,
    pairs: Sequence[PairInfo],
    provenance: dict[str, Any],
    settings: dict[tuple[str, str], dict[str, Any]],
    kind: str,
    described: PairsFile,
) -> ReportResult:
    """The report folder as the job commits it: `write_report`'s files, `metrics.json` and `pairs.json`."""
    result = write_report(
        study=study,
        scores=scores,
        pairs=pairs,
        provenance=provenance,
        out_dir=out,
        settings=settings,
        kind=kind,
    )
    (out / REPORT_METRICS).write_text(json.dumps(result.metrics, sort_keys=True), encoding="utf-8")
    (out / PAIRS_FILE).write_text(described.to_json(), encoding="utf-8")
    return result


def run(ctx: JobContext) -> Manifest:
    """Write the report, mirror it to MLflow, then commit it to the store."""
    study = ctx.plan.study
    frame = score_frame(ctx)
    ctx.progress.start(3, f"aggregate {study}")
    with tempfile.TemporaryDirectory(prefix="rpt-report-") as tmp:
        out = Path(tmp)
        write_report_folder(
            out,
            study=study,
            scores=frame,
            pairs=pairs(ctx),
            provenance=provenance(ctx),
            settings=evaluation_settings(ctx.plan, ctx.dep_jobs()),
            kind=ctx.job.context.get("kind", "observational"),
            described=report_pairs(ctx.plan, ctx.store, ctx.job, ctx.dep_jobs()),
        )
        ctx.progress.advance()
        tracker = ctx.tracker
        if tracker is not None:
            from rpt_transfer.tracking_sync import sync_study  # mlflow only where tracking is on

            sync_study(tracker, ctx.plan, ctx.store, report_dir=out, scores=frame)
        ctx.progress.advance()
        with ctx.begin() as writer:
            writer.put_dir(out)
            manifest = writer.commit()
        ctx.progress.advance()
    rebuild_leaderboard(ctx)
    return manifest
