"""The paper-scale observational study: it validates and plans here, although running it needs GPUs.

Planning it needs two things the spec says (docs/identity.md): the Hub, to resolve the models it names by
branch (`main`) to commits, played here by the loopback fake Hub of servers_hub.py; and local copies of its
benchmarks, because USACO is not on the Hub. The counts are checked on stand-in files (planning hashes the
local copies and never reads their records); the real data (tests/conftest.py BENCHMARK_DATA) is planned too
where it has a USACO copy, and the test says why it skips where it has none.
"""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import BENCHMARK_DATA, REPO, benchmark_data, run_cli
from rpt_transfer.benchmarks import expand, usaco
from rpt_transfer.benchmarks.sources import DATA_ENV, DatasetSource
from rpt_transfer.errors import RptError
from rpt_transfer.plan import Plan
from rpt_transfer.planner import make_plan
from rpt_transfer.revisions import is_commit
from rpt_transfer.spec import load_study
from servers_hub import FakeHub, commit_of, fake_hub

STUDY = REPO / "studies" / "paper-observational.yaml"
hub = fake_hub  # the loopback fake Hub fixture, under a shorter name


def stand_in_data(
    root: Path, leave_out: tuple[str, ...] = (), study: Path = STUDY, real: Path | None = None
) -> Path:
    """A benchmark-data folder with a small stand-in at every local file the study's benchmarks name.

    With `real`, a file or folder that exists there is linked instead (an estimate reads the items).
    """
    for bench in expand(load_study(study).benchmarks):
        if not isinstance(bench.source, DatasetSource) or bench.name in leave_out:
            continue
        for name in bench.source.local_files:
            path = root / name
            if real is not None and (real / name).exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.symlink_to(real / name)
            elif path.suffix:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(f"stand-in for {name}\n")
            else:
                path.mkdir(parents=True, exist_ok=True)
                (path / "stand-in.txt").write_text(f"stand-in for {name}\n")
    return root


@pytest.fixture
def branches(hub: FakeHub) -> Iterator[dict[str, str]]:
    """The study's models named by branch, each given a commit by the fake Hub: name to repo."""
    moving = {n: m.hub for n, m in load_study(STUDY).models.items() if m.hub and not is_commit(m.revision)}
    for repo in moving.values():
        hub.add("model", repo)
    yield moving


def plan_here(data: Path, monkeypatch: pytest.MonkeyPatch, store: Path) -> Plan:
    monkeypatch.setenv(DATA_ENV, str(data))
    return make_plan(load_study(STUDY), f"file://{store}", None)


def test_paper_study_plans_with_the_expected_counts(
    tmp_path: Path, hub: FakeHub, branches: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    study = load_study(STUDY)
    assert len(study.pairs) == 18 and len(branches) == 10
    benches = expand(study.benchmarks)
    assert len(benches) == 16 and {b.domain for b in benches} == {"math", "code", "knowledge"}
    models = {name for pair in study.pairs for name in (pair.rpt, pair.base)}
    plan = plan_here(stand_in_data(tmp_path / "data"), monkeypatch, tmp_path / "store")
    counts = plan.counts()
    per_model_prompts = sum(b.size() for b in benches)
    per_model_samples = sum(b.size() * (16 if b.name in ("aime24", "amc23") else 1) for b in benches)
    assert counts["score"] == len(models) * 16
    assert counts["prompts"] == len(models) * per_model_prompts
    assert counts["samples"] == len(models) * per_model_samples
    assert counts["generate"] == len(models) * 16 * 4  # 4 shards each
    # each model named by branch was asked once (the plan has 64 jobs per model) and carries its commit
    assert hub.resolutions() == {f"/api/models/{repo}/revision/main": 1 for repo in branches.values()}
    revisions = {
        job.context["model"]: job.inputs["model"]["revision"] for job in plan.jobs if job.kind == "generate"
    }
    assert all(is_commit(revision) for revision in revisions.values())
    assert all(revisions[name] == commit_of(repo, "main") for name, repo in branches.items())


def test_paper_study_cli(tmp_path: Path, branches: dict[str, str]) -> None:
    env = {"RPT_STORE": str(tmp_path / "store"), DATA_ENV: str(stand_in_data(tmp_path / "data"))}
    validated = run_cli("validate", str(STUDY), env=env)
    assert validated.returncode == 0, validated.stderr
    assert "revision 'main' is not a 40-hex commit" in validated.stderr  # the unpinned models are flagged
    planned = run_cli("plan", str(STUDY), env=env)
    assert planned.returncode == 0, planned.stderr
    assert " jobs, " in planned.stdout and " prompts, " in planned.stdout and " samples" in planned.stdout


def test_paper_study_without_usaco_says_what_to_do(tmp_path: Path, branches: dict[str, str]) -> None:
    data = stand_in_data(tmp_path / "data", leave_out=("usaco",))
    result = run_cli("plan", str(STUDY), env={"RPT_STORE": str(tmp_path / "store"), DATA_ENV: str(data)})
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: benchmark usaco: {data / usaco.DICT_FILE}: no local copy"), line
    assert "data.zip" in line and "leave usaco out of the study's benchmarks" in line, line


def test_paper_study_without_the_hub_names_a_model_and_how_to_pin(tmp_path: Path) -> None:
    env = {
        "RPT_STORE": str(tmp_path / "store"),
        DATA_ENV: str(stand_in_data(tmp_path / "data")),
        "HF_HUB_OFFLINE": "1",
    }
    result = run_cli("plan", str(STUDY), env=env)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: models.") and "revision: <40-hex commit>" in line, line


def test_paper_study_plans_with_the_real_data(
    tmp_path: Path, branches: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    benchmark_data()  # skips, saying where the files come from and how to provide them, when absent
    if not (BENCHMARK_DATA / usaco.DICT_FILE).is_file():
        pytest.skip(
            f"{BENCHMARK_DATA} has no USACO copy ({usaco.DICT_FILE}); USACO is not on the Hub, and planning "
            "the paper study needs it (docs/identity.md says how to add it)"
        )
    try:
        plan = plan_here(BENCHMARK_DATA, monkeypatch, tmp_path / "store")
    except RptError as err:
        raise AssertionError(f"{err} (with {DATA_ENV}={BENCHMARK_DATA})") from None
    data = {job.inputs["benchmark"]["data"] for job in plan.jobs if job.kind == "score"}
    assert all(value.startswith("sha256:") for value in data) and os.environ[DATA_ENV] == str(BENCHMARK_DATA)
