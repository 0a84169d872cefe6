"""The aggregate job writes `pairs.json` and rebuilds the leaderboard, and a failed rebuild costs no report.

The tiny observational study's generate jobs run with the fake backend (claiming a parameter count, as the
HF backend records one); its score and aggregate jobs run for real.
"""

import json
from pathlib import Path

import pytest
import yaml

from conftest import tiny_study
from rpt_transfer.analysis.leaderboard import latest_leaderboard
from rpt_transfer.analysis.leaderboard_pairs import PAIRS_FILE, PairsFile
from rpt_transfer.analysis.leaderboard_render import JSON
from rpt_transfer.benchmarks import get_benchmark
from rpt_transfer.generation import FakeBackend, GenRequest
from rpt_transfer.jobs import generate, run_job
from rpt_transfer.jobs.context import JobContext
from rpt_transfer.jobs.progress import Progress
from rpt_transfer.plan import Plan
from rpt_transfer.planner import make_plan
from rpt_transfer.spec import parse_study
from rpt_transfer.store import Store

PARAMETERS = 123_456


class CountedFake(FakeBackend):
    """The fake backend, knowing its model's size as a backend that loaded the weights does."""

    parameter_count = PARAMETERS


def answers(right: bool):
    """Completions that the smoke scorers accept (`right`) or refuse."""
    references = {
        item.id: item.reference
        for name in ("smoke_arith", "smoke_facts")
        for item in get_benchmark(name).items()
    }

    def script(request: GenRequest, sample: int) -> str:
        return f"ANSWER: {references[request.request_id]}" if right else "ANSWER: nothing"

    return script


def run_study(store_uri: str) -> Plan:
    """Plan the tiny study, generate with the fake (the RPT model right, the base wrong), score, aggregate."""
    study = tiny_study(store_uri, limit=3, sampling={"n": 1, "max_tokens": 64, "temperature": 0.8})
    plan = make_plan(parse_study(yaml.safe_dump(study), "mini.yaml"), store_uri, None)
    store = Store.from_uri(store_uri)
    for job in plan.jobs:
        if job.kind == "generate":
            ctx = JobContext(plan=plan, job=job, store=store, progress=Progress(f"generate {job.id}"))
            generate.run(ctx, backend=CountedFake(answers(right=job.context["model"] == "rpt")))
    for job in plan.jobs:
        if job.kind in ("score", "aggregate"):
            assert run_job(plan, job.id) is not None
    return plan


def test_the_report_names_its_pairs_and_the_leaderboard_is_rebuilt(tmp_path: Path) -> None:
    store_uri = f"file://{tmp_path / 'store'}"
    plan = run_study(store_uri)
    (aggregate,) = [job for job in plan.jobs if job.kind == "aggregate"]
    store = Store.from_uri(store_uri)
    described = PairsFile.from_json(store.read_object(aggregate.key, PAIRS_FILE), "pairs.json")
    (pair,) = described.pairs
    assert (pair.name, pair.domains, pair.algorithm) == ("p", ["math"], "grpo")
    pretrain = {job.context["model"]: job.id for job in plan.jobs if job.kind == "pretrain"}
    assert (pair.rpt.source, pair.rpt.revision, pair.rpt.parameters) == (
        "pretrain job",
        pretrain["rpt"],
        PARAMETERS,
    )
    assert pair.base.revision == pretrain["base"]
    assert (
        pair.settings["sampling.temperature"] == 0.8
        and pair.settings["benchmarks"] == "smoke_arith,smoke_facts"
    )
    prefix = latest_leaderboard(store)
    assert prefix is not None
    (row,) = json.loads(store.read_object(prefix, JSON))["rows"]
    assert (row["pair"], row["study"], row["parameters"], row["report"]) == (
        "p",
        "mini",
        PARAMETERS,
        aggregate.key,
    )
    assert row["gain_trained"] == 1.0  # the RPT model answers every item right, the base none
    assert row["odds_ratio_trained"] == "Infinity"


def test_a_failed_rebuild_leaves_the_report_committed(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = tmp_path / "store"
    root.mkdir()
    (root / "leaderboard").write_text("a file where the leaderboard folder would go")
    plan = run_study(f"file://{root}")
    (aggregate,) = [job for job in plan.jobs if job.kind == "aggregate"]
    assert Store.from_uri(str(root)).is_done(aggregate.key)
    warnings = [
        line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: leaderboard")
    ]
    assert len(warnings) == 1 and "the report of mini is committed" in warnings[0]
    assert "run `rpt-transfer leaderboard` to rebuild it" in warnings[0]
