"""From per-benchmark effects to domains: aggregate deltas, seen versus unseen, CMH, Transferability Index.

Everything here is a pure function of the `transfer.benchmark_effects` table, so every pooled number
traces back to rows a reader can see.

Definitions (also printed in the report):

- `delta_weighted`: sum over benchmarks of n_items x delta, divided by the sum of n_items (a benchmark
  weighs by its number of items, as the paper's count-weighted mean); `delta_unweighted`: plain mean of
  the benchmarks' deltas; `mean_relative_delta`: plain mean of the benchmarks' relative deltas, those
  with a base accuracy of 0 left out.
- `delta_weighted_se`: the standard error of `delta_weighted`, sqrt(sum w_b^2 se_b^2) / sum w_b with
  w_b = n_items and se_b the benchmark's paired item-level `delta_se`, since benchmarks are independent
  samples of items; `delta_weighted_low` / `delta_weighted_high`: the normal `CONFIDENCE` (95 %) interval
  delta_weighted -/+ z x se. It is NaN when any pooled benchmark's `delta_se` is (fewer than two items).
  It measures item sampling only, given the pairs and benchmarks: for the "all pairs" rows it treats the
  pairs' cells as independent too, although pairs sharing a base model or a benchmark share items, so
  there it is narrower than an interval that allowed for that (or for the choice of pairs) would be.
- The "all pairs" rows pool every pair: `delta_weighted` over all pair x benchmark cells, the unweighted
  and relative means as the mean of the per-pair values (each pair counts once), CMH over all cells.
- Transferability Index (after Huan et al., 2025, arXiv:2507.00432): for a pair, ΔR_g is the mean over
  benchmarks in group g of (rpt - base) / base. TI(target) = ΔR_target / ΔR_trained, where trained is
  the pair's seen benchmarks and target is all unseen ones or one unseen domain. It is only defined when
  ΔR_trained >= `MIN_TRAINED_GAIN` (1 %): with no real gain on the trained domain there is nothing to
  transfer, and a negative denominator would flip the sign (a loss elsewhere would read as transfer).
  Undefined cells are NaN with the reason in `status`. TI = 1 means the same relative gain off-domain.
"""

from collections.abc import Sequence
from statistics import NormalDist

import numpy as np
import pandas as pd

from rpt_transfer.analysis.cmh import cmh
from rpt_transfer.analysis.metrics import CONFIDENCE
from rpt_transfer.analysis.tables import SEEN, UNSEEN, PairInfo

ALL_PAIRS = "all pairs"
MIN_TRAINED_GAIN = 0.01
DOMAIN_COLUMNS = (
    "pair",
    "group",
    "n_benchmarks",
    "n_items",
    "delta_weighted",
    "delta_weighted_se",
    "delta_weighted_low",
    "delta_weighted_high",
    "delta_unweighted",
    "mean_relative_delta",
    "cmh_odds_ratio",
    "cmh_p_value",
)
TI_COLUMNS = (
    "pair",
    "target",
    "n_trained",
    "n_target",
    "relative_gain_trained",
    "relative_gain_target",
    "transferability_index",
    "status",
)
GROUPED_COLUMNS = (
    "by",
    "value",
    "train_domain",
    "eval_domain",
    "n_pairs",
    "n_items",
    "delta_weighted",
    "mean_pair_delta",
    "cmh_odds_ratio",
    "cmh_p_value",
)


def groups_of(effects: pd.DataFrame) -> list[tuple[str, pd.Series]]:
    """Each domain's rows, then the seen and the unseen rows, as (label, mask)."""
    domains = sorted(effects["benchmark_domain"].unique())
    labels = [(f"domain:{d}", effects["benchmark_domain"] == d) for d in domains]
    return labels + [(kind, effects["seen"] == kind) for kind in (SEEN, UNSEEN)]


def domain_effects(effects: pd.DataFrame) -> pd.DataFrame:
    """Per pair (and for all pairs) x domain / seen / unseen: pooled deltas and the CMH odds ratio."""
    records = []
    pair_order = list(dict.fromkeys(effects["pair"]))
    for label, mask in groups_of(effects):
        chosen = effects[mask]
        per_pair = []
        for pair in pair_order:
            rows = chosen[chosen["pair"] == pair]
            if rows.empty:
                continue
            per_pair.append(_pooled(rows, pair, label))
        records += per_pair
        if len(pair_order) > 1 and per_pair:
            everyone = _pooled(chosen, ALL_PAIRS, label)
            everyone["delta_unweighted"] = float(np.mean([r["delta_unweighted"] for r in per_pair]))
            everyone["mean_relative_delta"] = _nanmean([r["mean_relative_delta"] for r in per_pair])
            records.append(everyone)
    frame = pd.DataFrame.from_records(records, columns=list(DOMAIN_COLUMNS))
    order = {name: i for i, name in enumerate([*pair_order, ALL_PAIRS])}
    return frame.sort_values("pair", key=lambda col: col.map(order), kind="stable").reset_index(drop=True)


