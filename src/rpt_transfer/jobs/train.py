"""Train job: RPT-train the base model on one domain's prompts, rewards from the project's scorers.

Resumable through the store, so a pod on another node can continue: every `checkpoint_every` steps the
trainer's checkpoint is committed under `training/<job>/step-<N>/` with its own manifest, and a rerun
continues from the newest complete one (verified on download). The job's own manifest, under
`checkpoints/<job>/`, is written only after the final weights are; the resume area is removed then.
"""

import shutil
import sys
from pathlib import Path
from typing import Any

from rpt_transfer.jobs.context import JobContext
from rpt_transfer.jobs.models import cache_root, local_model_dir, model_source
from rpt_transfer.store import Manifest, Store
from rpt_transfer.training.base import TrainRequest, load_trainer
from rpt_transfer.training.config import TrainHyper
from rpt_transfer.training.data import load_examples
from rpt_transfer.training.rewards import ScorerReward

RESUME_ROOT = "training"


def resume_prefix(job_id: str) -> str:
    """Store folder of a train job's resumable checkpoints."""
    return f"{RESUME_ROOT}/{job_id}"


def saved_steps(store: Store, job_id: str) -> list[int]:
    """Steps with a complete (committed) resumable checkpoint, oldest first."""
    steps = set()
    for key in store.list_keys(resume_prefix(job_id)):
        parts = key.split("/")
        if len(parts) == 4 and parts[3] == "MANIFEST.json" and parts[2].startswith("step-"):
            steps.add(int(parts[2].removeprefix("step-")))
    return sorted(steps)


def run(ctx: JobContext) -> Manifest:
    """Train (resuming where an earlier run of this job stopped), commit the checkpoint, close the run."""
    inputs, job = ctx.job.inputs, ctx.job
    hyper = TrainHyper.model_validate(inputs["hyperparameters"])
    examples, scorer = load_examples(inputs["data"])
    base_dir = local_model_dir(inputs["base"], ctx.plan, ctx.store)
    work = cache_root() / "training" / job.id
    shutil.rmtree(work, ignore_errors=True)  # local leftovers are not trusted; the store's copy is
    work.mkdir(parents=True)
    resume_from = _fetch_resume_point(ctx, work)
    total = hyper.steps or -(-int(len(examples) * hyper.epochs) // hyper.prompts_per_step)
    ctx.progress.start(total, f"train {job.context['model']} on {job.context['domain']}")
    tracker, run_id = _start_tracking(ctx, hyper)

    def on_step(step: int, metrics: dict[str, float]) -> None:
        ctx.progress.advance()
        if tracker is not None:
            tracker.log_step(run_id, step, metrics)

    def on_checkpoint(step: int, folder: Path) -> None:
        _save_resume_point(ctx.store, job.id, step, folder)

    request = TrainRequest(
        model_dir=base_dir,
        prompt_mode=inputs["prompt_mode"],
        examples=examples,
        reward=ScorerReward(scorer),
        algorithm=inputs["algorithm"],
        hyper=hyper,
        seed=inputs["seed"],
        work_dir=work / "trainer",
        resume_from=resume_from,
        out_dir=work / "final",
    )
    try:
        summary = load_trainer(inputs["trainer"]["backend"]).train(request, on_step, on_checkpoint)
    except BaseException:
        if tracker is not None:
            tracker.finish_run(run_id, _reward_metrics(request.reward), failed=True)
        raise
    with ctx.begin() as writer:
        writer.put_dir(request.out_dir)
        manifest = writer.commit()
    ctx.store.delete_prefix(resume_prefix(job.id))
    shutil.rmtree(work, ignore_errors=True)
    if tracker is not None:
        tracker.finish_run(run_id, {**summary, **_reward_metrics(request.reward)})
    return manifest


def _fetch_resume_point(ctx: JobContext, work: Path) -> Path | None:
    """The newest complete resumable checkpoint of this job, downloaded and verified, or None."""
    steps = saved_steps(ctx.store, ctx.job.id)
    if not steps:
        return None
    prefix = f"{resume_prefix(ctx.job.id)}/step-{steps[-1]:06d}"
    target = work / "trainer" / f"checkpoint-{steps[-1]}"
    ctx.store.download(prefix, target)
    where = ctx.store.key_uri(prefix)
    print(f"train {ctx.job.id}: resuming from step {steps[-1]} ({where})", file=sys.stderr, flush=True)
    return target


def _save_resume_point(store: Store, job_id: str, step: int, folder: Path) -> None:
    """Commit one trainer checkpoint to the store, then drop older ones (the newest is enough)."""
    prefix = f"{resume_prefix(job_id)}/step-{step:06d}"
    if not store.is_done(prefix):
        with store.begin(prefix, job_id=job_id, kind="train-checkpoint", inputs={"step": step}) as writer:
            writer.put_dir(folder)
            writer.commit()
    for older in saved_steps(store, job_id):
        if older < step:
            store.delete_prefix(f"{resume_prefix(job_id)}/step-{older:06d}")


def _start_tracking(ctx: JobContext, hyper: TrainHyper) -> tuple[Any, str]:
    """The MLflow run of this train job (RUNNING), or (None, "") when tracking is off."""
    tracker = ctx.tracker
    if tracker is None:
        return None, ""
    inputs, context = ctx.job.inputs, ctx.job.context
    data = inputs["data"]
    params = {
        "model": context["model"],
        "base_model": context["base_model"],
        **{f"base_{key}": value for key, value in model_source(inputs["base"], ctx.plan).items()},
        "domain": context["domain"],
        "algorithm": inputs["algorithm"],
        "trainer": f"{inputs['trainer']['backend']}@{inputs['trainer']['version']}",
        "seed": inputs["seed"],
        "data": data["benchmark"]["name"] if "benchmark" in data else data["path"],
        "data_examples": data.get("examples"),
        **{f"hyper.{key}": value for key, value in hyper.model_dump().items()},
    }
    study = context["study"]
    run_id = tracker.training_run(
        study=study,
        job_id=ctx.job.id,
        run_name=f"train {context['model']}",
        params=params,
        tags={**context["tags"], "checkpoint_job": ctx.job.id},  # the evaluation runs carry it too
        parent_run_id=tracker.study_run(study),
    )
    return tracker, run_id


def _reward_metrics(reward: ScorerReward) -> dict[str, float]:
    return {
        "reward_samples": float(reward.samples),
        "reward_failures": float(reward.failures),
        "reward_failure_rate": reward.failure_rate(),
    }
