"""`rpt-transfer track sync`: every MLflow run of a study rebuilt from the store, into a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from conftest import REPO, run_cli, write_study
from rpt_transfer.jobs.train_metrics import METRICS_FILE, from_jsonl
from rpt_transfer.plan_store import current_plan
from rpt_transfer.store import Store
from rpt_transfer.tracking import open_tracker
from rpt_transfer.tracking_claims import CLAIM_TAG, PENDING
from rpt_transfer.tracking_models import MODEL_TAG
from rpt_transfer.tracking_runs import train_params
from rpt_transfer.tracking_sync import score_metrics, sync_study

pytestmark = pytest.mark.slow
ROUNDS = 5

SYNCER = """
import sys
from pathlib import Path
from rpt_transfer.tracking_sync import sync_study_file
spec, uri = sys.argv[1:]
for _ in sys.stdin:  # one sync per line, so rounds start together without paying for imports again
    sync_study_file(Path(spec), uri)
    print("synced", flush=True)
"""


def _study(store: Path, name: str) -> dict:
    """An interventional study: a tiny base, one 2-step GRPO run, both evaluated; no MLflow while it runs."""
    return {
        "study": name,
        "kind": "interventional",
        "store": str(store),
        "tracking_uri": "none",
        "models": {"base": {"tiny": {"corpus": {"smoke_arith": 64}, "steps": 4, "seed": 0}}},
        "base": "base",
        "training": {
            "learning_rate": 0.001,
            "steps": 2,
            "max_new_tokens": 8,
            "rollouts_per_prompt": 2,
            "prompts_per_step": 2,
            "checkpoint_every": 1,
        },
        "train": [{"name": "m", "domain": "math", "data": {"benchmark": "smoke_arith", "examples": 8}}],
        "benchmarks": ["smoke_arith"],
        "limit": 2,
        "sampling": {"max_tokens": 6, "n": 1},
    }


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Store]:
    """A study run to the end without MLflow, so its runs exist only in the store."""
    tmp = tmp_path_factory.mktemp("sync")
    spec = write_study(tmp / "study.yaml", _study(tmp / "store", f"sync-{uuid.uuid4().hex[:8]}"))
    result = run_cli("run", str(spec), env={"RPT_CACHE": str(tmp / "cache")})
    assert result.returncode == 0, result.stderr[-3000:]
    return spec, Store.from_uri(str(tmp / "store"))


def _runs(client: MlflowClient, study: str) -> list:
    experiment = client.get_experiment_by_name(f"rpt-transfer/{study}")
    return client.search_runs([experiment.experiment_id], max_results=1000)


def _histories(client: MlflowClient, run) -> dict[str, list[tuple[int, float]]]:
    return {
        key: sorted((p.step, p.value) for p in client.get_metric_history(run.info.run_id, key))
        for key in run.data.metrics
    }


def test_sync_rebuilds_every_run_from_the_store_idempotently(finished, mlflow_server: str) -> None:
    spec, store = finished
    plan = current_plan(store, _study_name(spec))
    client = MlflowClient(mlflow_server)

    first = run_cli("track", "sync", str(spec), "--tracking-uri", mlflow_server)

    assert first.returncode == 0, first.stderr[-3000:]
    assert "1 train and 2 score runs" in first.stdout and "report synced" in first.stdout
    runs = _runs(client, plan.study)
    by_type = Counter(run.data.tags["run_type"] for run in runs)
    assert by_type == {"study": 1, "train": 1, "result": 2}
    (parent,) = [run for run in runs if run.data.tags["run_type"] == "study"]
    aggregate = next(job for job in plan.jobs if job.kind == "aggregate")
    assert parent.data.metrics == json.loads(store.read_object(aggregate.key, "metrics.json"))
    artifacts = {info.path for info in client.list_artifacts(parent.info.run_id, "report")}
    assert {"report/report.html", "report/metrics.json"} <= artifacts

    (train_job,) = [job for job in plan.jobs if job.kind == "train"]
    (train,) = [run for run in runs if run.data.tags["run_type"] == "train"]
    assert train.data.params == {k: str(v) for k, v in train_params(plan, train_job).items()}
    assert train.data.tags["model"] == "m" and "m" not in train.data.params.values()
    assert train.data.tags["mlflow.parentRunId"] == parent.info.run_id and train.info.status == "FINISHED"
    steps = from_jsonl(store.read_object(train_job.key, METRICS_FILE))
    assert [row.step for row in steps] == [1, 2]
    histories = _histories(client, train)
    for key in steps[0].metrics:
        assert histories[key] == [(row.step, row.metrics[key]) for row in steps]  # each step once
    assert "train_runtime" in histories and "reward_samples" in histories

    for run in (run for run in runs if run.data.tags["run_type"] == "result"):
        job = plan.job(run.data.tags["job_id"])
        assert run.data.metrics == pytest.approx(score_metrics(store, job))

    second = run_cli("track", "sync", str(spec), "--tracking-uri", mlflow_server)

    assert second.returncode == 0, second.stderr[-3000:]
    assert "0 metric points added" in second.stdout
    again = _runs(client, plan.study)
    assert sorted(run.info.run_id for run in again) == sorted(run.info.run_id for run in runs)
    for old in runs:
        new = next(run for run in again if run.info.run_id == old.info.run_id)
        assert _histories(client, new) == _histories(client, old)  # no duplicate points


def test_trained_and_pretrained_models_are_logged_models_tied_to_their_jobs(
    finished, mlflow_server: str
) -> None:
    """The trained checkpoint's logged model names its train run, which names the model as its output."""
    spec, store = finished
    plan = current_plan(store, _study_name(spec))
    sync_study(open_tracker(mlflow_server, store), plan, store)
    client = MlflowClient(mlflow_server)
    experiment_id = client.get_experiment_by_name(f"rpt-transfer/{plan.study}").experiment_id
    runs = {run.data.tags["job_id"]: run for run in _runs(client, plan.study) if "job_id" in run.data.tags}
    (train,) = [job for job in plan.jobs if job.kind == "train"]
    (pretrain,) = [job for job in plan.jobs if job.kind == "pretrain"]

    def model(job_id: str):
        (found,) = client.search_logged_models([experiment_id], f"tags.`{MODEL_TAG}` = 'job:{job_id}'")
        return found

    trained, base = model(train.id), model(pretrain.id)
    assert trained.model_type == "trained" and base.model_type == "pretrained"
    assert trained.params == {
        "model_source": "train job",
        "revision": train.id,
        "base_model_source": "pretrain job",
        "base_revision": pretrain.id,
    }
    assert trained.tags["model"] == "m" and trained.tags["checkpoint_job"] == train.id
    assert trained.source_run_id == runs[train.id].info.run_id and not base.source_run_id
    outputs = client.get_run(runs[train.id].info.run_id).outputs.model_outputs
    assert [(out.model_id, out.step) for out in outputs] == [(trained.model_id, 2)]
    for job in (job for job in plan.jobs if job.kind == "score"):
        run = client.get_run(runs[job.id].info.run_id)
        expected = trained if job.context["model"] == "m" else base
        assert [given.model_id for given in run.inputs.model_inputs] == [expected.model_id]
        (dataset,) = run.inputs.dataset_inputs  # smoke_arith: records rpt-transfer generates from a seed
        assert dataset.dataset.source_type == "code"
        assert dataset.dataset.digest == job.inputs["benchmark"]["data"]


