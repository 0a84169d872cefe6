"""pass@k against the closed form, item bootstrap reproducibility, standard errors, correctness matrices."""

from math import comb

import numpy as np
import pandas as pd
import pytest

from rpt_transfer.analysis.metrics import (
    bootstrap_ci,
    correctness_matrix,
    item_means,
    mean_pass_at_k,
    paired_bootstrap,
    pass_at_1,
    pass_at_k,
    resampled_means,
    standard_error,
)


@pytest.mark.parametrize(
    ("n", "c", "k"),
    [(1, 0, 1), (1, 1, 1), (5, 2, 1), (5, 2, 2), (5, 2, 3), (5, 2, 4), (10, 3, 5), (16, 1, 8), (16, 16, 16),
     (200, 7, 50)],
)  # fmt: skip
def test_pass_at_k_matches_the_closed_form(n: int, c: int, k: int) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(1 - comb(n - c, k) / comb(n, k), abs=1e-12)


def test_pass_at_k_hand_cases_and_refusals() -> None:
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)  # one of four right: pass@1 is the share
    assert pass_at_k(4, 1, 2) == pytest.approx(0.5)  # 1 - C(3,2)/C(4,2) = 1 - 3/6
    assert pass_at_k(4, 2, 3) == 1.0  # any 3 of 4 include a correct one
    assert pass_at_k(3, 0, 3) == 0.0
    with pytest.raises(ValueError, match="pass@5 cannot be estimated from 4 samples"):
        pass_at_k(4, 1, 5)
    with pytest.raises(ValueError, match="0 <= c <= n"):
        pass_at_k(4, 5, 1)


def test_mean_pass_at_k_averages_items_with_their_own_n() -> None:
    matrix = np.array([[1, 0, 0, 0], [1, 1, np.nan, np.nan]])  # item 2 has only 2 samples
    assert mean_pass_at_k(matrix, 1) == pytest.approx((0.25 + 1.0) / 2)
    assert mean_pass_at_k(matrix, 2) == pytest.approx((0.5 + 1.0) / 2)
    with pytest.raises(ValueError, match="pass@3 cannot"):
        mean_pass_at_k(matrix, 3)
    with pytest.raises(ValueError, match="0/1 outcomes"):
        mean_pass_at_k(np.array([[0.5, 1.0]]), 1)


def test_correctness_matrix_and_pass_at_1() -> None:
    scores = pd.DataFrame(
        {
            "model": "m",
            "benchmark": "b",
            "item_id": ["x", "x", "x", "y"],
            "sample_index": [0, 1, 2, 0],
            "correct": [1.0, 0.0, 1.0, 0.0],
        }
    )
    matrix = correctness_matrix(scores)
    assert matrix.shape == (2, 3) and np.isnan(matrix.loc["y", 2])
    assert item_means(matrix).tolist() == pytest.approx([2 / 3, 0.0])
    assert pass_at_1(matrix) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="one model x benchmark"):
        correctness_matrix(pd.concat([scores, scores.assign(model="other")]))


def test_standard_error_is_over_item_means() -> None:
    values = np.array([1.0, 0.0, 0.5, 0.5])
    assert standard_error(values) == pytest.approx(np.std(values, ddof=1) / 2)
    assert np.isnan(standard_error(np.array([1.0])))


def test_bootstrap_is_reproducible_and_resamples_whole_items() -> None:
    rng = np.random.default_rng(7)
    matrix = (rng.random((40, 4)) < 0.6).astype(float)
    first = bootstrap_ci(matrix, resamples=500, seed=3)
    assert bootstrap_ci(matrix, resamples=500, seed=3) == first
    assert bootstrap_ci(matrix, resamples=500, seed=4) != first
    assert first.low < first.estimate < first.high
    assert first.estimate == pytest.approx(matrix.mean())
    # Independent computation: draw item indices with the same generator, average whole items.
    draws = np.random.default_rng(3).integers(0, 40, size=(500, 40))
    expected = np.percentile(matrix.mean(axis=1)[draws].mean(axis=1), [2.5, 97.5])
    assert (first.low, first.high) == pytest.approx(tuple(expected), abs=1e-12)


def test_chunked_resampling_equals_one_draw() -> None:
    values = np.linspace(0, 1, 30)
    from rpt_transfer.analysis import metrics

    whole = resampled_means(values, resamples=100, seed=1)
    old = metrics._CHUNK_CELLS
    metrics._CHUNK_CELLS = 30 * 7  # 7 resamples per chunk
    try:
        chunked = resampled_means(values, resamples=100, seed=1)
    finally:
        metrics._CHUNK_CELLS = old
    assert chunked.shape == (100, 1)
    # Chunks draw from the same generator stream in order, so the draws are the same.
    np.testing.assert_allclose(chunked, whole)


def test_paired_bootstrap_shares_item_draws() -> None:
    base = np.array([0.0, 0.5, 1.0, 0.0, 0.25, 0.75])
    rpt = base + 0.1  # the same shift on every item: every resample's delta is exactly 0.1
    delta, relative = paired_bootstrap(base, rpt, resamples=300, seed=0)
    assert (delta.estimate, delta.low, delta.high) == pytest.approx((0.1, 0.1, 0.1))
    assert relative.estimate == pytest.approx(0.1 / base.mean())
    zero = paired_bootstrap(np.zeros(3), np.ones(3), resamples=50)[1]
    assert np.isnan(zero.estimate) and np.isnan(zero.low)
