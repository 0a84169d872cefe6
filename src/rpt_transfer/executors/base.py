"""The executor interface: both executors run the same `rpt-transfer job run` argv for every job."""

import abc
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rpt_transfer.plan import Job, Plan


class JobState(enum.StrEnum):
    """Where a job stands in one execution."""

    PENDING = "pending"
    CACHED = "cached"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    BLOCKED = "blocked"


FINISHED = frozenset({JobState.CACHED, JobState.DONE, JobState.FAILED, JobState.BLOCKED})


@dataclass
class Outcome:
    """How one job ended."""

    job: Job
    state: JobState
    seconds: float = 0.0
    log: Path | None = None
    message: str = ""


def job_argv(job_ids: str | Sequence[str], plan_uri: str) -> list[str]:
    """The one command line that runs a job (or a group of generate jobs), locally or in an Argo pod."""
    ids = [job_ids] if isinstance(job_ids, str) else list(job_ids)
    return ["rpt-transfer", "job", "run", *ids, "--plan", plan_uri]


class Executor(abc.ABC):
    """Runs a plan's jobs in dependency order; declaring (the plan) and executing stay apart."""

    @abc.abstractmethod
    def submit(self, plan: Plan, plan_uri: str) -> None:
        """Accept a plan whose file lies at `plan_uri` (every job reads it there)."""

    @abc.abstractmethod
    def status(self) -> dict[str, JobState]:
        """State of every job by id."""

    @abc.abstractmethod
    def wait(self) -> list[Outcome]:
        """Block until every job has finished, failed or been blocked by a failed dependency."""

    @abc.abstractmethod
    def cancel(self) -> None:
        """Stop every running job; finished outputs stay in the store."""
