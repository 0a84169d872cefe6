"""The study report: tables and figures computed first, then written as files and rendered last.

`write_report` is the one entry point the aggregate job and the `report` command call. It takes the
tables from `study.analyse`, writes them (CSV for people, Parquet for code) with the figures as PNG, and
renders one Markdown and one self-contained HTML report (figures embedded as data URIs).
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

from rpt_transfer.analysis.answer import answer_for
from rpt_transfer.analysis.comparability import Settings
from rpt_transfer.analysis.effect_figures import forest_plot, seen_unseen_chart
from rpt_transfer.analysis.figures import accuracy_heatmap, delta_heatmap, matrix_heatmap
from rpt_transfer.analysis.headline import headline_label, headline_rows
from rpt_transfer.analysis.policies import flagged
from rpt_transfer.analysis.report_notes import ANSWER_NOTE, EXCLUDED_INTRO, NOTES, POLICY_INTRO
from rpt_transfer.analysis.study import Analysis, analyse
from rpt_transfer.analysis.tables import SEEN, PairInfo


class ReportResult(NamedTuple):
    """What callers need after writing a report: files to list, metrics to log, warnings, the tables."""

    files: list[Path]
    metrics: dict[str, float]
    warnings: list[str]
    analysis: Analysis | None = None


class Table(NamedTuple):
    """A frame already formatted for display, so both templates show the same strings."""

    columns: list[str]
    numeric: list[bool]
    rows: list[list[str]]
    row_classes: list[str]


COLUMN_FORMATS: Mapping[str, str] = {
    "accuracy": "{:.3f}",
    "accuracy_se": "{:.3f}",
    "accuracy_low": "{:.3f}",
    "accuracy_high": "{:.3f}",
    "base_accuracy": "{:.3f}",
    "rpt_accuracy": "{:.3f}",
    "mean_base_accuracy": "{:.3f}",
    "mean_rpt_accuracy": "{:.3f}",
    "delta": "{:+.3f}",
    "delta_se": "{:.3f}",
    "delta_low": "{:+.3f}",
    "delta_high": "{:+.3f}",
    "mean_delta": "{:+.3f}",
    "delta_weighted": "{:+.3f}",
    "delta_weighted_se": "{:.3f}",
    "delta_weighted_low": "{:+.3f}",
    "delta_weighted_high": "{:+.3f}",
    "delta_unweighted": "{:+.3f}",
    "mean_pair_delta": "{:+.3f}",
    "relative_delta": "{:+.1%}",
    "relative_low": "{:+.1%}",
    "relative_high": "{:+.1%}",
    "mean_relative_delta": "{:+.1%}",
    "relative_gain_trained": "{:+.1%}",
    "relative_gain_target": "{:+.1%}",
    "transferability_index": "{:+.2f}",
    "truncated_rate": "{:.1%}",
    "no_answer_rate": "{:.1%}",
    "error_rate": "{:.1%}",
    "p_value": "{:.3g}",
    "cmh_p_value": "{:.3g}",
    "cmh_odds_ratio": "{:.3f}",
    "rpt_correct": "{:g}",
    "base_correct": "{:g}",
    "accuracy_flexible": "{:.3f}",
    "format_rate": "{:.1%}",
    "delta_strict": "{:+.3f}",
    "delta_flexible": "{:+.3f}",
    "format_effect": "{:+.3f}",
    "p_value_strict": "{:.3g}",
    "p_value_flexible": "{:.3g}",
}
"""How each numeric column is shown; accuracies keep three decimals so 1/3 and 0.33 differ visibly."""

POLICY_COLUMNS = (
    "model",
    "benchmark",
    "n_samples",
    "accuracy",
    "accuracy_flexible",
    "format_rate",
    "n_excluded",
)
"""The accuracy table's columns shown next to each other where the report compares the two policies."""

HIDDEN_COLUMNS = ("rpt_correct", "rpt_samples", "base_correct", "base_samples", "algorithm", "backbone")
"""Columns kept in the CSV/Parquet files but left out of the rendered effects table to keep it readable."""

