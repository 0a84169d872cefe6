"""Hub branches and tags become commits at plan time: the commit enters job ids and provenance.

Everything runs against the loopback fake Hub of servers_hub.py; nothing reaches a real address.
"""

import time
from pathlib import Path

import pytest
import yaml

import servers_hub
from conftest import run_cli, write_study
from rpt_transfer.errors import RptError
from rpt_transfer.jobs.models import model_source
from rpt_transfer.plan import Plan
from rpt_transfer.planner import make_plan
from rpt_transfer.spec import parse_study
from servers_hub import FakeHub, commit_of
from servers_s3 import free_port

fake_hub = servers_hub.fake_hub  # the loopback fake Hub fixture

PINNED = "0123456789abcdef0123456789abcdef01234567"


def hub_study(models: dict[str, dict], pairs: list[tuple[str, str]] | None = None) -> dict:
    """An observational study of Hub models on one synthetic benchmark (no data to load)."""
    pairs = pairs or [("r", "b")]
    return {
        "study": "hub-ids",
        "kind": "observational",
        "models": models,
        "pairs": [
            {"name": f"p{i}", "rpt": rpt, "base": base, "domains": ["math"], "algorithm": "grpo"}
            for i, (rpt, base) in enumerate(pairs)
        ],
        "benchmarks": ["smoke_arith"],
        "limit": 4,
    }


def plan_of(study: dict, store: str = "file:///tmp/unused") -> Plan:
    return make_plan(parse_study(yaml.safe_dump(study), "s.yaml"), store, None)


def model_jobs(plan: Plan, name: str) -> list:
    return [job for job in plan.jobs if job.kind == "generate" and job.context["model"] == name]


def test_a_branch_becomes_its_commit_in_ids_and_provenance(fake_hub: FakeHub) -> None:
    fake_hub.add("model", "org/rpt")
    study = hub_study(
        {"r": {"hub": "org/rpt", "revision": "main"}, "b": {"hub": "org/base", "revision": PINNED}}
    )
    plan = plan_of(study)
    (job,) = model_jobs(plan, "r")
    assert job.inputs["model"] == {"hub": "org/rpt", "revision": commit_of("org/rpt", "main")}
    assert job.context["model_revision"] == "main"  # the name the user wrote, for people
    assert model_source(job.inputs["model"], plan)["revision"] == commit_of("org/rpt", "main")
    assert model_jobs(plan, "b")[0].inputs["model"] == {"hub": "org/base", "revision": PINNED}

    fake_hub.repos[("model", "org/rpt")]["main"] = commit_of("org/rpt", "moved")  # the branch moves
    moved = plan_of(study)
    assert model_jobs(moved, "r")[0].id != job.id
    assert model_jobs(moved, "b")[0].id == model_jobs(plan, "b")[0].id


def test_each_distinct_ref_is_resolved_once_per_plan(fake_hub: FakeHub) -> None:
    fake_hub.add("model", "org/rpt", {"v1": commit_of("org/rpt", "v1")})
    fake_hub.add("model", "org/base")
    models = {
        "r": {"hub": "org/rpt", "revision": "main"},
        "r-again": {"hub": "org/rpt", "revision": "main", "prompt_mode": "raw"},
        "r-tag": {"hub": "org/rpt", "revision": "v1"},
        "b": {"hub": "org/base", "revision": "main"},
    }
    plan_of(hub_study(models, [("r", "b"), ("r-again", "b"), ("r-tag", "b")]))
    assert fake_hub.resolutions() == {
        "/api/models/org/rpt/revision/main": 1,
        "/api/models/org/rpt/revision/v1": 1,
        "/api/models/org/base/revision/main": 1,
    }


def test_a_40_hex_revision_asks_nothing(fake_hub: FakeHub) -> None:
    plan_of(
        hub_study({"r": {"hub": "org/rpt", "revision": PINNED}, "b": {"hub": "org/base", "revision": PINNED}})
    )
    assert fake_hub.requests == []


@pytest.mark.parametrize(
    ("repo_exists", "expected"),
    [
        (False, "models.r: org/rpt is not a model on the Hub at "),
        (True, "models.r: org/rpt has no branch or tag 'nightly' on the Hub at "),
    ],
)
def test_an_unknown_repo_or_ref_fails_in_one_line(
    fake_hub: FakeHub, repo_exists: bool, expected: str
) -> None:
    if repo_exists:
        fake_hub.add("model", "org/rpt")
    study = hub_study(
        {"r": {"hub": "org/rpt", "revision": "nightly"}, "b": {"hub": "org/base", "revision": PINNED}}
    )
    with pytest.raises(RptError) as err:
        plan_of(study)
    assert str(err.value).startswith(expected) and "\n" not in str(err.value), str(err.value)


def test_a_429_is_retried_once_after_retry_after(fake_hub: FakeHub) -> None:
    fake_hub.add("model", "org/rpt")
    fake_hub.rate_limit("/api/models/org/rpt", retry_after=1)
    study = hub_study(
        {"r": {"hub": "org/rpt", "revision": "main"}, "b": {"hub": "org/base", "revision": PINNED}}
    )
    start = time.monotonic()
    plan = plan_of(study)
    assert time.monotonic() - start >= 1
    assert model_jobs(plan, "r")[0].inputs["model"]["revision"] == commit_of("org/rpt", "main")
    assert fake_hub.resolutions() == {"/api/models/org/rpt/revision/main": 2}


def test_a_long_rate_limit_fails_at_once_in_one_line(fake_hub: FakeHub) -> None:
    fake_hub.add("model", "org/rpt")
    fake_hub.rate_limit("/api/models/org/rpt", retry_after=300, times=3)
    study = hub_study(
        {"r": {"hub": "org/rpt", "revision": "main"}, "b": {"hub": "org/base", "revision": PINNED}}
    )
    start = time.monotonic()
    with pytest.raises(
        RptError, match=r"^models\.r: .*rate-limited.*300 s.*revision: <40-hex commit>"
    ) as err:
        plan_of(study)
    assert time.monotonic() - start < 5 and "\n" not in str(err.value)
    assert fake_hub.resolutions() == {"/api/models/org/rpt/revision/main": 1}


def test_offline_a_branch_fails_naming_the_model_and_how_to_pin(
    fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    study = hub_study(
        {"r": {"hub": "org/rpt", "revision": "main"}, "b": {"hub": "org/base", "revision": PINNED}}
    )
    with pytest.raises(RptError) as err:
        plan_of(study)
    message = str(err.value)
    assert (
        message.startswith("models.r: revision 'main' of org/rpt is a branch or tag") and "\n" not in message
    )
    assert "HF_HUB_OFFLINE" in message and "revision: <40-hex commit>" in message
    assert fake_hub.requests == []


def test_without_network_plan_exits_2_with_one_line(tmp_path: Path, fake_hub: FakeHub) -> None:
    models = {
        "r": {"hub": "org/rpt", "revision": "main"},
        "r2": {"hub": "org/rpt2", "revision": "v2"},
        "b": {"hub": "org/base", "revision": PINNED},
    }
    path = write_study(tmp_path / "study.yaml", hub_study(models, [("r", "b"), ("r2", "b")]))
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there: like a cluster without egress
    result = run_cli("plan", str(path), env={"HF_ENDPOINT": closed, "RPT_STORE": str(tmp_path / "store")})
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: models.r: revision 'main' of org/rpt is a branch or tag"), line
    assert closed in line and "revision: <40-hex commit>" in line and "r2" in line, line
    assert not (tmp_path / "store").exists()
