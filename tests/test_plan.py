import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import run_cli, tiny_study, write_study
from rpt_transfer.errors import PlanError
from rpt_transfer.hashing import canonical_json, sha256_hex
from rpt_transfer.plan import Plan, load_plan
from rpt_transfer.planner import make_plan
from rpt_transfer.runner import load_and_resolve
from rpt_transfer.spec import parse_study

STORE = "file:///nowhere/store"


def plan_of(**changes: object) -> Plan:
    return make_plan(parse_study(yaml.safe_dump(tiny_study(STORE, **changes)), "s.yaml"), STORE, None)


def ids(plan: Plan, kind: str) -> set[str]:
    return {job.id for job in plan.jobs if job.kind == kind}


def test_shape_and_counts() -> None:
    plan = plan_of()
    counts = plan.counts()
    # 2 models × 2 benchmarks × 2 shards; limit 4 items; n = 2
    assert counts == {
        "pretrain": 2,
        "train": 0,
        "generate": 8,
        "score": 4,
        "aggregate": 1,
        "jobs": 15,
        "prompts": 16,
        "samples": 32,
    }
    position = {job.id: index for index, job in enumerate(plan.jobs)}
    for job in plan.jobs:
        assert all(position[dep] < position[job.id] for dep in job.deps)
        assert job.key.endswith(job.id)


def test_ids_are_stable_across_processes() -> None:
    """Same inputs, same ids, whatever the interpreter's hash seed (a stand-in for another machine)."""
    code = (
        "import yaml, sys; sys.path.insert(0, 'tests'); from conftest import tiny_study;"
        "from rpt_transfer.spec import parse_study; from rpt_transfer.planner import make_plan;"
        f"p = make_plan(parse_study(yaml.safe_dump(tiny_study({STORE!r})), 's'), {STORE!r}, None);"
        "print(' '.join(j.id for j in p.jobs))"
    )
    outputs = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        result = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env=env,
            check=True,
            cwd=os.path.dirname(os.path.dirname(__file__)),
        )
        outputs.add(result.stdout.strip())
    assert outputs == {" ".join(job.id for job in plan_of().jobs)}


def test_golden_pretrain_id() -> None:
    """Pins the id scheme: if this changes, every stored result is orphaned, so it must be on purpose."""
    assert sorted(ids(plan_of(), "pretrain")) == GOLDEN_PRETRAIN_IDS


GOLDEN_PRETRAIN_IDS = ["9e078476c3245165", "f7ce32b51b419414"]


def test_sampling_change_moves_generate_ids_only_downstream() -> None:
    before, after = plan_of(), plan_of(sampling={"temperature": 0.8, "max_tokens": 6, "n": 2, "seed": 4})
    assert ids(before, "pretrain") == ids(after, "pretrain")
    assert ids(before, "generate").isdisjoint(ids(after, "generate"))
    assert ids(before, "score").isdisjoint(ids(after, "score"))


def test_override_moves_only_that_benchmark() -> None:
    before, after = plan_of(), plan_of(overrides={"smoke_facts": {"max_tokens": 5}})
    changed = ids(after, "generate") - ids(before, "generate")
    moved = {job.context["benchmark"] for job in after.jobs if job.id in changed}
    assert moved == {"smoke_facts"}


def test_names_are_not_identity() -> None:
    """Renaming a model or the study reuses every generation and score."""
    study = tiny_study(STORE)
    study["models"] = {"b2": study["models"]["base"], "r2": {**study["models"]["rpt"]}}
    study["models"]["r2"] = {"tiny": {**study["models"]["r2"]["tiny"], "init": "b2"}}
    study["pairs"] = [{**study["pairs"][0], "rpt": "r2", "base": "b2"}]
    study["study"] = "renamed"
    renamed = make_plan(parse_study(yaml.safe_dump(study), "s"), STORE, None)
    original = plan_of()
    for kind in ("pretrain", "generate", "score"):
        assert ids(renamed, kind) == ids(original, kind)
    assert ids(renamed, "aggregate") != ids(original, "aggregate")


def test_shared_base_is_evaluated_once() -> None:
    study = tiny_study(STORE)
    study["models"]["rpt2"] = {"tiny": {"init": "base", "corpus": {"smoke_facts": 32}, "steps": 2, "seed": 1}}
    study["pairs"].append(
        {"name": "q", "rpt": "rpt2", "base": "base", "domains": ["knowledge"], "algorithm": "grpo"}
    )
    plan = make_plan(parse_study(yaml.safe_dump(study), "s"), STORE, None)
    assert plan.counts()["score"] == 6  # 3 distinct models × 2 benchmarks


def test_fanout_payload_is_small_and_complete() -> None:
    plan = plan_of()
    payload = plan.fanout()
    digest = sha256_hex(plan.to_json().encode())[:16]
    assert payload["plan"] == f"{STORE}/studies/mini/plans/{digest}.json" == f"{STORE}/{plan.key}"
    assert sum(len(items) for items in payload["stages"].values()) == len(plan.jobs)
    for items in payload["stages"].values():
        for item in items:
            assert set(item) == {"id", "key"}
    assert payload["deps"] == {job.id: job.deps for job in plan.jobs}
    assert len(json.dumps(payload)) < 200 * len(plan.jobs)


