"""Argo executor: the plan runs as one Workflow made from the installed WorkflowTemplate.

`submit` creates the Workflow (its prepare step finds the spec and plan `rpt-transfer prepare` stored);
every pod runs `rpt-transfer job run --plan PLAN --part PART`, the same job code as the local executor.
`status` reads the job states off the store (done = manifest) and the Workflow's pod nodes
(`rpt_transfer.argo.status`); `wait` polls until the Workflow has finished; `cancel` stops it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from rpt_transfer.argo.client import WorkflowClient, workflow_body
from rpt_transfer.argo.status import StudyState, done_jobs, study_state
from rpt_transfer.errors import PlanError
from rpt_transfer.executors.base import Executor, JobState, Outcome
from rpt_transfer.plan import Plan
from rpt_transfer.store import Store


class ArgoExecutor(Executor):
    """Runs a plan as an Argo Workflow through a `WorkflowClient` (Kubernetes API or Argo Server)."""

    def __init__(
        self,
        client: WorkflowClient,
        store: Store,
        *,
        score_chunk: int | None = None,
        poll_seconds: float = 10.0,
    ) -> None:
        self.client, self.store = client, store
        self.score_chunk, self.poll_seconds = score_chunk, poll_seconds
        self.plan: Plan | None = None
        self.plan_uri = ""
        self.name = ""
        self.cached: set[str] = set()
        self._done: set[str] = set()
        """Jobs seen done: a manifest never goes away, so each poll asks the store only about the others."""

    def submit(self, plan: Plan, plan_uri: str, done: set[str] | None = None) -> None:
        """Create the Workflow; its `study` parameter is the store URI of the spec the plan was made from.

        `done`: the jobs already done, when the caller has just asked the store (`submit` prints them).
        """
        if plan.spec is None:
            raise PlanError(
                f"{plan_uri}: the plan names no spec file (plan format 1); prepare the study again"
            )
        self.cached = done_jobs(plan, self.store) if done is None else set(done)
        self._done = set(self.cached)
        body = workflow_body(plan.study, self.store.key_uri(plan.spec), self.score_chunk)
        created = self.client.create_workflow(body)
        self.plan, self.plan_uri, self.name = plan, plan_uri, created["metadata"]["name"]

    def state(self) -> StudyState:
        """The study's state now: the store's manifests and the Workflow's pod nodes."""
        assert self.plan is not None, "submit a plan first"
        state = study_state(self.plan, self.store, self.client.get_workflow(self.name), self._done)
        self._done = {job for job, job_state in state.states.items() if job_state is JobState.DONE}
        return state

    def poll(self, seconds: float | None = None) -> Iterator[StudyState]:
        """The state every `seconds` until the Workflow has finished (the finished state last)."""
        while True:
            state = self.state()
            yield state
            if state.finished:
                return
            time.sleep(self.poll_seconds if seconds is None else seconds)

    def status(self) -> dict[str, JobState]:
        """State of every job by id: cached (done before submit), done, running, failed, pending or blocked.

        Once the Workflow has finished, a job neither done nor failed is blocked: a dependency failed, or
        the Workflow was stopped before it.
        """
        return self._states(self.state())

    def _states(self, state: StudyState) -> dict[str, JobState]:
        states = {}
        for job_id, job_state in state.states.items():
            if job_state is JobState.DONE and job_id in self.cached:
                job_state = JobState.CACHED
            elif job_state is JobState.PENDING and state.finished:
                job_state = JobState.BLOCKED
            states[job_id] = job_state
        return states

    def wait(self) -> list[Outcome]:
        """Poll until the Workflow has finished; each job's outcome, failures with their pod's log command."""
        assert self.plan is not None, "submit a plan first"
        *_, state = self.poll()
        why = {
            job: f"{failure.message} (pod {failure.pod}: {failure.log_command(self.client.namespace)})"
            for failure in state.failures
            for job in failure.jobs
        }
        states = self._states(state)
        return [
            Outcome(
                job,
                states[job.id],
                message=why.get(job.id, "a dependency failed or the Workflow stopped first")
                if states[job.id] in (JobState.FAILED, JobState.BLOCKED)
                else "",
            )
            for job in self.plan.jobs
        ]

    def cancel(self) -> None:
        """Stop the Workflow (`spec.shutdown: Stop`): its pods are killed, finished outputs stay in the store.

        Stop, not Terminate: Terminate skips the exit handler, which would leave the study's MLflow parent run
        RUNNING until the study is submitted again.
        """
        if self.name:
            self.client.shutdown(self.name, "Stop")
