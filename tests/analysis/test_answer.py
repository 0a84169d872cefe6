"""The one-sentence answer: every decision rule on small hand-made domain tables, and its number formats."""

import math

import pandas as pd
import pytest

from rpt_transfer.analysis.answer import VERDICTS, answer_for, odds_ratio, p_text, points, pooled_rows
from rpt_transfer.analysis.domains import ALL_PAIRS, DOMAIN_COLUMNS, domain_effects

Z95 = 1.959963984540054

GAIN = {"delta": 0.032, "se": 0.01, "odds": 1.21, "p": 0.04}  # interval +0.012 to +0.052
LOSS = {"delta": -0.123, "se": 0.02, "odds": 0.36, "p": 0.0004}
FLAT = {"delta": 0.004, "se": 0.01, "odds": 1.02, "p": 0.7}


def row(pair: str, group: str, delta: float, se: float, odds: float, p: float) -> dict:
    return {
        "pair": pair, "group": group, "n_benchmarks": 2, "n_items": 100, "delta_weighted": delta,
        "delta_weighted_se": se, "delta_weighted_low": delta - Z95 * se, "delta_weighted_high": delta + Z95 * se,
        "delta_unweighted": delta, "mean_relative_delta": delta, "cmh_odds_ratio": odds, "cmh_p_value": p,
    }  # fmt: skip


def table(seen: dict | None, unseen: dict | None, pair: str = "p") -> pd.DataFrame:
    rows = [row(pair, "domain:math", **(seen or unseen))]  # domain rows are never read
    rows += [row(pair, group, **values) for group, values in (("seen", seen), ("unseen", unseen)) if values]
    return pd.DataFrame(rows, columns=list(DOMAIN_COLUMNS))


@pytest.mark.parametrize(
    ("seen", "unseen", "verdict", "words"),
    [
        (GAIN, GAIN, "transferred", "The gains transferred in this study: the RPT model gained"),
        (GAIN, LOSS, "hurt", "The gains did not transfer in this study"),
        (GAIN, FLAT, "not_transferred", "but there is no evidence that the gains transferred"),
        (FLAT, GAIN, "no_trained_gain", "no clear gain to transfer in this study. It did gain on the other"),
        (FLAT, FLAT, "no_trained_gain", "showed no clear gain on the domains the RPT data covered"),
        (FLAT, LOSS, "no_trained_gain", "no clear gain to transfer in this study. It lost accuracy on the other"),
        (LOSS, LOSS, "no_trained_gain", "lost accuracy on the domains the RPT data covered, so there was no gain"),
        (GAIN, None, "no_unseen", "Every compared benchmark lies in a domain the RPT data covered"),
        (None, GAIN, "no_seen", "No compared benchmark lies in a domain the RPT data covered"),
    ],
)  # fmt: skip
def test_each_decision_rule(seen, unseen, verdict, words) -> None:
    answer = answer_for(table(seen, unseen))
    assert answer.verdict == verdict and answer.verdict in VERDICTS
    assert words in answer.sentence, answer.sentence
    assert answer.evidence.startswith("Pair p, item-weighted RPT − base accuracy: ")


def test_loss_on_both_says_too() -> None:
    assert answer_for(table(LOSS, LOSS)).sentence.endswith("It lost accuracy on the other domains too.")


def test_evidence_has_the_numbers_in_the_promised_formats() -> None:
    answer = answer_for(table(GAIN, LOSS))
    assert answer.evidence == (
        "Pair p, item-weighted RPT − base accuracy: trained domains +3.2 points (95% CI +1.2 to +5.2), "
        "CMH odds ratio 1.21, p = 0.04; other domains -12.3 points (95% CI -16.2 to -8.4), odds ratio 0.36, "
        "p < 0.001."
    )
    assert answer_for(table(GAIN, None)).evidence.endswith("CMH odds ratio 1.21, p = 0.04.")
    assert (
        "other domains +3.2 points (95% CI +1.2 to +5.2), CMH odds ratio"
        in answer_for(table(None, GAIN)).evidence
    )


def test_both_tests_must_agree_before_a_gain_counts() -> None:
    cmh_only = {"delta": 0.02, "se": 0.015, "odds": 1.3, "p": 0.001}  # interval crosses 0
    interval_only = {"delta": 0.05, "se": 0.01, "odds": 1.3, "p": 0.2}
    no_se = {**GAIN, "se": float("nan")}
    odd_sign = {**GAIN, "odds": 0.9}  # the odds ratio disagrees with the delta's sign
    for seen in (cmh_only, interval_only, no_se, odd_sign):
        assert answer_for(table(seen, GAIN)).verdict == "no_trained_gain", seen
    assert answer_for(table(GAIN, cmh_only)).verdict == "not_transferred"
    assert answer_for(table(GAIN, {**LOSS, "p": float("nan")})).verdict == "not_transferred"


