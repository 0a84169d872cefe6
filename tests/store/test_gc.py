"""`rpt-transfer store gc`: unlisted objects older than the minimum age go; listed and young ones stay.

Ages are made testable without sleeping by moving `now` instead of the clock.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from conftest import run_cli
from rpt_transfer.errors import RptError
from rpt_transfer.manifest import MANIFEST_NAME, Manifest
from rpt_transfer.store import FileStore, Store
from rpt_transfer.store.gc import collect_garbage, format_duration, parse_duration
from servers_s3 import s3_server, s3_store_uri  # noqa: F401
from store_backends import any_store, format_1_manifest  # noqa: F401
from store_checks import check_store

DONE = "generations/done0000000000000"
KILLED = "scores/killed00000000000000"
DAY = timedelta(hours=24)
LATER = timedelta(hours=25)


def _layout(store: Store) -> dict[str, list[str]]:
    """A committed job with a losing attempt beside it, a job whose only attempt was killed, and bystanders."""
    loser = store.begin(DONE, job_id="d", kind="generate", inputs={})
    loser.put_bytes("part-00000.parquet", b"the loser's rows")
    with store.begin(DONE, job_id="d", kind="generate", inputs={}) as winner:
        winner.put_bytes("part-00000.parquet", b"rows")
        winner.put_bytes("model/config.json", b"{}")
    killed = store.begin(KILLED, job_id="k", kind="score", inputs={})
    killed.put_bytes("part-00000.parquet", b"half")
    store.write_bytes(f"{DONE}/part-00000.parquet", b"left by a format 1 writer before the commit")
    bystanders = ["reports/mini/rendered/report.html", "studies/mini/spec.yaml", "mlflow-claims/mini/a.json"]
    for key in bystanders:
        store.write_bytes(key, b"not a job's object")
    return {
        "kept": [f"{DONE}/{MANIFEST_NAME}", *store.list_keys(winner.folder), *bystanders],
        "removed": [
            *store.list_keys(loser.folder),
            *store.list_keys(killed.folder),
            f"{DONE}/part-00000.parquet",
        ],
    }


def _all_keys(store: Store) -> list[str]:
    return store.list_keys("")


def test_gc_removes_only_old_unlisted_objects_and_a_dry_run_removes_nothing(store: Store) -> None:
    expected = _layout(store)
    everything = _all_keys(store)
    assert sorted(expected["kept"] + expected["removed"]) == everything

    young = collect_garbage(store, min_age=DAY)  # everything was written just now
    assert young.removed == [] and young.young == 3 and _all_keys(store) == everything

    dry = collect_garbage(store, min_age=DAY, now=datetime.now(UTC) + LATER, dry_run=True)
    assert _all_keys(store) == everything
    assert sum(r.objects for r in dry.removed) == 3 and dry.lines()[-1].startswith(
        f"store gc {store.uri}: would"
    )

    done = collect_garbage(store, min_age=DAY, now=datetime.now(UTC) + LATER)
    assert done.removed == dry.removed
    assert _all_keys(store) == sorted(expected["kept"])
    assert sum(r.size for r in done.removed) == len(b"the loser's rows") + len(b"half") + 43
    assert done.lines()[-1] == (
        f"store gc {store.uri}: removed 3 objects, {sum(r.size for r in done.removed)} bytes; "
        "kept 0 unlisted objects younger than 1d"
    )
    assert check_store(store) == 1 and store.read_object(DONE, "part-00000.parquet") == b"rows"
    assert collect_garbage(store, min_age=timedelta(0)).removed == []  # nothing left to remove


def test_an_attempt_that_commits_while_gc_looks_keeps_its_objects(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """gc reads the manifest again right before it deletes: a commit that lands in between wins."""
    slow = store.begin(DONE, job_id="d", kind="generate", inputs={})
    slow.put_bytes("part-00000.parquet", b"rows")
    original, looks = store.manifest, []

    def commit_after_the_first_look(prefix: str) -> Manifest | None:
        found = original(prefix)
        if not looks:
            looks.append(prefix)
            slow.commit()
        return found

    monkeypatch.setattr(store, "manifest", commit_after_the_first_look)
    assert collect_garbage(store, min_age=timedelta(0)).removed == []
    monkeypatch.undo()
    assert check_store(store) == 1


def test_a_job_whose_manifest_cannot_be_read_is_left_alone(store: Store) -> None:
    leftover = store.begin(DONE, job_id="d", kind="generate", inputs={})
    leftover.put_bytes("part-00000.parquet", b"rows")
    store.write_bytes(f"{DONE}/{MANIFEST_NAME}", b"{not json")
    report = collect_garbage(store, min_age=timedelta(0))
    assert report.removed == [] and report.unreadable == [DONE]
    assert f"left alone: cannot read the manifest of {DONE}" in report.lines()
    assert store.list_keys(leftover.folder) == [f"{leftover.folder}/part-00000.parquet"]


def test_format_1_jobs_keep_their_listed_objects(store: Store) -> None:
    data = b"old rows"
    old = format_1_manifest(data)
    store.write_bytes(f"{DONE}/part-00000.parquet", data)
    store.write_bytes(f"{DONE}/stray.parquet", b"unlisted")
    store.write_bytes(f"{DONE}/{MANIFEST_NAME}", old.to_json())
    report = collect_garbage(store, min_age=timedelta(0))
    assert [r.where for r in report.removed] == [f"{DONE}/stray.parquet"]
    assert check_store(store) == 1


def test_an_attempt_still_writing_keeps_its_older_objects(tmp_path: Path) -> None:
    """The age of an attempt is that of its newest object: a slow attempt loses nothing it wrote earlier."""
    store = FileStore(tmp_path / "store")
    slow = store.begin(KILLED, job_id="k", kind="score", inputs={})
    slow.put_bytes("part-00000.parquet", b"written two days ago")
    two_days_ago = (datetime.now(UTC) - 2 * DAY).timestamp()
    os.utime(store.root / slow.folder / "part-00000.parquet", (two_days_ago, two_days_ago))
    slow.put_bytes("part-00001.parquet", b"written now")
    assert collect_garbage(store, min_age=DAY).removed == []
    slow.commit()
    assert check_store(store) == 1


@pytest.mark.parametrize(
    ("text", "seconds", "shown"),
    [
        ("24h", 86400, "1d"),
        ("30m", 1800, "30m"),
        ("7d", 604800, "7d"),
        ("90s", 90, "90s"),
        ("0", 0, "0"),
        ("1.5h", 5400, "90m"),
        ("2.5s", 2.5, "2.5s"),
    ],
)
def test_durations(text: str, seconds: float, shown: str) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)
    assert format_duration(parse_duration(text)) == shown


@pytest.mark.parametrize("text", ["5x", "24", "", "-1h", "h"])
def test_bad_durations_name_what_is_accepted(text: str) -> None:
    with pytest.raises(RptError, match=rf"--min-age {text!r}: accepted: a number with a unit s, m, h or d"):
        parse_duration(text)


def test_the_command_reads_rpt_store_and_prints_what_it_removed(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "store")
    killed = store.begin(KILLED, job_id="k", kind="score", inputs={})
    killed.put_bytes("part-00000.parquet", b"half")
    env = {"RPT_STORE": str(store.root)}

    dry = run_cli("store", "gc", "--min-age", "0", "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert f"would remove {killed.folder}/ (1 objects, 4 bytes)" in dry.stdout
    assert store.list_keys(KILLED) == [f"{killed.folder}/part-00000.parquet"]

    kept = run_cli("store", "gc", str(store.root), env=env)  # default minimum age: 24h
    assert kept.returncode == 0 and "kept 1 unlisted objects younger than 1d" in kept.stdout

    done = run_cli("store", "gc", store.uri, "--min-age", "0")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == f"store gc {store.uri}: removed 1 objects, 4 bytes; " + (
        "kept 0 unlisted objects younger than 0"
    )
    assert store.list_keys(KILLED) == []

    bad = run_cli("store", "gc", str(store.root), "--min-age", "soon")
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "error: --min-age 'soon': accepted: a number with a unit s, m, h or d (24h, 7d), or 0"
    ]


@pytest.mark.parametrize(
    "prefix", ["leaderboard/0123456789abcdef", "discovery/runs/20261207T040000Z-0a1b2c3d"]
)
def test_gc_cleans_the_leaderboard_and_the_discovery_registry_like_jobs(tmp_path: Path, prefix: str) -> None:
    """Both commit folders with the manifest protocol, so a losing or killed attempt there is garbage too;
    `leaderboard/latest`, outside any folder, is left alone."""
    store = FileStore(tmp_path / "store")
    loser = store.begin(prefix, job_id="x", kind="leaderboard", inputs={})
    loser.put_bytes("leaderboard.json", b"the loser's")
    with store.begin(prefix, job_id="x", kind="leaderboard", inputs={}) as winner:
        winner.put_bytes("leaderboard.json", b"{}")
    store.write_bytes("leaderboard/latest", prefix.encode())
    done = collect_garbage(store, min_age=DAY, now=datetime.now(UTC) + LATER)
    assert [r.objects for r in done.removed] == [1]
    assert _all_keys(store) == sorted(
        [f"{prefix}/{MANIFEST_NAME}", *store.list_keys(winner.folder), "leaderboard/latest"]
    )
