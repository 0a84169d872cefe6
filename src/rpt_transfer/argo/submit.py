"""`rpt-transfer submit`: check, prepare, estimate, and start a study as one Argo Workflow.

Everything that can refuse is asked before anything is written: the study loads and names an S3 store (pods
reach nothing else), the cluster answers and has the WorkflowTemplate, no Workflow of the study is still
running in the namespace (two would race on the same jobs and MLflow parent run), and a server-side dry run
of the very Workflow to be created passes (RBAC to create Workflows, the API server's validation). Then the
spec and plan go to the store (`runner.prepare`, what the Workflow's own prepare step finds again), the
GPU-hour estimate and the jobs still to run are printed, and the Workflow is created from the template.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rpt_transfer.argo.client import WorkflowClient, connect, is_finished, study_selector, workflow_body
from rpt_transfer.argo.status import StudyState, done_jobs
from rpt_transfer.errors import RptError
from rpt_transfer.executors.argo import ArgoExecutor
from rpt_transfer.plan import STAGES, Plan
from rpt_transfer.runner import Loaded, Prepared, load_and_resolve, prepare

WATCH_SECONDS = 10.0
"""Seconds between two looks at a watched Workflow."""

Say = Callable[[str], None]


@dataclass(frozen=True)
class Submitted:
    """A created Workflow and what it runs."""

    client: WorkflowClient
    executor: ArgoExecutor
    name: str
    prepared: Prepared

    @property
    def namespace(self) -> str:
        """The namespace the Workflow runs in."""
        return self.client.namespace


def check_store(loaded: Loaded) -> None:
    """Refuse a store that pods cannot reach: only an S3 store (`s3://bucket/prefix`) is shared with them."""
    uri = loaded.settings.store_uri
    if not uri.startswith("s3://"):
        raise RptError(
            f"{loaded.path}: store {uri} (from {loaded.settings.store_from}) is not on S3; a cluster's pods "
            "share only an S3-compatible store: set the study's `store` (or RPT_STORE) to s3://bucket/prefix"
        )


def running_workflows(client: WorkflowClient, study: str) -> list[dict[str, Any]]:
    """The study's Workflows in the client's namespace that have not finished."""
    return [w for w in client.list_workflows(study_selector(study)) if not is_finished(w)]


def refuse_running(client: WorkflowClient, study: str) -> None:
    """One line naming a Workflow of the study that still runs (a second one would race it)."""
    running = running_workflows(client, study)
    if running:
        name = running[0]["metadata"]["name"]
        phase = (running[0].get("status") or {}).get("phase") or "Pending"
        ns = client.namespace
        raise RptError(
            f"study {study}: Workflow {name} is still running in namespace {ns} ({phase}); follow it with "
            f"`rpt-transfer status STUDY.yaml -n {ns}`, or stop it first with `argo stop -n {ns} {name}`"
        )


def check_limits(plan: Plan, score_chunk: int | None) -> None:
    """Refuse a plan that one Argo Workflow cannot hold (object size, list caps: `argo.limits`)."""
    from rpt_transfer.argo import limits
    from rpt_transfer.fanout import DEFAULT_SCORE_CHUNK

    problem = limits.check(plan, score_chunk or DEFAULT_SCORE_CHUNK)
    if problem is not None:
        raise RptError(f"study {plan.study} is too big for one Argo Workflow: {problem}")


def to_run(plan: Plan, done: set[str]) -> str:
    """Jobs without a manifest, per kind: "2 train, 8 generate, 8 score, 1 aggregate (19 of 21 jobs)"."""
    left = Counter(job.kind for job in plan.jobs if job.id not in done)
    kinds = ", ".join(f"{left[kind]} {kind}" for kind in STAGES if left[kind])
    total = sum(left.values())
    if not total:
        return f"to run: none of {len(plan.jobs)} jobs (all done; the Workflow only checks them)"
    return f"to run: {kinds} ({total} of {len(plan.jobs)} jobs)"


def estimate_line(loaded: Loaded, prepared: Prepared) -> str:
    """The GPU-hour estimate in one line (`rpt-transfer plan --estimate` shows the full table)."""
    from rpt_transfer.estimate import estimate_plan
    from rpt_transfer.estimate_view import compact

    totals = estimate_plan(prepared.plan, loaded.study, prepared.store).totals()
    hours = [
        f"{gpu} {totals['gpu_hours'][gpu]:,.1f} ({covered}/{totals['models']} models)"
        for gpu, covered in totals["gpu_hours_models"].items()
        if covered
    ]
    return (
        f"estimate: {totals['prompts']:,} prompts, {totals['samples']:,} samples, "
        f"{compact(totals['prompt_tokens'])} prompt and {compact(totals['completion_tokens'])} completion "
        f"tokens; GPU-hours (lower bound): {'; '.join(hours) or 'no measured figure covers these models'}"
    )


def submit_study(
    path: Path,
    *,
    namespace: str | None,
    argo_server: str | None,
    score_chunk: int | None,
    say: Say,
    warn: Say,
) -> Submitted:
    """Check, prepare, print the estimate and the jobs to run, and create the study's Workflow."""
    loaded = load_and_resolve(path, check_store=False, runnable=False)
    check_store(loaded)
    client = connect(namespace, argo_server)
    client.get_template()
    study = loaded.study.study
    refuse_running(client, study)
    planned = loaded.plan(path.read_bytes())  # the plan prepare will store, made here to check it first
    check_limits(planned, score_chunk)
    assert planned.spec is not None
    body = workflow_body(study, loaded.store.key_uri(planned.spec), score_chunk)
    client.create_workflow(body, dry_run=True)  # RBAC to create Workflows, the API server's validation
    prepared = prepare(path, warn=warn, loaded=loaded)  # the plan checked above, not made again
    say(f"plan: {prepared.uri}")
    say(estimate_line(loaded, prepared))
    done = done_jobs(prepared.plan, prepared.store)
    say(to_run(prepared.plan, done))  # before the Workflow exists, so a user can still stop it
    executor = ArgoExecutor(client, prepared.store, score_chunk=score_chunk)
    executor.submit(prepared.plan, prepared.uri, done=done)
    return Submitted(client, executor, executor.name, prepared)


def watch(submitted: Submitted, say: Say, seconds: float | None = None) -> StudyState:
    """Print a line whenever the study's progress changes, until the Workflow finishes; its last state."""
    last, state = "", None
    for state in submitted.executor.poll(WATCH_SECONDS if seconds is None else seconds):
        line = state.line()
        if line != last:
            say(f"{time.strftime('%H:%M:%S')} {submitted.name} {line}")
            last = line
    assert state is not None
    return state


__all__ = ["Submitted", "check_store", "refuse_running", "submit_study", "watch"]
