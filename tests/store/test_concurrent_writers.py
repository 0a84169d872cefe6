"""Any number of concurrent, killed or retried attempts of one job end with one verified output, or none.

Every attempt uses the same object names, as generate and score jobs do (`part-00000.parquet`), so the
store itself, not the callers' naming, must keep attempts apart.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import random
import signal
import time
from pathlib import Path

import pytest

from rpt_transfer.errors import ManifestError, WriteConflictError
from rpt_transfer.store import Store
from servers_s3 import s3_server, s3_store_uri  # noqa: F401
from store_backends import any_store, overwrite_raw  # noqa: F401
from store_checks import check_job, check_store

JOB = "generations/ab12cd34ef56ab78"
PART = "part-00000.parquet"
CONFIG = "model/config.json"
ROUNDS = 10
ATTEMPTS = 3


# -- the failure, step by step ------------------------------------------------------------------


def test_a_later_attempt_cannot_change_what_an_earlier_commit_lists(store: Store) -> None:
    """Attempt A writes its part, attempt B begins and writes its own, A commits: A's part must read back."""
    first = store.begin(JOB, job_id="j", kind="generate", inputs={"attempt": "A"})
    first.put_bytes(PART, b"a" * 18)
    second = store.begin(JOB, job_id="j", kind="generate", inputs={"attempt": "B"})
    second.put_bytes(PART, b"b" * 39)
    first.commit()
    assert check_job(store, JOB)
    assert store.read_object(JOB, PART) == b"a" * 18
    with pytest.raises(WriteConflictError, match="another writer"):
        second.commit()
    assert store.read_object(JOB, PART) == b"a" * 18  # the loser changed nothing


def test_an_attempt_that_begins_and_dies_cannot_empty_an_earlier_commit(store: Store) -> None:
    """B begins (and is killed) while A is between its last write and its commit."""
    first = store.begin(JOB, job_id="j", kind="generate", inputs={"attempt": "A"})
    first.put_bytes(PART, b"a" * 18)
    store.begin(JOB, job_id="j", kind="generate", inputs={"attempt": "B"})
    first.commit()
    assert check_job(store, JOB)
    assert store.read_object(JOB, PART) == b"a" * 18


def test_the_check_fires_on_a_manifest_whose_object_changed(store: Store) -> None:
    """The race tests below (and the kill -9 end-to-end test) rely on this check: it must be able to fail."""
    with store.begin(JOB, job_id="j", kind="generate", inputs={}) as writer:
        writer.put_bytes(PART, b"rows")
    assert check_job(store, JOB) and check_store(store) == 1
    (key,) = [k for k in store.list_keys(JOB) if k.endswith(PART)]
    overwrite_raw(store, key, b"other rows")
    with pytest.raises(ManifestError, match="has 10 bytes, its manifest lists 4"):
        check_job(store, JOB)
    with pytest.raises(ManifestError, match="has 10 bytes, its manifest lists 4"):
        check_store(store)


# -- processes racing, with random SIGKILLs and a retry ------------------------------------------------


def _attempt(uri: str, prefix: str, seed: int, result: Path) -> None:
    """One attempt of the job, as `job run` makes it: check done, begin, write, commit."""
    rng = random.Random(seed)
    time.sleep(rng.random() * 0.02)
    store = Store.from_uri(uri)
    part = rng.randbytes(rng.randint(1, 4096))
    outcome = "already done"
    try:
        if not store.is_done(prefix):
            writer = store.begin(prefix, job_id="j", kind="generate", inputs={"seed": seed})
            writer.put_bytes(PART, part)
            time.sleep(rng.random() * 0.03)
            writer.put_bytes(CONFIG, json.dumps({"seed": seed}).encode())
            writer.commit()
            outcome = "committed"
    except WriteConflictError:
        outcome = "conflict"
    partial = result.with_suffix(".partial")
    partial.write_text(json.dumps({"outcome": outcome, "sha256": hashlib.sha256(part).hexdigest()}))
    partial.replace(result)


def _wave(uri: str, prefix: str, folder: Path, seeds: list[int], rng: random.Random) -> dict[int, dict]:
    """Start one attempt per seed at once, SIGKILL about half of them at random moments, wait for all."""
    context = multiprocessing.get_context("fork")
    procs = {
        seed: context.Process(target=_attempt, args=(uri, prefix, seed, folder / f"{seed}.json"))
        for seed in seeds
    }
    for proc in procs.values():
        proc.start()
    kills = sorted((rng.random() * 0.08, seed) for seed in seeds if rng.random() < 0.6)
    started = time.monotonic()
    for at, seed in kills:
        time.sleep(max(0.0, at - (time.monotonic() - started)))
        if procs[seed].is_alive():
            os.kill(procs[seed].pid, signal.SIGKILL)
    results = {}
    for seed, proc in procs.items():
        proc.join(timeout=60)
        assert proc.exitcode is not None, f"attempt {seed} hangs"
        if proc.exitcode != -signal.SIGKILL:
            assert proc.exitcode == 0, f"attempt {seed} failed (exit {proc.exitcode}); its traceback is above"
            results[seed] = json.loads((folder / f"{seed}.json").read_text())
    return results


def _check_round(store: Store, prefix: str, results: dict[int, dict]) -> bool:
    done = check_job(store, prefix)  # done implies every listed object reads back verified
    winners = [r for r in results.values() if r["outcome"] == "committed"]
    assert len(winners) <= 1, winners
    if results:  # an attempt that was not killed either committed or found that another one had
        assert done
    if winners:
        manifest = store.manifest(prefix)
        assert manifest is not None and manifest.object(PART).sha256 == winners[0]["sha256"]
    return done


def test_racing_killed_and_retried_attempts_leave_one_verified_output_or_none(
    store: Store, tmp_path: Path
) -> None:
    rng = random.Random(9)
    outcomes: dict[str, int] = {}
    for round_ in range(ROUNDS):
        prefix = f"generations/race{round_:03d}"
        folder = tmp_path / f"round{round_}"
        folder.mkdir()
        seeds = [round_ * 100 + i for i in range(ATTEMPTS)]
        results = _wave(store.uri, prefix, folder, seeds, rng)
        done = _check_round(store, prefix, results)
        for what in ["done" if done else "not done", *(r["outcome"] for r in results.values())]:
            outcomes[what] = outcomes.get(what, 0) + 1
        retry = _wave(store.uri, prefix, folder, [round_ * 100 + 99], random.Random(0))  # never killed
        assert _check_round(store, prefix, retry), "a retry that is not killed must leave the job done"
    assert check_store(store) == ROUNDS
    print(outcomes)
