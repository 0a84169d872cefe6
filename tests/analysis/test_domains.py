"""Domain pooling, the Transferability Index's undefined cases, grouped matrices and comparability."""

import math

import pandas as pd
import pytest

from rpt_transfer.analysis.comparability import check_pairs
from rpt_transfer.analysis.domains import ALL_PAIRS, domain_effects, grouped_matrix, transferability
from rpt_transfer.analysis.tables import PairInfo


def effect(pair, benchmark, domain, seen, n, base, rpt, *, algorithm="grpo", backbone="b"):
    return {
        "pair": pair, "algorithm": algorithm, "backbone": backbone, "benchmark": benchmark,
        "benchmark_domain": domain, "seen": seen, "n_items": n, "base_accuracy": base, "rpt_accuracy": rpt,
        "delta": rpt - base, "relative_delta": (rpt - base) / base if base else float("nan"),
        "rpt_correct": rpt * n, "rpt_samples": n, "base_correct": base * n, "base_samples": n,
    }  # fmt: skip


EFFECTS = pd.DataFrame(
    [
        effect("p", "m1", "math", "seen", 100, 0.5, 0.6),
        effect("p", "m2", "math", "seen", 300, 0.2, 0.3),
        effect("p", "c1", "code", "unseen", 50, 0.4, 0.42),
        effect("p", "k1", "knowledge", "unseen", 200, 0.5, 0.45),
        effect("q", "m1", "math", "unseen", 100, 0.5, 0.5, algorithm="ppo"),
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
