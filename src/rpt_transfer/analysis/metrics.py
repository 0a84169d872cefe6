"""Per-item metrics: pass@1 and pass@k, correctness matrices, standard errors and item bootstrap intervals.

The unit of analysis is the item. Samples are nested within items (several samples of one prompt are not
independent draws of the benchmark), so every interval here resamples items and keeps each item's samples
together, and every standard error is taken over per-item means.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
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

    The numbers are those of the first version, `columns[draws].mean(axis=1)` over draws made in chunks,
    to the last bit, only faster: every call with the same item count, resamples and seed draws the
    same items, so each item's count per resample is made once and kept (`_item_counts`), and where every
    sum of the values is exact in floating point (`exact_type`: per-item means of 1, 2, 4, ... 16
    samples) a resample's sum is its counts times the values, whatever the order of adding. Other values
    are summed in the first version's order: pairwise for one column, item by item for several.
    """
    columns = np.asarray(columns, dtype=float)
    if columns.ndim == 1:
        columns = columns[:, None]
    n, width = columns.shape
    if width == 1:
        return _each_resampled([columns[:, 0]], resamples=resamples, seed=seed)
    out = np.full((resamples, width), np.nan)
    if n == 0:  # what the first version gave: no items have a NaN mean
        return out
    chunk = max(1, _CHUNK_CELLS // n)
    kind = exact_type(columns, n)
    if kind is not None:
        return _counted_means(columns, _item_counts(n, resamples, seed, chunk), kind)
    rng = np.random.default_rng(seed)
    for start in range(0, resamples, chunk):
        draws = rng.integers(0, n, size=(min(chunk, resamples - start), n))
        if len(draws) == 1:  # one resample: numpy summed its (1, n, k) gather pairwise
            out[start] = columns[draws].mean(axis=1)[0]
            continue
        by_item = np.ascontiguousarray(draws.T)
        for c in range(width):
            # items x resamples summed over items one at a time, as the strided (size, n, k) mean did
            out[start : start + len(draws), c] = np.add.reduce(columns[:, c][by_item], axis=0) / n
    return out


def _each_resampled(columns: Sequence[np.ndarray], *, resamples: int, seed: int) -> np.ndarray:
    """Resamples x columns: each column's bootstrap means as `resampled_means` gives them for it alone.

    Columns of one length share the draws, made once for all of them (one draw per model and benchmark
    made the accuracy intervals slow); a column whose sums are not exact is summed pairwise, as one column
    was before.
    """
    out = np.full((resamples, len(columns)), np.nan)
    by_length: dict[int, list[int]] = {}
    for index, column in enumerate(columns):
        by_length.setdefault(len(column), []).append(index)
    for n, indices in by_length.items():
        if n == 0:
            continue
        chunk = max(1, _CHUNK_CELLS // n)
        values = np.column_stack([np.asarray(columns[index], dtype=float) for index in indices])
        kinds = [exact_type(values[:, c], n) for c in range(len(indices))]
        for kind in {np.float32, np.float64} & set(kinds):
            chosen = [c for c, other in enumerate(kinds) if other is kind]
            counts = _item_counts(n, resamples, seed, chunk)
            out[:, [indices[c] for c in chosen]] = _counted_means(values[:, chosen], counts, kind)
        rest = [c for c, kind in enumerate(kinds) if kind is None]
        if rest:
            rng = np.random.default_rng(seed)
            for start in range(0, resamples, chunk):
                draws = rng.integers(0, n, size=(min(chunk, resamples - start), n))
                for c in rest:
                    out[start : start + len(draws), indices[c]] = np.ascontiguousarray(values[:, c])[
                        draws
                    ].mean(axis=1)
    return out


def exact_type(values: np.ndarray, terms: int) -> type[np.floating] | None:
    """The narrowest float type in which every sum of up to `terms` of these values is exact, if any.

    Repeats and either sign allowed. Exact when all values are multiples of one power of two (2**-k) and
    `terms` of the largest stay below 2**24 (float32) or 2**53 (float64) such units: then every partial
    sum is representable, so any order of adding gives the same number, the one the first versions got
    by their own order. Per-item means over 1, 2, 4, 8 or 16 samples are such values; over 3 are not.
    """
    values = np.asarray(values, dtype=float)
    if values.size == 0 or not np.isfinite(values).all():
        return None
    for k in range(_MAX_FRACTION_BITS + 1):
        scaled = values * 2.0**k
        if np.array_equal(scaled, np.floor(scaled)):
            units = terms * float(np.abs(scaled).max())
            return np.float32 if units < 2.0**24 else np.float64 if units < 2.0**53 else None
    return None


_MAX_FRACTION_BITS = 24
"""Finest power of two `exact_type` tries (per-item means of up to 2**24 samples)."""


def _counted_means(columns: np.ndarray, counts: np.ndarray, kind: type[np.floating]) -> np.ndarray:
    """Resamples x columns: each resample's mean of the drawn values, from how often it drew each item.

    `counts` (resamples x items, float32) times the values, in `kind` (see `exact_type`).
    """
    n = len(columns)
    if kind is np.float32:
        return (counts @ columns.astype(np.float32)).astype(float) / n
    out = np.empty((len(counts), columns.shape[1]))
    chunk = max(1, _CHUNK_CELLS // n)
    for start in range(0, len(counts), chunk):
        out[start : start + chunk] = (counts[start : start + chunk].astype(float) @ columns) / n
    return out


class _Kept:
    """Read-only arrays kept between calls within a byte budget, the least recently used dropped first."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.arrays: OrderedDict[tuple[int, ...], np.ndarray] = OrderedDict()

    def get(self, key: tuple[int, ...], make: Callable[[], np.ndarray]) -> np.ndarray:
        if key in self.arrays:
            self.arrays.move_to_end(key)
            return self.arrays[key]
        array = make()
        array.flags.writeable = False
        if array.nbytes <= self.budget:
            self.arrays[key] = array
            while sum(kept.nbytes for kept in self.arrays.values()) > self.budget:
                self.arrays.popitem(last=False)
        return array


_COUNTS = _Kept(256 * 2**20)
"""Item counts per resample (the paper study's 16 benchmarks need 206 MB)."""


def _item_counts(n: int, resamples: int, seed: int, chunk: int) -> np.ndarray:
    """Resamples x items: how often each resample draws each item, for the draws the first version made.

    Drawn from one generator in chunks of `chunk` resamples, as before (the draws depend on the chunking),
    and kept as float32 (small whole numbers, exact), ready for a matrix product (`_COUNTS`), since every
    interval over n items draws the same.
    """

    def make() -> np.ndarray:
        rng = np.random.default_rng(seed)
        counts = np.empty((resamples, n), dtype=np.float32)
        for start in range(0, resamples, chunk):
            draws = rng.integers(0, n, size=(min(chunk, resamples - start), n))
            flat = (draws + n * np.arange(len(draws))[:, None]).ravel()
            counts[start : start + len(draws)] = np.bincount(flat, minlength=draws.size).reshape(draws.shape)
        return counts

    return _COUNTS.get((n, resamples, seed, chunk), make)


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
    cells = [
        (model, benchmark, means.sort_index().to_numpy())
        for (model, benchmark), means in per_item.groupby(level=["model", "benchmark"], sort=True)
    ]
    # bootstrap_ci of each cell, with the draws shared by cells of the same number of items
    boots = _each_resampled([item_means(v[:, None]) for *_, v in cells], resamples=resamples, seed=seed)
    records = [
        (model, benchmark, standard_error(values), *_percentiles(boots[:, index], CONFIDENCE))
        for index, (model, benchmark, values) in enumerate(cells)
    ]
    columns = ["model", "benchmark", "accuracy_se", "accuracy_low", "accuracy_high"]
    return pd.DataFrame.from_records(records, columns=columns)
