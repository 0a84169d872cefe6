"""Which versions enter generate job ids (our backend code) and which are only recorded (the engines)."""

import pytest
import yaml

from conftest import tiny_study
from rpt_transfer.errors import RptError
from rpt_transfer.generation import BACKEND_VERSIONS, BACKENDS, FakeBackend, backend_version
from rpt_transfer.plan import Plan
from rpt_transfer.planner import make_plan
from rpt_transfer.spec import parse_study

STORE = "file:///tmp/unused-store"


def plan_of() -> Plan:
    return make_plan(parse_study(yaml.safe_dump(tiny_study(STORE)), "s.yaml"), STORE, None)


def ids(plan: Plan, kind: str) -> set[str]:
    return {job.id for job in plan.jobs if job.kind == kind}


def test_every_backend_has_a_version_of_its_own_code() -> None:
    assert set(BACKEND_VERSIONS) == set(BACKENDS)
    with pytest.raises(RptError, match=r"'sglang' is not part of this installation; accepted: fake, hf, "):
        backend_version("sglang")


def test_backend_code_version_is_in_generate_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    before = plan_of()
    assert {job.inputs["backend_version"] for job in before.jobs if job.kind == "generate"} == {"1"}
    monkeypatch.setitem(BACKEND_VERSIONS, "hf", "2")
    after = plan_of()
    assert ids(before, "pretrain") == ids(after, "pretrain")
    assert ids(before, "generate").isdisjoint(ids(after, "generate"))
    assert ids(before, "score").isdisjoint(ids(after, "score"))


def test_engine_versions_are_not_in_ids() -> None:
    """The planner never asks an engine: ids are the same wherever torch or transformers differ."""
    for job in plan_of().jobs:
        assert not {"engine", "torch", "transformers", "cuda", "device", "dtype"} & set(job.inputs), job.kind


def test_fake_reports_its_label_and_what_it_is_told() -> None:
    assert FakeBackend({}).engine_versions() == {"backend": "fake@1"}
    claimed = FakeBackend({}, engine={"transformers": "5.1.0"}).engine_versions()
    assert claimed == {"backend": "fake@1", "transformers": "5.1.0"}
