"""Every table of a study's analysis, computed once from score rows, before anything is rendered.

The report, the aggregate job's MLflow metrics and the `report` command all read this one result, so a
number in the HTML, in the CSV and in MLflow is the same number.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from rpt_transfer.analysis.comparability import Settings, check_pairs
from rpt_transfer.analysis.domains import ALL_PAIRS, domain_effects, grouped_matrix, transferability
from rpt_transfer.analysis.metrics import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, accuracy_intervals
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
from rpt_transfer.analysis.transfer import benchmark_effects, paired_tests, transfer_matrix


class Analysis(NamedTuple):
    """The study's tables (tidy frames), its warnings, and flat headline metrics."""

    accuracy: pd.DataFrame
    deltas: pd.DataFrame
    summary: pd.DataFrame
    tests: pd.DataFrame
    effects: pd.DataFrame
    domains: pd.DataFrame
    transferability: pd.DataFrame
    matrix: pd.DataFrame
    by_algorithm: pd.DataFrame
    by_backbone: pd.DataFrame
    warnings: list[str]
    metrics: dict[str, float]

    def tables(self) -> dict[str, pd.DataFrame]:
        """File stem -> frame, for CSV and Parquet output."""
        return {
            "accuracy": self.accuracy,
            "deltas": self.deltas,
            "summary": self.summary,
            "paired_tests": self.tests,
            "effects": self.effects,
            "domains": self.domains,
            "transferability": self.transferability,
            "transfer": self.matrix,
            "transfer_by_algorithm": self.by_algorithm,
            "transfer_by_backbone": self.by_backbone,
        }


def analyse(
    scores: pd.DataFrame,
    pairs: Sequence[PairInfo],
    *,
    settings: Settings | None = None,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> Analysis:
    """All tables; cells that `comparability.check_pairs` rejects are left out of every comparison."""
    acc = accuracy_table(scores)
    intervals = accuracy_intervals(scores, resamples=resamples, seed=seed)
    acc = acc.merge(intervals, on=["model", "benchmark"], how="left")
    exclude, comparability = check_pairs(scores, pairs, settings)
    deltas = pair_deltas(acc, pairs)
    cells = zip(deltas["pair"], deltas["benchmark"], strict=True)
    deltas = deltas[np.array([cell not in exclude for cell in cells], dtype=bool)].reset_index(drop=True)
    summary = domain_summary(deltas)
    tests = paired_tests(scores, pairs, exclude)
    effects = benchmark_effects(scores, pairs, exclude, resamples=resamples, seed=seed)
    domains = domain_effects(effects)
    index = transferability(effects)
    matrix = transfer_matrix(tests, pairs)
    warnings = missing_cells(acc, pairs) + comparability + quality_warnings(acc)
    metrics = headline_metrics(deltas, summary)
    metrics |= _pooled_metrics(domains, index, matrix)
    metrics["n_excluded_cells"] = float(len(exclude))
    metrics["n_warnings"] = float(len(warnings))
    return Analysis(
        accuracy=acc,
        deltas=deltas,
        summary=summary,
        tests=tests,
        effects=effects,
        domains=domains,
        transferability=index,
        matrix=matrix,
        by_algorithm=grouped_matrix(effects, pairs, "algorithm"),
        by_backbone=grouped_matrix(effects, pairs, "backbone"),
        warnings=warnings,
        metrics=metrics,
    )


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
