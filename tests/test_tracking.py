from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from mlflow import MlflowClient

from rpt_transfer import tracking
from rpt_transfer.errors import RptError, TrackingError
from rpt_transfer.settings import default_artifact_root, default_tracking_uri
from rpt_transfer.store import FileStore
from rpt_transfer.tracking import Tracker, experiment_name
from rpt_transfer.tracking_sync import log_report
from servers_mlflow import free_port, new_mlflow_db

RESULT = {
    "run_name": "tiny-model x gsm8k",
    "params": {"model": "tiny-model", "benchmark": "gsm8k", "samples": 4},
    "metrics": {"accuracy": 0.25, "n_items": 8.0},
    "tags": {"benchmark": "gsm8k", "eval_domain": "math"},
}


@pytest.fixture
def study() -> str:
    """A fresh study name, so tests sharing the server never see each other's runs."""
    return f"test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def tracker(mlflow_server: str, tmp_path: Path) -> Tracker:
    return Tracker(mlflow_server, FileStore(tmp_path / "claims-store"))


def log_result(
    tracker: Tracker,
    *,
    study: str,
    job_id: str,
    run_name: str,
    params: dict,
    metrics: dict,
    tags: dict,
    parent_run_id: str | None = None,
) -> str:
    """What a score job's sync does with the tracker: its run, params, metrics, FINISHED."""
    run = tracker.job_run(
        study, job_id, run_name=run_name, run_type="result", tags=tags, parent_run_id=parent_run_id
    )
    tracker.log_params(run, job_id, params)
    tracker.log_metrics(run, metrics)
    tracker.set_status(run, "FINISHED")
    return run.info.run_id


