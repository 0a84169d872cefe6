"""Where a submitted study stands: jobs done, running and failed per kind, from the store and the Workflow.

The store says which jobs are done (their manifest exists). The newest Workflow of the study says the rest:
each of its Pod nodes ran one part (`inputs.parameters.part`, see `rpt_transfer.fanout`), so a pod that is
pending or running makes its part's jobs that are not done yet running, and a pod that failed after its last
retry (its Retry node, or the pod itself when it has none, ended Failed or Error) makes them failed. Each
failure names its pod and the command that shows its log.

Pod names follow Argo v4's POD_NAMES=v2 rule (the default; checked against argo-workflows v4.1.2,
`workflow/util/pod_name.go`, commit f016ad89): `<workflow>-<template>-<fnv32a(node name)>`, the prefix cut to
242 characters; the Workflow's own node is named after the Workflow; annotation
`workflows.argoproj.io/pod-name-format: v1` means the node id is the pod name.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rpt_transfer.argo.client import POD_NAME_ANNOTATION, is_finished, newest, study_selector
from rpt_transfer.executors.base import JobState
from rpt_transfer.fanout import part_jobs
from rpt_transfer.plan import STAGES, Plan
from rpt_transfer.plan_store import current_plan, read_plan
from rpt_transfer.store import Store

RUNNING_PHASES = frozenset({"Pending", "Running"})
FAILED_PHASES = frozenset({"Failed", "Error"})
_MAX_PREFIX = 253 - 10 - 1
"""Longest pod name prefix Argo keeps: a Kubernetes name (253) less the hash and its dash."""
_FNV_OFFSET, _FNV_PRIME = 0x811C9DC5, 0x01000193
COLUMNS = ("jobs", "done", "running", "failed", "to do")


def fnv32a(text: str) -> int:
    """32-bit FNV-1a of the UTF-8 bytes, as Go's `hash/fnv.New32a`."""
    value = _FNV_OFFSET
    for byte in text.encode():
        value = ((value ^ byte) * _FNV_PRIME) & 0xFFFFFFFF
    return value


def pod_name(workflow: dict[str, Any], node: dict[str, Any]) -> str:
    """The name of the pod that runs a Pod node (Argo's GeneratePodName)."""
    metadata = workflow.get("metadata", {})
    if (metadata.get("annotations") or {}).get(POD_NAME_ANNOTATION) == "v1":
        return str(node["id"])
    name, node_name = metadata.get("name", ""), node.get("name", "")
    if node_name == name:
        return name
    template = (node.get("templateRef") or {}).get("template") or node.get("templateName") or ""
    prefix = f"{name}-{template}" if template else name
    return f"{prefix[:_MAX_PREFIX]}-{fnv32a(node_name)}"


def parameter(node: dict[str, Any], name: str, where: str = "inputs") -> str | None:
    """A node's input (or output) parameter value, None when it has none of that name."""
    for item in (node.get(where) or {}).get("parameters") or []:
        if item.get("name") == name:
            return item.get("value")
    return None


@dataclass(frozen=True)
class PodFailure:
    """A pod that failed after its last retry: what it ran, its name, and why."""

    part: str
    """The part it ran (empty for pods that run no jobs: prepare, the exit handler)."""
    node: str
    """The node's name in the Workflow (`study-x7k2p[2].models(0:...)...`)."""
    pod: str
    phase: str
    message: str
    jobs: tuple[str, ...]
    """Ids of the part's jobs that are not done."""

    def log_command(self, namespace: str) -> str:
        """The command that prints the pod's log."""
        return f"kubectl logs -n {namespace} {self.pod} -c main"


@dataclass
class StudyState:
    """Every job's state in one study and its newest Workflow (None when none was found)."""

    plan: Plan
    workflow: dict[str, Any] | None
    states: dict[str, JobState]
    failures: list[PodFailure] = field(default_factory=list)

    @property
    def phase(self) -> str:
        """The Workflow's phase ("" before the controller saw it, "none" without a Workflow)."""
        if self.workflow is None:
            return "none"
        return str((self.workflow.get("status") or {}).get("phase", ""))

    @property
    def finished(self) -> bool:
        """Whether the Workflow will run no more pods."""
        return self.workflow is not None and is_finished(self.workflow)

    def counts(self) -> dict[str, dict[str, int]]:
        """Per kind that the plan has: jobs, done, running, failed, to do."""
        counts: dict[str, dict[str, int]] = {}
        for kind in STAGES:
            states = Counter(self.states[job.id] for job in self.plan.jobs if job.kind == kind)
            total = sum(states.values())
            if not total:
                continue
            done, running, failed = (states[s] for s in (JobState.DONE, JobState.RUNNING, JobState.FAILED))
            counts[kind] = dict(
                zip(COLUMNS, (total, done, running, failed, total - done - running - failed), strict=True)
            )
        return counts

    def line(self) -> str:
        """One progress line: the phase and done/jobs per kind, with running and failed where any."""
        parts = []
        for kind, count in self.counts().items():
            text = f"{kind} {count['done']}/{count['jobs']}"
            extra = [f"{count[k]} {k}" for k in ("running", "failed") if count[k]]
            parts.append(text + (f" ({', '.join(extra)})" if extra else ""))
        return f"{self.phase or 'Pending'}: " + ", ".join(parts)


