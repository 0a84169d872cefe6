"""`sampling_defaults: model`: each model's generation_config.json, read at plan time, enters ids and context.

Hub files come from the loopback fake Hub of servers_hub.py; stored checkpoints are committed through the
real store API. Nothing reaches a real address.
"""

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import servers_hub
from conftest import write_study
from inprocess import call_cli
from rpt_transfer.errors import PlanError
from rpt_transfer.plan import Job, Plan
from rpt_transfer.planner import make_plan
from rpt_transfer.spec import parse_study
from rpt_transfer.store import Store
from servers_hub import FakeHub

fake_hub = servers_hub.fake_hub  # the loopback fake Hub fixture

PINNED = "0123456789abcdef0123456789abcdef01234567"
CONFIG = "generation_config.json"
QWEN_LIKE = {"bos_token_id": 1, "do_sample": True, "temperature": 0.6, "top_p": 0.95, "top_k": 20}
STUDY_SAMPLING = {"temperature": 0.8, "max_tokens": 6, "n": 2, "seed": 3}


def study_of(models: dict[str, dict], store: str = "file:///nowhere/store", **changes: Any) -> dict:
    """An observational study of `r` against `b` on two synthetic benchmarks, at each model's defaults."""
    study = {
        "study": "defaults",
        "kind": "observational",
        "store": store,
        "models": models,
        "pairs": [{"name": "p", "rpt": "r", "base": "b", "domains": ["math"], "algorithm": "grpo"}],
        "benchmarks": ["smoke_arith", "smoke_facts"],
        "limit": 4,
        "sampling": STUDY_SAMPLING,
        "sampling_defaults": "model",
    }
    return {**study, **changes}


def hub_models() -> dict[str, dict]:
    return {"r": {"hub": "org/rpt", "revision": PINNED}, "b": {"hub": "org/base", "revision": PINNED}}


def plan_of(study: dict) -> Plan:
    return make_plan(parse_study(yaml.safe_dump(study), "s.yaml"), study["store"], None)


def generate_of(plan: Plan, model: str, benchmark: str = "smoke_arith") -> Job:
    (job,) = [
        j
        for j in plan.jobs
        if j.kind == "generate" and j.context["model"] == model and j.context["benchmark"] == benchmark
    ]
    return job


def test_a_hub_models_values_enter_its_ids_and_context(fake_hub: FakeHub) -> None:
    fake_hub.add_file("org/rpt", CONFIG, json.dumps(QWEN_LIKE), revision=PINNED)
    fake_hub.add("model", "org/base", {"v1": PINNED})  # no generation_config.json at all
    plan = plan_of(study_of(hub_models()))
    spec_plan = plan_of(study_of(hub_models(), sampling_defaults="spec"))

    job = generate_of(plan, "r")
    assert job.inputs["sampling"] == {
        **STUDY_SAMPLING,
        "temperature": 0.6,
        "top_p": 0.95,
        "top_k": 20,
        "stop": [],
    }
    assert job.context["sampling_defaults"] == {
        "values": {"temperature": 0.6, "top_p": 0.95, "top_k": 20},
        "source": f"hf://org/rpt@{PINNED}/{CONFIG}",
    }
    assert job.id != generate_of(spec_plan, "r").id

    base = generate_of(plan, "b")  # absent file: the study's values, same id as without model defaults
    assert base.inputs["sampling"] == generate_of(spec_plan, "b").inputs["sampling"]
    assert base.id == generate_of(spec_plan, "b").id
    assert base.context["sampling_defaults"] == {
        "values": {},
        "source": f"hf://org/base@{PINNED}: no {CONFIG}; the study's sampling applies",
    }
    assert "sampling_defaults" not in generate_of(spec_plan, "r").context


def test_each_file_is_asked_once_per_plan_and_then_comes_from_the_cache(fake_hub: FakeHub) -> None:
    fake_hub.add_file("org/rpt", CONFIG, json.dumps(QWEN_LIKE), revision=PINNED)
    fake_hub.add_file("org/base", CONFIG, json.dumps({"temperature": 0.7}), revision=PINNED)
    first = plan_of(study_of(hub_models()))
    asked = [(r.method, r.path) for r in fake_hub.file_requests()]
    assert sorted(asked) == sorted(
        (method, f"/org/{repo}/resolve/{PINNED}/{CONFIG}")
        for repo in ("rpt", "base")
        for method in ("HEAD", "GET")
    )
    again = plan_of(study_of(hub_models()))
    assert len(fake_hub.file_requests()) == len(asked)  # a pinned commit's file is read from the cache
    assert [j.id for j in again.jobs] == [j.id for j in first.jobs]
    assert generate_of(first, "b", "smoke_facts").inputs["sampling"]["temperature"] == 0.7