def test_plan_json_gives_every_edge_including_those_within_a_stage(tmp_path: Path) -> None:
    """`plan --json` through the real command: its deps are the plan's edges (rpt's pre-training needs base's)."""
    spec = write_study(tmp_path / "s.yaml", tiny_study(str(tmp_path / "store")))
    result = run_cli("plan", str(spec), "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    plan = load_and_resolve(spec, check_store=False).plan()
    assert payload["deps"] == {job.id: job.deps for job in plan.jobs}
    kinds = {job.id: job.kind for job in plan.jobs}
    within = [(job, dep) for job, deps in payload["deps"].items() for dep in deps if kinds[dep] == kinds[job]]
    assert [(kinds[job], kinds[dep]) for job, dep in within] == [("pretrain", "pretrain")]
    assert [item["id"] for item in payload["stages"]["pretrain"]] == [
        job.id for job in plan.jobs if job.kind == "pretrain"
    ]  # dependencies first, within a stage too
    assert not (tmp_path / "store").exists()  # planning writes nothing


def test_plan_text_is_canonical_and_its_key_is_its_hash() -> None:
    plan = plan_of()
    text = plan.to_json()
    assert load_plan(text, "p.json").to_json() == text
    assert text == canonical_json(json.loads(text))
    assert plan.key == f"studies/mini/plans/{sha256_hex(text.encode())[:16]}.json"
    assert plan_of(limit=3).key != plan.key


def test_plan_round_trip_and_errors() -> None:
    plan = plan_of()
    assert load_plan(plan.to_json(), "p.json") == plan
    with pytest.raises(PlanError, match=r"^p.json: not a rpt-transfer plan"):
        load_plan('{"jobs": 3}', "p.json")
    with pytest.raises(PlanError, match="job 'ffff' is not in the plan of study 'mini'"):
        plan.job("ffff")


def test_shards_never_exceed_items() -> None:
    plan = plan_of(limit=1, resources={"shards": 8})
    generate = [job for job in plan.jobs if job.kind == "generate"]
    assert len(generate) == 4 and all(job.context["items"] == 1 for job in generate)


INTERVENTIONAL = """
study: c
kind: interventional
models: {b: {tiny: {corpus: {smoke_arith: 4}, steps: 1}}}
base: b
training: {learning_rate: 0.001, steps: 3, max_new_tokens: 8, rollouts_per_prompt: 4, prompts_per_step: 2}
train:
  - {name: m, domain: math, data: {benchmark: smoke_arith, examples: 16}}
  - {name: k, domain: knowledge, data: {benchmark: smoke_facts, examples: 16}, hyperparameters: {steps: 5}}
benchmarks: [smoke]
limit: 4
"""


def test_interventional_plan_trains_each_domain_then_evaluates_everything() -> None:
    plan = make_plan(parse_study(INTERVENTIONAL, "c.yaml"), STORE, None)
    counts = plan.counts()
    assert (counts["pretrain"], counts["train"], counts["score"], counts["aggregate"]) == (1, 2, 6, 1)
    pretrain = next(job for job in plan.jobs if job.kind == "pretrain")
    trains = {job.context["model"]: job for job in plan.jobs if job.kind == "train"}
    assert all(job.deps == [pretrain.id] and job.key == f"checkpoints/{job.id}" for job in trains.values())
    assert (
        trains["m"].inputs["hyperparameters"]["steps"] == 3
        and trains["k"].inputs["hyperparameters"]["steps"] == 5
    )
    assert trains["m"].inputs["data"]["benchmark"]["name"] == "smoke_arith"
    for job in plan.jobs:
        if job.kind == "generate" and job.context["model"] in trains:
            assert job.deps == [trains[job.context["model"]].id]
            assert job.inputs["model"] == {"job": trains[job.context["model"]].id}
    scores = {
        (j.context["model"], j.context["benchmark"]): j.context["tags"]
        for j in plan.jobs
        if j.kind == "score"
    }
    assert scores[("m", "smoke_arith")]["seen"] == "seen" and scores[("m", "smoke_facts")]["seen"] == "unseen"
    assert scores[("m", "smoke_arith")]["checkpoint_job"] == trains["m"].id
    assert scores[("b", "smoke_arith")]["role"] == "base"
    aggregate = plan.jobs[-1]
    assert [pair["domains"] for pair in aggregate.inputs["pairs"]] == [["math"], ["knowledge"]]
    assert aggregate.context["kind"] == "interventional"


def test_train_job_ids_follow_hyperparameters_and_data() -> None:
    base = make_plan(parse_study(INTERVENTIONAL, "c.yaml"), STORE, None)
    changed = make_plan(
        parse_study(INTERVENTIONAL.replace("learning_rate: 0.001", "learning_rate: 0.002"), "c.yaml"),
        STORE,
        None,
    )
    more_data = make_plan(
        parse_study(
            INTERVENTIONAL.replace("examples: 16}}\n  - {name: k", "examples: 17}}\n  - {name: k"), "c.yaml"
        ),
        STORE,
        None,
    )
    train_ids = [
        {j.context["model"]: j.id for j in p.jobs if j.kind == "train"} for p in (base, changed, more_data)
    ]
    assert train_ids[0]["m"] != train_ids[1]["m"] and train_ids[0]["k"] != train_ids[1]["k"]
    assert train_ids[0]["m"] != train_ids[2]["m"] and train_ids[0]["k"] == train_ids[2]["k"]