ACCURACY_PNG = "accuracy_heatmap.png"
DELTA_PNG = "delta_heatmap.png"
MATRIX_PNG = "transfer_matrix.png"
MATRIX_FLEXIBLE_PNG = "transfer_matrix_flexible.png"
FOREST_PNG = "forest_plot.png"
SEEN_UNSEEN_PNG = "seen_unseen.png"
ALGORITHM_PNG = "transfer_by_algorithm.png"
BACKBONE_PNG = "transfer_by_backbone.png"
FIGURE_TITLES = {
    FOREST_PNG: "Per-benchmark deltas with paired intervals (forest plot)",
    SEEN_UNSEEN_PNG: "Seen versus unseen",
    MATRIX_PNG: "Transfer matrix: trained domain boxed, † p<.05, ‡ p<.01",
    MATRIX_FLEXIBLE_PNG: "Transfer matrix, flexible scoring: trained domain boxed, † p<.05, ‡ p<.01",
    ALGORITHM_PNG: "Transfer matrix per algorithm (CMH † p<.05, ‡ p<.01)",
    BACKBONE_PNG: "Transfer matrix per backbone (CMH † p<.05, ‡ p<.01)",
    DELTA_PNG: "Delta heatmap: seen cells boxed and starred",
    ACCURACY_PNG: "Accuracy heatmap",
}


def write_report(
    *,
    study: str,
    scores: pd.DataFrame,
    pairs: Sequence[PairInfo],
    provenance: Mapping[str, Any],
    out_dir: Path,
    settings: Settings | None = None,
    kind: str = "observational",
    extra_warnings: Sequence[str] = (),
) -> ReportResult:
    """Compute the study's tables, figures and metrics and write every report file into `out_dir`.

    Args:
        study: Study name, for the title; `scores` must hold no other study.
        scores: One row per scored sample (see `tables.SCORE_COLUMNS`, plus `study`).
        pairs: The study's RPT/base pairs.
        provenance: What produced the numbers (spec hash, job ids, sampling, versions); nested
            mappings are flattened to dotted keys.
        out_dir: Folder to write into; created if needed, files of the same name are replaced.
        settings: Per (model, benchmark) evaluation settings; base/RPT cells that differ are not compared.
        kind: The study kind; interventional studies add transfer matrices per algorithm and backbone.
        extra_warnings: Problems found before the analysis (e.g. score jobs not finished), shown first.

    Returns:
        The files written, flat metrics for MLflow, and the warnings shown in the report.
    """
    other_studies = sorted(set(scores["study"].unique()) - {study})
    if other_studies:
        raise ValueError(f"scores for study {study!r} also hold rows of {other_studies}")
    result = analyse(scores, pairs, settings=settings)
    warnings = [*extra_warnings, *result.warnings]
    metrics = {**result.metrics, "n_warnings": float(len(warnings))}
    figures = _figures(result, kind)

    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for stem, frame in result.tables().items():
        files += [out_dir / f"{stem}.csv", out_dir / f"{stem}.parquet"]
        frame.to_csv(files[-2], index=False)
        frame.to_parquet(files[-1], index=False)
    for name, png in figures.items():
        files.append(out_dir / name)
        files[-1].write_bytes(png)

    context = _context(study, kind, result, warnings, metrics, provenance, figures)
    for name in ("report.md", "report.html"):
        files.append(out_dir / name)
        template = template_environment().get_template(f"{name}.j2")
        files[-1].write_text(template.render(context), encoding="utf-8")
    return ReportResult(files=files, metrics=metrics, warnings=warnings, analysis=result)


def _figures(result: Analysis, kind: str) -> dict[str, bytes]:
    """Every figure as PNG bytes, in the order the report shows them."""
    figures = {
        FOREST_PNG: forest_plot(result.effects),
        SEEN_UNSEEN_PNG: seen_unseen_chart(result.domains),
        MATRIX_PNG: matrix_heatmap(result.matrix),
        MATRIX_FLEXIBLE_PNG: matrix_heatmap(result.flexible.matrix),
    }
    if kind == "interventional":
        figures[ALGORITHM_PNG] = matrix_heatmap(_as_matrix(result.by_algorithm))
        figures[BACKBONE_PNG] = matrix_heatmap(_as_matrix(result.by_backbone))
    figures[DELTA_PNG] = delta_heatmap(result.deltas)
    figures[ACCURACY_PNG] = accuracy_heatmap(result.accuracy)
    return figures


