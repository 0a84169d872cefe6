"""Executors: the local process pool now, Argo on a cluster later; both run `rpt-transfer job run`."""

from rpt_transfer.executors.base import Executor, JobState, Outcome, job_argv
from rpt_transfer.executors.local import LocalExecutor

__all__ = ["Executor", "JobState", "LocalExecutor", "Outcome", "job_argv"]
