"""Every table of a study's analysis, computed once from score rows, before anything is rendered.

The report, the aggregate job's MLflow metrics and the `report` command all read this one result, so a
number in the HTML, in the CSV and in MLflow is the same number.

Both scoring policies go through one function, `compare`, with the score column as its argument: the
strict tables are exactly what they were before the flexible policy existed, and the flexible ones are
made by the same code. Each paired test runs once (`transfer.ResultCache` is shared by both policies, so a
benchmark whose flexible scores equal its strict ones is not tested or bootstrapped again). Rows with reason
`toolchain_missing` are dropped before anything is computed and only counted (`excluded`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from rpt_transfer.analysis.comparability import Settings, check_pairs
from rpt_transfer.analysis.domains import ALL_PAIRS, domain_effects, grouped_matrix, transferability
from rpt_transfer.analysis.metrics import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, accuracy_intervals
from rpt_transfer.analysis.policies import flagged, policy_agreement
from rpt_transfer.analysis.samples import FLEXIBLE, STRICT, excluded_table, excluded_warnings, with_policies
from rpt_transfer.analysis.tables import (
    SEEN,
    UNSEEN,
    PairInfo,
    accuracy_table,
    domain_summary,
    headline_metrics,
    metric_key,
    missing_cells,
    pair_deltas,
    quality_warnings,
)
from rpt_transfer.analysis.transfer import ResultCache, benchmark_effects, paired_tests, transfer_matrix


class Comparisons(NamedTuple):
    """RPT against base under one scoring policy: every table that compares the two models."""

    deltas: pd.DataFrame
    summary: pd.DataFrame
    tests: pd.DataFrame
    effects: pd.DataFrame
    domains: pd.DataFrame
    transferability: pd.DataFrame
    matrix: pd.DataFrame


_TABLE_STEMS = {
    "deltas": "deltas",
    "summary": "summary",
    "tests": "paired_tests",
    "effects": "effects",
    "domains": "domains",
    "transferability": "transferability",
    "matrix": "transfer",
}
"""File stem of each comparison table (`Comparisons` field -> stem); flexible ones add `_flexible`."""


class Analysis(NamedTuple):
    """The study's tables (tidy frames), its warnings, and flat headline metrics.

    The comparison tables of the strict policy are also reachable directly (`deltas`, `tests`, ...).
    """

    accuracy: pd.DataFrame
    strict: Comparisons
    """RPT against base under the strict policy: the headline tables."""
    flexible: Comparisons
    """The same comparisons under the flexible policy."""
    by_algorithm: pd.DataFrame
    by_backbone: pd.DataFrame
    warnings: list[str]
    metrics: dict[str, float]
    agreement: pd.DataFrame
    """Each paired comparison under both policies, flagged where they disagree (`policies.py`)."""
    excluded: pd.DataFrame
    """Samples left out per model × benchmark (`toolchain_missing`) and why."""

    deltas = property(lambda self: self.strict.deltas)
    summary = property(lambda self: self.strict.summary)
    tests = property(lambda self: self.strict.tests)
    effects = property(lambda self: self.strict.effects)
    domains = property(lambda self: self.strict.domains)
    transferability = property(lambda self: self.strict.transferability)
    matrix = property(lambda self: self.strict.matrix)

    def tables(self) -> dict[str, pd.DataFrame]:
        """File stem -> frame, for CSV and Parquet output; flexible tables carry a `_flexible` suffix."""
        strict = {stem: getattr(self.strict, field) for field, stem in _TABLE_STEMS.items()}
        flexible = {f"{stem}_flexible": getattr(self.flexible, field) for field, stem in _TABLE_STEMS.items()}
        return {
            "accuracy": self.accuracy,
            **strict,
            "transfer_by_algorithm": self.by_algorithm,
            "transfer_by_backbone": self.by_backbone,
            **flexible,
            "policy_agreement": self.agreement,
            "excluded": self.excluded,
        }


def analyse(
    scores: pd.DataFrame,
    pairs: Sequence[PairInfo],
    *,
    settings: Settings | None = None,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> Analysis:
    """All tables; cells that `comparability.check_pairs` rejects are left out of every comparison.

    Rows with reason `toolchain_missing` are left out of every number and counted in `excluded`.
    """
    acc = accuracy_table(scores)
    dropped = excluded_table(scores)
    scores = with_policies(scores)
    intervals = accuracy_intervals(scores, resamples=resamples, seed=seed)
    acc = acc.merge(intervals, on=["model", "benchmark"], how="left")
    scored = acc[acc["n_items"] > 0]  # a cell with every sample excluded has nothing to compare
    exclude, comparability = check_pairs(scores, pairs, settings)
    cache: ResultCache = {}
    options = {"exclude": exclude, "cache": cache, "resamples": resamples, "seed": seed}
    strict = compare(scored, scores, pairs, column=STRICT, **options)
    same = scores[FLEXIBLE].equals(scores[STRICT])  # e.g. rows stored before the flexible policy
    flexible = strict if same else compare(scored, scores, pairs, column=FLEXIBLE, **options)
    agreement = policy_agreement(strict.tests, flexible.tests)
    warnings = missing_cells(scored, pairs) + comparability + quality_warnings(acc)
    warnings += excluded_warnings(dropped)
    metrics = headline_metrics(strict.deltas, strict.summary)
    metrics |= _pooled_metrics(strict.domains, strict.transferability, strict.matrix)
    metrics["n_excluded_cells"] = float(len(exclude))
    metrics |= _flexible_metrics(flexible)
    metrics |= _policy_metrics(acc, agreement, dropped)
    metrics["n_warnings"] = float(len(warnings))
    return Analysis(
        accuracy=acc,
        strict=strict,
        by_algorithm=grouped_matrix(strict.effects, pairs, "algorithm"),
        by_backbone=grouped_matrix(strict.effects, pairs, "backbone"),
        warnings=warnings,
        metrics=metrics,
        flexible=flexible,
        agreement=agreement,
        excluded=dropped,
    )


def compare(
    acc: pd.DataFrame,
    scores: pd.DataFrame,
    pairs: Sequence[PairInfo],
    *,
    column: str,
    exclude: Collection[tuple[str, str]],
    cache: ResultCache,
    resamples: int,
    seed: int,
) -> Comparisons:
    """Every RPT − base table under the policy whose per-sample score is `column` (`correct` is strict).

    Accuracy deltas read the accuracy table's column of that policy; tests, effects and the transfer
    matrix read the per-sample column; everything else is the same code for both policies.
    """
    accuracy = acc if column == STRICT else acc.assign(accuracy=acc["accuracy_flexible"])
    deltas = pair_deltas(accuracy, pairs)
    cells = zip(deltas["pair"], deltas["benchmark"], strict=True)
    deltas = deltas[np.array([cell not in exclude for cell in cells], dtype=bool)].reset_index(drop=True)
    tests = paired_tests(scores, pairs, exclude, column=column, cache=cache)
    effects = benchmark_effects(
        scores, pairs, exclude, tests=tests, resamples=resamples, seed=seed, column=column, cache=cache
    )
    return Comparisons(
        deltas=deltas,
        summary=domain_summary(deltas),
        tests=tests,
        effects=effects,
        domains=domain_effects(effects),
        transferability=transferability(effects),
        matrix=transfer_matrix(tests, pairs),
    )


def _flexible_metrics(flexible: Comparisons) -> dict[str, float]:
    """The strict headline metrics' names with `_flexible` after their first part, on flexible numbers."""
    metrics = headline_metrics(flexible.deltas, flexible.summary)
    metrics |= _pooled_metrics(flexible.domains, flexible.transferability, flexible.matrix)
    renamed = {}
    for key, value in metrics.items():
        if key == "n_pairs":
            continue
        head, slash, rest = key.partition("/")
        renamed[f"{head}_flexible{slash}{rest}"] = value
    return renamed


