"""Jobs and plans: the DAG of content-addressed jobs a study becomes, and its stored form.

A job's id hashes everything that determines its output (its `inputs`); names that people read (model and
study names, MLflow tags) sit in `context` and never change an id, so renaming a model reuses its results.
`planner.py` builds a plan from a study; this module is what every job and executor reads.
"""

import functools
from collections import Counter
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from rpt_transfer.errors import PlanError
from rpt_transfer.hashing import canonical_json, sha256_hex, short_hash

JobKind = Literal["pretrain", "train", "generate", "score", "aggregate"]
STAGES: tuple[JobKind, ...] = ("pretrain", "train", "generate", "score", "aggregate")
TINY_TRAINER_VERSION = "1"
RPT_TRAINER_VERSION = "1"
"""Version of our mapping onto the trainer backends (algorithms, rewards, checkpoints); in train job ids."""
REPORT_VERSION = "4"
"""Version of the report (tables, statistics, warnings); in aggregate ids, so a stored report is redone.
3: the report folder holds `metrics.json` (headline metrics), so `track sync` rebuilds the parent run.
4: the report opens with its answer, pooled gains carry intervals, and `pairs.json` feeds the leaderboard."""
PLAN_FORMAT = 2
"""Plan file format; 2 added `spec` (the key of the spec file the plan was made from)."""
CONTENT_KEY_LENGTH = 16
"""Hex digits of sha256 in the store keys of plans and specs (as in job ids)."""


