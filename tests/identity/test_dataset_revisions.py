"""Benchmarks without a pinned Hub revision: resolved to commits at plan time, or hashed from local copies.

Runs against the loopback fake Hub of servers_hub.py. Loading rows from the Hub goes through
`sources.load_hub`, the one function that calls `datasets`; a recording stand-in replaces it here (as in
tests/benchmarks/test_hub_loading.py) to see which revision a job would load.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import servers_hub
from conftest import tiny_study
from rpt_transfer.benchmarks import finben, get_benchmark, sources, tabfact
from rpt_transfer.errors import RptError
from rpt_transfer.jobs.generate import benchmark_for
from rpt_transfer.plan import Plan
from rpt_transfer.planner import make_plan
from rpt_transfer.spec import parse_study
from servers_hub import FakeHub, commit_of

fake_hub = servers_hub.fake_hub  # the loopback fake Hub fixture

UNPINNED_ON_HUB = {
    "tabfact": ["ibm-research/tab_fact"],
    "codeforces": ["chuxuan/RL-gen-codeforces-test"],
    "finben": ["TheFinAI/flare-cfa", "TheFinAI/flare-sm-bigdata"],
}


@pytest.fixture
def no_local_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(sources.DATA_ENV, raising=False)


def plan_of(benchmarks: list[str]) -> Plan:
    import yaml

    study = tiny_study("file:///tmp/unused", benchmarks=benchmarks)
    return make_plan(parse_study(yaml.safe_dump(study), "s.yaml"), "file:///tmp/unused", None)


def score_identity(plan: Plan, name: str) -> dict[str, Any]:
    return next(
        job.inputs["benchmark"]
        for job in plan.jobs
        if job.kind == "score" and job.context["benchmark"] == name
    )


def test_unpinned_hub_datasets_are_resolved_once_each(fake_hub: FakeHub, no_local_data: None) -> None:
    for repos in UNPINNED_ON_HUB.values():
        for repo in repos:
            fake_hub.add("dataset", repo)
    plan = plan_of(list(UNPINNED_ON_HUB))
    for name, repos in UNPINNED_ON_HUB.items():
        expected = "hf:" + ",".join(f"{repo}@{commit_of(repo, 'main')}" for repo in repos)
        assert score_identity(plan, name)["data"] == expected
    assert fake_hub.resolutions() == {
        f"/api/datasets/{repo}": 1 for repos in UNPINNED_ON_HUB.values() for repo in repos
    }  # both models of the study evaluate each benchmark; each dataset is asked once


def test_a_job_loads_the_commits_its_plan_resolved(
    fake_hub: FakeHub, no_local_data: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    for repo in ("ibm-research/tab_fact", *finben.HUB_DATASETS.values()):
        fake_hub.add("dataset", repo)
    plan = plan_of(["tabfact", "finben"])
    loads: list[tuple[str, str]] = []

    def fake_load(hf_id: str, config: str | None, split: str, revision: str) -> Iterator[dict[str, Any]]:
        loads.append((hf_id, revision))
        return iter(())

    monkeypatch.setattr(sources, "load_hub", fake_load)
    fake_hub.repos[("dataset", "ibm-research/tab_fact")]["main"] = commit_of("tab_fact", "moved")
    for name in ("tabfact", "finben"):
        identity = score_identity(plan, name)
        bench = benchmark_for(identity)  # the job side: no Hub call, the plan's commits
        assert bench.identity(identity.get("options")) == identity
        assert bench.items() == []
    assert loads == [
        ("ibm-research/tab_fact", commit_of("ibm-research/tab_fact", "main")),
        *((repo, commit_of(repo, "main")) for repo in finben.HUB_DATASETS.values()),
    ]
    assert len(fake_hub.requests) == 3  # planning only


def test_an_old_plan_with_an_unresolved_dataset_is_refused() -> None:
    identity = {
        "name": "tabfact",
        "version": tabfact.BENCHMARK.version,
        "data": "hf:ibm-research/tab_fact@UNPINNED",
    }
    with pytest.raises(RptError, match=r"re-plan"):
        benchmark_for(identity)


def test_with_local_copies_the_identity_is_their_content(
    fake_hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "tabfact").mkdir()
    (tmp_path / "tabfact" / "test_examples.json").write_text("{}")
    monkeypatch.setenv(sources.DATA_ENV, str(tmp_path))
    assert score_identity(plan_of(["tabfact"]), "tabfact")["data"].startswith("sha256:")
    assert fake_hub.requests == []


def test_usaco_without_a_local_copy_fails_in_one_line(no_local_data: None) -> None:
    with pytest.raises(RptError) as err:
        plan_of(["usaco"])
    message = str(err.value)
    assert message.startswith("benchmark usaco: ") and "\n" not in message
    assert "not on the Hugging Face Hub" in message and sources.DATA_ENV in message
    assert "usaco/usaco_subset307_dict.json" in message and "leave usaco out" in message


def test_a_missing_local_copy_names_the_file_and_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(sources.DATA_ENV, str(tmp_path))
    with pytest.raises(RptError) as err:
        plan_of(["usaco"])
    message = str(err.value)
    assert message.startswith(f"benchmark usaco: {tmp_path}/usaco/usaco_subset307_dict.json: no local copy")
    assert "data.zip" in message and "leave usaco out" in message and "\n" not in message
    with pytest.raises(RptError, match=f"unset {sources.DATA_ENV} to load it from openai/gsm8k"):
        plan_of(["gsm8k"])


def test_offline_an_unpinned_dataset_fails_naming_it(
    fake_hub: FakeHub, no_local_data: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RptError) as err:
        plan_of(["tabfact"])
    message = str(err.value)
    assert message.startswith("benchmark tabfact: dataset ibm-research/tab_fact has no pinned revision")
    assert sources.DATA_ENV in message and "\n" not in message
    assert fake_hub.requests == []
    assert get_benchmark("tabfact").source.revision == sources.UNPINNED  # the registry itself is unchanged
