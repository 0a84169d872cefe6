"""Executors: the local process pool, and Argo (`executors.argo`); both run `rpt-transfer job run`."""

from rpt_transfer.executors.base import Executor, JobState, Outcome, job_argv
from rpt_transfer.executors.local import LocalExecutor

__all__ = ["Executor", "JobState", "LocalExecutor", "Outcome", "job_argv"]
