"""The living leaderboard: every finished study in the store as one table of RPT models against their bases.

`build_leaderboard` reads every finished report (`leaderboard_sources`), keys one row per RPT model, base
model and comparable evaluation setting (`leaderboard_rows`), opens with the pooled answer
(`analysis.answer`), renders HTML, JSON, CSV and the chart (`leaderboard_render`), and commits them to the
store under `leaderboard/<digest>/`. The digest hashes the input report manifests (and the model sizes
used), so rebuilding from the same reports writes nothing; `leaderboard/latest` names the newest build.
`log_leaderboard` makes the files the artifacts of the `leaderboard` MLflow run (`leaderboard_mlflow`).

The aggregate job builds and logs it after every study; `rpt-transfer leaderboard` does on demand.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import pandas as pd

from rpt_transfer.analysis.answer import Answer, answer_for
from rpt_transfer.analysis.domains import ALL_PAIRS, domain_effects
from rpt_transfer.analysis.leaderboard_render import FILES, write_files
from rpt_transfer.analysis.leaderboard_rows import Found, Row, make_rows, newest_per_key
from rpt_transfer.analysis.leaderboard_sources import ReportTables, StudyReport, finished_reports, read_tables
from rpt_transfer.analysis.tables import SEEN, UNSEEN
from rpt_transfer.errors import RptError, WriteConflictError
from rpt_transfer.hashing import short_hash
from rpt_transfer.store import Store

if TYPE_CHECKING:
    from rpt_transfer.tracking import Tracker

LEADERBOARD_ROOT = "leaderboard"
LATEST_KEY = f"{LEADERBOARD_ROOT}/latest"
"""The one mutable object: the digest of the newest build (readers take that one)."""
LEADERBOARD_VERSION = "1"
"""Version of how rows are made and shown (bump it when they change, `answer.py` included): it is in the
digest, so the next build after a bump is a new leaderboard even from the same reports."""


class Built(NamedTuple):
    """One build: where it lies in the store, what it shows, and the numbers its MLflow run gets."""

    prefix: str
    """Store prefix, `leaderboard/<digest>`."""
    digest: str
    """Hash of the inputs (report manifests, model sizes used, leaderboard version)."""
    rows: list[Row]
    notes: list[str]
    answer: Answer | None
    """The opening sentence, or None when no row has numbers to pool."""
    created: bool
    """False when the same inputs had been built before (nothing written)."""
    metrics: dict[str, float]
    """Headline numbers for MLflow: rows, pooled gains and odds ratios."""


def build_leaderboard(store: Store, *, sizes: Mapping[str, int] | None = None) -> Built:
    """Build the leaderboard from every finished report in `store` and commit it there (idempotent).

    Args:
        store: The store to read reports from and commit the leaderboard to.
        sizes: Parameter counts by weights key (`hub_id@sha`); None reads the discovery registry. A count
            a generate job recorded (`pairs.json`) comes first.

    Raises:
        RptError: No finished study report in the store.
    """
    reports = finished_reports(store)
    if not reports:
        raise RptError(
            f"no finished study in {store.uri}: no reports/<study>/<job>/MANIFEST.json; "
            "run a study first (`rpt-transfer run STUDY.yaml`)"
        )
    readable: list[tuple[StudyReport, ReportTables]] = []
    notes = []
    for report in reports:
        tables = read_tables(store, report)
        if isinstance(tables, str):
            notes.append(tables)
        else:
            readable.append((report, tables))
    found = newest_per_key(readable)
    sizes = registry_sizes(store) if sizes is None else sizes
    known = {key.lower(): count for key, count in sizes.items()}  # Hub ids are case-insensitive
    used = {
        f.record.rpt.key: known[f.record.rpt.key.lower()] for f in found if f.record.rpt.key.lower() in known
    }
    pooled = pooled_domains(found)
    answer, verdicts = _answers(pooled, found)
    rows = make_rows(found, used, verdicts)
    digest = short_hash(
        {"version": LEADERBOARD_VERSION, "reports": {r.key: r.manifest_sha for r in reports}, "sizes": used}
    )
    prefix = f"{LEADERBOARD_ROOT}/{digest}"
    created = not store.is_done(prefix)
    if created:
        inputs = [
            {
                "key": r.key,
                "study": r.study,
                "created_at": r.manifest.created_at,
                "manifest_sha256": r.manifest_sha,
            }
            for r in reports
        ]
        with tempfile.TemporaryDirectory(prefix="rpt-leaderboard-") as tmp:
            write_files(Path(tmp), rows, answer, notes, inputs)
            recorded = {"version": LEADERBOARD_VERSION, "reports": inputs, "sizes": used}
            created = _commit(store, prefix, digest, recorded, Path(tmp))
    store.write_bytes(LATEST_KEY, f"{digest}\n".encode())
    return Built(prefix, digest, rows, notes, answer, created, headline_metrics(rows, pooled))


def log_leaderboard(tracker: Tracker, store: Store, built: Built) -> str:
    """Mirror a committed build into the `leaderboard` MLflow run (idempotent); return the run id."""
    from rpt_transfer.analysis.leaderboard_mlflow import holds, leaderboard_run, log_files

    run = leaderboard_run(tracker)
    if holds(tracker, run, built.digest):  # every aggregate job logs: download only a build it lacks
        return log_files(tracker, run, None, built.digest, built.metrics)
    with tempfile.TemporaryDirectory(prefix="rpt-leaderboard-") as tmp:
        folder = store.download(built.prefix, Path(tmp))
        return log_files(tracker, run, folder, built.digest, built.metrics)


def latest_leaderboard(store: Store) -> str | None:
    """The prefix of the newest build (`leaderboard/<digest>`), or None when none was built."""
    if not store.exists(LATEST_KEY):
        return None
    prefix = f"{LEADERBOARD_ROOT}/{store.read_bytes(LATEST_KEY).decode().strip()}"
    return prefix if store.is_done(prefix) else None


def locations(store: Store, prefix: str) -> dict[str, str]:
    """Each committed leaderboard file's path (file store) or URI (S3)."""
    return {name: store.object_location(prefix, name) for name in FILES}