def _policy_metrics(acc: pd.DataFrame, agreement: pd.DataFrame, dropped: pd.DataFrame) -> dict[str, float]:
    """Format-following rate per model × benchmark, excluded samples, and the policy disagreements."""
    metrics = {"n_excluded_samples": float(dropped["n_excluded"].sum()) if len(dropped) else 0.0}
    metrics["n_policy_disagreements"] = float(flagged(agreement).sum())
    for row in acc.itertuples(index=False):
        if np.isfinite(row.format_rate):
            metrics[metric_key(f"format_rate/{row.model}/{row.benchmark}")] = float(row.format_rate)
    return metrics


def _pooled_metrics(domains: pd.DataFrame, index: pd.DataFrame, matrix: pd.DataFrame) -> dict[str, float]:
    """Seen/unseen over all pairs (or the only pair), each pair's TI, each transfer-matrix cell."""
    metrics: dict[str, float] = {}
    if (domains["pair"] == ALL_PAIRS).any():
        domains = domains[domains["pair"] == ALL_PAIRS]
    for kind in (SEEN, UNSEEN):
        rows = domains[domains["group"] == kind]
        if len(rows) != 1:
            continue
        row = rows.iloc[0]
        for column in ("delta_weighted", "cmh_odds_ratio", "cmh_p_value"):
            metrics[f"{column}_{kind}"] = float(row[column])
    for row in index[index["target"] == UNSEEN].itertuples(index=False):
        metrics[metric_key(f"ti/{row.pair}")] = float(row.transferability_index)
    for cell in matrix.itertuples(index=False):
        metrics[metric_key(f"transfer/{cell.pair}/{cell.eval_domain}/delta")] = float(cell.delta)
    return {key: value for key, value in metrics.items() if np.isfinite(value)}
