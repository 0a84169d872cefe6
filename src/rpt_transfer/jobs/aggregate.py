"""Aggregate job: every score of the study into the report, mirrored to the study's MLflow parent run.

MLflow is written before the manifest is committed, so a failed sync leaves the job undone and a re-run
repairs it; per-(model, benchmark) runs are re-synced here too, since MLflow can always be rebuilt.
"""

import tempfile
from pathlib import Path

import pandas as pd

from rpt_transfer.analysis import PairInfo, write_report
from rpt_transfer.jobs import score
from rpt_transfer.jobs.context import JobContext
from rpt_transfer.jobs.models import model_source
from rpt_transfer.jobs.rows import from_parquet
from rpt_transfer.store import Manifest, software_versions


def score_frame(ctx: JobContext) -> pd.DataFrame:
    """All score rows of the study, named by this plan (stored rows may come from another study's run)."""
    frames = []
    for job in ctx.dep_jobs():
        manifest = ctx.store.manifest(job.key)
        assert manifest is not None  # run_job checked every dependency is done
        for obj in manifest.objects:
            frame = from_parquet(ctx.store.read_object(job.key, obj.name)).to_pandas()
            frames.append(frame.assign(study=ctx.plan.study, model=job.context["model"]))
    return pd.concat(frames, ignore_index=True)


def provenance(ctx: JobContext) -> dict:
    """What produced the numbers: spec hash, jobs, models, sampling and software."""
    generate = [job for job in ctx.plan.jobs if job.kind == "generate"]
    return {
        "study": ctx.plan.study,
        "spec_sha": ctx.plan.spec_sha,
        "aggregate_job": ctx.job.id,
        "score_jobs": ", ".join(ctx.job.deps),
        "models": {job.context["model"]: _describe(job.inputs["model"], ctx) for job in generate},
        "sampling": {job.context["benchmark"]: str(job.inputs["sampling"]) for job in generate},
        "software": software_versions(),
    }


def _describe(ref: dict, ctx: JobContext) -> str:
    source = model_source(ref, ctx.plan)
    return f"{source['model_source']} @ {source['revision']}"


def pairs(ctx: JobContext) -> list[PairInfo]:
    """The study's RPT/base pairs as the analysis expects them."""
    return [
        PairInfo(
            name=p["name"],
            rpt_model=p["rpt"],
            base_model=p["base"],
            rpt_domains=tuple(p["domains"]),
            algorithm=p["algorithm"],
        )
        for p in ctx.job.inputs["pairs"]
    ]


def sync_results(ctx: JobContext, frame: pd.DataFrame) -> None:
    """Make sure every score job has its MLflow run (idempotent, found by job id)."""
    for job in ctx.dep_jobs():
        rows = frame[frame["job"] == job.id].to_dict("records")
        score.track(JobContext(ctx.plan, job, ctx.store, ctx.progress), score.summarise(rows))


def run(ctx: JobContext) -> Manifest:
    """Write the report, mirror it to MLflow, then commit it to the store."""
    study = ctx.plan.study
    frame = score_frame(ctx)
    ctx.progress.start(3, f"aggregate {study}")
    with tempfile.TemporaryDirectory(prefix="rpt-report-") as tmp:
        out = Path(tmp)
        result = write_report(
            study=study, scores=frame, pairs=pairs(ctx), provenance=provenance(ctx), out_dir=out
        )
        ctx.progress.advance()
        tracker = ctx.tracker
        if tracker is not None:
            sync_results(ctx, frame)
            tracker.log_report(tracker.study_run(study), out, result.metrics)
        ctx.progress.advance()
        with ctx.begin() as writer:
            writer.put_dir(out)
            manifest = writer.commit()
        ctx.progress.advance()
    return manifest
