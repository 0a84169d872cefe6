"""The leaderboard's files: one self-contained HTML page, JSON and CSV of the rows, and the chart as PNG.

Rendering comes last and computes nothing: every number is a `Row` field, shown in points (x 100) with
the labels and explanations of `COLUMNS`. The output depends only on its inputs (no build time, PNG
without version metadata), so the same reports give the same bytes and a rebuild uploads nothing new.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from rpt_transfer.analysis.answer import Answer, odds_ratio, p_text, points
from rpt_transfer.analysis.leaderboard_rows import Row
from rpt_transfer.hashing import canonical_json

HTML, JSON, CSV, PNG = "leaderboard.html", "leaderboard.json", "leaderboard.csv", "leaderboard.png"
FILES = (HTML, JSON, CSV, PNG)
FORMAT_VERSION = 1
"""Layout of `leaderboard.json`; readers reject versions they do not know."""


class Column(NamedTuple):
    """One column of the HTML table: its id (the `sort` query value), label and short explanation."""

    id: str
    label: str
    help: str
    numeric: bool = False


COLUMNS = (
    Column("model", "RPT model", "The reinforcement-post-trained model as its study names it, with where its "
           "weights come from (Hub id @ commit, or the job that trained them) and, where the same models "
           "were also evaluated otherwise, the settings that set this row apart."),
    Column("base", "Base model", "The model it was post-trained from, with where its weights come from."),
    Column("size", "Size", "Parameters of the RPT model: counted when the weights were loaded, or from the "
           "discovery registry. Blank when unknown.", numeric=True),
    Column("algorithm", "Algorithm", "The RL algorithm of the post-training (as the study records it)."),
    Column("domains", "RL domains", "Domains of the RL training data: their benchmarks are the trained "
           "domains, all others the other domains."),
    Column("gain_trained", "Gain on trained domains", "RPT minus base accuracy in percentage points over "
           "the benchmarks of the RL domains, weighted by items, with its 95 % interval.", numeric=True),
    Column("odds_trained", "Odds ratio, trained", "How much the odds of a correct answer change from base "
           "to RPT on the trained domains (Cochran-Mantel-Haenszel, pooled over benchmarks; 1 = no change), "
           "with its p-value.", numeric=True),
    Column("gain_other", "Gain on other domains", "RPT minus base accuracy in points over the benchmarks "
           "of every other domain, weighted by items, with its 95 % interval: did the gain transfer?",
           numeric=True),
    Column("odds_other", "Odds ratio, other", "The odds ratio of a correct answer on the other domains, "
           "with its p-value.", numeric=True),
    Column("ti", "Transferability", "Transferability Index: relative gain on other domains divided by "
           "relative gain on trained ones. 1 = the same relative gain everywhere, 0 = none elsewhere, "
           "below 0 = a loss. Blank when the trained gain is under 1 % (hover for why).", numeric=True),
    Column("gain_trained_flexible", "Trained, flexible", "The gain on trained domains when answers are "
           "extracted leniently (flexible scoring policy) rather than in the stated format.", numeric=True),
    Column("gain_other_flexible", "Other, flexible", "The gain on other domains under flexible scoring.",
           numeric=True),
    Column("verdict", "Verdict", "Did this row's gains transfer? Transferred: significant gains on trained "
           "and other domains (CMH p < 0.05 and the interval above 0, both); no evidence: a trained gain "
           "only; no clear gain: nothing significant to transfer."),
    Column("study", "Study", "The study whose report gives these numbers (hover for the report), and other "
           "studies whose reports hold the same evaluation."),
    Column("evaluated", "Evaluated", "The day the study's report was made (UTC)."),
)  # fmt: skip
"""The table's columns in order, declared as data so HTML, legend and docs agree."""

SIZE_BUCKETS = ((2e9, "under-2b", "under 2B"), (10e9, "2b-10b", "2B to 10B"), (40e9, "10b-40b", "10B to 40B"),
                (math.inf, "40b-plus", "40B and more"))  # fmt: skip
"""Size filter buckets: upper bound (exclusive), URL value, label."""
UNKNOWN_SIZE = ("unknown", "size unknown")
VERDICT_TEXT = {
    "transferred": "transferred",
    "hurt": "other domains worse",
    "not_transferred": "no evidence of transfer",
    "no_trained_gain": "no clear gain",
    "no_unseen": "no other domain",
    "no_seen": "no trained domain",
    "no_data": "nothing compared",
}
"""How each `analysis.answer` verdict reads in the table (the JSON and CSV keep the key)."""


class Cell(NamedTuple):
    """One table cell: its text, the value it sorts by, smaller lines below the text, and a hover text."""

    text: str
    sort: str
    details: tuple[str, ...] = ()
    title: str = ""


def write_files(
    out: Path,
    rows: Sequence[Row],
    answer: Answer | None,
    notes: Sequence[str],
    reports: Sequence[dict[str, str]],
) -> list[Path]:
    """Write the four leaderboard files into `out` and return their paths.

    `answer` is the opening sentence, or None when no row has numbers; `reports` lists the input
    reports (key, study, created_at, manifest sha) for the JSON.
    """
    from rpt_transfer.analysis.leaderboard_chart import gain_chart
    from rpt_transfer.analysis.report import template_environment

    out.mkdir(parents=True, exist_ok=True)
    chart = gain_chart(rows)
    (out / PNG).write_bytes(chart)
    (out / JSON).write_text(json_text(rows, answer, notes, reports), encoding="utf-8")
    csv_frame(rows).to_csv(out / CSV, index=False)
    context = html_context(rows, answer, notes, len(reports), chart)
    html = template_environment().get_template("leaderboard.html.j2").render(context)
    (out / HTML).write_text(html, encoding="utf-8")
    return [out / name for name in FILES]


