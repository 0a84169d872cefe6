"""Job kinds: what `rpt-transfer job run` does for each. One runner for every executor."""

import functools
import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rpt_transfer import settings
from rpt_transfer.errors import EXIT_TRANSIENT, JobError, RptError, TransientError, WriteConflictError
from rpt_transfer.jobs.backends import BackendCache
from rpt_transfer.jobs.context import JobContext
from rpt_transfer.jobs.progress import Progress
from rpt_transfer.plan import Job, Plan, group_key
from rpt_transfer.store import Manifest, Store

_MODULES = {
    "pretrain": "rpt_transfer.jobs.pretrain",
    "train": "rpt_transfer.jobs.train",
    "generate": "rpt_transfer.jobs.generate",
    "score": "rpt_transfer.jobs.score",
    "aggregate": "rpt_transfer.jobs.aggregate",
}


def run_job(plan: Plan, job_id: str, backends: BackendCache | None = None) -> Manifest | None:
    """Run one job of the plan; None when its manifest already exists (nothing to do).

    The store and MLflow are where this machine's environment says (`settings.in_job`), else where the plan
    recorded them; the job sees a plan carrying the addresses it really uses. A generate job takes its
    backend from `backends` when given, so a job already done loads nothing.
    """
    job = plan.job(job_id)
    store_uri, tracking_uri = settings.in_job(plan.store, plan.tracking_uri)
    plan = plan.model_copy(update={"store": store_uri, "tracking_uri": tracking_uri})
    store = Store.from_uri(store_uri)
    if store.is_done(job.key):
        return None
    missing = [dep for dep in (plan.job(d) for d in job.deps) if not store.is_done(dep.key)]
    if missing:
        names = ", ".join(f"{dep.kind} {dep.id}" for dep in missing)
        raise JobError(
            f"job {job.id} ({job.kind}) needs {names} first; `rpt-transfer run` runs jobs in order"
        )
    runner: Callable[[JobContext], Manifest] = importlib.import_module(_MODULES[job.kind]).run
    if backends is not None and job.kind == "generate":
        runner = functools.partial(runner, backends=backends)
    try:
        return runner(JobContext(plan=plan, job=job, store=store, progress=Progress(f"{job.kind} {job.id}")))
    except WriteConflictError:
        # Another attempt (an Argo retry, a second study sharing the job) committed first: the job is done.
        if store.is_done(job.key):
            return None
        raise


@dataclass(frozen=True)
class Ran:
    """How one job of `job run` ended: with a manifest (done), none (already done), or an error."""

    job: Job
    manifest: Manifest | None = None
    error: Exception | None = None

    @property
    def line(self) -> str:
        """The job's one status line, as `job run` prints it (and the local executor reads it back)."""
        if self.error is not None:
            return f"job {self.job.id}: failed: {one_line(self.error)}"
        if self.manifest is None:
            return f"job {self.job.id}: already done"
        return f"job {self.job.id}: done, {len(self.manifest.objects)} objects"


def run_jobs(plan: Plan, job_ids: Sequence[str]) -> list[Ran]:
    """Run several jobs of the plan in this process, in the order given; a failed job does not stop the rest.

    Every id is looked up before anything runs (PlanError for one not in the plan). Generate jobs of one
    group (`plan.group_key`) share one backend, loaded when the first of them really runs and released
    after the last of them in the list, so give a group's jobs together (as the executors do): at most one
    backend is held at a time, and a list that comes back to a group loads it again.
    """
    jobs = [plan.job(job_id) for job_id in dict.fromkeys(job_ids)]
    keys = [group_key(job) for job in jobs]
    last = {key: index for index, key in enumerate(keys)}
    backends = BackendCache()
    results: list[Ran] = []
    try:
        for index, (job, key) in enumerate(zip(jobs, keys, strict=True)):
            try:
                results.append(Ran(job, manifest=run_job(plan, job.id, backends)))
            except Exception as error:  # reported in the job's line; the next job may well succeed
                results.append(Ran(job, error=error))
            if key is not None and last[key] == index:
                backends.release(key)
    finally:
        backends.release()
    return results


def exit_code(results: Sequence[Ran]) -> int:
    """`job run`'s exit code for several jobs: 0 none failed, 75 every failure transient, else 1.

    A job that failed while a dependency of it earlier in the list failed (a pretrain built on another)
    failed because of that one, so only the others decide: a store outage during the first of two pretrain
    jobs is transient as a whole, and Argo tries the pod again.
    """
    failed = {result.job.id for result in results if result.error is not None}
    if not failed:
        return 0
    causes = [r for r in results if r.error is not None and not failed.intersection(r.job.deps)]
    return EXIT_TRANSIENT if all(isinstance(r.error, TransientError) for r in causes) else 1


def one_line(error: Exception) -> str:
    """An error as one line: our own errors say it all; anything else also names its type."""
    lines = str(error).strip().splitlines()
    text = lines[0] if lines else ""
    if isinstance(error, RptError) and text:
        return text
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


__all__ = ["JobContext", "Ran", "exit_code", "run_job", "run_jobs"]
