"""`rpt-transfer leaderboard` as a user runs it: where the files are, and one line for each bad input."""

from pathlib import Path

import pytest
from test_leaderboard import store  # noqa: F401 - fixture

from conftest import run_cli
from rpt_transfer.analysis.leaderboard_render import FILES, HTML
from rpt_transfer.store import Store
from test_cli import assert_one_line_error


@pytest.mark.parametrize(
    ("where", "fragments"),
    [
        ("empty", ("no finished study in file://", "run a study first")),
        ("missing", ("store folder", "does not exist")),
        ("ftp://host/store", ("unsupported store URI 'ftp://host/store'", "expected file:///abs/path")),
    ],
)
def test_bad_stores_are_one_line(tmp_path: Path, where: str, fragments: tuple[str, ...]) -> None:
    (tmp_path / "empty").mkdir()
    uri = where if "://" in where else str(tmp_path / where)
    result = run_cli("leaderboard", "--store", uri, "--tracking-uri", "none")
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "empty" / "leaderboard").exists()  # nothing half-written


def test_prints_where_the_files_are_and_copies_them(
    store: Store,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
    mlflow_server: str,
) -> None:
    out = tmp_path / "out"
    first = run_cli("leaderboard", "--store", store.uri, "--out", str(out), "--tracking-uri", mlflow_server)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("leaderboard: 3 rows (built); file://")
    assert f"  {HTML}: {out / HTML}" in first.stdout
    assert (
        "MLflow: http://127.0.0.1:" in first.stdout and "experiment rpt-transfer/leaderboard" in first.stdout
    )
    assert sorted(path.name for path in out.iterdir()) == sorted(FILES)
    assert "note: reports/old/" in first.stderr  # the report from before pairs.json
    again = run_cli("leaderboard", "--store", store.uri, "--tracking-uri", "none")
    assert again.returncode == 0, again.stderr
    assert "3 rows (unchanged, built before from the same reports)" in again.stdout
    assert f"{HTML}: {store.local_path()}/leaderboard/" in again.stdout and "MLflow" not in again.stdout
