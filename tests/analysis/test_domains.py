"""Domain pooling, the Transferability Index's undefined cases, grouped matrices and comparability."""

import math

import pandas as pd
import pytest

from rpt_transfer.analysis.comparability import check_pairs
from rpt_transfer.analysis.domains import ALL_PAIRS, domain_effects, grouped_matrix, transferability
from rpt_transfer.analysis.tables import PairInfo


def effect(pair, benchmark, domain, seen, n, base, rpt, *, algorithm="grpo", backbone="b", se=0.02):
    return {
        "pair": pair, "algorithm": algorithm, "backbone": backbone, "benchmark": benchmark,
        "benchmark_domain": domain, "seen": seen, "n_items": n, "base_accuracy": base, "rpt_accuracy": rpt,
        "delta": rpt - base, "delta_se": se, "relative_delta": (rpt - base) / base if base else float("nan"),
        "rpt_correct": rpt * n, "rpt_samples": n, "base_correct": base * n, "base_samples": n,
    }  # fmt: skip


EFFECTS = pd.DataFrame(
    [
        effect("p", "m1", "math", "seen", 100, 0.5, 0.6, se=0.03),
        effect("p", "m2", "math", "seen", 300, 0.2, 0.3, se=0.02),
        effect("p", "c1", "code", "unseen", 50, 0.4, 0.42, se=0.06),
        effect("p", "k1", "knowledge", "unseen", 200, 0.5, 0.45, se=0.04),
        effect("q", "m1", "math", "unseen", 100, 0.5, 0.5, algorithm="ppo", se=0.05),
        effect("q", "c1", "code", "seen", 50, 0.4, 0.38, algorithm="ppo"),
    ]
)
PAIRS = [PairInfo("p", "pr", "b", ("math",), "grpo"), PairInfo("q", "qr", "b", ("code",), "ppo")]


def test_weighted_and_unweighted_domain_deltas() -> None:
    table = domain_effects(EFFECTS).set_index(["pair", "group"])
    seen = table.loc[("p", "seen")]
    assert seen["delta_weighted"] == pytest.approx((100 * 0.1 + 300 * 0.1) / 400)
    assert seen["delta_unweighted"] == pytest.approx(0.1)
    assert seen["mean_relative_delta"] == pytest.approx((0.2 + 0.5) / 2)
    unseen = table.loc[("p", "unseen")]
    assert unseen["delta_weighted"] == pytest.approx((50 * 0.02 + 200 * -0.05) / 250)
    assert unseen["n_benchmarks"] == 2 and unseen["n_items"] == 250
    everyone = table.loc[(ALL_PAIRS, "unseen")]
    assert everyone["delta_weighted"] == pytest.approx((50 * 0.02 + 200 * -0.05 + 0) / 350)
    assert everyone["delta_unweighted"] == pytest.approx(((0.02 - 0.05) / 2 + 0.0) / 2)  # each pair once
    assert table.loc[("p", "domain:math"), "n_benchmarks"] == 2


Z95 = 1.959963984540054  # the standard normal's 97.5th percentile, written out


def test_weighted_delta_interval_by_hand() -> None:
    """SE of an item-weighted mean of independent benchmarks: sqrt(sum n^2 se^2) / sum n; normal 95 %."""
    table = domain_effects(EFFECTS).set_index(["pair", "group"])
    seen = table.loc[("p", "seen")]
    se = math.sqrt(100**2 * 0.03**2 + 300**2 * 0.02**2) / 400  # = sqrt(45) / 400
    assert seen["delta_weighted_se"] == pytest.approx(0.016770509831248424)
    assert seen["delta_weighted_se"] == pytest.approx(se)
    assert seen["delta_weighted_low"] == pytest.approx(0.1 - Z95 * se)
    assert seen["delta_weighted_high"] == pytest.approx(0.1 + Z95 * se)
    everyone = table.loc[(ALL_PAIRS, "unseen")]  # every pair x benchmark cell, weighted by its items
    se = math.sqrt(50**2 * 0.06**2 + 200**2 * 0.04**2 + 100**2 * 0.05**2) / 350
    delta = (50 * 0.02 + 200 * -0.05 + 0) / 350
    assert everyone["delta_weighted_se"] == pytest.approx(se)
    assert (everyone["delta_weighted_low"], everyone["delta_weighted_high"]) == pytest.approx(
        (delta - Z95 * se, delta + Z95 * se)
    )
    one = table.loc[("q", "domain:code")]  # one benchmark: its own paired SE
    assert one["delta_weighted_se"] == pytest.approx(0.02)
    assert list(table.columns[:8]) == ["n_benchmarks", "n_items", "delta_weighted", "delta_weighted_se",
                                       "delta_weighted_low", "delta_weighted_high", "delta_unweighted",
                                       "mean_relative_delta"]  # fmt: skip