class Job(BaseModel):
    """One unit of work: run by `rpt-transfer job run ID --plan PLAN` on any executor."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    """16 hex of sha256 over kind and inputs."""
    kind: JobKind
    """What `job run` does with it."""
    key: str
    """Store prefix of its output; the job is done when `<key>/MANIFEST.json` exists."""
    deps: list[str]
    """Ids of the jobs whose outputs it reads."""
    inputs: dict[str, Any]
    """Everything that determines the output; hashed into the id."""
    context: dict[str, Any]
    """Names and tags for people (study, model name, MLflow tags); not part of the id."""


class Plan(BaseModel):
    """The jobs of one study in dependency order, stored once and for good at `Plan.key` in the store."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format_version: Literal[1, 2] = PLAN_FORMAT
    """Plan file format."""
    study: str
    """Study name."""
    spec_sha: str
    """Hash of the canonical spec the plan was made from."""
    spec: str | None = None
    """Store key of the spec file the plan was made from (`studies/<study>/specs/<sha>.yaml`)."""
    store: str
    """Store root URI as the planning machine reached it; a job's `RPT_STORE` overrides it."""
    tracking_uri: str | None
    """MLflow tracking URI as planned, None when off; a job's `MLFLOW_TRACKING_URI` overrides it."""
    jobs: list[Job]
    """Jobs, each after all of its dependencies."""

    @functools.cached_property
    def _by_id(self) -> dict[str, Job]:
        """Jobs by id: aggregating a paper-scale study looks up thousands of jobs."""
        return {job.id: job for job in self.jobs}

    def job(self, job_id: str) -> Job:
        """The job with this id; PlanError names the study when it is not in this plan."""
        if job_id in self._by_id:
            return self._by_id[job_id]
        raise PlanError(
            f"job {job_id!r} is not in the plan of study {self.study!r}; "
            f"`rpt-transfer plan` lists its {len(self.jobs)} job ids"
        )

    def counts(self) -> dict[str, int]:
        """Jobs per kind, plus prompts and samples over all generate jobs."""
        counts = Counter(job.kind for job in self.jobs)
        generate = [job for job in self.jobs if job.kind == "generate"]
        prompts = sum(job.context["items"] for job in generate)
        samples = sum(job.context["items"] * job.inputs["sampling"]["n"] for job in generate)
        return {
            **{kind: counts.get(kind, 0) for kind in STAGES},
            "jobs": len(self.jobs),
            "prompts": prompts,
            "samples": samples,
        }

    def groups(self) -> list[list[Job]]:
        """Generate jobs by `group_key`: each group in plan order, groups in the order of their first job."""
        return [list(jobs) for jobs in self._groups]

    @functools.cached_property
    def _groups(self) -> tuple[tuple[Job, ...], ...]:
        """The groups, made once per plan: `status` maps every pod's part to its jobs through them.

        A key hashes each job's engine settings: 140 parts of the paper study took 2.9 s when each remade
        them. A `model_copy` keeps it (as `_by_id`): copies change the store or MLflow addresses, not `jobs`.
        """
        by_key: dict[str, list[Job]] = {}
        for job in self.jobs:
            key = group_key(job)
            if key is not None:
                by_key.setdefault(key, []).append(job)
        return tuple(tuple(jobs) for jobs in by_key.values())

    def fanout(self, store_uri: str | None = None) -> dict[str, Any]:
        """What an Argo workflow needs to fan out: the plan's URI, `{id, key}` items per stage, deps, groups.

        `deps` gives every job's dependencies by id; some lie within one stage (a tiny model built on
        another), so a stage's items are listed dependencies first.

        `groups` gives each GPU pod one model: one item per `group_key`, in plan order,
        `{"model": name, "backend": "vllm", "gpus": 2, "jobs": [ids in plan order], "deps": [ids]}`:
        `gpus` is the study's `gpus_per_job` (vLLM's tensor parallel size; 0 or 1 for hf, 0 for openai),
        `deps` the union of its jobs' dependencies (none lies within a group). A pod runs
        `rpt-transfer job run ID [ID ...] --plan PLAN` with the group's jobs and loads the model once.
        """
        return {
            "study": self.study,
            "plan": f"{(store_uri or self.store).rstrip('/')}/{self.key}",
            "stages": {
                kind: [{"id": j.id, "key": j.key} for j in self.jobs if j.kind == kind] for kind in STAGES
            },
            "deps": {job.id: job.deps for job in self.jobs},
            "groups": [_group_item(jobs) for jobs in self.groups()],
        }

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no spaces): the same plan gives the same bytes on every machine."""
        return canonical_json(self.model_dump(mode="json"))

    @property
    def key(self) -> str:
        """Store key of this plan: named by the hash of its own text, so it never has to change."""
        return plan_key(self.study, content_digest(self.to_json().encode()))


def engine_options(context: dict[str, Any]) -> dict[str, Any]:
    """The backend's settings as the plan put them in a generate job's context.

    Plans made before `engine` existed carry only the hf batch size.
    """
    if "engine" in context:
        return dict(context["engine"])
    return {"batch_size": context.get("batch_size", 16)}


def group_key(job: Job) -> str | None:
    """Generate jobs with equal keys can share one loaded backend; None for other kinds.

    The key is what loading depends on: the model reference, backend, prompt mode and engine settings.
    The `job run` process cache, the local executor and `Plan.fanout` all group by this one function.
    """
    if job.kind != "generate":
        return None
    inputs = job.inputs
    return short_hash(
        {
            "model": inputs["model"],
            "backend": inputs["backend"],
            "prompt_mode": inputs["prompt_mode"],
            "engine": engine_options(job.context),
        }
    )


def _group_item(jobs: list[Job]) -> dict[str, Any]:
    """One group of `Plan.fanout`: few bytes per job, for an Argo `withParam`."""
    first, ids = jobs[0], [job.id for job in jobs]
    inside = set(ids)
    return {
        "model": first.context["model"],
        "backend": first.inputs["backend"],
        "gpus": int(first.context.get("gpus", engine_options(first.context).get("tensor_parallel_size", 0))),
        "jobs": ids,
        "deps": sorted({dep for job in jobs for dep in job.deps if dep not in inside}),
    }


def content_digest(data: bytes) -> str:
    """The hash that names a content-keyed object (plan or spec) in the store."""
    return sha256_hex(data)[:CONTENT_KEY_LENGTH]


def plan_key(study: str, digest: str) -> str:
    """Store key of the plan whose text hashes to `digest`; written once, never changed."""
    return f"studies/{study}/plans/{digest}.json"


def spec_key(study: str, digest: str) -> str:
    """Store key of the spec file whose bytes hash to `digest`; written once, never changed."""
    return f"studies/{study}/specs/{digest}.yaml"


def latest_plan_key(study: str) -> str:
    """Store key of the study's one mutable object: the key of its most recently prepared plan."""
    return f"studies/{study}/latest-plan"


def load_plan(text: str, source: str) -> Plan:
    """Parse a plan file; anything else than a plan gives one line naming `source`."""
    try:
        return Plan.model_validate_json(text)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise PlanError(f"{source}: not a rpt-transfer plan ({where}: {first['msg']})") from None


def make_job(
    kind: JobKind, inputs: dict[str, Any], deps: list[str], context: dict[str, Any], study: str
) -> Job:
    """A job with its content id and output key."""
    job_id = short_hash({"kind": kind, "inputs": inputs})
    key = {
        "pretrain": f"checkpoints/{job_id}",
        "train": f"checkpoints/{job_id}",
        "generate": f"generations/{job_id}",
        "score": f"scores/{job_id}",
        "aggregate": f"reports/{study}/{job_id}",
    }[kind]
    return Job(id=job_id, kind=kind, key=key, deps=sorted(set(deps)), inputs=inputs, context=context)
