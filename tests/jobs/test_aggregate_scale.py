"""Issue 10 §8: the aggregate job's reading and MLflow sync at scale.

Memory must not grow with completions (the job never loads them), each score run's summary comes from
one pass over all rows with the numbers `summarise` gives each job's own rows, and a re-sync leaves runs
that are up to date alone instead of asking the server about every one.
"""

import importlib.util
import math

import pytest
from mlflow import MlflowClient

from conftest import REPO
from rpt_transfer.jobs.aggregate import read_scores
from rpt_transfer.jobs.rows import from_parquet
from rpt_transfer.jobs.score import summarise
from rpt_transfer.tracking import open_tracker
from rpt_transfer.tracking_sync import score_summaries, sync_study

CHARS = 20_000


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    spec = importlib.util.spec_from_file_location(
        "report_scale_builder", REPO / "benchmarks" / "report_scale.py"
    )
    assert spec is not None and spec.loader is not None
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)  # benchmarks/ is no package
    return builder.build_store(tmp_path_factory.mktemp("aggregate-scale"), scale=0.01, pairs=1, chars=CHARS)


def score_jobs(built):
    return [built.plan.job(dep) for dep in built.aggregate.deps]


def stored_rows(built, job) -> list[dict]:
    return [
        row
        for obj in built.store.manifest(job.key).objects
        for row in from_parquet(built.store.read_object(job.key, obj.name)).to_pylist()
    ]


def test_completions_are_never_loaded(built) -> None:
    frame = read_scores(built.plan, built.store, score_jobs(built))
    assert len(frame) == built.rows > 500
    assert "completion" not in frame.columns and "extracted_flexible" not in frame.columns
    assert frame.memory_usage(deep=True).sum() < len(frame) * CHARS / 20  # completions alone: len x CHARS
    job = score_jobs(built)[0]
    stored = stored_rows(built, job)
    assert len(stored[0]["completion"]) == CHARS
    mine = frame[(frame["model"] == job.context["model"]) & (frame["benchmark"] == job.context["benchmark"])]
    # `extracted` is read only for whether it is set
    assert mine["extracted"].notna().tolist() == [row["extracted"] is not None for row in stored]
    assert set(mine["extracted"].dropna()) <= {""}


def same(first: float, second: float) -> bool:
    return first == second or (math.isnan(first) and math.isnan(second))


def test_summaries_from_all_rows_are_summarise_of_each_job(built) -> None:
    summaries = score_summaries(built.plan, read_scores(built.plan, built.store, score_jobs(built)))
    assert set(summaries) == {job.id for job in score_jobs(built)}
    for job in score_jobs(built):
        expected = summarise(stored_rows(built, job))
        assert summaries[job.id].keys() == expected.keys()
        assert all(same(summaries[job.id][key], value) for key, value in expected.items()), job.context


def test_resync_leaves_current_runs_alone(built, mlflow_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    tracker = open_tracker(mlflow_server, built.store)
    scores = read_scores(built.plan, built.store, score_jobs(built))
    assert sync_study(tracker, built.plan, built.store, scores=scores).score == len(score_jobs(built))
    client = MlflowClient(mlflow_server)
    job = score_jobs(built)[0]
    run_id = tracker.claimed_run_id(built.plan.study, job.id)
    accuracy = client.get_run(run_id).data.metrics["accuracy"]
    client.log_metric(run_id, "accuracy", accuracy + 0.25)  # an edited run is brought back
    asked: list[str] = []
    get_run = tracker.client.get_run
    monkeypatch.setattr(tracker.client, "get_run", lambda run: asked.append(run) or get_run(run))
    assert sync_study(tracker, built.plan, built.store, scores=scores).score == len(score_jobs(built))
    assert set(asked) <= {run_id, tracker.study_run(built.plan.study)}  # no other run was asked about
    assert client.get_run(run_id).data.metrics["accuracy"] == accuracy
    summaries = score_summaries(built.plan, scores)
    for other in score_jobs(built):
        run = client.get_run(tracker.claimed_run_id(built.plan.study, other.id))
        assert run.data.metrics == pytest.approx(summaries[other.id], nan_ok=True)
        assert run.info.status == "FINISHED"
