"""Leaderboard rows: one per RPT model, base model and comparable evaluation setting, read from reports.

Every number in a row is a cell of its report's tables, copied as it is (`domains`, `transferability`
and their `_flexible` twins): the leaderboard recomputes nothing, so it shows what the study report shows.

Rows are keyed by the weights (`ModelSource.key` of both models) and the settings fingerprint of
`pairs.json`. The same key in two reports means the same jobs, hence the same numbers: the newest report
gives the row and the others are named in `also_in`. Different fingerprints stay different rows, each
labelled with the settings that differ (`setting`); nothing is ever averaged across them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import pandas as pd
from pydantic import BaseModel, ConfigDict

from rpt_transfer.analysis.leaderboard_pairs import PairRecord
from rpt_transfer.analysis.leaderboard_sources import ReportTables, StudyReport
from rpt_transfer.analysis.tables import SEEN, UNSEEN
from rpt_transfer.hashing import short_hash

SAMPLING_PREFIXES = ("sampling.", "own_sampling.")
"""Prefixes dropped from setting names in row labels (`temperature=0.6` reads better)."""


class Row(BaseModel):
    """One leaderboard row: an RPT model against its base under one evaluation setting.

    Gains are accuracy differences (RPT - base) as fractions, as the report's tables hold them; the
    HTML shows them in points (x 100). None where the report has no number (e.g. no benchmark of a
    trained domain was evaluated, or the Transferability Index is undefined: see `ti_status`). An odds
    ratio is infinite where the base never answered right what RPT got wrong: JSON writes `"Infinity"`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_inf_nan="strings")

    key: str
    """Short hash of the RPT weights, the base weights and the settings fingerprint: the row's identity."""
    pair: str
    """The pair's name in its study."""
    rpt_model: str
    """The RPT model's name in its study."""
    rpt_source: str
    """Where the RPT weights come from: Hub id, `train job`, or a store path."""
    rpt_revision: str
    """Hub commit or the id of the job that made the weights."""
    base_model: str
    """The base model's name in its study."""
    base_source: str
    """Where the base weights come from."""
    base_revision: str
    """Hub commit or the id of the job that made the weights."""
    parameters: int | None
    """Parameter count of the RPT model; None when unknown (never guessed)."""
    algorithm: str
    """The RPT algorithm."""
    rl_domains: list[str]
    """Domains of the RPT training data: the trained domains."""
    gain_trained: float | None
    """Item-weighted RPT - base accuracy over benchmarks of the trained domains (report: domains, seen)."""
    gain_trained_low: float | None
    """Lower end of its 95 % interval."""
    gain_trained_high: float | None
    """Upper end of its 95 % interval."""
    odds_ratio_trained: float | None
    """CMH common odds ratio of a correct answer, RPT against base, over the trained-domain benchmarks."""
    p_trained: float | None
    """Its CMH p-value."""
    gain_other: float | None
    """The same gain over benchmarks of every other domain (report: domains, unseen)."""
    gain_other_low: float | None
    """Lower end of its 95 % interval."""
    gain_other_high: float | None
    """Upper end of its 95 % interval."""
    odds_ratio_other: float | None
    """CMH common odds ratio over the other domains' benchmarks."""
    p_other: float | None
    """Its CMH p-value."""
    transferability_index: float | None
    """Relative gain on other domains over relative gain on trained ones (report: transferability)."""
    ti_status: str
    """`ok`, or why the index is undefined."""
    gain_trained_flexible: float | None
    """`gain_trained` under the flexible scoring policy (report: domains_flexible)."""
    gain_other_flexible: float | None
    """`gain_other` under the flexible scoring policy."""
    verdict: str
    """The row's answer in a word or two (`analysis.answer`), empty where it has none."""
    setting: str
    """The settings that set this row apart from other rows of the same models; empty when none do."""
    settings: dict[str, Any]
    """The evaluation settings, condensed (`leaderboard_pairs.condensed`)."""
    fingerprint: str
    """Hash of the full evaluation settings (`pairs.json`)."""
    study: str
    """The study whose report gives the row (the newest one of its key)."""
    report: str
    """Store prefix of that report."""
    evaluated: str
    """When that report was committed, `YYYY-MM-DD` (UTC)."""
    also_in: list[str]
    """Other studies whose reports hold the same evaluation (same key)."""


class Found(NamedTuple):
    """One pair of one report, with the key of its row; `also_in` names reports of the same key."""

    report: StudyReport
    tables: ReportTables
    record: PairRecord
    key: str
    also_in: tuple[str, ...] = ()


def row_key(record: PairRecord) -> str:
    """The identity of a row: both models' weights, the settings fingerprint, and the RL domains.

    The domains decide which benchmarks count as trained, so a pair claimed with other domains is
    another comparison, even of the same evaluations.
    """
    return short_hash([record.rpt.key, record.base.key, record.fingerprint, sorted(record.domains)])


def newest_per_key(reports: Sequence[tuple[StudyReport, ReportTables]]) -> list[Found]:
    """Every pair of every report, one per row key: the newest report's, naming the other studies."""
    by_key: dict[str, list[Found]] = {}
    for report, tables in reports:
        for record in tables.pairs.pairs:
            key = row_key(record)
            by_key.setdefault(key, []).append(Found(report, tables, record, key))
    chosen = []
    for found in by_key.values():
        ordered = sorted(found, key=lambda f: (f.report.manifest.created_at, f.report.key))
        newest = ordered[-1]
        studies = dict.fromkeys(f.report.study for f in ordered if f.report.study != newest.report.study)
        chosen.append(newest._replace(also_in=tuple(studies)))
    return chosen


