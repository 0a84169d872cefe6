"""Renaming a model is free: a rerun reuses every generate and score job and succeeds (real MLflow server)."""

import re
import uuid
from pathlib import Path

import pytest
from mlflow import MlflowClient

from conftest import run_cli, tiny_study, write_study

pytestmark = pytest.mark.slow


def _done_count(summary: str, kind: str) -> int:
    """The `done` column of one kind's row in the run summary table."""
    match = re.search(rf"│ {kind}\s+│\s+(\d+) │\s+(\d+) │", summary)
    assert match, summary
    return int(match.group(1))


def test_rename_then_rerun_reuses_every_job(tmp_path: Path, mlflow_server: str) -> None:
    name = f"rename-{uuid.uuid4().hex[:8]}"
    store = str(tmp_path / "store")
    spec = tiny_study(
        store,
        study=name,
        tracking_uri=mlflow_server,
        limit=2,
        benchmarks=["smoke_arith"],
        resources={"shards": 1},
    )
    env = {"RPT_CACHE": str(tmp_path / "cache")}
    first = run_cli("run", str(write_study(tmp_path / "a.yaml", spec)), env=env)
    assert first.returncode == 0, first.stderr[-3000:]

    renamed = {**spec, "models": {"base": spec["models"]["base"], "rpt-renamed": spec["models"]["rpt"]}}
    renamed["pairs"] = [{**spec["pairs"][0], "rpt": "rpt-renamed"}]
    second = run_cli("run", str(write_study(tmp_path / "b.yaml", renamed)), env=env)

    assert second.returncode == 0, second.stderr[-3000:]
    for kind in ("pretrain", "generate", "score"):
        assert _done_count(second.stdout, kind) == 0, second.stdout
    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name(f"rpt-transfer/{name}")
    results = client.search_runs([experiment.experiment_id], "tags.run_type = 'result'")
    assert len(results) == 2 and len({run.data.tags["job_id"] for run in results}) == 2
    assert sorted({run.data.tags["model"] for run in results}) == ["base", "rpt-renamed"]
    assert sorted({run.info.run_name.split(" / ")[0] for run in results}) == ["base", "rpt-renamed"]
    for run in results:  # names are tags; params hold only what the job's inputs determine
        assert "model" not in run.data.params
        assert "rpt" not in run.data.params.values() and "rpt-renamed" not in run.data.params.values()
