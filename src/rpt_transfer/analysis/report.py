"""The study report: tables and figures computed first, then written as files and rendered last.

`write_report` is the one entry point the aggregate job calls. It writes the tables (CSV for people,
Parquet for code), the two heatmaps, and one Markdown and one self-contained HTML report.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from rpt_transfer.analysis.figures import accuracy_heatmap, delta_heatmap, matrix_heatmap
from rpt_transfer.analysis.tables import (
    MAX_TRUNCATED_RATE,
    SEEN,
    PairInfo,
    accuracy_table,
    domain_summary,
    headline_metrics,
    metric_key,
    missing_cells,
    pair_deltas,
    quality_warnings,
)
from rpt_transfer.analysis.transfer import paired_tests, transfer_matrix


class ReportResult(NamedTuple):
    """What the aggregate job needs after writing a report: files to list, metrics to log, warnings."""

    files: list[Path]
    metrics: dict[str, float]
    warnings: list[str]


class Table(NamedTuple):
    """A frame already formatted for display, so both templates show the same strings."""

    columns: list[str]
    numeric: list[bool]
    rows: list[list[str]]
    row_classes: list[str]


COLUMN_FORMATS: Mapping[str, str] = {
    "accuracy": "{:.3f}",
    "base_accuracy": "{:.3f}",
    "rpt_accuracy": "{:.3f}",
    "mean_base_accuracy": "{:.3f}",
    "mean_rpt_accuracy": "{:.3f}",
    "delta": "{:+.3f}",
    "mean_delta": "{:+.3f}",
    "relative_delta": "{:+.1%}",
    "truncated_rate": "{:.1%}",
    "no_answer_rate": "{:.1%}",
    "error_rate": "{:.1%}",
    "p_value": "{:.3g}",
}
"""How each numeric column is shown; accuracies keep three decimals so 1/3 and 0.33 differ visibly."""

HEADLINE_FORMAT = "{:+.3f}"

NOTES = (
    "Accuracy is pass@1: the mean over items of each item's mean correctness over its samples.",
    "A benchmark is 'seen' for a pair when its domain is among the RPT model's training domains, "
    "else 'unseen'. Delta is RPT accuracy minus base accuracy; relative delta divides by the base "
    "accuracy (n/a where that is 0).",
    "Per-pair seen/unseen means are unweighted over benchmarks; mean_delta_seen and mean_delta_unseen "
    "average those per-pair means, so each pair counts once.",
    f"Warnings flag missing pair × benchmark cells, truncation above {MAX_TRUNCATED_RATE:.0%} of samples, "
    "and any sample that failed to score (error or timeout).",
)
"""Scoring and aggregation policy, printed next to the numbers it shapes."""

ACCURACY_PNG = "accuracy_heatmap.png"
DELTA_PNG = "delta_heatmap.png"
MATRIX_PNG = "transfer_matrix.png"


def write_report(
    *,
    study: str,
    scores: pd.DataFrame,
    pairs: Sequence[PairInfo],
    provenance: Mapping[str, Any],
    out_dir: Path,
) -> ReportResult:
    """Compute the study's tables, figures and metrics and write every report file into `out_dir`.

    Args:
        study: Study name, for the title; `scores` must hold no other study.
        scores: One row per scored sample (see `tables.SCORE_COLUMNS`, plus `study`).
        pairs: The study's RPT/base pairs.
        provenance: What produced the numbers (spec hash, job ids, sampling, versions); nested
            mappings are flattened to dotted keys.
        out_dir: Folder to write into; created if needed, files of the same name are replaced.

    Returns:
        The files written, flat metrics for MLflow, and the warnings shown in the report.
    """
    other_studies = sorted(set(scores["study"]) - {study})
    if other_studies:
        raise ValueError(f"scores for study {study!r} also hold rows of {other_studies}")
    acc = accuracy_table(scores)
    deltas = pair_deltas(acc, pairs)
    summary = domain_summary(deltas)
    warnings = missing_cells(acc, pairs) + quality_warnings(acc)
    metrics = headline_metrics(deltas, summary)
    metrics["n_warnings"] = float(len(warnings))
    tests = paired_tests(scores, pairs)
    matrix = transfer_matrix(tests, pairs)
    for cell in matrix.itertuples():
        metrics[metric_key(f"transfer/{cell.pair}/{cell.eval_domain}/delta")] = float(cell.delta)
    figures = {
        ACCURACY_PNG: accuracy_heatmap(acc),
        DELTA_PNG: delta_heatmap(deltas),
        MATRIX_PNG: matrix_heatmap(matrix),
    }

    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    tables = {
        "accuracy": acc,
        "deltas": deltas,
        "summary": summary,
        "paired_tests": tests,
        "transfer": matrix,
    }
    for stem, frame in tables.items():
        files += [out_dir / f"{stem}.csv", out_dir / f"{stem}.parquet"]
        frame.to_csv(files[-2], index=False)
        frame.to_parquet(files[-1], index=False)
    for name, png in figures.items():
        files.append(out_dir / name)
        files[-1].write_bytes(png)

    context = {
        "study": study,
        "notes": NOTES,
        "headline": [
            (key, HEADLINE_FORMAT.format(value) if key.startswith("mean_") else f"{value:g}")
            for key, value in metrics.items()
            if "/" not in key
        ],
        "accuracy": _table(acc),
        "deltas": _table(deltas, highlight=deltas["seen"].eq(SEEN).tolist()),
        "summary": _table(summary, highlight=summary["seen"].eq(SEEN).tolist()),
        "tests": _table(tests),
        "matrix": _table(matrix, highlight=matrix["train_domain"].eq(matrix["eval_domain"]).tolist()),
        "matrix_png": MATRIX_PNG,
        "warnings": warnings,
        "provenance": list(_flatten(provenance)),
        "accuracy_png": ACCURACY_PNG,
        "delta_png": DELTA_PNG,
        "images": {name: base64.b64encode(png).decode("ascii") for name, png in figures.items()},
    }
    for name in ("report.md", "report.html"):
        files.append(out_dir / name)
        files[-1].write_text(_environment().get_template(f"{name}.j2").render(context), encoding="utf-8")
    return ReportResult(files=files, metrics=metrics, warnings=warnings)


def _environment() -> Environment:
    """Templates from the installed package; undefined names fail, and HTML output is escaped."""
    env = Environment(
        loader=PackageLoader("rpt_transfer.analysis", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = _markdown_cell
    return env


def _table(frame: pd.DataFrame, highlight: list[bool] | None = None) -> Table:
    """Format a frame's cells as display strings; highlighted rows get the CSS class 'seen'."""
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns]
    rows = [[_cell(column, value) for column, value in row.items()] for _, row in frame.iterrows()]
    classes = ["seen" if flag else "" for flag in (highlight or [False] * len(rows))]
    return Table(columns=list(frame.columns), numeric=numeric, rows=rows, row_classes=classes)


def _cell(column: str, value: Any) -> str:
    """One display string; NaN shows as 'n/a' rather than 'nan'."""
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    if column in COLUMN_FORMATS:
        return COLUMN_FORMATS[column].format(value)
    return str(value)


def _flatten(mapping: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """Provenance as (dotted key, text) rows; lists and scalars other than str are shown as JSON."""
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from _flatten(value, f"{name}.")
        else:
            yield name, value if isinstance(value, str) else json.dumps(value, default=str)


def _markdown_cell(text: str) -> str:
    """Keep a value inside its Markdown table cell: pipes escaped, line breaks flattened."""
    return str(text).replace("|", "\\|").replace("\n", " ")
