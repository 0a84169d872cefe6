"""Train job: RPT-train the base model on one domain's prompts, rewards from the project's scorers.

Resumable through the store, so a pod on another node can continue: every `checkpoint_every` steps the
trainer's checkpoint is committed under `training/<job>/step-<N>/` with its own manifest, and a rerun
continues from the newest complete one (verified on download). The job's own manifest, under
`checkpoints/<job>/`, is written only after the final weights are; the resume area is removed then.

The per-step metrics go into the output too (`metrics.jsonl`, `summary.json`: see `train_metrics`), and
each resumable checkpoint carries the steps up to it, so the store alone can rebuild the MLflow run.
"""

import json
import os
import shutil
import sys
import tempfile
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING

from rpt_transfer.errors import WriteConflictError
from rpt_transfer.jobs.context import JobContext
from rpt_transfer.jobs.models import cache_root, local_model_dir
from rpt_transfer.jobs.train_metrics import METRICS_FILE, SUMMARY_FILE, StepLog, StepRow, from_jsonl, to_jsonl
from rpt_transfer.settings import TRAIN_WORKDIR_ENV
from rpt_transfer.store import Manifest, Store
from rpt_transfer.training.base import TrainRequest, load_trainer
from rpt_transfer.training.config import TrainHyper
from rpt_transfer.training.data import load_examples
from rpt_transfer.training.rewards import ScorerReward

if TYPE_CHECKING:
    from rpt_transfer.tracking_sync import LiveRun

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
    examples, scorer = load_examples(inputs["data"], ctx.store)
    base_dir = local_model_dir(inputs["base"], ctx.plan, ctx.store)
    work = _attempt_folder(work_root() / job.id)
    resume_from, history = _fetch_resume_point(ctx, work)
    steps = StepLog(history)
    total = hyper.total_steps(len(examples))
    ctx.progress.start(total, f"train {job.context['model']} on {job.context['domain']}")
    ctx.progress.advance(len(history))
    live = _start_tracking(ctx)

    def on_step(step: int, metrics: dict[str, float]) -> None:
        ctx.progress.advance()
        steps.add(step, metrics)
        if live is not None and step > live.last_step:  # a resumed run holds the earlier steps already
            live.tracker.log_step(live.run_id, step, metrics)

    def on_checkpoint(step: int, folder: Path) -> None:
        _save_resume_point(ctx.store, job.id, step, folder, steps.rows(upto=step))

    request = TrainRequest(
        model_dir=base_dir,
        prompt_mode=inputs["prompt_mode"],
        examples=examples,
        reward=ScorerReward(scorer, hyper.reward_policy),
        algorithm=inputs["algorithm"],
        hyper=hyper,
        seed=inputs["seed"],
        work_dir=work / "trainer",
        resume_from=resume_from,
        out_dir=work / "final",
        settings={**job.context.get("openrlhf", {}), **_extra_args(inputs["trainer"])},
    )
    try:
        summary = load_trainer(inputs["trainer"]["backend"]).train(request, on_step, on_checkpoint)
    except BaseException:
        if live is not None:
            from rpt_transfer.tracking_sync import fail_train_run

            fail_train_run(live, _reward_metrics(request.reward))
        raise
    with ctx.begin() as writer:
        writer.put_dir(request.out_dir)
        writer.put_bytes(METRICS_FILE, to_jsonl(steps.rows()))
        final = {**summary, **_reward_metrics(request.reward)}
        writer.put_bytes(SUMMARY_FILE, json.dumps(final, sort_keys=True).encode())
        manifest = writer.commit()
    for step in saved_steps(ctx.store, job.id):  # manifest first, then only what it lists (store.delete_job)
        ctx.store.delete_job(f"{resume_prefix(job.id)}/step-{step:06d}")
    shutil.rmtree(work, ignore_errors=True)
    if live is not None:  # the run as `track sync` makes it from the output: gaps filled, FINISHED
        from rpt_transfer.tracking_sync import sync_train

        sync_train(live.tracker, ctx.plan, ctx.store, job, live.parent_run_id)
    return manifest


def work_root() -> Path:
    """Where train jobs keep their working folders: `RPT_TRAIN_WORKDIR`, else the local cache.

    A multi-node OpenRLHF run needs it on a volume every node mounts at the same path (DeepSpeed writes
    each rank's checkpoint shards on the rank's own node).
    """
    configured = os.environ.get(TRAIN_WORKDIR_ENV, "").strip()
    return Path(configured) if configured else cache_root() / "training"


def _extra_args(trainer: object) -> dict:
    return (
        {"extra_args": trainer["extra_args"]} if isinstance(trainer, dict) and "extra_args" in trainer else {}
    )


def _attempt_folder(root: Path) -> Path:
    """A local working folder of this attempt alone, after removing those of attempts no longer alive.

    Two attempts of one job on one machine (a retry while the first still runs) must not delete each
    other's files; leftovers of killed attempts are not trusted (the store's checkpoints are) and go.
    """
    root.mkdir(parents=True, exist_ok=True)
    for folder in root.glob("pid-*"):
        pid = folder.name.split("-")[1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
    return Path(tempfile.mkdtemp(dir=root, prefix=f"pid-{os.getpid()}-"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _fetch_resume_point(ctx: JobContext, work: Path) -> tuple[Path | None, list[StepRow]]:
    """The newest complete resumable checkpoint of this job (downloaded, verified) and its step metrics."""
    steps = saved_steps(ctx.store, ctx.job.id)
    if not steps:
        return None, []
    prefix = f"{resume_prefix(ctx.job.id)}/step-{steps[-1]:06d}"
    target = work / "trainer" / f"checkpoint-{steps[-1]}"
    ctx.store.download(prefix, target)
    where = ctx.store.key_uri(prefix)
    print(f"train {ctx.job.id}: resuming from step {steps[-1]} ({where})", file=sys.stderr, flush=True)
    metrics = target / METRICS_FILE  # checkpoints saved before metrics were kept have none
    history = from_jsonl(metrics.read_bytes()) if metrics.is_file() else []
    metrics.unlink(missing_ok=True)  # not the trainer's file
    return target, [row for row in history if row.step <= steps[-1]]


def _save_resume_point(store: Store, job_id: str, step: int, folder: Path, history: list[StepRow]) -> None:
    """Commit one trainer checkpoint with the step metrics so far, then drop older ones (the newest does)."""
    prefix = f"{resume_prefix(job_id)}/step-{step:06d}"
    if not store.is_done(prefix):
        with (
            suppress(WriteConflictError),  # another attempt of this job saved this step first: as good
            store.begin(prefix, job_id=job_id, kind="train-checkpoint", inputs={"step": step}) as writer,
        ):
            writer.put_dir(folder)
            writer.put_bytes(METRICS_FILE, to_jsonl(history))
            writer.commit()
    for older in saved_steps(store, job_id):
        if older < step:
            store.delete_job(f"{resume_prefix(job_id)}/step-{older:06d}")


def _start_tracking(ctx: JobContext) -> "LiveRun | None":
    """The MLflow run of this train job, RUNNING (None when tracking is off); params as `track sync` logs."""
    tracker = ctx.tracker
    if tracker is None:
        return None
    from rpt_transfer.tracking_sync import start_train_run  # mlflow only where tracking is on

    return start_train_run(tracker, ctx.plan, ctx.job)


def _reward_metrics(reward: ScorerReward) -> dict[str, float]:
    return {
        "reward_samples": float(reward.samples),
        "reward_failures": float(reward.failures),
        "reward_failure_rate": reward.failure_rate(),
    }
