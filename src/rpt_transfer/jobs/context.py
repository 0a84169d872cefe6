"""What a running job can reach: its plan entry, the store, progress, tracking and its dependencies."""

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from rpt_transfer.jobs.progress import Progress
from rpt_transfer.plan import Job, Plan
from rpt_transfer.store import Store

if TYPE_CHECKING:
    from rpt_transfer.tracking import Tracker


@dataclass
class JobContext:
    """One job's view of the world; built by `run_job`, passed to the kind's `run`."""

    plan: Plan
    job: Job
    store: Store
    progress: Progress

    def dep_jobs(self) -> list[Job]:
        """The jobs this one reads from, in the order of `job.deps`."""
        return [self.plan.job(dep) for dep in self.job.deps]

    @cached_property
    def tracker(self) -> "Tracker | None":
        """MLflow for this plan, or None when tracking is off (imports mlflow only when used)."""
        if self.plan.tracking_uri is None:
            return None
        from rpt_transfer.tracking import open_tracker

        return open_tracker(self.plan.tracking_uri, self.store)  # claims of runs live in the store

    def begin(self):
        """Open the job's output for writing; the manifest records the job's inputs."""
        return self.store.begin(self.job.key, job_id=self.job.id, kind=self.job.kind, inputs=self.job.inputs)
