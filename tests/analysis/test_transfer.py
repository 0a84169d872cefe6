"""Paired tests over items and the transfer matrix, checked against hand computations."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest, permutation_test

from rpt_transfer.analysis.tables import PairInfo
from rpt_transfer.analysis.transfer import paired_test, paired_tests, transfer_matrix

PAIRS = [
    PairInfo("m-grpo", "m", "base", ("math",), "grpo"),
    PairInfo("k-grpo", "k", "base", ("knowledge",), "grpo"),
]


def rows(model: str, benchmark: str, domain: str, outcomes: list[list[int]]) -> list[dict]:
    return [
        {"model": model, "benchmark": benchmark, "benchmark_domain": domain, "item_id": f"{benchmark}-{i}",
         "sample_index": s, "correct": float(c)}
        for i, samples in enumerate(outcomes)
        for s, c in enumerate(samples)
    ]  # fmt: skip


def test_mcnemar_counts_discordant_items() -> None:
    base = np.array([1, 1, 0, 0, 0, 1, 0, 0], dtype=float)
    rpt = np.array([1, 0, 1, 1, 1, 1, 1, 0], dtype=float)
    test, p_value = paired_test(base, rpt)
    # discordant: base-only 1, rpt-only 4 -> exact two-sided binomial on 5 trials
    assert test == "mcnemar_exact"
    assert p_value == pytest.approx(binomtest(1, 5, 0.5).pvalue, abs=1e-12)


def test_several_samples_use_a_reproducible_paired_permutation_test() -> None:
    base = np.array([0.25, 0.5, 0.0, 0.75, 0.5, 0.25])
    rpt = np.array([0.75, 0.5, 0.5, 1.0, 0.75, 0.5])
    test, p_value = paired_test(base, rpt)
    direct = permutation_test(
        (rpt, base), lambda x, y: np.mean(x - y), permutation_type="samples", n_resamples=10_000,
        alternative="two-sided", random_state=0,
    ).pvalue  # fmt: skip
    assert test == "permutation" and p_value == pytest.approx(direct, abs=1e-12)
    assert paired_test(base, rpt) == (test, p_value)
    assert paired_test(base, base) == ("permutation", 1.0)


def test_matrix_comes_from_the_same_item_scores() -> None:
    math_items = [[1], [0], [0], [0], [1], [0]]
    facts_items = [[1], [1], [0], [1]]
    scores = pd.DataFrame(
        rows("base", "arith", "math", math_items)
        + rows("base", "facts", "knowledge", facts_items)
        + rows("m", "arith", "math", [[1], [1], [1], [1], [1], [0]])
        + rows("m", "facts", "knowledge", [[0], [1], [0], [0]])
        + rows("k", "arith", "math", math_items)
        + rows("k", "facts", "knowledge", [[1], [1], [1], [1]])
    )
    tests = paired_tests(scores, PAIRS)
    matrix = transfer_matrix(tests, PAIRS).set_index(["pair", "eval_domain"])
    assert matrix.loc[("m-grpo", "math"), "delta"] == pytest.approx(5 / 6 - 2 / 6)
    assert matrix.loc[("m-grpo", "math"), "p_value"] == pytest.approx(binomtest(0, 3, 0.5).pvalue)
    assert matrix.loc[("m-grpo", "knowledge"), "delta"] == pytest.approx(1 / 4 - 3 / 4)
    assert matrix.loc[("k-grpo", "math"), "delta"] == 0 and matrix.loc[("k-grpo", "math"), "p_value"] == 1.0
    assert matrix.loc[("k-grpo", "knowledge"), "train_domain"] == "knowledge"
    by_benchmark = tests.set_index(["pair", "group"])
    assert by_benchmark.loc[("m-grpo", "arith"), "n_items"] == 6
    assert math.isclose(by_benchmark.loc[("m-grpo", "arith"), "delta"], matrix.loc[("m-grpo", "math"), "delta"])
