"""Issue 10 §8: the fast paired test and bootstrap give the numbers of the first versions, to the last bit.

References: scipy's `permutation_test` exactly as `paired_test` called it before, and the first
`resampled_means` / `accuracy_intervals` (copied here). Inputs cover every path of the fast code: values
whose sums are exact in float32 or float64 (per-item means of 1 or 16 samples), values that are not
(means of 3 samples, arbitrary fractions), differences that cancel to an observed mean of 0 (where only
rounding decides ties), scipy's exact test for few items, and chunk sizes that leave one resample alone.
"""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import permutation_test

from rpt_transfer.analysis import metrics
from rpt_transfer.analysis.metrics import (
    CONFIDENCE,
    accuracy_intervals,
    bootstrap_ci,
    exact_type,
    resampled_means,
)
from rpt_transfer.analysis.permutation import sign_flip_p_value
from rpt_transfer.analysis.transfer import PERMUTATION_BATCH, PERMUTATIONS, SEED, paired_test


def scipy_p_value(base: np.ndarray, rpt: np.ndarray) -> float:
    """The p-value `paired_test` took from scipy before (same arguments)."""
    return float(
        permutation_test(
            (rpt, base),
            lambda x, y, axis: np.mean(x - y, axis=axis),
            vectorized=True,
            batch=PERMUTATION_BATCH,
            permutation_type="samples",
            n_resamples=PERMUTATIONS,
            alternative="two-sided",
            random_state=SEED,
        ).pvalue
    )


