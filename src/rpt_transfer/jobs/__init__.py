"""Job kinds: what `rpt-transfer job run` does for each. One runner for every executor."""

import importlib
from collections.abc import Callable

from rpt_transfer import settings
from rpt_transfer.errors import JobError, WriteConflictError
from rpt_transfer.jobs.context import JobContext
from rpt_transfer.jobs.progress import Progress
from rpt_transfer.plan import Plan
from rpt_transfer.store import Manifest, Store

_MODULES = {
    "pretrain": "rpt_transfer.jobs.pretrain",
    "train": "rpt_transfer.jobs.train",
    "generate": "rpt_transfer.jobs.generate",
    "score": "rpt_transfer.jobs.score",
    "aggregate": "rpt_transfer.jobs.aggregate",
}


def run_job(plan: Plan, job_id: str) -> Manifest | None:
    """Run one job of the plan; None when its manifest already exists (nothing to do).

    The store and MLflow are where this machine's environment says (`settings.in_job`), else where the plan
    recorded them; the job sees a plan carrying the addresses it really uses.
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
    try:
        return runner(JobContext(plan=plan, job=job, store=store, progress=Progress(f"{job.kind} {job.id}")))
    except WriteConflictError:
        # Another attempt (an Argo retry, a second study sharing the job) committed first: the job is done.
        if store.is_done(job.key):
            return None
        raise


__all__ = ["JobContext", "run_job"]