def test_weighted_delta_interval_is_unknown_when_a_benchmark_lacks_a_standard_error() -> None:
    effects = pd.DataFrame([effect("z", "m1", "math", "seen", 1, 0.0, 1.0, se=float("nan")),
                            effect("z", "m2", "math", "seen", 50, 0.2, 0.3)])  # fmt: skip
    row = domain_effects(effects).set_index("group").loc["seen"]
    assert row["delta_weighted"] == pytest.approx((1 * 1.0 + 50 * 0.1) / 51)
    assert math.isnan(row["delta_weighted_se"]) and math.isnan(row["delta_weighted_low"])
    assert math.isnan(row["delta_weighted_high"])


def test_transferability_index_and_its_undefined_cases() -> None:
    index = transferability(EFFECTS).set_index(["pair", "target"])
    gain = (0.2 + 0.5) / 2
    assert index.loc[("p", "unseen"), "transferability_index"] == pytest.approx(((0.05) + (-0.1)) / 2 / gain)
    assert index.loc[("p", "domain:code"), "transferability_index"] == pytest.approx(0.05 / gain)
    assert index.loc[("p", "unseen"), "status"] == "ok"
    negative = index.loc[("q", "unseen")]  # q lost on its trained domain: no gain to transfer
    assert math.isnan(negative["transferability_index"])
    assert negative["status"] == "undefined: trained-domain relative gain -5.0% below 1%"
    zero_base = pd.DataFrame([effect("z", "m1", "math", "seen", 10, 0.0, 0.3),
                              effect("z", "c1", "code", "unseen", 10, 0.2, 0.3)])  # fmt: skip
    row = transferability(zero_base).iloc[0]
    assert row["status"].startswith("undefined: no trained-domain benchmark with a non-zero base")


def test_grouped_matrix_by_algorithm_pools_pairs() -> None:
    matrix = grouped_matrix(EFFECTS, PAIRS, "algorithm").set_index(["value", "train_domain", "eval_domain"])
    cell = matrix.loc[("grpo", "math", "math")]
    assert cell["n_pairs"] == 1 and cell["delta_weighted"] == pytest.approx(0.1)
    assert matrix.loc[("ppo", "code", "code"), "mean_pair_delta"] == pytest.approx(-0.02)
    assert set(grouped_matrix(EFFECTS, PAIRS, "backbone")["value"]) == {"b"}
    with pytest.raises(ValueError, match="algorithm"):
        grouped_matrix(EFFECTS, PAIRS, "seed")


def scores(model, benchmark, samples_per_item, items=3):
    return [
        {"model": model, "benchmark": benchmark, "benchmark_domain": "math", "item_id": f"i{i}",
         "sample_index": s, "correct": 1.0}
        for i in range(items)
        for s in range(samples_per_item)
    ]  # fmt: skip


def test_comparability_excludes_different_sampling_and_says_so() -> None:
    pair = PairInfo("p", "rpt", "base", ("math",), "grpo")
    frame = pd.DataFrame(
        scores("base", "aime", 1) + scores("rpt", "aime", 16) + scores("base", "gsm", 1)
        + scores("rpt", "gsm", 1, items=2) + scores("base", "math500", 1) + scores("rpt", "math500", 1)
    )  # fmt: skip
    settings = {
        ("base", "math500"): {"sampling.temperature": 0.6, "prompt_mode": "raw"},
        ("rpt", "math500"): {"sampling.temperature": 0.0, "prompt_mode": "chat"},
        ("base", "gsm"): {"prompt_mode": "raw"},
        ("rpt", "gsm"): {"prompt_mode": "chat"},
    }
    exclude, warnings = check_pairs(frame, [pair], settings)
    assert exclude == {("p", "aime"), ("p", "math500")}
    assert "pair 'p' on 'aime': samples per item differ (base 1, RPT 16), so sampling differed" in warnings[0]
    assert "pair 'p' on 'gsm': compared although prompt_mode: base 'raw' vs RPT 'chat'" in warnings[1]
    assert warnings[2] == "pair 'p' on 'gsm': compared on the 2 items both answered (base has 3, RPT 2)"
    assert "sampling.temperature: base 0.6 vs RPT 0.0); not compared" in warnings[3]