def json_text(
    rows: Sequence[Row], answer: Answer | None, notes: Sequence[str], reports: Sequence[dict[str, str]]
) -> str:
    """`leaderboard.json`: the answer, column labels, rows (fractions, not points), notes and inputs."""
    document = {
        "format_version": FORMAT_VERSION,
        "answer": _answer_dict(answer),
        "columns": [{"id": c.id, "label": c.label, "help": c.help} for c in COLUMNS],
        "rows": [json.loads(row.model_dump_json()) for row in rows],  # an infinite odds ratio as a string
        "notes": list(notes),
        "reports": list(reports),
    }
    return json.dumps(document, indent=2, sort_keys=True, allow_nan=False) + "\n"


def csv_frame(rows: Sequence[Row]) -> pd.DataFrame:
    """One CSV line per row, every `Row` field; lists joined by commas, settings as canonical JSON."""
    records = []
    for row in rows:
        record = row.model_dump(mode="json")
        record["rl_domains"] = ",".join(row.rl_domains)
        record["also_in"] = ",".join(row.also_in)
        record["settings"] = canonical_json(row.settings)
        records.append(record)
    return pd.DataFrame.from_records(records, columns=list(Row.model_fields))


def html_context(
    rows: Sequence[Row], answer: Answer | None, notes: Sequence[str], n_reports: int, chart: bytes
) -> dict[str, Any]:
    """What the template shows: display strings, sort values and filter attributes only."""
    buckets = [size_bucket(row.parameters) for row in rows]
    sizes = [(value, label) for _, value, label in SIZE_BUCKETS if any(b[0] == value for b in buckets)]
    if UNKNOWN_SIZE in buckets:
        sizes.append(UNKNOWN_SIZE)
    return {
        "answer": _answer_dict(answer),
        "columns": COLUMNS,
        "rows": [
            {
                "key": row.key,
                "cells": cells(row),
                "domains": " ".join(row.rl_domains),
                "size": bucket[0],
                "algorithm": row.algorithm,
            }
            for row, bucket in zip(rows, buckets, strict=True)
        ],
        "filters": [
            ("domain", "RL domain", [(d, d) for d in sorted({d for row in rows for d in row.rl_domains})]),
            ("size", "Size", sizes),
            ("algorithm", "Algorithm", [(a, a) for a in sorted({row.algorithm for row in rows})]),
        ],
        "notes": list(notes),
        "n_reports": n_reports,
        "chart": base64.b64encode(chart).decode("ascii"),
        "chart_size": png_size(chart),
    }


def cells(row: Row) -> list[Cell]:
    """A row's cells in `COLUMNS` order."""
    also = (f"also in {', '.join(row.also_in)}",) if row.also_in else ()
    setting = (row.setting,) if row.setting else ()
    return [
        Cell(row.rpt_model, row.rpt_model, (weights(row.rpt_source, row.rpt_revision), *setting)),
        Cell(row.base_model, row.base_model, (weights(row.base_source, row.base_revision),)),
        Cell(size_text(row.parameters), _sortable(row.parameters)),
        Cell(row.algorithm, row.algorithm),
        Cell(", ".join(row.rl_domains), ",".join(row.rl_domains)),
        _gain(row.gain_trained, row.gain_trained_low, row.gain_trained_high),
        _odds(row.odds_ratio_trained, row.p_trained),
        _gain(row.gain_other, row.gain_other_low, row.gain_other_high),
        _odds(row.odds_ratio_other, row.p_other),
        Cell(
            "" if row.transferability_index is None else f"{row.transferability_index:+.2f}",
            _sortable(row.transferability_index),
            title=row.ti_status,
        ),
        _gain(row.gain_trained_flexible, None, None),
        _gain(row.gain_other_flexible, None, None),
        Cell(VERDICT_TEXT.get(row.verdict, row.verdict), row.verdict),
        Cell(row.study, row.study, also, title=f"report {row.report}"),
        Cell(row.evaluated, row.evaluated),
    ]


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height of a PNG (its IHDR chunk), so the page lays the chart out before decoding it."""
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def weights(source: str, revision: str) -> str:
    """Where weights come from, short: `org/name @ 1a2b3c4` or `train job 1a2b3c4d`."""
    if source.endswith(" job"):
        return f"{source} {revision[:8]}"
    return f"{source} @ {revision[:7]}" if len(revision) == 40 else f"{source} {revision}"


def size_text(parameters: int | None) -> str:
    """A parameter count as people write it (7.6B, 494M); blank when unknown."""
    if parameters is None:
        return ""
    for scale, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if parameters >= scale:
            return f"{parameters / scale:.3g}{unit}"
    return str(parameters)


def size_bucket(parameters: int | None) -> tuple[str, str]:
    """The size filter's (value, label) for a parameter count."""
    if parameters is None:
        return UNKNOWN_SIZE
    return next((value, label) for bound, value, label in SIZE_BUCKETS if parameters < bound)


def _gain(value: float | None, low: float | None, high: float | None) -> Cell:
    if value is None:
        return Cell("", "")
    if low is None or high is None:
        return Cell(points(value), repr(value))
    return Cell(points(value), repr(value), (f"{points(low)} to {points(high)}",), "95 % interval below")


def _odds(ratio: float | None, p: float | None) -> Cell:
    if ratio is None:
        return Cell("", "")
    return Cell(odds_ratio(ratio), repr(ratio), (p_text(p),) if p is not None else ())


def _sortable(value: float | int | None) -> str:
    return "" if value is None else repr(value)


def _answer_dict(answer: Answer | None) -> dict[str, str] | None:
    return None if answer is None else answer._asdict()
