"""Per-item metrics: pass@1 and pass@k, correctness matrices, standard errors and item bootstrap intervals.

The unit of analysis is the item. Samples are nested within items (several samples of one prompt are not
independent draws of the benchmark), so every interval here resamples items and keeps each item's samples
together, and every standard error is taken over per-item means.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pandas as pd

BOOTSTRAP_RESAMPLES = 2_000
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95
_CHUNK_CELLS = 2_000_000
"""Most resample x item cells drawn at once, so large benchmarks do not need gigabytes of indices."""


class Interval(NamedTuple):
    """A point estimate with its lower and upper confidence bounds."""

    estimate: float
    low: float
    high: float


def correctness_matrix(scores: pd.DataFrame) -> pd.DataFrame:
    """Items x sample indices of one model on one benchmark; NaN where an item has fewer samples.

    Raises ValueError when `scores` holds more than one model x benchmark cell, since mixing cells would
    pool items of different benchmarks.
    """
    cells = scores[["model", "benchmark"]].drop_duplicates()
    if len(cells) > 1:
        raise ValueError(f"one model x benchmark expected, got {len(cells)}: {cells.values.tolist()[:3]}")
    return scores.pivot(index="item_id", columns="sample_index", values="correct").sort_index()


def pass_at_1(matrix: pd.DataFrame | np.ndarray) -> float:
    """Mean over items of each item's mean over its samples (missing samples ignored)."""
    return float(np.nanmean(item_means(matrix))) if len(matrix) else float("nan")


def item_means(matrix: pd.DataFrame | np.ndarray) -> np.ndarray:
    """Each item's mean correctness over the samples it has."""
    values = np.asarray(matrix, dtype=float)
    return np.nanmean(values, axis=1) if values.size else np.zeros(0)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one item with `c` correct of `n` samples: 1 - C(n-c, k) / C(n, k).

    Computed as a product (Chen et al., 2021) so large n does not overflow. k > n has no unbiased
    estimate from n samples and is refused rather than silently capped.
    """
    if not 0 <= c <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n, got c={c}, n={n}")
    if k < 1 or k > n:
        raise ValueError(f"pass@{k} cannot be estimated from {n} samples per item (need 1 <= k <= n)")
    if n - c < k:
        return 1.0
    return 1.0 - float(np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def mean_pass_at_k(matrix: pd.DataFrame | np.ndarray, k: int) -> float:
    """pass@k averaged over items; every outcome must be 0 or 1 and each item has its own n."""
    values = np.asarray(matrix, dtype=float)
    present = ~np.isnan(values)
    if not np.isin(values[present], (0.0, 1.0)).all():
        raise ValueError("pass@k needs 0/1 outcomes; fractional scores have no pass@k")
    n = present.sum(axis=1)
    c = np.nansum(values, axis=1).astype(int)
    return float(np.mean([pass_at_k(int(ni), int(ci), k) for ni, ci in zip(n, c, strict=True)]))


def standard_error(values: np.ndarray) -> float:
    """Standard error of the mean over items: sample sd (ddof 1) / sqrt(items); NaN below two items."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return float("nan")
    return float(np.std(values, ddof=1) / math.sqrt(len(values)))


def resampled_means(
    columns: np.ndarray, *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> np.ndarray:
    """Bootstrap means of each column of items x columns, all columns sharing the same item draws.

    Sharing the draws is what makes a paired interval paired: base and RPT means of one resample come
    from the same items. Returns resamples x columns.
    """
    columns = np.asarray(columns, dtype=float)
    if columns.ndim == 1:
        columns = columns[:, None]
    n = len(columns)
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_CELLS // max(n, 1))
    out = np.empty((resamples, columns.shape[1]))
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        draws = rng.integers(0, n, size=(size, n))
        out[start : start + size] = columns[draws].mean(axis=1)
    return out


def bootstrap_ci(
    matrix: pd.DataFrame | np.ndarray,
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    confidence: float = CONFIDENCE,
) -> Interval:
    """Percentile interval of pass@1, resampling items (each with all its samples); seeded, reproducible."""
    means = item_means(matrix)
    if len(means) == 0:
        return Interval(float("nan"), float("nan"), float("nan"))
    boot = resampled_means(means, resamples=resamples, seed=seed)[:, 0]
    return Interval(float(means.mean()), *_percentiles(boot, confidence))


def paired_bootstrap(
    base: np.ndarray,
    rpt: np.ndarray,
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    confidence: float = CONFIDENCE,
) -> tuple[Interval, Interval]:
    """Intervals of RPT - base and of (RPT - base) / base over paired per-item means, same item draws.

    The relative interval is NaN when the base mean is 0 on the full data; resamples whose base mean
    is 0 are dropped from it (they have no ratio).
    """
    base, rpt = np.asarray(base, dtype=float), np.asarray(rpt, dtype=float)
    nan = Interval(float("nan"), float("nan"), float("nan"))
    if len(base) == 0:
        return nan, nan
    boot = resampled_means(np.column_stack([base, rpt]), resamples=resamples, seed=seed)
    delta = Interval(float(rpt.mean() - base.mean()), *_percentiles(boot[:, 1] - boot[:, 0], confidence))
    if base.mean() == 0:
        return delta, nan
    ok = boot[:, 0] > 0
    ratio = (boot[ok, 1] - boot[ok, 0]) / boot[ok, 0]
    relative = Interval(float((rpt.mean() - base.mean()) / base.mean()), *_percentiles(ratio, confidence))
    return delta, relative


def _percentiles(values: np.ndarray, confidence: float) -> tuple[float, float]:
    """Equal-tailed percentile bounds."""
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def accuracy_intervals(
    scores: pd.DataFrame, *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> pd.DataFrame:
    """Per model x benchmark: standard error and item-bootstrap interval of pass@1.

    Items are sorted by id before resampling, so the interval does not depend on row order.
    """
    per_item = scores.groupby(["model", "benchmark", "item_id"])["correct"].mean()
    records = []
    for (model, benchmark), means in per_item.groupby(level=["model", "benchmark"], sort=True):
        values = means.sort_index().to_numpy()
        interval = bootstrap_ci(values[:, None], resamples=resamples, seed=seed)
        records.append((model, benchmark, standard_error(values), interval.low, interval.high))
    columns = ["model", "benchmark", "accuracy_se", "accuracy_low", "accuracy_high"]
    return pd.DataFrame.from_records(records, columns=columns)