def test_a_value_sampling_cannot_take_stops_plan_in_one_line(
    capsys: pytest.CaptureFixture[str], fake_hub: FakeHub, tmp_path: Path
) -> None:
    fake_hub.add_file("org/rpt", CONFIG, json.dumps({**QWEN_LIKE, "top_p": 1.5}), revision=PINNED)
    fake_hub.add("model", "org/base", {"v1": PINNED})
    path = write_study(tmp_path / "s.yaml", study_of(hub_models(), store=str(tmp_path / "store")))
    result = call_cli(capsys, "plan", str(path))
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith(f"error: models.r: hf://org/rpt@{PINNED}/{CONFIG} sets top_p to 1.5"), lines
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (json.dumps({"top_k": 2.5}), "sets top_k to 2.5"),
        (json.dumps({"temperature": "hot"}), "sets temperature to 'hot'"),
        ("{not json", "is not JSON"),
        ("[0.6]", "is not a JSON object"),
    ],
)
def test_other_bad_files_are_one_plan_error_naming_model_and_file(
    fake_hub: FakeHub, content: str, fragment: str
) -> None:
    fake_hub.add_file("org/rpt", CONFIG, content, revision=PINNED)
    fake_hub.add("model", "org/base", {"v1": PINNED})
    with pytest.raises(PlanError) as err:
        plan_of(study_of(hub_models()))
    message = str(err.value)
    assert message.startswith("models.r: ") and CONFIG in message and fragment in message, message
    assert "\n" not in message


