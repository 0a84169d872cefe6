"""MLflow params come from a job's content only: renaming anything a person reads changes no param."""

from __future__ import annotations

import yaml

from conftest import tiny_study
from rpt_transfer.plan import Plan
from rpt_transfer.planner import make_plan
from rpt_transfer.spec import parse_study
from rpt_transfer.tracking_models import model_spec
from rpt_transfer.tracking_runs import score_params, score_tags, train_params, train_run_name, train_tags


def _plan(study: dict) -> Plan:
    return make_plan(parse_study(yaml.safe_dump(study), "s.yaml"), "file:///tmp/store", None)


def _interventional(study: str, model: str, base: str, domain: str = "math") -> dict:
    return {
        "study": study,
        "kind": "interventional",
        "models": {base: {"tiny": {"corpus": {"smoke_arith": 16}, "steps": 1, "seed": 0}}},
        "base": base,
        "training": {"steps": 2, "max_new_tokens": 8, "rollouts_per_prompt": 2, "prompts_per_step": 2},
        "train": [{"name": model, "domain": domain, "data": {"benchmark": "smoke_arith", "examples": 8}}],
        "benchmarks": ["smoke"],
        "limit": 2,
    }


def _renamed_observational() -> tuple[dict, dict]:
    before = tiny_study("/tmp/store")
    after = tiny_study(
        "/tmp/store",
        study="mini-renamed",
        models={
            "base-renamed": before["models"]["base"],
            "rpt-renamed": {"tiny": {**before["models"]["rpt"]["tiny"], "init": "base-renamed"}},
        },
        pairs=[{**before["pairs"][0], "name": "p2", "rpt": "rpt-renamed", "base": "base-renamed"}],
    )
    return before, after


def _names(plan: Plan) -> set[str]:
    """Every name a person chose in the spec (study, models, pairs, domain labels), as in job contexts."""
    names = {plan.study}
    for job in plan.jobs:
        names |= {str(job.context[key]) for key in ("model", "base_model", "domain") if key in job.context}
    return names | {
        pair["name"] for job in plan.jobs if job.kind == "aggregate" for pair in job.inputs["pairs"]
    }


def test_renaming_models_study_and_pair_changes_no_param_and_no_job() -> None:
    for before, after in (
        _renamed_observational(),
        (_interventional("s", "m", "b"), _interventional("t", "m2", "b2", domain="code")),
    ):
        old, new = _plan(before), _plan(after)
        old_jobs = {job.id: job for job in old.jobs if job.kind in ("train", "score")}
        new_jobs = {job.id: job for job in new.jobs if job.kind in ("train", "score")}

        assert old_jobs.keys() == new_jobs.keys() and old_jobs
        for job_id, job in old_jobs.items():
            params = score_params if job.kind == "score" else train_params
            assert params(old, job) == params(new, new_jobs[job_id])
            values = {str(value) for value in params(new, new_jobs[job_id]).values()}
            assert not values & _names(new), f"{job.kind} {job_id} has a name among its params"


def test_names_are_tags_and_follow_a_rename() -> None:
    old, new = _plan(_interventional("s", "m", "b")), _plan(_interventional("t", "m2", "b2"))
    (train,) = [job for job in new.jobs if job.kind == "train"]
    trained = next(job for job in new.jobs if job.kind == "score" and job.context["model"] == "m2")

    assert {"model": "m2", "base_model": "b2", "train_domain": "math", "study": "t"}.items() <= (
        train_tags(new, train).items()
    )
    assert train_run_name(train) == "train m2"
    assert score_tags(new, trained)["checkpoint_job"] == train.id
    assert score_tags(new, trained)["pairs"] == "m2" and score_tags(new, trained)["model"] == "m2"
    assert any(job.id == train.id for job in old.jobs)  # the same training, found by its content


def test_logged_model_identity_and_params_come_from_content_only() -> None:
    old, new = _plan(_interventional("s", "m", "b")), _plan(_interventional("t", "m2", "b2"))
    (train,) = [job for job in new.jobs if job.kind == "train"]
    (pretrain,) = [job for job in new.jobs if job.kind == "pretrain"]
    scores = {
        job.context["model"]: job
        for job in new.jobs
        if job.kind == "score" and job.context["benchmark"] == "smoke_arith"
    }

    trained, base = model_spec(new, scores["m2"]), model_spec(new, scores["b2"])

    assert (trained.identity, trained.model_type, trained.train_job) == (f"job:{train.id}", "trained", train)
    assert trained.params == {
        "model_source": "train job",
        "revision": train.id,
        "base_model_source": "pretrain job",
        "base_revision": pretrain.id,
    }
    assert (base.identity, base.model_type, base.train_job) == (f"job:{pretrain.id}", "pretrained", None)
    assert (
        trained.name == "m2" and trained.tags["model"] == "m2" and trained.tags["checkpoint_job"] == train.id
    )
    for job in (job for job in old.jobs if job.kind == "score"):  # renamed: the same models, other names
        renamed = next(other for other in new.jobs if other.id == job.id)
        before, after = model_spec(old, job), model_spec(new, renamed)
        assert (before.identity, before.params) == (after.identity, after.params)
        assert not set(after.params.values()) & _names(new)


def test_logged_model_names_avoid_what_mlflow_refuses() -> None:
    plan = _plan({**_interventional("s", "m.v1", "b"), "benchmarks": ["smoke_arith"]})
    job = next(job for job in plan.jobs if job.kind == "score" and job.context["model"] == "m.v1")

    assert model_spec(plan, job).name == "m-v1" and model_spec(plan, job).tags["model"] == "m.v1"
