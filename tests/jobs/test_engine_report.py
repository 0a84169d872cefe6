"""A study's report names every cell whose base and RPT generations came from different engine versions.

Engine versions are recorded in each generation row, not hashed into job ids, so a cache can hold base
generations made with one transformers and RPT generations made with another. The generate, score and
aggregate jobs run for real here; only the model is the fake backend, claiming the engines given.
"""

from pathlib import Path

import pytest
from stored_generations import answers, mini_plan, right_answer, store_generations

from rpt_transfer.jobs import run_job
from rpt_transfer.store import Store

ENGINE = {"torch": "2.13.0", "transformers": "5.0.0", "device": "cpu (x86_64)", "dtype": "float32"}


def warnings_of(tmp_path: Path, engines: dict[str, dict[str, str]]) -> str:
    """Generate (fake backend claiming `engines`), score and aggregate; the report's Warnings section."""
    store_uri = f"file://{tmp_path / 'store'}"
    plan = mini_plan(store_uri, ["smoke_arith"], limit=3, n=1)
    store_generations(plan, answers(right_answer, {}), engines=engines)
    for job in plan.jobs:
        if job.kind in ("score", "aggregate"):
            assert run_job(plan, job.id) is not None
    (aggregate,) = [job for job in plan.jobs if job.kind == "aggregate"]
    store = Store.from_uri(store_uri)
    report = store.read_object(aggregate.key, "report.md").decode()
    return report.split("## Warnings", 1)[1].split("\n## ", 1)[0]  # the methods text names warnings too


@pytest.mark.parametrize("differ", [False, True], ids=["same engine", "different engines"])
def test_report_warns_when_base_and_rpt_engines_differ(tmp_path: Path, differ: bool) -> None:
    rpt_engine = {**ENGINE, "transformers": "5.1.0"} if differ else ENGINE
    report = warnings_of(tmp_path, {"base": ENGINE, "rpt": rpt_engine})
    warning = (
        "pair 'p' on 'smoke_arith': compared although base and RPT rows come from different software "
        "(engine.transformers: base '5.0.0' vs RPT '5.1.0')"
    )
    assert (warning in report) is differ
    assert ("different software" in report) is differ, report
