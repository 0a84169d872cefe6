"""Strict versus flexible scoring, side by side: where the two policies tell different stories.

Reinforcement post-training changes how a model writes its answer as much as whether the answer is right,
so a delta under the strict policy alone (the benchmark's stated answer format) can be format rather than
ability. The same comparisons are computed under both policies (`study.compare`, one code path with a
`column`); this module lines their paired tests up and flags each comparison where the policies disagree:
the deltas have opposite signs, or one policy's test is significant at `ALPHA` and the other's is not.
"""

import numpy as np
import pandas as pd

ALPHA = 0.05
"""Significance level for the disagreement flag (two-sided paired tests)."""

AGREEMENT_COLUMNS = (
    "pair",
    "group",
    "n_items",
    "delta_strict",
    "p_value_strict",
    "delta_flexible",
    "p_value_flexible",
    "format_effect",
    "flag",
)


def disagreement(
    delta_strict: float, p_strict: float, delta_flexible: float, p_flexible: float, alpha: float = ALPHA
) -> str:
    """Why two policies disagree on one comparison, '' when they agree (a NaN p-value is not significant)."""
    reasons = []
    if delta_strict * delta_flexible < 0:
        reasons.append("delta signs differ")
    strict_significant = bool(p_strict < alpha)  # NaN compares False
    flexible_significant = bool(p_flexible < alpha)
    if strict_significant != flexible_significant:
        only = "strict" if strict_significant else "flexible"
        reasons.append(f"significant (p<{alpha:g}) under {only} only")
    return "; ".join(reasons)


def policy_agreement(strict: pd.DataFrame, flexible: pd.DataFrame, alpha: float = ALPHA) -> pd.DataFrame:
    """Each paired comparison (a `paired_tests` row) under both policies, flagged where they disagree.

    `format_effect` is delta_strict − delta_flexible: the part of the strict delta that the flexible
    policy does not see, i.e. what a change of answer format alone contributes.
    """
    keys = ["pair", "group"]
    both = strict[[*keys, "n_items", "delta", "p_value"]].merge(
        flexible[[*keys, "delta", "p_value"]], on=keys, how="left", suffixes=("_strict", "_flexible")
    )
    flags = [
        disagreement(row.delta_strict, row.p_value_strict, row.delta_flexible, row.p_value_flexible, alpha)
        for row in both.itertuples(index=False)
    ]
    both = both.assign(format_effect=both["delta_strict"] - both["delta_flexible"], flag=flags)
    if both.empty:
        both = both.astype({"format_effect": float, "flag": object})
    return both[list(AGREEMENT_COLUMNS)].reset_index(drop=True)


def flagged(agreement: pd.DataFrame) -> np.ndarray:
    """Boolean mask of the comparisons the two policies disagree on."""
    return agreement["flag"].astype(str).str.len().gt(0).to_numpy()
