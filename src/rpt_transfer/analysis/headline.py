"""The headline metrics as people read them: a label and a one-line explanation per key, values in points.

The keys stay what MLflow stores (people search runs by them); the reports show the label first and the
key small beside it. A key with `<name>` parts (`ti/<pair>`) matches any metric of that shape and its
label names the part; a first part ending in `_flexible` (`mean_delta_seen_flexible`,
`transfer_flexible/<pair>/<domain>/delta`) is the same metric on the flexible policy's scores.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import NamedTuple

import pandas as pd

from rpt_transfer.analysis.answer import points, pooled_rows
from rpt_transfer.analysis.metrics import CONFIDENCE
from rpt_transfer.analysis.tables import SEEN, UNSEEN

FLEXIBLE = "_flexible"

HEADLINE_LABELS: dict[str, tuple[str, str]] = {
    "n_pairs": ("RPT/base pairs compared", "RPT models compared with their base models."),
    "delta_weighted_seen": (
        "Gain on trained domains (points, item-weighted)",
        "RPT minus base accuracy over the benchmarks of the domains the RPT data covered, each benchmark "
        "weighted by its items.",
    ),
    "delta_weighted_unseen": (
        "Gain on other domains (points, item-weighted)",
        "RPT minus base accuracy over the benchmarks of the domains the RPT data did not cover, each "
        "benchmark weighted by its items.",
    ),
    "mean_delta_seen": (
        "Gain on trained domains (points, each pair once)",
        "Each pair's plain mean of RPT minus base accuracy over its trained-domain benchmarks, averaged "
        "over pairs.",
    ),
    "mean_delta_unseen": (
        "Gain on other domains (points, each pair once)",
        "Each pair's plain mean of RPT minus base accuracy over its other-domain benchmarks, averaged "
        "over pairs.",
    ),
    "cmh_odds_ratio_seen": (
        "Odds ratio on trained domains (CMH)",
        "Pooled Mantel-Haenszel odds of a correct sample, RPT over base, on the trained domains' "
        "benchmarks; above 1 favours RPT.",
    ),
    "cmh_odds_ratio_unseen": (
        "Odds ratio on other domains (CMH)",
        "Pooled Mantel-Haenszel odds of a correct sample, RPT over base, on the other domains' "
        "benchmarks; above 1 favours RPT.",
    ),
    "cmh_p_value_seen": (
        "p-value on trained domains (CMH)",
        "Cochran-Mantel-Haenszel test of an odds ratio of 1; it counts samples as independent, so it is "
        "optimistic where items have several samples.",
    ),
    "cmh_p_value_unseen": (
        "p-value on other domains (CMH)",
        "Cochran-Mantel-Haenszel test of an odds ratio of 1; it counts samples as independent, so it is "
        "optimistic where items have several samples.",
    ),
    "n_excluded_cells": (
        "Comparisons left out",
        "Pair × benchmark cells not compared because base and RPT were evaluated with different settings.",
    ),
    "n_excluded_samples": (
        "Samples excluded",
        "Samples the scoring machine could not score for lack of a toolchain; left out of every number.",
    ),
    "n_policy_disagreements": (
        "Strict/flexible disagreements",
        "Comparisons whose delta changes sign, or whose paired test is significant under one scoring "
        "policy only.",
    ),
    "n_warnings": ("Warnings", "Problems listed in the report's Warnings section."),
    "delta/<pair>/<benchmark>": ("Gain of {pair} on {benchmark} (points)", "RPT minus base accuracy."),
    "delta_seen/<pair>": (
        "Gain of {pair} on trained domains (points, benchmarks once)",
        "Plain mean of RPT minus base accuracy over the pair's trained-domain benchmarks.",
    ),
    "delta_unseen/<pair>": (
        "Gain of {pair} on other domains (points, benchmarks once)",
        "Plain mean of RPT minus base accuracy over the pair's other-domain benchmarks.",
    ),
    "transfer/<pair>/<domain>/delta": (
        "Gain of {pair} on {domain} (points)",
        "Transfer-matrix cell: RPT minus base accuracy over the pooled items of the domain's benchmarks.",
    ),
    "ti/<pair>": (
        "Transferability Index of {pair}",
        "Relative gain on other domains divided by relative gain on trained domains; 1 means the same "
        "relative gain off-domain.",
    ),
    "format_rate/<model>/<benchmark>": (
        "Answers in the stated format, {model} on {benchmark}",
        "Share of scored samples whose answer is where the benchmark's prompt asks for it.",
    ),
}
"""Metric key (or key shape) -> (label, one-line explanation); `{name}` in a label is the key's part."""

