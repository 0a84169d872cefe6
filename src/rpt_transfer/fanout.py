"""Parts: how a workflow cuts a plan into pods, each named by a short string that `job run --part` takes.

A part names jobs of one plan, so an Argo `withParam` carries a few bytes per pod however many jobs the
study has (a Workflow object is capped near 1 MB); each pod reads its jobs from the plan in the store:

- `pretrain`: every pretrain job in plan order (one may build on another, so one pod runs them in order);
- `train/I`: the I-th train job in plan order (one pod, or one KubeRay RayJob over several nodes);
- `generate/G`: the generate jobs of the G-th model group (`Plan.groups()` order): one model load per pod;
- `score/G/A:B`: score jobs A..B-1 of group G (the score jobs whose deps are group G's generate jobs);
- `aggregate`: the aggregate job(s).

`plan_parts` lists the parts as `prepare --outputs` writes them; `part_jobs` turns one back into job ids.
"""

from typing import Any

from rpt_transfer.errors import PlanError
from rpt_transfer.plan import Job, Plan

DEFAULT_SCORE_CHUNK = 4
"""Score jobs per score pod: scoring one benchmark is short, so a few share a pod's start-up."""
ACCEPTED = "pretrain, train/I, generate/G, score/G/A:B, aggregate"


def _of_kind(plan: Plan, kind: str) -> list[Job]:
    return [job for job in plan.jobs if job.kind == kind]


def group_scores(plan: Plan) -> list[list[Job]]:
    """Each model group's score jobs, in plan order: those whose deps are that group's generate jobs.

    A score job reads the shards of one model on one benchmark, and those shards share one `group_key`
    (model, backend, prompt mode, engine settings are per model), so its deps never span two groups.
    Were `group_key` ever to split one model's shards, a score job could not be given to one group's
    pods; this raises then, rather than place it after only some of its inputs.
    """
    groups = plan.groups()
    group_of = {job.id: index for index, jobs in enumerate(groups) for job in jobs}
    scores: list[list[Job]] = [[] for _ in groups]
    for job in _of_kind(plan, "score"):
        groups = {group_of.get(dep) for dep in job.deps}
        if len(groups) != 1 or None in groups:
            raise PlanError(
                f"score job {job.id} of study {plan.study!r} reads generate jobs of {len(groups)} model "
                "groups (or jobs outside any group); parts give each score job to one group"
            )
        scores[groups.pop()].append(job)  # type: ignore[index]
    return scores


def train_gpus(plan: Plan, job: Job) -> int:
    """GPUs a train pod (or each node of a multi-node run) asks for.

    OpenRLHF jobs carry their placement in `job.context["resources"]` (`{"nodes": N, "gpus_per_node": G}`,
    the study's `openrlhf` block): G GPUs on each node. Other trainers take the study's `gpus_per_job` (its
    generate jobs carry it), at most 1 for TRL: the TRL trainer trains on one GPU when it sees one and on
    the CPU otherwise, so a study that gives its jobs no GPU (tiny models, CPU-only) trains on the CPU.
    """
    resources = _resources(job)
    if resources is not None:
        return resources[1]
    gpus = max((int(j.context.get("gpus", 0)) for j in _of_kind(plan, "generate")), default=0)
    trainer = job.inputs.get("trainer", {})
    backend = trainer.get("backend", "trl") if isinstance(trainer, dict) else "trl"
    return min(gpus, 1) if backend == "trl" else gpus


def train_nodes(job: Job) -> int:
    """Machines a train job spans: `nodes` of an OpenRLHF job's placement, else 1 (one pod)."""
    resources = _resources(job)
    return 1 if resources is None else resources[0]


def _resources(job: Job) -> tuple[int, int] | None:
    """(nodes, gpus per node) of a train job the planner placed (OpenRLHF), or None (TRL: one pod)."""
    resources = job.context.get("resources")
    if not isinstance(resources, dict):
        return None
    nodes, gpus = int(resources.get("nodes", 1)), int(resources.get("gpus_per_node", 0))
    if nodes < 1 or gpus < 0:
        raise PlanError(
            f"train job {job.id}: resources {resources} are not 1 or more nodes of 0 or more GPUs each"
        )
    return nodes, gpus


def plan_parts(plan: Plan, score_chunk: int = DEFAULT_SCORE_CHUNK) -> dict[str, Any]:
    """What `prepare --outputs` writes for Argo's `withParam`s: `pretrain`, `train` and `models` lists.

    `pretrain` is `["pretrain"]` or `[]`; `train` items are `{"part": "train/I", "gpus": G, "nodes": N}` (G
    GPUs on each of N nodes: the workflow runs N == 1 in one pod, train-gpu or train-cpu, and N > 1 as a
    KubeRay RayJob, train-ray); `models` items are `{"model", "gpus", "generate": "generate/G",
    "score": ["score/G/A:B", ...]}`, one per model group.
    """
    if score_chunk < 1:
        raise PlanError(f"--score-chunk {score_chunk}: give a number of score jobs per pod, 1 or more")
    models = []
    groups = plan.fanout()["groups"]  # model and gpus per group, as `plan --json` gives them
    for index, (item, scores) in enumerate(zip(groups, group_scores(plan), strict=True)):
        chunks = [
            f"score/{index}/{start}:{min(start + score_chunk, len(scores))}"
            for start in range(0, len(scores), score_chunk)
        ]
        models.append(
            {"model": item["model"], "gpus": item["gpus"], "generate": f"generate/{index}", "score": chunks}
        )
    return {
        "pretrain": ["pretrain"] if _of_kind(plan, "pretrain") else [],
        "train": [
            {"part": f"train/{i}", "gpus": train_gpus(plan, j), "nodes": train_nodes(j)}
            for i, j in enumerate(_of_kind(plan, "train"))
        ],
        "models": models,
    }


def part_jobs(plan: Plan, part: str) -> list[str]:
    """The ids of the jobs a part names, in the order to run them; PlanError for a malformed or absent one."""

    def bad(why: str) -> PlanError:
        return PlanError(f"part {part!r} of study {plan.study!r}: {why}; accepted: {ACCEPTED}")

    def index(text: str, count: int, what: str) -> int:
        if not text.isdigit():
            raise bad(f"{text!r} is not an index")
        if int(text) >= count:
            raise bad(f"{what} {text} is out of range (the plan has {count})")
        return int(text)

    kind, *rest = part.split("/")
    if kind in ("pretrain", "aggregate") and not rest:
        jobs = _of_kind(plan, kind)
        if not jobs:
            raise bad(f"the plan has no {kind} job")
        return [job.id for job in jobs]
    if kind == "train" and len(rest) == 1:
        trains = _of_kind(plan, "train")
        return [trains[index(rest[0], len(trains), "train job")].id]
    if kind == "generate" and len(rest) == 1:
        groups = plan.groups()
        return [job.id for job in groups[index(rest[0], len(groups), "model group")]]
    if kind == "score" and len(rest) == 2:
        scores = group_scores(plan)
        mine = scores[index(rest[0], len(scores), "model group")]
        start, sep, stop = rest[1].partition(":")
        if not (sep and start.isdigit() and stop.isdigit()):
            raise bad(f"{rest[1]!r} is not a range A:B")
        if not int(start) < int(stop) <= len(mine):
            raise bad(f"range {rest[1]} is not within group {rest[0]}'s {len(mine)} score jobs")
        return [job.id for job in mine[int(start) : int(stop)]]
    raise bad("not a part")
