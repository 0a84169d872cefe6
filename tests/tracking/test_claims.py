"""One run per job through claims in the store, against the real `mlflow server`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from mlflow import MlflowClient

from rpt_transfer.settings import default_tracking_uri
from rpt_transfer.store import FileStore
from rpt_transfer.tracking import Tracker
from rpt_transfer.tracking_claims import CLAIM_TAG, PENDING
from rpt_transfer.tracking_sync import remove_leftovers

WRITERS, JOBS = 3, 8

RACER = """
import json, os, sys, time
from pathlib import Path
from rpt_transfer.store import FileStore
from rpt_transfer.tracking import Tracker
uri, store, study, go, jobs = sys.argv[1:]
tracker = Tracker(uri, FileStore(store))
while not os.path.exists(go):  # start together: every writer finds no run, and all try to make one
    time.sleep(0.005)
found = {"study": tracker.study_run(study)}
for i in range(int(jobs)):
    run = tracker.job_run(study, f"job-{i}", run_name=f"job {i}", run_type="result", tags={"i": str(i)})
    found[f"job-{i}"] = run.info.run_id
print(json.dumps(found))
"""


@pytest.fixture
def study() -> str:
    return f"claims-{uuid.uuid4().hex[:10]}"


def _active(client: MlflowClient, study: str) -> list:
    experiment = client.get_experiment_by_name(f"rpt-transfer/{study}")
    return client.search_runs([experiment.experiment_id], max_results=1000)


def test_racing_writers_on_a_server_make_one_run_per_job(
    mlflow_server: str, tmp_path: Path, study: str
) -> None:
    go = tmp_path / "go"
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    args = [mlflow_server, str(tmp_path / "store"), study, str(go), str(JOBS)]
    writers = [
        subprocess.Popen([sys.executable, "-c", RACER, *args], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(WRITERS)
    ]
    time.sleep(1.0)
    go.touch()
    outputs = [writer.communicate(timeout=300)[0] for writer in writers]

    assert [writer.returncode for writer in writers] == [0] * WRITERS
    answers = [json.loads(output) for output in outputs]
    assert all(answer == answers[0] for answer in answers), answers  # every writer got the same runs
    runs = _active(MlflowClient(mlflow_server), study)
    assert sorted(run.info.run_id for run in runs) == sorted(answers[0].values())  # and nothing else
    assert all(run.data.tags[CLAIM_TAG] != PENDING for run in runs)


def test_a_deleted_run_is_replaced_by_exactly_one_new_run(
    mlflow_server: str, tmp_path: Path, study: str
) -> None:
    tracker = Tracker(mlflow_server, FileStore(tmp_path / "store"))
    first = tracker.job_run(study, "job-a", run_name="a", run_type="result", tags={})
    MlflowClient(mlflow_server).delete_run(first.info.run_id)

    second = tracker.job_run(study, "job-a", run_name="a", run_type="result", tags={})

    assert second.info.run_id != first.info.run_id
    assert tracker.job_run(study, "job-a", run_name="a", run_type="result", tags={}).info.run_id == (
        second.info.run_id
    )
    assert [run.info.run_id for run in _active(MlflowClient(mlflow_server), study)] == [second.info.run_id]
    claims = sorted(p.name for p in (tmp_path / "store").glob(f"mlflow-claims/{study}/*/job-a/*.json"))
    assert claims == ["000000.json", "000001.json"]


def test_runs_made_before_claims_are_adopted_and_duplicates_removed(
    mlflow_server: str, tmp_path: Path, study: str
) -> None:
    tracker = Tracker(mlflow_server, FileStore(tmp_path / "store"))
    client = MlflowClient(mlflow_server)
    experiment_id = tracker.experiment_id(study)
    legacy = {"job_id": "job-a", "run_type": "result", "study": study}
    older = client.create_run(experiment_id, start_time=1_000, tags=legacy, run_name="a").info.run_id
    client.create_run(experiment_id, start_time=2_000, tags=legacy, run_name="a")
    old_pending = client.create_run(experiment_id, start_time=3_000, tags={CLAIM_TAG: PENDING})
    fresh_pending = client.create_run(experiment_id, tags={CLAIM_TAG: PENDING}).info.run_id

    adopted = tracker.job_run(study, "job-a", run_name="a", run_type="result", tags={})
    removed = remove_leftovers(tracker, study, {"job-a"})

    assert adopted.info.run_id == older
    assert removed == 2  # the younger duplicate and the pending run of a writer that died long ago
    remaining = {run.info.run_id for run in _active(client, study)}
    assert remaining == {older, fresh_pending}  # a pending run this young may still be claimed
    assert old_pending.info.run_id not in remaining


def test_two_servers_sharing_one_store_keep_their_own_runs(
    mlflow_server: str, tmp_path: Path, study: str
) -> None:
    store = FileStore(tmp_path / "store")
    server = Tracker(mlflow_server, store)
    local = Tracker(default_tracking_uri(tmp_path / "local"), store)

    on_server = server.job_run(study, "job-a", run_name="a", run_type="result", tags={}).info.run_id
    on_local = local.job_run(study, "job-a", run_name="a", run_type="result", tags={}).info.run_id

    assert server.job_run(study, "job-a", run_name="a", run_type="result", tags={}).info.run_id == on_server
    assert local.job_run(study, "job-a", run_name="a", run_type="result", tags={}).info.run_id == on_local
    assert len(list(store.root.glob(f"mlflow-claims/{study}/*/job-a/*.json"))) == 2  # one per server


def test_history_points_are_added_once(mlflow_server: str, tmp_path: Path, study: str) -> None:
    tracker = Tracker(mlflow_server, FileStore(tmp_path / "store"))
    run = tracker.job_run(study, "job-t", run_name="t", run_type="train", tags={})
    steps = [(1, {"loss": 1.0, "reward": 0.1}), (2, {"loss": 0.5, "reward": 0.2})]

    assert tracker.log_history(run, steps) == 4
    assert tracker.log_history(tracker.get_run(run.info.run_id), [*steps, (3, {"loss": 0.25})]) == 1

    history = MlflowClient(mlflow_server).get_metric_history(run.info.run_id, "loss")
    assert sorted((point.step, point.value) for point in history) == [(1, 1.0), (2, 0.5), (3, 0.25)]
