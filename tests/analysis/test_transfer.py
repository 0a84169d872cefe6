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
    assert math.isclose(
        by_benchmark.loc[("m-grpo", "arith"), "delta"], matrix.loc[("m-grpo", "math"), "delta"]
    )


def test_paired_tests_do_not_depend_on_the_order_of_rows() -> None:
    """Permutation p-values draw sign flips per item position: items must be in a fixed order first."""
    rng = np.random.default_rng(1)
    base = rng.integers(0, 2, size=(40, 4)).tolist()
    rpt = rng.integers(0, 2, size=(40, 4)).tolist()
    scores = pd.DataFrame(rows("base", "arith", "math", base) + rows("m", "arith", "math", rpt))
    pairs = PAIRS[:1]
    expected = paired_tests(scores, pairs)
    assert (expected["test"] == "permutation").all()
    for seed in range(3):
        shuffled = scores.sample(frac=1.0, random_state=seed).reset_index(drop=True)
        pd.testing.assert_frame_equal(paired_tests(shuffled, pairs), expected)


def cmh_by_hand(tables: list[list[list[float]]]) -> tuple[float, float]:
    """Mantel-Haenszel odds ratio and the uncorrected CMH chi-square p-value, written out."""
    from scipy.stats import chi2

    num = den = diff = var = 0.0
    for (a, b), (c, d) in tables:
        n = a + b + c + d
        num += a * d / n
        den += b * c / n
        diff += a - (a + b) * (a + c) / n
        var += (a + b) * (c + d) * (a + c) * (b + d) / (n * n * (n - 1))
    return num / den, float(chi2.sf(diff * diff / var, 1))


def test_cmh_matches_statsmodels_and_the_formula() -> None:
    from statsmodels.stats.contingency_tables import StratifiedTable

    from rpt_transfer.analysis.cmh import cmh

    counts = pd.DataFrame(
        {
            "rpt_correct": [30, 12, 7.0],
            "rpt_samples": [50, 40, 480],
            "base_correct": [22, 10, 3.0],
            "base_samples": [50, 40, 480],
        }
    )
    tables = [[[r, rn - r], [b, bn - b]] for r, rn, b, bn in counts.itertuples(index=False)]
    result = cmh(counts)
    direct = StratifiedTable(np.transpose(np.array(tables, dtype=float), (1, 2, 0)))
    assert result.odds_ratio == pytest.approx(direct.oddsratio_pooled, abs=1e-9)
    assert result.p_value == pytest.approx(direct.test_null_odds(correction=False).pvalue, abs=1e-9)
    odds, p_value = cmh_by_hand(tables)
    assert result.odds_ratio == pytest.approx(odds, abs=1e-9)
    assert result.p_value == pytest.approx(p_value, abs=1e-9)
    assert result.n_strata == 3
    strong = pd.DataFrame(
        {"rpt_correct": [480], "rpt_samples": [500], "base_correct": [50], "base_samples": [500]}
    )
    tiny = cmh(strong).p_value
    assert 0 < tiny < 1e-100  # statsmodels' own pvalue (1 - cdf) rounds this to 0
    assert tiny == pytest.approx(cmh_by_hand([[[480, 20], [50, 450]]])[1], rel=1e-9)


def test_cmh_edge_cases() -> None:
    from rpt_transfer.analysis.cmh import cmh

    empty = cmh(pd.DataFrame(columns=["rpt_correct", "rpt_samples", "base_correct", "base_samples"]))
    assert math.isnan(empty.odds_ratio) and empty.n_strata == 0
    never_worse = cmh(
        pd.DataFrame({"rpt_correct": [5], "rpt_samples": [5], "base_correct": [2], "base_samples": [5]})
    )
    assert never_worse.odds_ratio == math.inf and 0 < never_worse.p_value < 1