def test_two_syncs_at_once_leave_one_run_per_job(finished, mlflow_server: str) -> None:
    """Rounds of two concurrent syncs, each into a new experiment (the one before is renamed away)."""
    spec, _store = finished
    study = _study_name(spec)
    client = MlflowClient(mlflow_server)
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    syncers = [
        subprocess.Popen(
            [sys.executable, "-c", SYNCER, str(spec), mlflow_server],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for round_ in range(ROUNDS):
            _rename_away(client, study, f"before-round-{round_}")  # each round starts on an empty experiment
            for syncer in syncers:
                syncer.stdin.write("go\n")
                syncer.stdin.flush()
            for syncer in syncers:
                assert syncer.stdout.readline() == "synced\n", syncer.communicate(timeout=60)[1][-3000:]
            runs = _runs(client, study)
            names = Counter(run.data.tags.get("job_id", run.data.tags.get("run_type")) for run in runs)
            assert len(names) == 4 and set(names.values()) == {1}, (round_, names)
            assert all(run.data.tags[CLAIM_TAG] != PENDING for run in runs)
            for run in runs:  # and no metric point twice (both syncs log the same values at once)
                for key, points in _histories(client, run).items():
                    assert len({step for step, _ in points}) == len(points), (round_, run.info.run_name, key)
    finally:
        for syncer in syncers:
            syncer.stdin.close()
            syncer.wait(timeout=60)


def test_sync_without_tracking_names_what_to_give(finished) -> None:
    spec, _ = finished
    result = run_cli("track", "sync", str(spec))

    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "tracking is off" in line and "--tracking-uri" in line


def _rename_away(client: MlflowClient, study: str, suffix: str) -> None:
    """Move the study's experiment out of the way, so the next sync creates a new one."""
    experiment = client.get_experiment_by_name(f"rpt-transfer/{study}")
    if experiment is not None:
        client.rename_experiment(experiment.experiment_id, f"rpt-transfer/{study}-{suffix}")


def _study_name(spec: Path) -> str:
    return yaml.safe_load(spec.read_text())["study"]
