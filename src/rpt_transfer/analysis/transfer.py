"""Paired tests of RPT against base over the same items, and the train-domain x evaluated-domain matrix.

Both models answer the same items, so the comparison is paired: per item, the share of samples each got
right. With one sample per item the outcomes are binary and McNemar's exact test (statsmodels) applies;
with several, a paired permutation test (scipy) flips the sign of each item's difference. The transfer
matrix is computed from these same per-item scores, so the table and its tests can never disagree.
"""

from collections.abc import Sequence

import numpy as np
import pandas as pd

from rpt_transfer.analysis.tables import PairInfo

PERMUTATIONS = 10_000
SEED = 0
TEST_COLUMNS = (
    "pair",
    "group",
    "n_items",
    "base_accuracy",
    "rpt_accuracy",
    "delta",
    "test",
    "p_value",
)
MATRIX_COLUMNS = ("train_domain", "eval_domain", "pair", "n_items", "delta", "p_value")


def item_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """Per (model, benchmark, item): the mean correctness over its samples."""
    return (
        scores.groupby(["model", "benchmark", "benchmark_domain", "item_id"], sort=False)["correct"]
        .mean()
        .reset_index()
    )


def paired_items(items: pd.DataFrame, pair: PairInfo, rows: pd.Series | None = None) -> pd.DataFrame:
    """The items both models of a pair answered (optionally only `rows` of `items`), side by side."""
    chosen = items if rows is None else items[rows]
    base = chosen[chosen["model"] == pair.base_model]
    rpt = chosen[chosen["model"] == pair.rpt_model]
    keys = ["benchmark", "benchmark_domain", "item_id"]
    return base.merge(rpt, on=keys, suffixes=("_base", "_rpt"))


def paired_test(base: np.ndarray, rpt: np.ndarray) -> tuple[str, float]:
    """The test and two-sided p-value for paired per-item scores in [0, 1]."""
    if len(base) == 0:
        return "none", float("nan")
    if np.isin(base, (0.0, 1.0)).all() and np.isin(rpt, (0.0, 1.0)).all():
        from statsmodels.stats.contingency_tables import mcnemar

        table = [
            [np.sum((base == 1) & (rpt == 1)), np.sum((base == 1) & (rpt == 0))],
            [np.sum((base == 0) & (rpt == 1)), np.sum((base == 0) & (rpt == 0))],
        ]
        return "mcnemar_exact", float(mcnemar(np.array(table), exact=True).pvalue)
    if np.allclose(base, rpt):
        return "permutation", 1.0
    from scipy.stats import permutation_test

    result = permutation_test(
        (rpt, base),
        lambda x, y: np.mean(x - y),
        permutation_type="samples",
        n_resamples=PERMUTATIONS,
        alternative="two-sided",
        random_state=SEED,
    )
    return "permutation", float(result.pvalue)


def paired_tests(scores: pd.DataFrame, pairs: Sequence[PairInfo]) -> pd.DataFrame:
    """One paired test per pair and benchmark, and per pair and benchmark domain (items pooled)."""
    items = item_scores(scores)
    records = []
    for pair in pairs:
        groups = [("benchmark", name) for name in sorted(items["benchmark"].unique())]
        groups += [("benchmark_domain", name) for name in sorted(items["benchmark_domain"].unique())]
        for column, name in groups:
            both = paired_items(items, pair, items[column] == name)
            if both.empty:
                continue
            test, p_value = paired_test(both["correct_base"].to_numpy(), both["correct_rpt"].to_numpy())
            label = name if column == "benchmark" else f"domain:{name}"
            base_acc, rpt_acc = both["correct_base"].mean(), both["correct_rpt"].mean()
            delta = rpt_acc - base_acc
            records.append((pair.name, label, len(both), base_acc, rpt_acc, delta, test, p_value))
    return pd.DataFrame.from_records(records, columns=list(TEST_COLUMNS))


def transfer_matrix(tests: pd.DataFrame, pairs: Sequence[PairInfo]) -> pd.DataFrame:
    """Train domain x evaluated domain: item-pooled delta and its paired p-value, per single-domain pair.

    Pairs trained on several domains have no single row and are left out. The numbers are the
    `domain:` rows of `paired_tests`, computed from the same per-item scores.
    """
    single = {pair.name: pair.rpt_domains[0] for pair in pairs if len(pair.rpt_domains) == 1}
    rows = tests[tests["group"].str.startswith("domain:") & tests["pair"].isin(single)]
    matrix = pd.DataFrame(
        {
            "train_domain": rows["pair"].map(single),
            "eval_domain": rows["group"].str.removeprefix("domain:"),
            "pair": rows["pair"],
            "n_items": rows["n_items"],
            "delta": rows["delta"],
            "p_value": rows["p_value"],
        }
    )
    return matrix.reset_index(drop=True)[list(MATRIX_COLUMNS)]
