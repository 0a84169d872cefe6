"""Re-scoring invariance: scoring the same stored generations again gives identical score rows.

Scoring is separate from generation so that a fixed scorer re-scores without a GPU, and so that a
re-run on another machine, with another number of CPUs, reproduces the stored verdicts. No field of a
score row may differ between two scorings: the job ids are the same (a score job's id hashes its
generations, benchmark and scorer), and rows carry no timestamps (the manifest's `created_at` differs,
which is why manifests are not compared).
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from stored_generations import answers, local_root, mini_plan, right_answer, score_rows_of, store_generations

from rpt_transfer.cpus import CPUS_ENV
from rpt_transfer.errors import SettingError
from rpt_transfer.jobs import run_job
from rpt_transfer.store import Store

BENCHMARKS = ["smoke_arith", "smoke_facts", "canary_code"]
"""One benchmark per scorer kind: math (worker pool), choice (in process), code_function (sandbox)."""
WRONG = {
    1: "ANSWER: 12345",
    2: "def f(x):\n    raise ValueError(x)\n",
    3: "\\boxed{" * 40 + " maybe B, maybe 7",
}
"""Completions of samples 1-3 of every item: wrong, crashing or unreadable for every scorer."""
SCORE_ALL = """
import sys
from pathlib import Path
from rpt_transfer.jobs import run_job
from rpt_transfer.plan import Plan
plan = Plan.model_validate_json(Path(sys.argv[1]).read_text())
for job_id in sys.argv[2:]:
    assert run_job(plan, job_id) is not None, job_id
"""
"""Runs score jobs in a fresh process, so its pools are sized by the RPT_CPUS it is given."""


def score_in_subprocess(plan_file: Path, job_ids: list[str], cpus: int) -> None:
    env = {**os.environ, CPUS_ENV: str(cpus)}
    result = subprocess.run(
        [sys.executable, "-c", SCORE_ALL, str(plan_file), *job_ids], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_rescoring_stored_generations_gives_identical_rows(tmp_path: Path) -> None:
    store_uri = f"file://{tmp_path / 'store'}"
    plan = mini_plan(store_uri, BENCHMARKS, limit=4, n=4)
    store_generations(plan, answers(right_answer, WRONG))
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(plan.model_dump_json())
    store = Store.from_uri(store_uri)
    jobs = [job for job in plan.jobs if job.kind == "score"]

    score_in_subprocess(plan_file, [job.id for job in jobs], cpus=3)
    first = {job.id: score_rows_of(store, job.key) for job in jobs}
    for job in jobs:  # the score jobs' outputs are gone; the generations they read stay
        shutil.rmtree(local_root(store_uri) / job.key)
        assert not store.is_done(job.key)
    score_in_subprocess(plan_file, [job.id for job in reversed(jobs)], cpus=1)
    again = {job.id: score_rows_of(store, job.key) for job in jobs}

    rows = [row for job_rows in first.values() for row in job_rows]
    assert len(rows) == 2 * len(BENCHMARKS) * 4 * 4  # models × benchmarks × items × samples
    assert {row["correct"] for row in rows} == {0.0, 1.0}  # the scorers really judged
    assert {row["scorer"] for row in rows} == {"math", "choice", "code_function"}
    assert len({row["reason"] for row in rows}) >= 3
    for job in jobs:
        assert again[job.id] == first[job.id], f"score job {job.id} ({job.context['benchmark']}) changed"


def test_bad_rpt_cpus_stops_a_score_job_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_uri = f"file://{tmp_path / 'store'}"
    plan = mini_plan(store_uri, ["smoke_arith"], limit=2, n=1)
    store_generations(plan, answers(right_answer, {}))
    job = next(job for job in plan.jobs if job.kind == "score")
    monkeypatch.setenv(CPUS_ENV, "lots")
    with pytest.raises(SettingError, match=r"^RPT_CPUS='lots': accepted is a whole number of CPUs"):
        run_job(plan, job.id)
    assert not Store.from_uri(store_uri).is_done(job.key)
