"""What each MLflow run of a job holds: params from the job's content only, names for people as tags.

MLflow params cannot change once logged, and a job's run is found again by its job id, which hashes the
job's inputs. So params come from `job.inputs` (and the inputs of the jobs those name by content id,
never from `job.context`): whatever a rerun derives is what the run already holds. Everything a person
may rename (study, model, pair, base model, domain labels) is a tag or the run name, which follow the
current spec on every write. The live jobs and `track sync` both build runs from these functions.
"""

from typing import TYPE_CHECKING, Any

from rpt_transfer.jobs.models import model_source
from rpt_transfer.plan import Job, Plan

if TYPE_CHECKING:
    from rpt_transfer.store import Store

_TAG_LIMIT = 5000
"""Longest tag value written (MLflow takes 8000 characters; the effective sampling of many shards could
exceed it)."""
_NOT_SAMPLING = ("model", "benchmark", "shard")
"""Generate inputs that are not evaluation settings: the model and benchmark have params of their own,
and the shard differs between a score job's generate jobs."""


def flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """A nested mapping as dotted keys (`sampling.n`); lists and scalars are values."""
    if not isinstance(value, dict):
        return {prefix: value}
    out: dict[str, Any] = {}
    for key, item in sorted(value.items()):
        out |= flat(item, f"{prefix}.{key}" if prefix else str(key))
    return out


def score_params(plan: Plan, job: Job) -> dict[str, Any]:
    """Params of a score job's run: model source and revision, benchmark, scorer, sampling settings.

    `missing_toolchains` says whether the job was allowed to leave samples out (`exclude`) or not (`fail`).
    """
    inputs = job.inputs
    generate = plan.job(job.deps[0]).inputs  # every shard has the same settings
    return {
        **model_source(generate["model"], plan),
        "benchmark": inputs["benchmark"]["name"],
        "benchmark_version": inputs["benchmark"]["version"],
        "scorer": f"{inputs['scorer']['name']}@{inputs['scorer']['version']}",
        "missing_toolchains": inputs.get("scoring", {}).get("missing_toolchains", "fail"),  # absent: default
        **flat({k: v for k, v in generate.items() if k not in _NOT_SAMPLING}),
    }


def score_tags(plan: Plan, job: Job) -> dict[str, str]:
    """Tags of a score job's run: the plan's labels (model, role, domains, seen/unseen), study and pairs."""
    model = job.context["model"]
    pairs = [
        pair["name"]
        for aggregate in plan.jobs
        if aggregate.kind == "aggregate"
        for pair in aggregate.inputs["pairs"]
        if model in (pair["rpt"], pair["base"])
    ]
    return {**job.context["tags"], "study": plan.study, "pairs": ",".join(sorted(pairs))}


def generation_tags(store: "Store", plan: Plan, job: Job) -> dict[str, str]:
    """Tags of a score job's run saying how its samples were generated, from the generate manifests.

    Each manifest's `runtime` (engine versions, GPU, settings, the sampling sent) under `generation.`;
    distinct values of the shards are joined by ` | `. Tags, not params: they describe the run that
    happened, not its inputs, and a re-run on another GPU of a job whose manifest was lost may differ.
    """
    values: dict[str, list[str]] = {}
    for dep in job.deps:
        manifest = store.manifest(plan.job(dep).key)
        for key, value in (manifest.runtime if manifest is not None else {}).items():
            seen = values.setdefault(f"generation.{key}", [])
            if value not in seen:
                seen.append(value)
    return {key: " | ".join(found)[:_TAG_LIMIT] for key, found in sorted(values.items())}


def score_run_name(job: Job) -> str:
    """`<model> / <benchmark>`, with the model's current name."""
    return f"{job.context['model']} / {job.context['benchmark']}"


def train_params(plan: Plan, job: Job) -> dict[str, Any]:
    """Params of a train job's run: base model, algorithm, trainer, seed, reward policy, data, hyper."""
    inputs = job.inputs
    return {
        **{f"base_{key}": value for key, value in model_source(inputs["base"], plan).items()},
        "algorithm": inputs["algorithm"],
        "trainer": f"{inputs['trainer']['backend']}@{inputs['trainer']['version']}",
        "seed": inputs["seed"],
        "prompt_mode": inputs["prompt_mode"],
        **flat(inputs["data"], "data"),  # content (benchmark identity or file sha256), whatever its shape
        "reward_policy": inputs["hyperparameters"].get("reward_policy", "strict"),  # absent: the default
        **flat({k: v for k, v in inputs["hyperparameters"].items() if k != "reward_policy"}, "hyper"),
    }


def train_tags(plan: Plan, job: Job) -> dict[str, str]:
    """Tags of a train job's run: the plan's labels; `checkpoint_job` links the model's evaluation runs."""
    return {**job.context["tags"], "study": plan.study, "checkpoint_job": job.id}


def train_run_name(job: Job) -> str:
    """`train <model>`, with the trained model's current name."""
    return f"train {job.context['model']}"