def make_rows(
    found: Sequence[Found], sizes: Mapping[str, int], verdicts: Mapping[str, str] | None = None
) -> list[Row]:
    """The rows, best transfer first: by gain on other domains, rows without one last.

    `sizes` are parameter counts by weights key (the discovery registry), used where no generate job
    counted the RPT model itself; `verdicts` the per-row verdicts by row key.
    """
    labels = setting_labels(found)
    rows = [_row(f, sizes, (verdicts or {}).get(f.key, ""), labels[f.key]) for f in found]
    return sorted(rows, key=lambda r: (r.gain_other is None, -(r.gain_other or 0.0), r.pair, r.key))


class DomainNumbers(NamedTuple):
    """One row of a report's `domains` table (a pair's seen or unseen group), None where absent or NaN."""

    gain: float | None
    low: float | None
    high: float | None
    odds_ratio: float | None
    p: float | None

    def named(self, side: str) -> dict[str, float | None]:
        """As `Row` fields of one side (`trained` or `other`)."""
        return {
            f"gain_{side}": self.gain,
            f"gain_{side}_low": self.low,
            f"gain_{side}_high": self.high,
            f"odds_ratio_{side}": self.odds_ratio,
            f"p_{side}": self.p,
        }


def _row(found: Found, sizes: Mapping[str, int], verdict: str, setting: str) -> Row:
    record, tables, report = found.record, found.tables, found.report
    index, status = _transferability(tables.transferability, record.name)
    rpt = record.rpt
    return Row(
        key=found.key,
        pair=record.name,
        rpt_model=rpt.name,
        rpt_source=rpt.source,
        rpt_revision=rpt.revision,
        base_model=record.base.name,
        base_source=record.base.source,
        base_revision=record.base.revision,
        parameters=rpt.parameters if rpt.parameters is not None else sizes.get(rpt.key),
        algorithm=record.algorithm,
        rl_domains=list(record.domains),
        **domain_numbers(tables.domains, record.name, SEEN).named("trained"),
        **domain_numbers(tables.domains, record.name, UNSEEN).named("other"),
        transferability_index=index,
        ti_status=status,
        gain_trained_flexible=domain_numbers(tables.domains_flexible, record.name, SEEN).gain,
        gain_other_flexible=domain_numbers(tables.domains_flexible, record.name, UNSEEN).gain,
        verdict=verdict,
        setting=setting,
        settings=record.settings,
        fingerprint=record.fingerprint,
        study=report.study,
        report=report.key,
        evaluated=report.date,
        also_in=list(found.also_in),
    )


def domain_numbers(domains: pd.DataFrame, pair: str, group: str) -> DomainNumbers:
    """The pair's pooled numbers for `seen` or `unseen`, exactly as the report's table holds them.

    The interval columns (`delta_weighted_low`/`_high`) exist in reports made since they were added;
    older tables give no interval.
    """
    chosen = domains[(domains["pair"] == pair) & (domains["group"] == group)]
    if chosen.empty:
        return DomainNumbers(None, None, None, None, None)
    row = chosen.iloc[0]
    columns = ("delta_weighted", "delta_weighted_low", "delta_weighted_high", "cmh_odds_ratio", "cmh_p_value")
    return DomainNumbers(*(_number(row.get(column)) for column in columns))


def _transferability(table: pd.DataFrame, pair: str) -> tuple[float | None, str]:
    """The pair's Transferability Index over all other domains (target `unseen`), and its status."""
    chosen = table[(table["pair"] == pair) & (table["target"] == UNSEEN)]
    if chosen.empty:
        return None, "undefined: no benchmark of another domain was evaluated"
    row = chosen.iloc[0]
    return _number(row["transferability_index"]), str(row["status"])


def _number(value: Any) -> float | None:
    """A float, or None for a missing or NaN cell (JSON has no NaN)."""
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def setting_labels(found: Sequence[Found]) -> dict[str, str]:
    """Per row key: the settings that tell it from other rows of the same two models ('' if no other).

    Only keys whose values differ among those rows are named, e.g. `temperature=0.6`, so two rows of one
    model read as what they are: the same comparison under different settings.
    """
    groups: dict[tuple[str, str], list[Found]] = {}
    for f in found:
        groups.setdefault((f.record.rpt.key, f.record.base.key), []).append(f)
    labels = {}
    for members in groups.values():
        if len(members) == 1:
            labels[members[0].key] = ""
            continue
        keys = sorted({key for f in members for key in f.record.settings})
        differ = [k for k in keys if len({repr(f.record.settings.get(k)) for f in members}) > 1]
        for f in members:
            shown = [f"{_short(k)}={_value(f.record.settings.get(k))}" for k in differ]
            labels[f.key] = ", ".join(shown) or f"setting {f.record.fingerprint[:8]}"
    return labels


def _short(key: str) -> str:
    for prefix in SAMPLING_PREFIXES:
        if key.startswith(prefix):
            return key.removeprefix(prefix)
    return key


def _value(value: Any) -> str:
    return "unset" if value is None else str(value)
