"""Paired comparisons of RPT against base over the same items, per benchmark and per evaluated domain.

Both models answer the same items, so the comparison is paired: per item, the share of samples each got
right. With one sample per item the outcomes are binary and McNemar's exact test (statsmodels) applies;
with several, a paired permutation test (scipy) flips the sign of each item's difference. Intervals come
from a paired item bootstrap (`metrics.paired_bootstrap`).

One comparison, one test: `paired_tests` runs each test once (items in a fixed order, since the
permutation test draws its sign flips per item position) and `benchmark_effects` and `transfer_matrix`
show its p-values rather than testing again. A domain row over a single benchmark is the same comparison
as that benchmark's row, and reuses its result (`ResultCache`); so does the flexible policy's analysis
wherever its per-item scores equal the strict ones (its bootstrap intervals too).

`column` names the per-sample score to compare (`correct`, the strict policy, by default), so the
flexible policy runs through exactly the same code.

`exclude` everywhere holds (pair name, benchmark) cells that must not be compared (e.g. base and RPT
sampled with different settings); `comparability.py` decides them and the report says why.
"""

from collections.abc import Callable, Collection, MutableMapping, Sequence
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from rpt_transfer.analysis.metrics import paired_bootstrap, standard_error
from rpt_transfer.analysis.permutation import sign_flip_p_value
from rpt_transfer.analysis.tables import SEEN, UNSEEN, PairInfo

PERMUTATIONS = 10_000
PERMUTATION_BATCH = 1_000
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
EFFECT_COLUMNS = (
    "pair",
    "algorithm",
    "backbone",
    "benchmark",
    "benchmark_domain",
    "seen",
    "n_items",
    "base_accuracy",
    "rpt_accuracy",
    "delta",
    "delta_se",
    "delta_low",
    "delta_high",
    "relative_delta",
    "relative_low",
    "relative_high",
    "test",
    "p_value",
    "rpt_correct",
    "rpt_samples",
    "base_correct",
    "base_samples",
)
MATRIX_COLUMNS = (
    "train_domain",
    "eval_domain",
    "pair",
    "n_items",
    "delta",
    "p_value",
    "algorithm",
    "backbone",
)
_KEYS = ["benchmark", "benchmark_domain", "item_id"]

ResultCache = MutableMapping[tuple[Any, ...], Any]
"""Results by what computed them and the exact per-item scores it read, so an identical comparison is
never tested (or bootstrapped) twice; results are deterministic in their inputs, so reuse changes nothing."""
_T = TypeVar("_T")


def item_scores(scores: pd.DataFrame, column: str = "correct") -> pd.DataFrame:
    """Per (model, benchmark, item): mean of `column` over its samples, the sample count and their sum.

    The output names the mean `correct` whichever column it came from, so everything downstream is
    one code path for both scoring policies.
    """
    grouped = scores.groupby(["model", *_KEYS], sort=False)[column]
    return pd.DataFrame(
        {"correct": grouped.mean(), "n_samples": grouped.size(), "correct_sum": grouped.sum()}
    ).reset_index()


def paired_items(
    items: pd.DataFrame,
    pair: PairInfo,
    rows: pd.Series | None = None,
    exclude: Collection[tuple[str, str]] = (),
) -> pd.DataFrame:
    """The items both models of a pair answered (optionally only `rows` of `items`), side by side."""
    chosen = items if rows is None else items[rows]
    dropped = {bench for name, bench in exclude if name == pair.name}
    if dropped:
        chosen = chosen[~chosen["benchmark"].isin(dropped)]
    base = chosen[chosen["model"] == pair.base_model]
    rpt = chosen[chosen["model"] == pair.rpt_model]
    return base.merge(rpt, on=_KEYS, suffixes=("_base", "_rpt"))


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
    p_value = sign_flip_p_value(base, rpt, resamples=PERMUTATIONS, batch=PERMUTATION_BATCH, seed=SEED)
    return "permutation", p_value  # scipy's permutation_test p-value, computed without its Python loop


def once(
    cache: ResultCache | None,
    name: tuple[Any, ...],
    base: np.ndarray,
    rpt: np.ndarray,
    run: Callable[[np.ndarray, np.ndarray], _T],
) -> _T:
    """`run(base, rpt)`, computed once per (name, base, rpt) when a cache is given."""
    if cache is None:
        return run(base, rpt)
    key = (
        *name,
        np.ascontiguousarray(base, dtype=float).tobytes(),
        np.ascontiguousarray(rpt, dtype=float).tobytes(),
    )
    if key not in cache:
        cache[key] = run(base, rpt)
    return cache[key]


def tested(base: np.ndarray, rpt: np.ndarray, cache: ResultCache | None = None) -> tuple[str, float]:
    """`paired_test`, run once per distinct (base, rpt) input when a cache is given."""
    return once(cache, ("test",), base, rpt, paired_test)