def test_mcnemar_matches_statsmodels_to_1e9() -> None:
    from statsmodels.stats.contingency_tables import mcnemar

    rng = np.random.default_rng(1)
    base = (rng.random(60) < 0.4).astype(float)
    rpt = (rng.random(60) < 0.6).astype(float)
    table = [[np.sum((base == 1) & (rpt == 1)), np.sum((base == 1) & (rpt == 0))],
             [np.sum((base == 0) & (rpt == 1)), np.sum((base == 0) & (rpt == 0))]]  # fmt: skip
    assert paired_test(base, rpt)[1] == pytest.approx(mcnemar(np.array(table), exact=True).pvalue, abs=1e-9)


def test_effects_exclude_cells_and_carry_intervals() -> None:
    from rpt_transfer.analysis.transfer import benchmark_effects

    scores = pd.DataFrame(
        rows("base", "arith", "math", [[1], [0], [0], [0], [1], [0]])
        + rows("m", "arith", "math", [[1], [1], [1], [1], [1], [0]])
        + rows("base", "facts", "knowledge", [[1], [1], [0], [1]])
        + rows("m", "facts", "knowledge", [[0], [1], [0], [0]])
    )
    effects = benchmark_effects(scores, PAIRS[:1], resamples=200).set_index("benchmark")
    arith = effects.loc["arith"]
    assert arith["delta"] == pytest.approx(0.5) and arith["seen"] == "seen"
    assert arith["relative_delta"] == pytest.approx(1.5)  # 5/6 vs 2/6
    assert arith["delta_low"] <= arith["delta"] <= arith["delta_high"]
    assert arith["delta_se"] == pytest.approx(np.std([0, 1, 1, 1, 0, 0], ddof=1) / math.sqrt(6))
    assert (arith["rpt_correct"], arith["rpt_samples"], arith["base_correct"]) == (5, 6, 2)
    assert effects.loc["facts", "seen"] == "unseen"
    kept = benchmark_effects(scores, PAIRS[:1], exclude={("m-grpo", "facts")}, resamples=50)
    assert kept["benchmark"].tolist() == ["arith"]
    tests = paired_tests(scores, PAIRS[:1], exclude={("m-grpo", "facts")})
    assert "facts" not in set(tests["group"]) and "domain:knowledge" not in set(tests["group"])


def test_one_comparison_shows_one_p_value_in_every_table() -> None:
    """Issue 10 §6: effects, paired tests and the transfer matrix showed different permutation p-values
    for the same pair and benchmark (their items reached the random sign flips in different orders).
    Rows arrive in an order unlike the sorted one, as score parts concatenated per job do."""
    from rpt_transfer.analysis.transfer import benchmark_effects

    rng = np.random.default_rng(7)
    parts = []
    for model, shift in (("base", 0.0), ("m", 0.15), ("k", -0.05)):
        for bench, domain, n in (("arith", "math", 30), ("facts", "knowledge", 25)):
            outcomes = (rng.random((n, 4)) < 0.4 + shift).astype(int).tolist()
            parts.append(pd.DataFrame(rows(model, bench, domain, outcomes)).iloc[::-1])  # reversed
    scores = pd.concat(parts, ignore_index=True)
    tests = paired_tests(scores, PAIRS)
    effects = benchmark_effects(scores, PAIRS, resamples=20).set_index(["pair", "benchmark"])
    matrix = transfer_matrix(tests, PAIRS).set_index(["pair", "eval_domain"])
    by_group = tests.set_index(["pair", "group"])
    assert (tests["test"] == "permutation").all()
    for pair in ("m-grpo", "k-grpo"):
        for bench, domain in (("arith", "math"), ("facts", "knowledge")):
            shown = {
                "effects": effects.loc[(pair, bench), "p_value"],
                "paired tests": by_group.loc[(pair, bench), "p_value"],
                "paired tests (domain)": by_group.loc[(pair, f"domain:{domain}"), "p_value"],
                "transfer matrix": matrix.loc[(pair, domain), "p_value"],
            }
            assert len(set(shown.values())) == 1, (pair, bench, shown)
    given = benchmark_effects(scores, PAIRS, tests=tests, resamples=20)
    assert given["p_value"].tolist() == effects["p_value"].tolist()