def _write_report(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def _artifact_files(client: MlflowClient, run_id: str, path: str) -> list[str]:
    files = []
    for info in client.list_artifacts(run_id, path):
        files += _artifact_files(client, run_id, info.path) if info.is_dir else [info.path]
    return sorted(files)


def test_experiment_and_study_run_are_created_once(tracker: Tracker, study: str) -> None:
    experiment_id = tracker.experiment_id(study)
    run_id = tracker.study_run(study, tags={"git_sha": "abc"})

    assert tracker.experiment_id(study) == experiment_id
    assert tracker.study_run(study) == run_id
    runs = tracker.find_runs(study)
    assert [run.info.run_id for run in runs] == [run_id]
    assert runs[0].info.run_name == study
    assert {"run_type": "study", "study": study, "git_sha": "abc"}.items() <= runs[0].data.tags.items()
    assert MlflowClient(tracker.uri).get_experiment(experiment_id).name == experiment_name(study)


def test_deleted_experiment_is_restored(tracker: Tracker, study: str) -> None:
    experiment_id = tracker.experiment_id(study)
    client = MlflowClient(tracker.uri)
    client.delete_experiment(experiment_id)

    assert tracker.experiment_id(study) == experiment_id
    assert client.get_experiment(experiment_id).lifecycle_stage == "active"


def test_log_result_is_idempotent_and_nested(tracker: Tracker, study: str) -> None:
    parent = tracker.study_run(study)
    first = log_result(tracker, study=study, job_id="job-a", parent_run_id=parent, **RESULT)
    second = log_result(tracker, study=study, job_id="job-a", parent_run_id=parent, **RESULT)

    assert first == second
    results = tracker.find_runs(study, "tags.run_type = 'result'")
    assert [run.info.run_id for run in results] == [first]
    run = results[0]
    assert run.info.status == "FINISHED"
    assert run.info.run_name == RESULT["run_name"]
    assert run.data.params == {"model": "tiny-model", "benchmark": "gsm8k", "samples": "4"}
    assert run.data.metrics == RESULT["metrics"]
    expected_tags = {**RESULT["tags"], "job_id": "job-a", "study": study, "run_type": "result"}
    assert expected_tags.items() <= run.data.tags.items()
    assert run.data.tags["mlflow.parentRunId"] == parent
    assert len(MlflowClient(tracker.uri).get_metric_history(first, "accuracy")) == 1


def test_different_job_ids_get_different_runs(tracker: Tracker, study: str) -> None:
    a = log_result(tracker, study=study, job_id="job-a", **RESULT)
    b = log_result(tracker, study=study, job_id="job-b", **RESULT)

    assert a != b
    assert {run.info.run_id for run in tracker.find_runs(study)} == {a, b}
    assert [run.info.run_id for run in tracker.find_runs(study, "tags.job_id = 'job-b'")] == [b]


def test_a_param_that_differs_from_the_run_names_the_real_causes(tracker: Tracker, study: str) -> None:
    log_result(tracker, study=study, job_id="job-a", **RESULT)
    changed = {**RESULT, "params": {**RESULT["params"], "samples": 8}}

    with pytest.raises(TrackingError, match=r"job job-a .*samples: '4' != '8'") as caught:
        log_result(tracker, study=study, job_id="job-a", **changed)
    message = str(caught.value)
    assert "edited, or logged by another rpt-transfer version" in message
    assert "track sync" in message and "share" not in message and "\n" not in message


def test_find_runs_pages_through_all_runs(
    tracker: Tracker, study: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tracking, "_PAGE_SIZE", 2)
    ids = {log_result(tracker, study=study, job_id=f"job-{i}", **RESULT) for i in range(3)}

    assert {run.info.run_id for run in tracker.find_runs(study)} == ids
    assert tracker.find_runs(f"{study}-never-created") == []


def test_log_report_replaces_earlier_report(tracker: Tracker, study: str, tmp_path: Path) -> None:
    run_id = tracker.study_run(study)
    old = _write_report(
        tmp_path / "old", {"report.md": "# old", "figures/heatmap.png": "png", "gone.csv": "a"}
    )
    new = _write_report(tmp_path / "new", {"report.md": "# new", "figures/heatmap.png": "png2"})
    client = MlflowClient(tracker.uri)

    log_report(tracker, run_id, old, {"transfer_gap": 0.1})
    log_report(tracker, run_id, old, {"transfer_gap": 0.1})
    assert _artifact_files(client, run_id, "report") == [
        "report/figures/heatmap.png",
        "report/gone.csv",
        "report/report.md",
    ]
    assert len(client.get_metric_history(run_id, "transfer_gap")) == 1

    log_report(tracker, run_id, new, {"transfer_gap": 0.2})
    assert _artifact_files(client, run_id, "report") == ["report/figures/heatmap.png", "report/report.md"]
    downloaded = client.download_artifacts(run_id, "report/report.md", str(tmp_path))
    assert Path(downloaded).read_text() == "# new"
    assert client.get_run(run_id).data.metrics == {"transfer_gap": 0.2}


def test_unreachable_server_fails_fast_with_one_line(tmp_path: Path) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()

    with pytest.raises(RptError, match="MLFLOW_TRACKING_URI") as caught:
        Tracker(uri, FileStore(tmp_path))

    assert time.monotonic() - started < 10
    assert uri in str(caught.value)
    assert "\n" not in str(caught.value)


def test_sqlite_defaults_keep_everything_under_the_store(
    tmp_path: Path, study: str, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    store, cwd = tmp_path / "store", tmp_path / "cwd"
    new_mlflow_db(tmp_path_factory, store)
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    tracker = Tracker(default_tracking_uri(store), FileStore(store), default_artifact_root(store))
    parent = tracker.study_run(study)
    run_id = log_result(tracker, study=study, job_id="job-a", parent_run_id=parent, **RESULT)
    log_report(tracker, parent, _write_report(tmp_path / "report", {"report.md": "# r"}), {"gap": 0.0})

    assert tracker.uri == f"sqlite:///{store.resolve()}/mlflow.db"
    assert log_result(tracker, study=study, job_id="job-a", parent_run_id=parent, **RESULT) == run_id
    assert len(tracker.find_runs(study)) == 2
    assert list(store.glob(f"mlflow-artifacts/{study}/{parent}/artifacts/report/report.md"))
    assert list(cwd.iterdir()) == []


CONCURRENT_JOB = """
import sys
from rpt_transfer.store import FileStore
from rpt_transfer.tracking import Tracker
uri, store, study, prefix = sys.argv[1:]
tracker = Tracker(uri, FileStore(store))
parent = tracker.study_run(study)
for i in range(5):
    run = tracker.job_run(study, f"{prefix}-{i}", run_name=prefix, run_type="result", tags={},
                          parent_run_id=parent)
    tracker.log_params(run, run.data.tags["job_id"], {"i": i})
    tracker.log_metrics(run, {"accuracy": i / 10})
"""


def test_two_processes_log_into_one_new_sqlite_file(tmp_path: Path, study: str) -> None:
    # Harder than the executor's case: it opens the database once before starting jobs, so the
    # schema exists; here both processes race to create it and the study run too.
    uri = default_tracking_uri(tmp_path)
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", CONCURRENT_JOB, uri, str(tmp_path / "store"), study, prefix],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for prefix in ("a", "b")
    ]
    errors = [worker.communicate(timeout=120)[1] for worker in workers]

    assert [worker.returncode for worker in workers] == [0, 0], errors
    tracker = Tracker(uri, FileStore(tmp_path / "store"))
    results = tracker.find_runs(study, "tags.run_type = 'result'")
    assert sorted(run.data.tags["job_id"] for run in results) == sorted(
        f"{prefix}-{i}" for prefix in "ab" for i in range(5)
    )
    [parent] = tracker.find_runs(study, "tags.run_type = 'study'")
    assert {run.data.tags["mlflow.parentRunId"] for run in results} == {parent.info.run_id}


def test_importing_the_package_does_not_import_mlflow() -> None:
    code = "import sys, rpt_transfer; sys.exit('mlflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
