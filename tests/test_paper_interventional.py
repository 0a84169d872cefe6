"""The paper's interventional study and its robustness runs as specs: they validate, plan and estimate here.

Planning needs the Hub to resolve the three training datasets named by `main` to commits (the loopback fake
Hub of servers_hub.py plays it; no data file is downloaded when planning) and local copies of the 16
benchmarks (USACO is not on the Hub): small stand-in files, since planning hashes local copies and never reads
their records.
"""

import json
from pathlib import Path

import pytest

from conftest import REPO, benchmark_data
from inprocess import call_cli
from rpt_transfer import generation
from rpt_transfer.benchmarks import expand
from rpt_transfer.benchmarks.sources import DATA_ENV
from rpt_transfer.plan import Plan
from rpt_transfer.planner import make_plan
from rpt_transfer.revisions import is_commit
from rpt_transfer.runnable import Needs
from rpt_transfer.spec import InterventionalStudy, load_study
from rpt_transfer.training import base as trainers
from servers_hub import FakeHub, fake_hub
from test_paper_study import stand_in_data as paper_stand_ins

MAIN = REPO / "studies" / "paper-interventional.yaml"
ROBUSTNESS = REPO / "studies" / "paper-interventional-robustness.yaml"
LLAMA = REPO / "studies" / "paper-interventional-llama.yaml"
DATASETS = ("uiuc-kang-lab/eurus-2-math-100k", "uiuc-kang-lab/code-100k-rl", "uiuc-kang-lab/mlvr-100k-rl")
hub = fake_hub  # the loopback fake Hub fixture, under a shorter name


def stand_in_data(root: Path, study: Path = MAIN, real: Path | None = None) -> Path:
    """The benchmark-data stand-ins of test_paper_study, for these studies."""
    return paper_stand_ins(root, study=study, real=real)


@pytest.fixture
def datasets(hub: FakeHub) -> dict[str, str]:
    """The three training datasets on the fake Hub: repo to the commit its `main` points at."""
    return {repo: hub.add("dataset", repo)["main"] for repo in DATASETS}


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """`plan` refuses a backend or trainer this machine lacks: vLLM and OpenRLHF count as installed here."""
    monkeypatch.setitem(generation.NEEDS, "vllm", Needs(("json",), "gpu"))
    monkeypatch.setitem(trainers.NEEDS, "openrlhf", Needs(("json",), "train"))