def transferability(effects: pd.DataFrame, *, min_trained_gain: float = MIN_TRAINED_GAIN) -> pd.DataFrame:
    """Per pair: TI of all unseen benchmarks and of each unseen domain against the trained (seen) ones."""
    records = []
    for pair, rows in effects.groupby("pair", sort=False):
        trained = rows[rows["seen"] == SEEN]
        gain = _nanmean(trained["relative_delta"])
        n_trained = int(trained["relative_delta"].notna().sum())
        unseen = rows[rows["seen"] == UNSEEN]
        targets = [("unseen", unseen)]
        targets += [(f"domain:{d}", part) for d, part in unseen.groupby("benchmark_domain", sort=True)]
        for target, part in targets:
            value = _nanmean(part["relative_delta"])
            n_target = int(part["relative_delta"].notna().sum())
            index, status = _index(gain, value, n_trained, n_target, min_trained_gain)
            records.append((pair, target, n_trained, n_target, gain, value, index, status))
    return pd.DataFrame.from_records(records, columns=list(TI_COLUMNS))


def grouped_matrix(effects: pd.DataFrame, pairs: Sequence[PairInfo], by: str) -> pd.DataFrame:
    """Train domain x evaluated domain per algorithm or per backbone, pooling single-domain pairs.

    `mean_pair_delta` averages the pairs' item-weighted domain deltas (each pair once); the CMH pools
    all their benchmarks of the evaluated domain. Pairs trained on several domains are left out, as in
    `transfer.transfer_matrix`.
    """
    if by not in ("algorithm", "backbone"):
        raise ValueError(f"by must be 'algorithm' or 'backbone', got {by!r}")
    one = {pair.name: pair.rpt_domains[0] for pair in pairs if len(pair.rpt_domains) == 1}
    chosen = effects[effects["pair"].isin(one)].assign(train_domain=lambda f: f["pair"].map(one))
    records = []
    keys = [by, "train_domain", "benchmark_domain"]
    for (value, train, evaluated), rows in chosen.groupby(keys, sort=True):
        pair_deltas = [_weighted(part) for _, part in rows.groupby("pair")]
        result = cmh(rows)
        records.append(
            (by, value, train, evaluated, len(pair_deltas), int(rows["n_items"].sum()), _weighted(rows),
             float(np.mean(pair_deltas)), result.odds_ratio, result.p_value)
        )  # fmt: skip
    return pd.DataFrame.from_records(records, columns=list(GROUPED_COLUMNS))


def _pooled(rows: pd.DataFrame, pair: str, label: str) -> dict:
    result = cmh(rows)
    delta, se = _weighted(rows), _weighted_se(rows)
    half = NormalDist().inv_cdf(0.5 + CONFIDENCE / 2) * se
    return {
        "pair": pair,
        "group": label,
        "n_benchmarks": len(rows),
        "n_items": int(rows["n_items"].sum()),
        "delta_weighted": delta,
        "delta_weighted_se": se,
        "delta_weighted_low": delta - half,
        "delta_weighted_high": delta + half,
        "delta_unweighted": float(rows["delta"].mean()),
        "mean_relative_delta": _nanmean(rows["relative_delta"]),
        "cmh_odds_ratio": result.odds_ratio,
        "cmh_p_value": result.p_value,
    }


def _weighted(rows: pd.DataFrame) -> float:
    """Item-weighted mean delta."""
    return float(np.average(rows["delta"], weights=rows["n_items"]))


def _weighted_se(rows: pd.DataFrame) -> float:
    """Standard error of the item-weighted mean delta: sqrt(sum w^2 se^2) / sum w, w = n_items.

    Benchmarks are independent samples of items, so their means' variances add; NaN propagates (a
    benchmark without a standard error leaves the pooled one unknown rather than quietly smaller).
    """
    weights = rows["n_items"].to_numpy(dtype=float)
    errors = rows["delta_se"].to_numpy(dtype=float)
    return float(np.sqrt(np.sum(weights**2 * errors**2)) / weights.sum())


def _nanmean(values: Sequence[float] | pd.Series) -> float:
    """Mean of the finite values; NaN (not a warning) when there are none."""
    array = np.asarray(values, dtype=float)
    array = array[~np.isnan(array)]
    return float(array.mean()) if array.size else float("nan")


def _index(gain: float, value: float, n_trained: int, n_target: int, minimum: float) -> tuple[float, str]:
    """TI and its status; NaN with the reason when the ratio would mislead."""
    if n_trained == 0:
        return float("nan"), "undefined: no trained-domain benchmark with a non-zero base accuracy"
    if n_target == 0:
        return float("nan"), "undefined: no target benchmark with a non-zero base accuracy"
    if gain < minimum:
        return float("nan"), f"undefined: trained-domain relative gain {gain:+.1%} below {minimum:.0%}"
    return value / gain, "ok"
