"""Hand-computed answers for the analysis tables."""

import math

import pandas as pd
import pytest

from rpt_transfer.analysis import (
    PairInfo,
    accuracy_table,
    domain_summary,
    headline_metrics,
    missing_cells,
    pair_deltas,
    quality_warnings,
)


def rows(model, benchmark, domain, per_item, *, finish=None, reasons=None):
    """Score rows for one model × benchmark; `per_item` is a list of per-sample correct lists."""
    out = []
    k = 0
    for i, samples in enumerate(per_item):
        for s, correct in enumerate(samples):
            out.append(
                {
                    "study": "demo",
                    "model": model,
                    "benchmark": benchmark,
                    "benchmark_domain": domain,
                    "item_id": f"{benchmark}-{i}",
                    "sample_index": s,
                    "correct": float(correct),
                    "reason": (reasons or {}).get(k),
                    "finish_reason": (finish or {}).get(k, "stop"),
                }
            )
            k += 1
    return out


def study_scores():
    """Two models × two benchmarks × 3 items × 2 samples, plus a second RPT model on one benchmark.

    base/gsm:  items [1,0] [1,1] [0,0] -> 0.5/1/0 -> 0.5;   samples 0 and 5 have no answer (2/6)
    rpt/gsm:   items [1,1] [1,1] [1,0] -> 1/1/0.5 -> 5/6;   sample 5 truncated (1/6)
    base/mbpp: all 0 -> 0.0
    rpt/mbpp:  items [1,0] [0,0] [0,0] -> 0.5/0/0 -> 1/6;   sample 2 timed out (1/6)
    rpt2/gsm:  items [0,0] [1,0] [0,0] -> 0/0.5/0 -> 1/6;   no mbpp at all
    """
    return pd.DataFrame(
        rows("base", "gsm", "math", [[1, 0], [1, 1], [0, 0]], reasons={0: "no_answer", 5: "no_answer"})
        + rows("rpt", "gsm", "math", [[1, 1], [1, 1], [1, 0]], finish={5: "length"})
        + rows("base", "mbpp", "code", [[0, 0], [0, 0], [0, 0]])
        + rows("rpt", "mbpp", "code", [[1, 0], [0, 0], [0, 0]], reasons={2: "timeout"})
        + rows("rpt2", "gsm", "math", [[0, 0], [1, 0], [0, 0]])
    )


PAIRS = [
    PairInfo("rpt-math", rpt_model="rpt", base_model="base", rpt_domains=("math",), algorithm="grpo"),
    PairInfo("rpt2-code", rpt_model="rpt2", base_model="base", rpt_domains=("code",), algorithm="ppo"),
]


def cell(frame, **where):
    mask = pd.Series(True, index=frame.index)
    for column, value in where.items():
        mask &= frame[column] == value
    (index,) = frame.index[mask]
    return frame.loc[index]


def test_accuracy_is_mean_over_items_of_per_item_means():
    acc = accuracy_table(study_scores())
    assert list(acc[["model", "benchmark"]].itertuples(index=False, name=None)) == [
        ("base", "gsm"),
        ("base", "mbpp"),
        ("rpt", "gsm"),
        ("rpt", "mbpp"),
        ("rpt2", "gsm"),
    ]
    expected = {("base", "gsm"): 0.5, ("rpt", "gsm"): 5 / 6, ("base", "mbpp"): 0.0, ("rpt", "mbpp"): 1 / 6}
    for (model, benchmark), accuracy in expected.items():
        row = cell(acc, model=model, benchmark=benchmark)
        assert row["accuracy"] == pytest.approx(accuracy)
        assert (row["n_items"], row["n_samples"]) == (3, 6)


def test_unequal_samples_per_item_do_not_weigh_items_differently():
    # Item a: 4 of 4 correct, item b: 0 of 1. Per item 1.0 and 0.0 -> 0.5 (pooled would be 0.8).
    acc = accuracy_table(pd.DataFrame(rows("m", "b", "math", [[1, 1, 1, 1], [0]])))
    row = acc.iloc[0]
    assert row["accuracy"] == pytest.approx(0.5)
    assert (row["n_items"], row["n_samples"]) == (2, 5)


def test_rates_are_shares_of_samples():
    acc = accuracy_table(study_scores())
    rates = ["truncated_rate", "no_answer_rate", "error_rate"]
    assert cell(acc, model="base", benchmark="gsm")[rates].tolist() == pytest.approx([0, 2 / 6, 0])
    assert cell(acc, model="rpt", benchmark="gsm")[rates].tolist() == pytest.approx([1 / 6, 0, 0])
    assert cell(acc, model="rpt", benchmark="mbpp")[rates].tolist() == pytest.approx([0, 0, 1 / 6])
    assert cell(acc, model="base", benchmark="mbpp")[rates].tolist() == pytest.approx([0, 0, 0])


