"""Cochran-Mantel-Haenszel test across benchmarks: are RPT's odds of a correct sample above base's.

One 2x2 table per stratum (a pair x benchmark), rows RPT / base, columns correct / incorrect, counted over
**samples** of the items both models answered (an AIME item with 16 samples adds 16). Fractional scores
(e.g. a share of tests passed) add their sum as the correct count, so a cell may hold a non-integer
count. The common odds ratio is the Mantel-Haenszel estimate (> 1: RPT better); the p-value is the CMH
test of a common odds ratio of 1 without continuity correction (statsmodels `StratifiedTable`; the
p-value is the chi-square survival function of its statistic, so tiny p-values keep their digits).

Caveat, printed in the report: samples of one item are not independent, and the table ignores that base
and RPT answered the same items; the paired item-level tests are the stricter check per benchmark.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

COUNT_COLUMNS = ("rpt_correct", "rpt_samples", "base_correct", "base_samples")


class CmhResult(NamedTuple):
    """Pooled odds ratio of RPT vs base, its test's p-value, and the strata that entered."""

    odds_ratio: float
    p_value: float
    n_strata: int


def tables(counts: pd.DataFrame) -> np.ndarray:
    """The 2 x 2 x K array statsmodels expects, one stratum per row of `counts` (`COUNT_COLUMNS`)."""
    rpt_c, rpt_n = counts["rpt_correct"].to_numpy(float), counts["rpt_samples"].to_numpy(float)
    base_c, base_n = counts["base_correct"].to_numpy(float), counts["base_samples"].to_numpy(float)
    return np.array([[rpt_c, rpt_n - rpt_c], [base_c, base_n - base_c]])


def cmh(counts: pd.DataFrame) -> CmhResult:
    """CMH over the strata in `counts`; NaN when no stratum carries information.

    Strata where every sample is correct, or every one incorrect, add nothing to the test statistic and
    are kept (statsmodels handles them). An odds ratio whose denominator is 0 (base never beats RPT's
    failures) is +inf, not an error.
    """
    from scipy.stats import chi2
    from statsmodels.stats.contingency_tables import StratifiedTable

    if counts.empty:
        return CmhResult(float("nan"), float("nan"), 0)
    table = tables(counts)
    totals = table.sum(axis=(0, 1))
    table = table[:, :, totals > 0]
    if table.shape[2] == 0:
        return CmhResult(float("nan"), float("nan"), 0)
    strat = StratifiedTable(table)
    with np.errstate(divide="ignore", invalid="ignore"):
        odds = float(strat.oddsratio_pooled)
        statistic = float(strat.test_null_odds(correction=False).statistic)
    # statsmodels reports 1 - cdf, which rounds to 0 below ~1e-16; the survival function keeps the digits.
    p_value = float(chi2.sf(statistic, 1)) if np.isfinite(statistic) else float("nan")
    return CmhResult(odds, p_value, int(table.shape[2]))
