"""The `leaderboard` MLflow run on a real `mlflow server`: its files and metrics, once, and no re-upload.

The files' modification times where the artifacts are stored show whether a rebuild uploaded anything.
"""

import json
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from test_leaderboard import CODE_SHA, store  # noqa: F401 - fixture

from rpt_transfer.analysis.leaderboard import build_leaderboard, log_leaderboard
from rpt_transfer.analysis.leaderboard_mlflow import ARTIFACT_PATH, DIGEST_TAG, EXPERIMENT
from rpt_transfer.analysis.leaderboard_render import FILES, JSON
from rpt_transfer.store import Store
from rpt_transfer.tracking import Tracker, experiment_name


def uploaded(tracker: Tracker, run_id: str, base: Path) -> dict[str, int]:
    """The run's leaderboard files on disk, with their modification times (ns).

    Proxied through the server (`mlflow-artifacts:/...`, the server's folder in this session's temporary
    tree), or in a folder of its own where the experiment was created with one (`file://...`: a tracker
    on a local store, e.g. the CLI test's, made the experiment first).
    """
    uri = urlsplit(tracker.get_run(run_id).info.artifact_uri)
    if uri.scheme == "file":
        folder = Path(unquote(uri.path))
    else:
        assert uri.scheme == "mlflow-artifacts", uri
        (root,) = {root.resolve() for root in base.glob("mlflow-server*/artifacts")}  # "...current" links too
        folder = root / uri.path.lstrip("/")
    return {path.name: path.stat().st_mtime_ns for path in (folder / ARTIFACT_PATH).iterdir()}


def leaderboard_runs(tracker: Tracker) -> list[str]:
    experiment = tracker.client.get_experiment_by_name(experiment_name(EXPERIMENT))
    runs = tracker.client.search_runs([experiment.experiment_id], "tags.run_type = 'leaderboard'")
    return [run.info.run_id for run in runs]


def test_the_run_holds_the_files_and_a_rebuild_uploads_nothing(
    store: Store,  # noqa: F811 - the fixture imported above
    mlflow_server: str,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    tracker = Tracker(mlflow_server, store)
    built = build_leaderboard(store, sizes={})
    run_id = log_leaderboard(tracker, store, built)
    run = tracker.get_run(run_id)
    assert run.info.run_name == "leaderboard" and run.info.status == "FINISHED"
    assert run.data.tags["run_type"] == "leaderboard" and run.data.tags[DIGEST_TAG] == built.digest
    listed = {info.path for info in tracker.client.list_artifacts(run_id, ARTIFACT_PATH)}
    assert listed == {f"{ARTIFACT_PATH}/{name}" for name in FILES}
    assert run.data.metrics["n_rows"] == 3
    assert run.data.metrics["gain_trained"] == pytest.approx(built.metrics["gain_trained"])
    base = tmp_path_factory.getbasetemp()
    first = uploaded(tracker, run_id, base)
    assert set(first) == set(FILES)
    runs = leaderboard_runs(tracker)
    assert run_id in runs

    again = build_leaderboard(store, sizes={})
    assert not again.created and log_leaderboard(tracker, store, again) == run_id
    assert uploaded(tracker, run_id, base) == first  # nothing uploaded again
    assert leaderboard_runs(tracker) == runs  # and no new run

    newer = build_leaderboard(store, sizes={f"org/rpt-code@{CODE_SHA}": 7_615_616_512})
    assert log_leaderboard(Tracker(mlflow_server, store), store, newer) == run_id  # found again, by its claim
    assert tracker.get_run(run_id).data.tags[DIGEST_TAG] == newer.digest
    path = tracker.client.download_artifacts(run_id, f"{ARTIFACT_PATH}/{JSON}", str(tmp_path))
    rows = json.loads(Path(path).read_text())["rows"]
    assert {row["pair"]: row["parameters"] for row in rows}["code-ppo"] == 7_615_616_512