def done_jobs(plan: Plan, store: Store, known: frozenset[str] | set[str] = frozenset()) -> set[str]:
    """Ids of the plan's jobs whose manifest is in the store; `known` ones are not asked again (done stays).

    One request per job, a few at a time: a study of thousands of jobs is read in seconds.
    """
    jobs = [job for job in plan.jobs if job.id not in known]
    if not jobs:
        return set(known)
    first = store.is_done(jobs[0].key)  # the store's client is made once, before the threads share it
    with ThreadPoolExecutor(max_workers=8) as pool:  # under botocore's 10 pooled connections
        rest = list(pool.map(lambda job: store.is_done(job.key), jobs[1:]))
    return set(known) | {job.id for job, done in zip(jobs, [first, *rest], strict=True) if done}


def _attempts(nodes: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(final phase, latest pod node) per pod and its retries: a Retry node's phase is its attempts'."""
    parent = {child: node_id for node_id, node in nodes.items() for child in node.get("children") or []}
    groups: dict[str, tuple[str, dict[str, Any]]] = {}
    for node_id, node in nodes.items():
        if node.get("type") != "Pod":
            continue
        holder = nodes.get(parent.get(node_id, ""), {})
        key, phase = (
            (parent[node_id], holder.get("phase", "")) if holder.get("type") == "Retry" else (node_id, "")
        )
        phase = phase or node.get("phase", "")
        previous = groups.get(key)
        if previous is None or (node.get("startedAt") or "") >= (previous[1].get("startedAt") or ""):
            groups[key] = (phase, node)
    return list(groups.values())


def study_state(
    plan: Plan,
    store: Store,
    workflow: dict[str, Any] | None,
    known_done: frozenset[str] | set[str] = frozenset(),
) -> StudyState:
    """Map the store's manifests and the Workflow's pod nodes onto the plan's jobs (see done_jobs)."""
    done = done_jobs(plan, store, known_done)
    states = {job.id: JobState.DONE if job.id in done else JobState.PENDING for job in plan.jobs}
    failures: list[PodFailure] = []
    nodes = ((workflow or {}).get("status") or {}).get("nodes") or {}
    running: set[str] = set()
    for phase, node in _attempts(nodes):
        part = parameter(node, "part") or ""
        jobs = tuple(job for job in (part_jobs(plan, part) if part else []) if job not in done)
        if phase in RUNNING_PHASES:
            running.update(jobs)
        elif phase in FAILED_PHASES:
            assert workflow is not None
            own = str(node.get("phase") or phase)  # the last attempt's: Failed (exit code), Error (pod lost)
            message = str(node.get("message") or f"ended {own}")
            pod = pod_name(workflow, node)
            failures.append(PodFailure(part, node.get("name", ""), pod, own, message, jobs))
    for failure in failures:
        for job in failure.jobs:
            states[job] = JobState.FAILED
    for job in running:  # a newer attempt of a failed part is running
        states[job] = JobState.RUNNING
    return StudyState(plan, workflow, states, failures)


def workflow_plan(workflow: dict[str, Any] | None, store: Store, study: str) -> Plan:
    """The plan the Workflow's prepare step output (`plan` parameter), else the study's latest plan."""
    for node in ((workflow or {}).get("status") or {}).get("nodes", {}).values():
        uri = parameter(node, "plan", "outputs") if node.get("type") == "Pod" else None
        if uri:
            return read_plan(uri)
    return current_plan(store, study)


@dataclass(frozen=True)
class Report:
    """What `rpt-transfer status` shows: the state, and where the Workflow was looked for."""

    state: StudyState
    namespace: str
    store: str


def study_status(path: Path, namespace: str | None, argo_server: str | None) -> Report:
    """The study's newest Workflow in the namespace (by its label) and its jobs' states."""
    from rpt_transfer.argo.client import connect
    from rpt_transfer.runner import load_and_resolve

    loaded = load_and_resolve(path, check_store=False, runnable=False)
    client = connect(namespace, argo_server)
    study = loaded.study.study
    workflow = newest(client.list_workflows(study_selector(study)))
    if workflow is not None:  # the listing may leave out status; read the Workflow itself
        workflow = client.get_workflow(workflow["metadata"]["name"])
    plan = workflow_plan(workflow, loaded.store, study)
    return Report(study_state(plan, loaded.store, workflow), client.namespace, loaded.store.uri)