def _as_matrix(grouped: pd.DataFrame) -> pd.DataFrame:
    """A grouped transfer matrix in the columns `matrix_heatmap` draws (a row per group x train domain)."""
    return pd.DataFrame(
        {
            "pair": grouped["by"] + "=" + grouped["value"].astype(str),
            "train_domain": grouped["train_domain"],
            "eval_domain": grouped["eval_domain"],
            "delta": grouped["mean_pair_delta"],
            "p_value": grouped["cmh_p_value"],
        }
    )


def _context(
    study: str,
    kind: str,
    result: Analysis,
    warnings: list[str],
    metrics: dict[str, float],
    provenance: Mapping[str, Any],
    figures: dict[str, bytes],
) -> dict[str, Any]:
    """What the templates render: display strings only, so HTML and Markdown show the same text."""
    effects = result.effects.drop(columns=list(HIDDEN_COLUMNS))
    flexible = result.flexible
    flexible_effects = flexible.effects.drop(columns=list(HIDDEN_COLUMNS))
    disagree = flagged(result.agreement).tolist()
    answer = answer_for(result.domains)
    flexible_answer = answer_for(flexible.domains)
    return {
        "study": study,
        "kind": kind,
        "answer": answer,
        "flexible_answer": flexible_answer if flexible_answer.verdict != answer.verdict else None,
        "answer_note": ANSWER_NOTE,
        "notes": NOTES,
        "headline": headline_rows(metrics, result.domains, flexible.domains),
        "accuracy": display_table(result.accuracy),
        "deltas": display_table(result.deltas, highlight=result.deltas["seen"].eq(SEEN).tolist()),
        "summary": display_table(result.summary, highlight=result.summary["seen"].eq(SEEN).tolist()),
        "effects": display_table(effects, highlight=effects["seen"].eq(SEEN).tolist()),
        "domains": display_table(result.domains, highlight=result.domains["group"].eq(SEEN).tolist()),
        "transferability": display_table(result.transferability),
        "tests": display_table(result.tests),
        "matrix": display_table(
            result.matrix, highlight=result.matrix["train_domain"].eq(result.matrix["eval_domain"]).tolist()
        ),
        "by_algorithm": display_table(result.by_algorithm),
        "by_backbone": display_table(result.by_backbone),
        "policy_intro": POLICY_INTRO,
        "policies": display_table(result.accuracy[list(POLICY_COLUMNS)]),
        "agreement": display_table(result.agreement, highlight=disagree, css="flag"),
        "n_flagged": sum(disagree),
        "flexible_effects": display_table(
            flexible_effects, highlight=flexible_effects["seen"].eq(SEEN).tolist()
        ),
        "flexible_tests": display_table(flexible.tests),
        "flexible_matrix": display_table(
            flexible.matrix,
            highlight=flexible.matrix["train_domain"].eq(flexible.matrix["eval_domain"]).tolist(),
        ),
        "flexible_domains": display_table(
            flexible.domains, highlight=flexible.domains["group"].eq(SEEN).tolist()
        ),
        "excluded_intro": EXCLUDED_INTRO,
        "excluded": display_table(result.excluded),
        "warnings": warnings,
        "provenance": list(_flatten(provenance)),
        "figures": [(name, FIGURE_TITLES[name]) for name in figures],
        "images": {name: base64.b64encode(png).decode("ascii") for name, png in figures.items()},
    }


def template_environment() -> Environment:
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
    env.filters["label"] = headline_label
    return env


def display_table(frame: pd.DataFrame, highlight: list[bool] | None = None, css: str = "seen") -> Table:
    """Format a frame's cells as display strings; highlighted rows get the CSS class `css`."""
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns]
    rows = [[_cell(column, value) for column, value in row.items()] for _, row in frame.iterrows()]
    classes = [css if flag else "" for flag in (highlight or [False] * len(rows))]
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