def paired_tests(
    scores: pd.DataFrame,
    pairs: Sequence[PairInfo],
    exclude: Collection[tuple[str, str]] = (),
    *,
    column: str = "correct",
    cache: ResultCache | None = None,
) -> pd.DataFrame:
    """One paired test per pair and benchmark, and per pair and benchmark domain (items pooled).

    This is the only place a comparison is tested; the effects table and the transfer matrix show
    these p-values. A domain with one benchmark is the same comparison as that benchmark and gets the
    same result (pass `cache` to share results with another call, e.g. the other scoring policy).
    """
    cache = {} if cache is None else cache
    items = item_scores(scores, column)
    records = []
    for pair in pairs:
        paired = paired_items(items, pair, exclude=exclude)
        groups = [("benchmark", name) for name in sorted(items["benchmark"].unique())]
        groups += [("benchmark_domain", name) for name in sorted(items["benchmark_domain"].unique())]
        for level, name in groups:
            both = paired[paired[level] == name]
            if both.empty:
                continue
            both = both.sort_values(["benchmark", "item_id"])  # the same draws whatever order rows came in
            test, p_value = tested(both["correct_base"].to_numpy(), both["correct_rpt"].to_numpy(), cache)
            label = name if level == "benchmark" else f"domain:{name}"
            base_acc, rpt_acc = both["correct_base"].mean(), both["correct_rpt"].mean()
            delta = rpt_acc - base_acc
            records.append((pair.name, label, len(both), base_acc, rpt_acc, delta, test, p_value))
    return pd.DataFrame.from_records(records, columns=list(TEST_COLUMNS))


def benchmark_effects(
    scores: pd.DataFrame,
    pairs: Sequence[PairInfo],
    exclude: Collection[tuple[str, str]] = (),
    *,
    tests: pd.DataFrame | None = None,
    resamples: int = 2_000,
    seed: int = SEED,
    column: str = "correct",
    cache: ResultCache | None = None,
) -> pd.DataFrame:
    """Per pair and benchmark: absolute and relative delta with paired bootstrap intervals and test.

    Over the items both models answered. `delta_se` is the standard error of the mean per-item
    difference. Sample counts per model feed the CMH tables (`cmh.py`). `test` and `p_value` are those
    of `tests` (the `paired_tests` table of the same scores, column and exclusions; computed here when
    not given), so a comparison shows one p-value everywhere. `cache` reuses bootstrap intervals of
    identical per-item scores (e.g. the other policy's, where both policies agree on every item).
    """
    if tests is None:
        tests = paired_tests(scores, pairs, exclude, column=column)
    results = tests.set_index(["pair", "group"])[["test", "p_value"]]
    items = item_scores(scores, column)
    records = []
    for pair in pairs:
        both = paired_items(items, pair, exclude=exclude)
        for (benchmark, domain), cell in both.groupby(["benchmark", "benchmark_domain"], sort=True):
            cell = cell.sort_values("item_id")  # the same draws whatever order the rows came in
            base, rpt = cell["correct_base"].to_numpy(), cell["correct_rpt"].to_numpy()
            delta, relative = once(
                cache,
                ("bootstrap", resamples, seed),
                base,
                rpt,
                lambda b, r: paired_bootstrap(b, r, resamples=resamples, seed=seed),
            )
            if (pair.name, benchmark) not in results.index:
                raise ValueError(
                    f"paired tests lack pair {pair.name!r} on {benchmark!r}; pass the same scores"
                )
            test, p_value = results.loc[(pair.name, benchmark)]
            records.append(
                {
                    "pair": pair.name,
                    "algorithm": pair.algorithm,
                    "backbone": pair.base_model,
                    "benchmark": benchmark,
                    "benchmark_domain": domain,
                    "seen": SEEN if domain in pair.rpt_domains else UNSEEN,
                    "n_items": len(cell),
                    "base_accuracy": base.mean(),
                    "rpt_accuracy": rpt.mean(),
                    "delta": delta.estimate,
                    "delta_se": standard_error(rpt - base),
                    "delta_low": delta.low,
                    "delta_high": delta.high,
                    "relative_delta": relative.estimate,
                    "relative_low": relative.low,
                    "relative_high": relative.high,
                    "test": test,
                    "p_value": p_value,
                    "rpt_correct": cell["correct_sum_rpt"].sum(),
                    "rpt_samples": int(cell["n_samples_rpt"].sum()),
                    "base_correct": cell["correct_sum_base"].sum(),
                    "base_samples": int(cell["n_samples_base"].sum()),
                }
            )
    return pd.DataFrame.from_records(records, columns=list(EFFECT_COLUMNS))


def transfer_matrix(tests: pd.DataFrame, pairs: Sequence[PairInfo]) -> pd.DataFrame:
    """Train domain x evaluated domain: item-pooled delta and its paired p-value, per single-domain pair.

    Pairs trained on several domains have no single row and are left out. The numbers are the
    `domain:` rows of `paired_tests`, computed from the same per-item scores; `algorithm` and `backbone`
    (the base model) say which slice of an interventional study a row belongs to.
    """
    single = {pair.name: pair for pair in pairs if len(pair.rpt_domains) == 1}
    rows = tests[tests["group"].str.startswith("domain:") & tests["pair"].isin(single)]
    matrix = pd.DataFrame(
        {
            "train_domain": rows["pair"].map(lambda name: single[name].rpt_domains[0]),
            "eval_domain": rows["group"].str.removeprefix("domain:"),
            "pair": rows["pair"],
            "n_items": rows["n_items"],
            "delta": rows["delta"],
            "p_value": rows["p_value"],
            "algorithm": rows["pair"].map(lambda name: single[name].algorithm),
            "backbone": rows["pair"].map(lambda name: single[name].base_model),
        }
    )
    return matrix.reset_index(drop=True)[list(MATRIX_COLUMNS)]