def pooled_domains(found: Sequence[Found]) -> pd.DataFrame:
    """`domain_effects` over the effects rows of every leaderboard row, each row as its own pair.

    Each row's effects are its report's per-benchmark rows of that pair (strict policy), relabelled with
    the row key so two rows of one pair name stay apart; the `all pairs` rows then pool every row.
    """
    parts = [
        f.tables.effects[f.tables.effects["pair"] == f.record.name].assign(pair=f.key)
        for f in found
        if (f.tables.effects["pair"] == f.record.name).any()
    ]
    if not parts:
        return pd.DataFrame()
    return domain_effects(pd.concat(parts, ignore_index=True))


def headline_metrics(rows: Sequence[Row], pooled: pd.DataFrame) -> dict[str, float]:
    """The MLflow run's metrics: how many rows, and the pooled gains and odds ratios of the answer."""
    metrics = {"n_rows": float(len(rows))}
    if pooled.empty:
        return metrics
    overall = pooled[pooled["pair"] == ALL_PAIRS] if (pooled["pair"] == ALL_PAIRS).any() else pooled
    for group, side in ((SEEN, "trained"), (UNSEEN, "other")):
        chosen = overall[overall["group"] == group]
        if len(chosen) == 1:
            metrics[f"gain_{side}"] = float(chosen["delta_weighted"].iloc[0])
            metrics[f"odds_ratio_{side}"] = float(chosen["cmh_odds_ratio"].iloc[0])
    return {key: value for key, value in metrics.items() if math.isfinite(value)}


def registry_sizes(store: Store) -> dict[str, int]:
    """Parameter counts the discovery registry knows, by `hub_id@sha`; empty when it has none."""
    from rpt_transfer.discovery.registry import model_sizes  # discovery is read only when building

    return dict(model_sizes(store))


def _answers(pooled: pd.DataFrame, found: Sequence[Found]) -> tuple[Answer | None, dict[str, str]]:
    """The pooled opening sentence and each row's verdict, from `analysis.answer.answer_for`.

    The sentence reads the whole frame (`answer_for` takes its `all pairs` rows, or the only row's);
    each verdict reads that row's own rows of the same frame.
    """
    if pooled.empty:
        return None, {}
    pairs = set(pooled["pair"])
    verdicts = {f.key: answer_for(pooled[pooled["pair"] == f.key]).verdict for f in found if f.key in pairs}
    return answer_for(pooled, scope="these studies"), verdicts


def _commit(store: Store, prefix: str, digest: str, inputs: dict[str, Any], folder: Path) -> bool:
    """Commit the files; False when another build of the same inputs committed first (same content)."""
    try:
        with store.begin(prefix, job_id=digest, kind="leaderboard", inputs=inputs) as writer:
            for name in FILES:
                writer.put_file(name, folder / name)
            writer.commit()
    except WriteConflictError:
        return False
    return True