POINTS_PREFIXES = ("mean_delta", "delta_", "delta/", "transfer")
"""Headline metrics that are accuracy deltas, shown in points (x 100) as their labels say."""

_PART = re.compile(r"<(\w+)>")


class HeadlineRow(NamedTuple):
    """One headline metric as shown: readable label and explanation first, the MLflow key kept beside."""

    label: str
    explanation: str
    key: str
    value: str


def headline_rows(
    metrics: Mapping[str, float], domains: pd.DataFrame, flexible_domains: pd.DataFrame
) -> list[HeadlineRow]:
    """Metrics without "/" (per-cell ones are in the tables), labelled; pooled deltas with intervals.

    `domains` and `flexible_domains` are the `domain_effects` tables the metrics came from; the
    item-weighted seen/unseen deltas show their interval from there.
    """
    intervals = {**_intervals(domains, ""), **_intervals(flexible_domains, FLEXIBLE)}
    rows = []
    for key, value in metrics.items():
        if "/" in key:
            continue
        label, explanation = headline_label(key)
        rows.append(HeadlineRow(label, explanation, key, headline_text(key, value) + intervals.get(key, "")))
    return rows


def headline_text(key: str, value: float) -> str:
    """Deltas in signed points with one decimal, p-values and odds ratios compact, counts plain."""
    head = key.partition("/")[0]
    if key.startswith(POINTS_PREFIXES):
        return points(value)
    if key.startswith("cmh_p_value") and value == 0:
        return "< 1e-300"  # below what the chi-square tail can represent
    if key.startswith("cmh_"):
        return f"{value:.3g}"
    if head in ("ti", "ti" + FLEXIBLE):
        return f"{value:+.2f}"
    if head.startswith("format_rate"):
        return f"{value:.1%}"
    return f"{value:g}"


def headline_label(key: str) -> tuple[str, str]:
    """(label, explanation) for a metric key; the key itself and no explanation when none is known."""
    head, slash, rest = key.partition("/")
    if head.endswith(FLEXIBLE) and head != FLEXIBLE:
        label, explanation = headline_label(head.removesuffix(FLEXIBLE) + slash + rest)
        if label == head.removesuffix(FLEXIBLE) + slash + rest:
            return key, ""
        return f"{label}, flexible scoring", f"{explanation} Scored by the flexible policy."
    if key in HEADLINE_LABELS:
        return HEADLINE_LABELS[key]
    parts = key.split("/")
    for shape, (label, explanation) in HEADLINE_LABELS.items():
        names = _match(shape.split("/"), parts)
        if names is not None:
            return label.format(**names), explanation
    return key, ""


def _match(shape: list[str], parts: list[str]) -> dict[str, str] | None:
    """The `<name>` parts of `parts` when it has `shape` (same length, literal parts equal), else None."""
    if len(shape) != len(parts) or len(shape) == 1:
        return None
    names = {}
    for expected, part in zip(shape, parts, strict=True):
        found = _PART.fullmatch(expected)
        if found:
            names[found.group(1)] = part
        elif expected != part:
            return None
    return names


def _intervals(domains: pd.DataFrame, suffix: str) -> dict[str, str]:
    """' (95% CI low to high)' in points for `delta_weighted_seen` / `_unseen` (+ suffix), where known."""
    pooled = pooled_rows(domains)
    shown = {}
    for group, row in ((SEEN, pooled.seen), (UNSEEN, pooled.unseen)):
        if row is not None and pd.notna(row["delta_weighted_se"]):
            low, high = points(row["delta_weighted_low"]), points(row["delta_weighted_high"])
            shown[f"delta_weighted_{group}{suffix}"] = f" ({CONFIDENCE:.0%} CI {low} to {high})"
    return shown