def first_resampled_means(columns: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """`metrics.resampled_means` as it was first written."""
    columns = np.asarray(columns, dtype=float)
    if columns.ndim == 1:
        columns = columns[:, None]
    n = len(columns)
    rng = np.random.default_rng(seed)
    chunk = max(1, metrics._CHUNK_CELLS // max(n, 1))
    out = np.empty((resamples, columns.shape[1]))
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        draws = rng.integers(0, n, size=(size, n))
        out[start : start + size] = columns[draws].mean(axis=1)
    return out


def values(kind: str, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    if kind == "binary":
        return rng.integers(0, 2, shape).astype(float)
    if kind == "sixteenths":  # per-item means of 16 samples (AIME, AMC): sums exact in float32
        return rng.integers(0, 17, shape) / 16
    if kind == "fine":  # multiples of 2**-20: exact in float64 only
        return rng.integers(0, 2**20, shape) / 2**20
    if kind == "thirds":  # means of 3 samples: no exact sums, summed in the first version's order
        return rng.integers(0, 4, shape) / 3
    return rng.random(shape)


KINDS = ["binary", "sixteenths", "fine", "thirds", "random"]


@pytest.mark.parametrize(
    ("values_", "terms", "expected"),
    [
        ([0.0, 1.0, 1.0], 1_000, np.float32),
        ([0.0625, 0.5, 1.0], 30, np.float32),
        ([0.0625, -1.0], 2**21, np.float64),  # 2**21 * 16 units exceed float32's 2**24
        ([1 / 2**20, 1.0], 100, np.float64),
        ([1 / 3, 2 / 3], 10, None),
        ([0.1], 10, None),
        ([1.0, np.nan], 10, None),
        ([], 10, None),
    ],
)
def test_exact_type(values_, terms, expected) -> None:
    assert exact_type(np.array(values_, dtype=float), terms) is expected


@pytest.mark.parametrize("kind", [*KINDS, "cancelling"])
def test_paired_permutation_p_values_equal_scipy(kind: str) -> None:
    rng = np.random.default_rng(KINDS.index(kind) if kind in KINDS else 99)
    compared = 0
    for n in [2, 5, 13, 14, 20, 31, 64, 150]:  # up to 13 items scipy enumerates every sign pattern
        for _ in range(2):
            base = values("sixteenths" if kind == "cancelling" else kind, rng, (n,))
            rpt = values("sixteenths" if kind == "cancelling" else kind, rng, (n,))
            if kind == "cancelling":  # two items differ by +1/16 and -1/16: the observed mean is 0
                rpt = base.copy()
                up, down = rng.permutation(n)[:2]
                rpt[up], rpt[down] = rpt[up] + 1 / 16, rpt[down] - 1 / 16
            if np.allclose(base, rpt):
                continue
            expected = scipy_p_value(base, rpt)
            got = sign_flip_p_value(base, rpt, resamples=PERMUTATIONS, batch=PERMUTATION_BATCH, seed=SEED)
            assert got == expected, (kind, n, got, expected)
            if not (np.isin(base, (0, 1)).all() and np.isin(rpt, (0, 1)).all()):
                assert paired_test(base, rpt) == ("permutation", expected)
            compared += 1
    assert compared >= 10


def test_one_item_fails_as_scipy_does() -> None:
    with pytest.raises(ValueError):
        scipy_p_value(np.array([0.5]), np.array([0.25]))
    with pytest.raises(ValueError):
        sign_flip_p_value(np.array([0.5]), np.array([0.25]), resamples=PERMUTATIONS, batch=1_000, seed=0)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("width", [1, 2, 3])
def test_resampled_means_equal_the_first_version(kind: str, width: int) -> None:
    rng = np.random.default_rng(KINDS.index(kind) * 10 + width)
    for n, resamples, seed in [(1, 50, 0), (7, 300, 1), (129, 2_000, 0), (1_319, 2_000, 0), (3_000, 700, 2)]:
        columns = values(kind, rng, (n, width))
        expected = first_resampled_means(columns, resamples, seed)
        np.testing.assert_array_equal(resampled_means(columns, resamples=resamples, seed=seed), expected)


@pytest.mark.parametrize("kind", ["sixteenths", "thirds"])
def test_chunks_of_one_resample_sum_as_before(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    for n, per_chunk, resamples in [(30, 3, 7), (200, 2, 9), (45, 4, 9)]:  # last chunk: one resample
        monkeypatch.setattr(metrics, "_CHUNK_CELLS", n * per_chunk)
        columns = values(kind, rng, (n, 2))
        expected = first_resampled_means(columns, resamples, 1)
        np.testing.assert_array_equal(resampled_means(columns, resamples=resamples, seed=1), expected)


def test_accuracy_intervals_equal_the_first_version() -> None:
    rng = np.random.default_rng(8)
    records = []
    for model in ("a", "b", "c"):
        for bench, items, samples in [("one", 40, 1), ("sixteen", 12, 16), ("three", 25, 3), ("odd", 40, 1)]:
            for item in range(items - (model == "c")):  # model c lacks an item: its own item count
                for sample in range(samples):
                    records.append((model, bench, f"{bench}-{item:03d}", sample, float(rng.random() < 0.4)))
    scores = pd.DataFrame.from_records(
        records, columns=["model", "benchmark", "item_id", "sample_index", "correct"]
    )
    expected = []
    for (model, bench), means in (
        scores.groupby(["model", "benchmark", "item_id"])["correct"]
        .mean()
        .groupby(level=["model", "benchmark"])
    ):
        value = means.sort_index().to_numpy()
        boot = first_resampled_means(value, 2_000, 0)[:, 0]
        expected.append((model, bench, *percentiles(boot)))
    got = accuracy_intervals(scores)
    assert list(
        zip(got["model"], got["benchmark"], got["accuracy_low"], got["accuracy_high"], strict=True)
    ) == [(m, b, float(low), float(high)) for m, b, low, high in expected]
    first = bootstrap_ci(np.array([[1.0], [0.0], [0.5]]), resamples=100, seed=3)
    assert (first.low, first.high) == percentiles(
        first_resampled_means(np.array([1.0, 0.0, 0.5]), 100, 3)[:, 0]
    )


def percentiles(boot: np.ndarray) -> tuple[float, float]:
    """The percentile interval as the code words it (its tails are 2.5000000000000022 and 97.49...)."""
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(boot, [tail, 100 - tail])
    return float(low), float(high)