def test_alpha_moves_the_threshold_and_the_interval_level() -> None:
    answer = answer_for(table(GAIN, GAIN), alpha=0.01)  # p = 0.04 is not below 0.01
    assert answer.verdict == "no_trained_gain"
    assert "(99% CI +0.6 to +5.8)" in answer.evidence and "p = 0.04" in answer.evidence
    with pytest.raises(ValueError, match="alpha must be between 0 and 1"):
        answer_for(table(GAIN, GAIN), alpha=1.5)


def test_all_pairs_rows_are_used_when_present() -> None:
    frame = pd.concat(
        [table(FLAT, FLAT, "p"), table(LOSS, LOSS, "q"), table(GAIN, GAIN, ALL_PAIRS)], ignore_index=True
    )
    answer = answer_for(frame)
    assert answer.verdict == "transferred" and "the RPT models gained" in answer.sentence
    assert answer.evidence.startswith(
        "2 pairs pooled, item-weighted RPT − base accuracy: trained domains +3.2"
    )
    assert pooled_rows(frame).pairs == ("p", "q")
    only_pooled = answer_for(frame[frame["pair"] == ALL_PAIRS])
    assert only_pooled.evidence.startswith("All pairs pooled") and "the RPT models" in only_pooled.sentence
    with pytest.raises(ValueError, match="lack the 'all pairs' rows"):
        answer_for(pd.concat([table(GAIN, GAIN, "p"), table(GAIN, GAIN, "q")]))


def test_nothing_compared() -> None:
    answer = answer_for(pd.DataFrame(columns=list(DOMAIN_COLUMNS)))
    assert answer.verdict == "no_data" and answer_for(pd.DataFrame()) == answer
    assert answer.sentence.startswith("No RPT model was compared with its base")


def test_answer_numbers_equal_the_domains_table() -> None:
    """Through `domain_effects` itself: the sentence's numbers are the table's, rounded as promised."""
    effects = pd.DataFrame(
        [
            {"pair": "p", "benchmark": b, "benchmark_domain": d, "seen": s, "n_items": n, "delta": delta,
             "delta_se": se, "relative_delta": delta, "rpt_correct": rc, "rpt_samples": n,
             "base_correct": bc, "base_samples": n}
            for b, d, s, n, delta, se, rc, bc in [
                ("gsm", "math", "seen", 400, 0.1, 0.02, 240, 200),
                ("mbpp", "code", "unseen", 300, -0.1, 0.03, 120, 150),
            ]
        ]
    )  # fmt: skip
    domains = domain_effects(effects)
    answer = answer_for(domains)
    seen = domains.set_index("group").loc["seen"]
    unseen = domains.set_index("group").loc["unseen"]
    assert answer.verdict == "hurt"

    def shown(r: pd.Series) -> str:  # the table's numbers, rounded as the docstring promises
        return (f"{r['delta_weighted'] * 100:+.1f} points (95% CI {r['delta_weighted_low'] * 100:+.1f} to "
                f"{r['delta_weighted_high'] * 100:+.1f}), ")  # fmt: skip

    assert answer.evidence == (
        f"Pair p, item-weighted RPT − base accuracy: trained domains {shown(seen)}CMH odds ratio "
        f"{seen['cmh_odds_ratio']:.2f}, p = {seen['cmh_p_value']:.2g}; other domains {shown(unseen)}odds ratio "
        f"{unseen['cmh_odds_ratio']:.2f}, p = {unseen['cmh_p_value']:.2g}."
    )
    assert answer.evidence.startswith(
        "Pair p, item-weighted RPT − base accuracy: trained domains +10.0 points"
    )


def test_number_formats() -> None:
    assert [points(v) for v in (0.0321, -0.1234, -0.0004, 0.0, float("nan"))] == [
        "+3.2", "-12.3", "+0.0", "+0.0", "n/a"
    ]  # fmt: skip
    assert [odds_ratio(v) for v in (1.214, math.inf, float("nan"))] == ["1.21", "infinite", "n/a"]
    assert p_text(0.04) == "p = 0.04" and p_text(0.0004) == "p < 0.001" and p_text(0.61301) == "p = 0.61"
    assert p_text(0.0496) == "p = 0.0496"  # "0.05" would read as not significant
    assert p_text(0.0504) == "p = 0.05" and p_text(float("nan")) == "p n/a" and p_text(1.0) == "p = 1"