def plan_here(study: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Plan:
    monkeypatch.setenv(DATA_ENV, str(stand_in_data(tmp_path / "data", study)))
    return make_plan(load_study(study), f"file://{tmp_path / 'store'}", None)


def test_both_specs_validate_as_the_paper_describes_them() -> None:
    main, robustness = load_study(MAIN), load_study(ROBUSTNESS)
    assert isinstance(main, InterventionalStudy) and isinstance(robustness, InterventionalStudy)
    for study in (main, robustness):
        assert study.trainer == "openrlhf" and study.resources.backend == "vllm"
        assert study.models[study.base].hub == "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"
        assert is_commit(study.models[study.base].revision)
        assert len(expand(study.benchmarks)) == 16
        assert {run.data.hub for run in study.train} == set(DATASETS)
        assert all(run.data.examples == 40_000 for run in study.train)
    assert [(r.domain, r.algorithm) for r in main.train] == [
        ("math", "grpo"),
        ("code", "grpo"),
        ("knowledge", "grpo"),
    ]
    hyper = {json.dumps(main.hyper_for(run).identity(), sort_keys=True) for run in main.train}
    assert len(hyper) == 1  # one hyperparameter set for the three domains
    (one,) = {main.hyper_for(run) for run in main.train}
    assert (one.prompts_per_step, one.rollouts_per_prompt, one.learning_rate, one.max_new_tokens) == (
        128,
        8,
        1e-6,
        8192,
    )
    assert (one.kl_coef, one.temperature, one.epochs) == (0.001, 0.6, 1)
    code = next(run.data for run in main.train if run.domain == "code")
    assert (
        code.exclude == {"data_source": ["apps", "lcbv5", "primeintellect"]}
        and code.shuffle
        and code.seed == 42
    )
    assert sorted((r.algorithm, robustness.hyper_for(r).epochs) for r in robustness.train) == sorted(
        [("dapo", 1)] * 3 + [("grpo", 2)] * 3
    )


def test_the_main_study_plans_with_datasets_at_commits_and_downloads_nothing(
    tmp_path: Path, hub: FakeHub, datasets: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = plan_here(MAIN, tmp_path, monkeypatch)
    counts = plan.counts()
    assert counts["train"] == 3
    assert counts["generate"] == counts["score"] == 4 * 16  # base and three trained models, one shard each
    trains = [job for job in plan.jobs if job.kind == "train"]
    assert {job.inputs["data"]["hub"]: job.inputs["data"]["revision"] for job in trains} == datasets
    assert all(is_commit(job.inputs["data"]["revision"]) for job in trains)
    assert all(job.inputs["trainer"]["backend"] == "openrlhf" for job in trains)
    assert hub.file_requests() == []  # no data file (nor model file) is read when planning
    assert hub.resolutions() == {f"/api/datasets/{repo}/revision/main": 1 for repo in DATASETS}
    models = {job.context["model"] for job in plan.jobs if job.kind == "generate"}
    assert models == {
        "r1-distill-qwen-1.5b",
        "r1-1.5b-grpo-math",
        "r1-1.5b-grpo-code",
        "r1-1.5b-grpo-knowledge",
    }


def test_the_robustness_study_shares_the_base_jobs_of_the_main_one(
    tmp_path: Path, hub: FakeHub, datasets: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    main = plan_here(MAIN, tmp_path, monkeypatch)
    robustness = plan_here(ROBUSTNESS, tmp_path, monkeypatch)
    assert robustness.counts()["train"] == 6 and robustness.counts()["score"] == 7 * 16

    def base_jobs(plan: Plan) -> set[str]:
        return {
            j.id
            for j in plan.jobs
            if j.kind in ("generate", "score") and j.context["model"] == "r1-distill-qwen-1.5b"
        }

    assert base_jobs(main) == base_jobs(robustness) and len(base_jobs(main)) == 32
    main_train = {j.id for j in main.jobs if j.kind == "train"}
    assert not main_train & {j.id for j in robustness.jobs if j.kind == "train"}  # each run differs


def test_without_the_hub_planning_names_the_dataset_and_how_to_pin(
    tmp_path: Path, installed: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RPT_STORE", str(tmp_path / "store"))
    monkeypatch.setenv(DATA_ENV, str(stand_in_data(tmp_path / "data")))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = call_cli(capsys, "plan", str(MAIN))
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "hub dataset uiuc-kang-lab/eurus-2-math-100k" in line and "revision: <40-hex commit>" in line, line


def test_the_estimate_has_train_rows_for_the_paper_study(
    tmp_path: Path,
    hub: FakeHub,
    datasets: dict[str, str],
    installed: None,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = benchmark_data("gsm8k").parent  # skips, saying how to provide them, without the real files
    monkeypatch.setenv("RPT_STORE", str(tmp_path / "store"))
    monkeypatch.setenv(DATA_ENV, str(stand_in_data(tmp_path / "data", real=real)))  # USACO: a stand-in
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    result = call_cli(capsys, "plan", str(MAIN), "--estimate", "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    train = {row["name"]: row for row in payload["train"]}
    assert set(train) == {"r1-1.5b-grpo-math", "r1-1.5b-grpo-code", "r1-1.5b-grpo-knowledge"}
    for row in train.values():
        assert row["steps"] == 313  # ceil(40,000 prompts / 128 per step), one epoch
        assert (
            row["samples"] == 313 * 128 * 8
            and row["response_tokens"] == 6000
            and row["response_from"] == "spec"
        )
        assert row["size_b"] == 1.5 and row["update_gpu_hours"]["H100"] > 0
    assert payload["totals"]["train_jobs"] == 3
    text = call_cli(capsys, "plan", str(MAIN), "--estimate")
    assert text.returncode == 0, text.stderr
    assert (
        "training in study paper-interventional" in text.stdout
        and "study GPU-hours, lower bound" in text.stdout
    )
    with capsys.disabled():  # the output the README quotes: `pytest -s -k estimate_has_train_rows`
        print("\n" + text.stdout)


def test_the_llama_backbone_study_is_the_main_one_on_another_base(
    tmp_path: Path, hub: FakeHub, datasets: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    main, llama = load_study(MAIN), load_study(LLAMA)
    assert isinstance(main, InterventionalStudy) and isinstance(llama, InterventionalStudy)
    assert llama.models[llama.base].hub == "meta-llama/Llama-3.2-3B-Instruct"
    assert is_commit(llama.models[llama.base].revision or "")
    assert llama.training == main.training and llama.openrlhf == main.openrlhf
    assert [(r.domain, r.algorithm, r.data) for r in llama.train] == [
        (r.domain, r.algorithm, r.data) for r in main.train
    ]
    plan = plan_here(LLAMA, tmp_path, monkeypatch)
    assert plan.counts()["train"] == 3 and plan.counts()["score"] == 4 * 16
