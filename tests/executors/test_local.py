"""The local executor through the real CLI: failures block dependents, are reported, and lose nothing."""

from pathlib import Path

import pytest

from conftest import run_cli, write_study
from rpt_transfer.runner import load_and_resolve
from servers_mlflow import new_mlflow_db
from test_prepare import commit_generations, path_study, tagged_runs


def test_failed_job_blocks_its_dependents_and_keeps_the_rest(tmp_path: Path) -> None:
    store = tmp_path / "store"
    study = {
        "study": "broken",
        "kind": "observational",
        "store": str(store),
        "tracking_uri": "none",
        "models": {
            "base": {"path": "checkpoints/does-not-exist"},
            "rpt": {"path": "checkpoints/also-missing"},
        },
        "pairs": [{"name": "p", "rpt": "rpt", "base": "base", "domains": ["math"], "algorithm": "grpo"}],
        "benchmarks": ["smoke_arith"],
        "limit": 2,
    }
    keep = store / "generations" / "unrelated" / "MANIFEST.json"
    keep.parent.mkdir(parents=True)
    keep.write_text("{}")
    result = run_cli(
        "run", str(write_study(tmp_path / "s.yaml", study)), env={"RPT_CACHE": str(tmp_path / "c")}
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stdout
    assert "FAILED generate base × smoke_arith" in result.stderr
    assert "checkpoints/does-not-exist: no checkpoint there" in result.stderr
    assert "│ generate  │    0 │      0 │      2 │       0 │" in result.stdout
    assert "│ score     │    0 │      0 │      0 │       2 │" in result.stdout
    assert "some jobs failed" in result.stdout
    assert keep.read_text() == "{}"  # nothing already stored is touched
    assert not list(store.glob("scores/*/MANIFEST.json"))
    logs = list((store / "logs" / "broken").glob("generate-*.log"))
    assert len(logs) == 2 and "no checkpoint there" in logs[0].read_text()


def test_jobs_use_the_plans_store_and_mlflow_whatever_the_callers_environment(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """An unrelated RPT_STORE or MLFLOW_TRACKING_URI in the user's shell must not redirect a run's jobs."""
    store = tmp_path / "store"
    mlflow_db = new_mlflow_db(tmp_path_factory, store)
    spec = write_study(tmp_path / "s.yaml", path_study(str(store), tracking_uri=f"sqlite:///{mlflow_db}"))
    loaded = load_and_resolve(spec, check_store=True)
    score = commit_generations(loaded.store, loaded.plan(), "base")  # rpt's generate job fails: no weights
    decoy_store, decoy_mlflow = tmp_path / "elsewhere", tmp_path / "elsewhere.db"
    env = {"RPT_STORE": str(decoy_store), "MLFLOW_TRACKING_URI": f"sqlite:///{decoy_mlflow}"}
    result = run_cli("run", str(spec), env={**env, "RPT_CACHE": str(tmp_path / "c")})
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    # the failing job looked for rpt's weights in the spec's store, not in RPT_STORE
    assert f"{store.as_uri()}/checkpoints/rpt: no checkpoint there" in result.stderr
    assert (store / "scores" / score / "MANIFEST.json").is_file() and tagged_runs(mlflow_db, score) == 1
    assert not decoy_store.exists() and not decoy_mlflow.exists()