def test_deltas_seen_unseen_and_relative_delta_with_zero_base():
    deltas = pair_deltas(accuracy_table(study_scores()), PAIRS)
    assert len(deltas) == 3  # rpt-math: gsm, mbpp; rpt2-code: gsm only
    gsm = cell(deltas, pair="rpt-math", benchmark="gsm")
    assert gsm["seen"] == "seen"
    assert (gsm["base_accuracy"], gsm["rpt_accuracy"]) == pytest.approx((0.5, 5 / 6))
    assert gsm["delta"] == pytest.approx(1 / 3)
    assert gsm["relative_delta"] == pytest.approx(2 / 3)
    mbpp = cell(deltas, pair="rpt-math", benchmark="mbpp")
    assert mbpp["seen"] == "unseen"
    assert mbpp["delta"] == pytest.approx(1 / 6)
    assert math.isnan(mbpp["relative_delta"])
    other = cell(deltas, pair="rpt2-code", benchmark="gsm")
    assert (other["seen"], other["rpt_model"], other["base_model"]) == ("unseen", "rpt2", "base")
    assert other["delta"] == pytest.approx(1 / 6 - 0.5)
    assert other["relative_delta"] == pytest.approx(-2 / 3)


def test_missing_cells_name_the_pair_benchmark_and_model():
    acc = accuracy_table(study_scores())
    warnings = missing_cells(acc, PAIRS)
    assert len(warnings) == 1
    assert "rpt2-code" in warnings[0] and "'mbpp'" in warnings[0] and "'rpt2'" in warnings[0]
    absent = PairInfo("ghost", rpt_model="nobody", base_model="base", rpt_domains=("math",), algorithm="grpo")
    assert missing_cells(acc, [absent]) == [
        "pair 'ghost': no scores at all for RPT model 'nobody'; pair left out"
    ]
    assert pair_deltas(acc, [absent]).empty


def test_domain_summary_is_unweighted_mean_per_pair_and_kind():
    deltas = pair_deltas(accuracy_table(study_scores()), PAIRS)
    summary = domain_summary(deltas)
    assert list(summary[["pair", "seen", "n_benchmarks"]].itertuples(index=False, name=None)) == [
        ("rpt-math", "seen", 1),
        ("rpt-math", "unseen", 1),
        ("rpt2-code", "unseen", 1),
    ]
    assert summary["mean_delta"].tolist() == pytest.approx([1 / 3, 1 / 6, -1 / 3])


def test_domain_summary_averages_benchmarks_without_weights():
    deltas = pd.DataFrame(
        {
            "pair": ["p", "p", "p"],
            "seen": ["unseen", "seen", "unseen"],
            "delta": [0.1, 0.4, 0.3],
            "base_accuracy": [0.2, 0.2, 0.4],
            "rpt_accuracy": [0.3, 0.6, 0.7],
        }
    )
    summary = domain_summary(deltas)
    assert summary["seen"].tolist() == ["seen", "unseen"]
    assert summary["mean_delta"].tolist() == pytest.approx([0.4, 0.2])
    assert summary["n_benchmarks"].tolist() == [1, 2]


def test_headline_metrics_average_pairs_and_have_safe_keys():
    deltas = pair_deltas(accuracy_table(study_scores()), PAIRS)
    metrics = headline_metrics(deltas, domain_summary(deltas))
    assert metrics["mean_delta_seen"] == pytest.approx(1 / 3)  # only rpt-math has a seen benchmark
    assert metrics["mean_delta_unseen"] == pytest.approx((1 / 6 + -1 / 3) / 2)
    assert metrics["delta_seen/rpt-math"] == pytest.approx(1 / 3)
    assert "delta_seen/rpt2-code" not in metrics  # NaN metrics are left out
    assert metrics["delta/rpt2-code/gsm"] == pytest.approx(-1 / 3)
    assert metrics["n_pairs"] == 2
    odd = deltas.assign(pair=deltas["pair"].str.replace("rpt-math", "rpt math:v1"))
    assert "delta_seen/rpt_math_v1" in headline_metrics(odd, domain_summary(odd))


def test_quality_warnings_flag_truncation_and_errors():
    warnings = quality_warnings(accuracy_table(study_scores()))
    assert warnings == [
        "model 'rpt' on 'gsm': 16.7% of samples truncated at the length limit (above 5%)",
        "model 'rpt' on 'mbpp': 1 of 6 samples (16.7%) failed to score (error or timeout)",
    ]


def test_bad_inputs_fail_loudly():
    scores = study_scores()
    with pytest.raises(ValueError, match="duplicated"):
        accuracy_table(pd.concat([scores, scores.iloc[:1]]))
    with pytest.raises(ValueError, match="lack columns"):
        accuracy_table(scores.drop(columns="finish_reason"))
    with pytest.raises(ValueError, match="more than one domain"):
        accuracy_table(scores.assign(benchmark_domain=["x"] + ["math"] * (len(scores) - 1)))