def test_an_unreachable_hub_is_an_error_never_no_defaults(
    fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # and nothing in the cache
    with pytest.raises(PlanError) as err:
        plan_of(study_of(hub_models()))
    assert str(err.value).startswith(f"models.b: cannot read {CONFIG} of org/base@{PINNED}"), err.value
    assert "HF_HUB_OFFLINE is set" in str(err.value) and "sampling_defaults: spec" in str(err.value)
    assert fake_hub.requests == []


def test_a_file_cached_before_going_offline_is_used(
    fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_hub.add_file("org/rpt", CONFIG, json.dumps(QWEN_LIKE), revision=PINNED)
    fake_hub.add("model", "org/base", {"v1": PINNED})
    online = plan_of(study_of(hub_models()))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    offline = plan_of(study_of(hub_models()))
    assert [j.id for j in offline.jobs] == [j.id for j in online.jobs]


def commit_checkpoint(store: Store, key: str, files: dict[str, bytes]) -> None:
    """A checkpoint as a train job leaves it: objects first, then the manifest that lists them."""
    with store.begin(key, job_id=key.rsplit("/", 1)[-1], kind="train", inputs={}) as writer:
        for name, data in files.items():
            writer.put_bytes(name, data)


def test_a_stored_checkpoints_file_is_read_through_its_manifest(tmp_path: Path) -> None:
    store_uri = f"file://{tmp_path / 'store'}"
    store = Store.from_uri(store_uri)
    commit_checkpoint(
        store,
        "checkpoints/r",
        {"config.json": b"{}", CONFIG: json.dumps({"temperature": 1.0, "top_p": 0.9}).encode()},
    )
    commit_checkpoint(store, "checkpoints/b", {"config.json": b"{}"})
    store.write_bytes(
        "checkpoints/b/generation_config.json", json.dumps(QWEN_LIKE).encode()
    )  # listed nowhere
    models = {"r": {"path": "checkpoints/r"}, "b": {"path": f"{store_uri}/checkpoints/b"}}
    plan = plan_of(study_of(models, store=store_uri))

    rpt = generate_of(plan, "r")
    assert rpt.inputs["sampling"]["temperature"] == 1.0 and rpt.inputs["sampling"]["top_p"] == 0.9
    assert "top_k" not in rpt.inputs["sampling"]
    assert rpt.context["sampling_defaults"] == {
        "values": {"temperature": 1.0, "top_p": 0.9},
        "source": f"{store_uri}/checkpoints/r/{CONFIG}",
    }
    base = generate_of(plan, "b")
    assert base.inputs["sampling"]["temperature"] == STUDY_SAMPLING["temperature"]
    assert base.context["sampling_defaults"]["values"] == {}
    assert f"{store_uri}/checkpoints/b: no {CONFIG}" in base.context["sampling_defaults"]["source"]


def test_a_stored_checkpoint_that_is_not_there_is_a_plan_error(tmp_path: Path) -> None:
    store_uri = f"file://{tmp_path / 'store'}"
    models = {"r": {"path": "checkpoints/r"}, "b": {"path": "checkpoints/b"}}
    with pytest.raises(PlanError) as err:
        plan_of(study_of(models, store=store_uri))
    assert str(err.value).startswith(f"models.b.path: no checkpoint at {store_uri}/checkpoints/b "), err.value


def tiny_models() -> dict[str, dict]:
    return {
        "b": {"tiny": {"corpus": {"smoke_arith": 8}, "steps": 2, "seed": 0}},
        "r": {"tiny": {"init": "b", "corpus": {"smoke_arith": 8}, "steps": 1, "seed": 1}},
    }


def test_tiny_models_have_none_and_keep_their_ids() -> None:
    plan = plan_of(study_of(tiny_models()))
    alike = plan_of(study_of(tiny_models(), sampling_defaults="spec"))
    assert [j.id for j in plan.jobs if j.kind != "aggregate"] == [
        j.id for j in alike.jobs if j.kind != "aggregate"
    ]  # the report (aggregate) is redone: it now names where each model's sampling came from
    for model in ("r", "b"):
        provenance = generate_of(plan, model).context["sampling_defaults"]
        assert provenance["values"] == {} and provenance["source"].startswith("tiny model: "), provenance


def test_a_benchmark_override_beats_the_models_value(fake_hub: FakeHub) -> None:
    fake_hub.add_file("org/rpt", CONFIG, json.dumps(QWEN_LIKE), revision=PINNED)
    fake_hub.add("model", "org/base", {"v1": PINNED})
    overrides = {"smoke_arith": {"temperature": 0.0, "top_k": 0}}
    plan = plan_of(study_of(hub_models(), overrides=overrides))
    greedy = generate_of(plan, "r", "smoke_arith").inputs["sampling"]
    assert greedy["temperature"] == 0.0 and greedy["top_p"] == 0.95 and "top_k" not in greedy
    assert generate_of(plan, "r", "smoke_facts").inputs["sampling"]["temperature"] == 0.6
    assert generate_of(plan, "b", "smoke_arith").inputs["sampling"]["temperature"] == 0.0


def interventional(**changes: Any) -> dict:
    study = {
        "study": "iv-defaults",
        "kind": "interventional",
        "store": "file:///nowhere/store",
        "models": {"base": {"hub": "org/base", "revision": PINNED}},
        "base": "base",
        "training": {"steps": 2, "max_new_tokens": 4, "rollouts_per_prompt": 2, "prompts_per_step": 2},
        "train": [
            {"name": "m", "domain": "math", "data": {"benchmark": "smoke_arith", "examples": 8}},
            {"name": "k", "domain": "knowledge", "data": {"benchmark": "smoke_facts", "examples": 8}},
        ],
        "benchmarks": ["smoke_arith"],
        "limit": 2,
        "sampling": STUDY_SAMPLING,
        "sampling_defaults": "model",
    }
    return {**study, **changes}


def test_a_trained_model_samples_at_its_bases_values(fake_hub: FakeHub) -> None:
    fake_hub.add_file("org/base", CONFIG, json.dumps(QWEN_LIKE), revision=PINNED)
    plan = plan_of(interventional())
    expected = generate_of(plan, "base").context["sampling_defaults"]
    assert expected["source"] == f"hf://org/base@{PINNED}/{CONFIG}"
    for trained in ("m", "k"):
        job = generate_of(plan, trained)
        assert job.context["sampling_defaults"] == expected
        assert job.inputs["sampling"]["top_k"] == 20 and job.inputs["sampling"]["temperature"] == 0.6
    assert len(fake_hub.file_requests()) == 2  # one HEAD and one GET for the base's file, once per plan


def test_do_sample_false_means_greedy_as_in_transformers(fake_hub: FakeHub) -> None:
    """A file that turns sampling off is greedy decoding, whatever temperature it also states."""
    fake_hub.add_file("org/rpt", CONFIG, json.dumps({**QWEN_LIKE, "do_sample": False}), revision=PINNED)
    fake_hub.add("model", "org/base", {"v1": PINNED})
    job = generate_of(plan_of(study_of(hub_models())), "r")
    assert job.inputs["sampling"]["temperature"] == 0.0 and "top_k" not in job.inputs["sampling"]
    assert job.context["sampling_defaults"]["values"] == {"temperature": 0.0}


def test_the_sampling_mode_enters_the_aggregate_id_only_when_model(fake_hub: FakeHub) -> None:
    """Switching a study to its models' own sampling redoes the report, which then names their sources."""
    fake_hub.add("model", "org/rpt", {"v1": PINNED})
    fake_hub.add("model", "org/base", {"v1": PINNED})
    model, spec = plan_of(study_of(hub_models())), plan_of(study_of(hub_models(), sampling_defaults="spec"))
    (own,), (alike,) = ([j for j in p.jobs if j.kind == "aggregate"] for p in (model, spec))
    assert own.inputs["sampling_defaults"] == "model" and "sampling_defaults" not in alike.inputs
    assert own.id != alike.id
