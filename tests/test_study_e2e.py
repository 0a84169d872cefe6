"""The whole spine end to end through the real CLI: local executor, tiny models, store, MLflow."""

import io
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import CLI, REPO, run_cli, tiny_study, write_study
from rpt_transfer.store import Store
from store_checks import check_store, manifest_prefixes

pytestmark = pytest.mark.slow


def scores_of(store_uri: str) -> pd.DataFrame:
    """Every score row in a store, in a canonical order (without per-run columns)."""
    store = Store.from_uri(store_uri)
    frames = []
    for prefix in manifest_prefixes(store, "scores"):
        manifest = store.manifest(prefix)
        assert manifest is not None
        for info in manifest.objects:
            frames.append(pd.read_parquet(io.BytesIO(store.read_object(prefix, info.name))))
    frame = pd.concat(frames, ignore_index=True)
    return frame.sort_values(["job", "item_id", "sample_index"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def finished_study(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, Path, subprocess.CompletedProcess]:
    """One uninterrupted run of the mini study in a fresh local store."""
    tmp = tmp_path_factory.mktemp("e2e")
    store = tmp / "store"
    study = write_study(tmp / "mini.yaml", tiny_study(str(store)))
    result = run_cli("run", str(study), env={"RPT_CACHE": str(tmp / "cache")})
    assert result.returncode == 0, result.stderr[-3000:]
    return study, store, result


def test_first_run_writes_report_and_points_at_it(finished_study) -> None:
    _, store, result = finished_study
    reports = list((store / "reports" / "mini").glob("*/attempt-*/report.html"))
    assert len(reports) == 1
    assert f"report: {reports[0]}" in result.stdout
    (board,) = (store / "leaderboard").glob("*/attempt-*/leaderboard.html")  # rebuilt by the aggregate job
    assert f"leaderboard: {board} (every finished study in the store)" in result.stdout
    assert f"mlflow ui --backend-store-uri sqlite:///{store}/mlflow.db" in result.stdout
    accuracy = pd.read_csv(reports[0].parent / "accuracy.csv")
    assert sorted(accuracy["model"].unique()) == ["base", "rpt"]
    assert set(accuracy["n_samples"]) == {8}  # limit 4 × n 2


def test_second_run_executes_nothing(finished_study) -> None:
    study, _, _ = finished_study
    again = run_cli("run", str(study))
    assert again.returncode == 0, again.stderr[-3000:]
    assert "done " not in again.stderr  # no job line: every job was cached
    assert "│ generate  │    0 │      8 │" in again.stdout


def test_mlflow_has_one_run_per_model_and_benchmark(finished_study) -> None:
    import mlflow

    study, store, _ = finished_study
    run_cli("run", str(study))  # once more: still no duplicates
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{store}/mlflow.db")
    experiment = client.get_experiment_by_name("rpt-transfer/mini")
    runs = client.search_runs([experiment.experiment_id])
    results = [run for run in runs if run.data.tags.get("run_type") == "result"]
    parents = [run for run in runs if run.data.tags.get("run_type") == "study"]
    assert len(parents) == 1 and len(results) == 4
    assert len({run.data.tags["job_id"] for run in results}) == 4
    by_cell = {(r.data.tags["model"], r.data.tags["benchmark"]): r for r in results}
    rpt_arith = by_cell[("rpt", "smoke_arith")]
    assert rpt_arith.data.tags["role"] == "rpt" and rpt_arith.data.tags["seen"] == "seen"
    assert by_cell[("rpt", "smoke_facts")].data.tags["seen"] == "unseen"
    assert by_cell[("base", "smoke_facts")].data.tags["role"] == "base"
    assert rpt_arith.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
    assert rpt_arith.data.params["sampling.n"] == "2"
    assert rpt_arith.data.params["model_source"] == "pretrain job"
    assert len(rpt_arith.data.params["revision"]) == 16
    assert rpt_arith.data.metrics["n_samples"] == 8
    # how the samples were generated: each generate manifest's runtime, as tags (2 shards, one engine)
    tags = rpt_arith.data.tags
    assert tags["generation.engine.backend"] == "hf@1" and tags["generation.engine.device"].startswith("cpu")
    assert json.loads(tags["generation.sampling"])["temperature"] == 0.8
    generate = [g for g in store.glob("generations/*/MANIFEST.json")]
    runtime = json.loads(generate[0].read_text())["runtime"]
    assert runtime["engine.backend"] == "hf@1" and json.loads(runtime["sampling"])["n"] == 2
    artifacts = {a.path for a in client.list_artifacts(parents[0].info.run_id, "report")}
    assert "report/report.html" in artifacts


def test_killed_run_resumes_to_identical_results(finished_study, tmp_path: Path) -> None:
    """SIGKILL the executor midway: no half-written job, and a re-run finishes with the same rows.

    No half-written job: every job that has a manifest reads back verified (each listed object present,
    with its size and sha256); a job without one is simply not done. `check_store` raises on the first
    broken job (tests/store/test_concurrent_writers.py checks that it does).
    """
    _, reference_store, _ = finished_study
    store = tmp_path / "store"
    study = write_study(tmp_path / "mini.yaml", tiny_study(str(store)))
    env = {**os.environ, "RPT_CACHE": str(tmp_path / "cache")}
    process = subprocess.Popen(
        [*CLI, "run", str(study)], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 300
    while not list(store.glob("generations/*/MANIFEST.json")):
        assert process.poll() is None and time.monotonic() < deadline, "no generate job finished"
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    time.sleep(2)  # jobs get SIGTERM from the kernel when their parent dies
    assert not list(store.glob("reports/*/*/MANIFEST.json"))
    assert check_store(Store.from_uri(str(store))) >= 1  # the generate job waited for, and any other done

    resumed = run_cli("run", str(study), env={"RPT_CACHE": str(tmp_path / "cache")})
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "cached" in resumed.stdout
    committed = check_store(Store.from_uri(str(store)))
    gc = run_cli("store", "gc", str(store), "--min-age", "0")  # what the killed attempts left goes
    assert gc.returncode == 0, gc.stderr
    assert check_store(Store.from_uri(str(store))) == committed  # and nothing any manifest lists
    columns = ["job", "item_id", "sample_index", "completion", "correct", "reason"]
    pd.testing.assert_frame_equal(scores_of(str(store))[columns], scores_of(str(reference_store))[columns])


def test_s3_store_and_mlflow_server(tmp_path: Path, s3_store_uri: str, mlflow_server: str) -> None:
    """The same study on S3 (a real moto server) with a real MLflow server; re-running duplicates nothing."""
    import mlflow

    study = write_study(
        tmp_path / "mini.yaml",
        tiny_study(s3_store_uri, study="mini-s3", tracking_uri=mlflow_server, resources={"shards": 1}),
    )
    env = {"RPT_CACHE": str(tmp_path / "cache")}
    first = run_cli("run", str(study), env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    assert f"report: {s3_store_uri}/reports/mini-s3/" in first.stdout
    second = run_cli("run", str(study), env=env)
    assert second.returncode == 0 and "done " not in second.stderr
    store = Store.from_uri(s3_store_uri)
    assert store.is_done("studies/mini-s3") is False  # spec and plan are plain objects, not jobs
    assert len([k for k in store.list_keys("scores/") if k.endswith("MANIFEST.json")]) == 4
    client = mlflow.MlflowClient(tracking_uri=mlflow_server)
    experiment = client.get_experiment_by_name("rpt-transfer/mini-s3")
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(run.data.tags["run_type"] for run in runs) == ["result"] * 4 + ["study"]


def test_one_shard_and_two_shards_give_the_same_rows(finished_study, tmp_path: Path) -> None:
    """Sharding changes which job makes a sample, never the sample (per-item seeds)."""
    _, store, _ = finished_study
    study = write_study(
        tmp_path / "one-shard.yaml", tiny_study(str(store), study="mini-one-shard", resources={"shards": 1})
    )
    result = run_cli("run", str(study))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "│ pretrain  │    0 │      2 │" in result.stdout  # the models are shared with the first study
    rows = scores_of(str(store))
    columns = ["model_ref", "benchmark", "item_id", "sample_index", "completion", "correct"]
    by_generation_count = {
        count: frame[columns].sort_values(columns[:4]).reset_index(drop=True)
        for count, frame in rows.groupby(rows["job"].map(rows.groupby("job")["generation_job"].nunique()))
    }
    assert sorted(by_generation_count) == [1, 2]
    pd.testing.assert_frame_equal(by_generation_count[1], by_generation_count[2])
