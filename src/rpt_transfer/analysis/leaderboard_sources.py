"""The leaderboard's inputs: every finished study report in the store, and the few tables it reads.

A report is finished exactly when its aggregate job's `MANIFEST.json` exists under
`reports/<study>/<job id>/`; everything read here is an object that manifest lists, verified on read.
Folders of re-rendered reports (`reports/<study>/rendered/`) are not jobs and are not read.
"""

from __future__ import annotations

import io
import re
from typing import NamedTuple

import pandas as pd

from rpt_transfer.analysis.leaderboard_pairs import PAIRS_FILE, PairsFile
from rpt_transfer.errors import RptError, TransientError
from rpt_transfer.hashing import sha256_hex
from rpt_transfer.store import MANIFEST_NAME, Manifest, Store

REPORT_MANIFEST = re.compile(rf"reports/(?P<study>[^/]+)/(?P<job>[0-9a-f]{{16}})/{re.escape(MANIFEST_NAME)}")
"""Key of a finished report's manifest: the aggregate job's output folder is `reports/<study>/<job id>`."""
TABLES = ("domains", "domains_flexible", "transferability", "effects")
"""The report tables a leaderboard row reads (Parquet, as the report wrote them)."""


class StudyReport(NamedTuple):
    """One finished report: where it lies and the manifest that makes it finished."""

    key: str
    """Store prefix of the report, `reports/<study>/<aggregate job id>`."""
    study: str
    """The study it belongs to."""
    manifest: Manifest
    """The aggregate job's manifest (its `created_at` is when the study was evaluated)."""

    @property
    def manifest_sha(self) -> str:
        """Hash of the manifest: a report with the same hash holds the same objects."""
        return sha256_hex(self.manifest.to_json())

    @property
    def date(self) -> str:
        """The day the report was committed (UTC), `YYYY-MM-DD`."""
        return self.manifest.created_at[:10]

    def has(self, name: str) -> bool:
        """Whether the report lists an object of this name."""
        return any(info.name == name for info in self.manifest.objects)


class ReportTables(NamedTuple):
    """What one report contributes to the leaderboard."""

    pairs: PairsFile
    domains: pd.DataFrame
    domains_flexible: pd.DataFrame
    transferability: pd.DataFrame
    effects: pd.DataFrame


def finished_reports(store: Store) -> list[StudyReport]:
    """Every committed aggregate job's report in the store, oldest first (ties by key)."""
    reports = []
    for key in store.list_keys("reports"):
        match = REPORT_MANIFEST.fullmatch(key)
        if match is None:
            continue
        prefix = key.removesuffix(f"/{MANIFEST_NAME}")
        manifest = store.manifest(prefix)
        if manifest is None or manifest.kind != "aggregate":
            continue
        reports.append(StudyReport(prefix, match["study"], manifest))
    return sorted(reports, key=lambda report: (report.manifest.created_at, report.key))


def read_tables(store: Store, report: StudyReport) -> ReportTables | str:
    """The report's pairs and tables, or why it cannot be shown (one line for the leaderboard's notes).

    A report written before `pairs.json` existed cannot be keyed by model and settings, so it is left
    out. A report whose objects fail to read or verify is left out too, with the reason, so one damaged
    study does not take the whole leaderboard down; a transient store error still fails the build, since
    a leaderboard missing rows for that reason would be stored as if complete.
    """
    where = f"{report.key} (study {report.study}, {report.date})"
    if not report.has(PAIRS_FILE):
        return f"{where}: written before reports recorded {PAIRS_FILE}; not shown (re-run its aggregate job)"
    missing = [name for name in TABLES if not report.has(f"{name}.parquet")]
    if missing:
        return f"{where}: lacks the table(s) {', '.join(missing)}; not shown"
    try:
        pairs = PairsFile.from_json(store.read_object(report.key, PAIRS_FILE), store.key_uri(report.key))
        frames = {name: _parquet(store, report.key, name) for name in TABLES}
    except TransientError:
        raise
    except RptError as error:
        return f"{where}: unreadable ({error}); not shown"
    return ReportTables(pairs=pairs, **frames)


def _parquet(store: Store, prefix: str, name: str) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(store.read_object(prefix, f"{name}.parquet")))
