"""Strict and flexible scoring in the analysis: both accuracies, format, exclusions, disagreement flags."""

import math
import re

import numpy as np
import pandas as pd
import pytest

from rpt_transfer.analysis import PairInfo, accuracy_table, analyse, write_report
from rpt_transfer.analysis.policies import disagreement, policy_agreement
from rpt_transfer.analysis.samples import excluded_table

NAN = float("nan")


def sample(model="m", benchmark="b", item=0, index=0, correct=0.0, **extra) -> dict:
    """One score row; `extra` sets correct_flexible, format_followed, extracted, reason, explanation."""
    row = {
        "model": model,
        "benchmark": benchmark,
        "benchmark_domain": "math",
        "item_id": f"{benchmark}-{item}",
        "sample_index": index,
        "correct": float(correct),
        "reason": None,
        "finish_reason": "stop",
    }
    return row | extra


# Each case: rows of one model x benchmark, and the expected (accuracy, accuracy_flexible, format_rate,
# n_excluded, n_samples). Items average over their samples first, then over items.
CASES = {
    "old rows: flexible null means strict": (
        [sample(item=0, correct=1, correct_flexible=None), sample(item=1, correct=0, correct_flexible=None)],
        (0.5, 0.5, NAN, 0, 2),
    ),
    "no flexible column at all": (
        [sample(item=0, correct=1), sample(item=1, correct=0)],
        (0.5, 0.5, NAN, 0, 2),
    ),
    "prose answer right only under flexible": (
        [
            sample(item=0, correct=0, correct_flexible=1.0, format_followed=False),
            sample(item=0, index=1, correct=1, correct_flexible=1.0, format_followed=True),
            sample(item=1, correct=0, correct_flexible=0.0, format_followed=True),
        ],
        (0.25, 0.5, 2 / 3, 0, 3),
    ),
    "format unknown: answer found and not cut off": (
        [
            sample(item=0, correct=1, extracted="4", format_followed=None),
            sample(item=1, correct=0, extracted=None, reason="no_answer", format_followed=None),
            sample(item=2, correct=0, extracted="7", reason="truncated", format_followed=None),
            sample(item=3, correct=0, extracted="9", format_followed=False),
        ],
        (0.25, 0.25, 0.25, 0, 4),
    ),
    "toolchain_missing excluded, not counted 0": (
        [
            sample(item=0, correct=1, correct_flexible=1.0, format_followed=True),
            sample(item=1, correct=0, reason="toolchain_missing", format_followed=False),
            sample(item=2, correct=0, reason="toolchain_missing", format_followed=False),
        ],
        (1.0, 1.0, 1.0, 2, 1),
    ),
    "every sample excluded: the cell stays, with nothing scored": (
        [sample(item=0, reason="toolchain_missing"), sample(item=1, reason="toolchain_missing")],
        (NAN, NAN, NAN, 2, 0),
    ),
}


@pytest.mark.parametrize("rows, expected", CASES.values(), ids=CASES.keys())
def test_accuracy_table_carries_both_policies_format_and_exclusions(rows, expected) -> None:
    (row,) = accuracy_table(pd.DataFrame(rows)).to_dict("records")
    got = (row["accuracy"], row["accuracy_flexible"], row["format_rate"], row["n_excluded"], row["n_samples"])
    for name, value, want in zip(
        ("accuracy", "flexible", "format", "excluded", "samples"), got, expected, strict=True
    ):
        assert (math.isnan(value) and math.isnan(want)) or value == pytest.approx(want), name
    assert not row["error_rate"] > 0  # an excluded row is not a scoring failure either


def test_excluded_table_says_how_many_and_why() -> None:
    rows = [
        sample(item=0, correct=1),
        sample(item=1, reason="toolchain_missing", explanation="rustc not found on PATH"),
        sample(item=2, reason="toolchain_missing", explanation="rustc not found on PATH"),
        sample(item=3, reason="toolchain_missing", explanation="javac not found on PATH"),
    ]
    table = excluded_table(pd.DataFrame(rows))
    assert table.to_dict("records") == [
        {
            "model": "m",
            "benchmark": "b",
            "benchmark_domain": "math",
            "n_excluded": 3,
            "n_samples": 4,
            "reason": "toolchain_missing",
            "why": "javac not found on PATH; rustc not found on PATH",
        }
    ]
    assert excluded_table(pd.DataFrame(rows[:1])).empty


FLAGS = {
    "agree": ((0.10, 0.001, 0.08, 0.01), ""),
    "signs differ": ((0.05, 0.30, -0.02, 0.70), "delta signs differ"),
    "significant only strict": ((0.12, 0.002, 0.01, 0.60), "significant (p<0.05) under strict only"),
    "significant only flexible": ((-0.01, 0.40, -0.09, 0.01), "significant (p<0.05) under flexible only"),
    "both": ((0.12, 0.002, -0.03, 0.40), "delta signs differ; significant (p<0.05) under strict only"),
    "zero delta is no sign": ((0.0, 1.0, 0.02, 0.5), ""),
    "no test is not significant": ((0.1, NAN, 0.1, 0.01), "significant (p<0.05) under flexible only"),
}


@pytest.mark.parametrize("values, flag", FLAGS.values(), ids=FLAGS.keys())
def test_disagreement_flags_sign_and_significance(values, flag) -> None:
    assert disagreement(*values) == flag


def test_agreement_lines_up_both_policies_tests() -> None:
    strict = pd.DataFrame(
        {"pair": ["p", "p"], "group": ["b", "domain:math"], "n_items": [20, 20], "delta": [0.6, 0.6],
         "p_value": [0.0005, 0.0005]}
    )  # fmt: skip
    flexible = strict.assign(delta=[0.0, 0.0], p_value=[1.0, 1.0])
    agreement = policy_agreement(strict, flexible)
    assert agreement["format_effect"].tolist() == pytest.approx([0.6, 0.6])
    assert set(agreement["flag"]) == {"significant (p<0.05) under strict only"}


PAIR = PairInfo("m-grpo", rpt_model="rpt", base_model="base", rpt_domains=("math",), algorithm="grpo")


def format_only_gain() -> pd.DataFrame:
    """RPT learned the answer format, not the answers: base answers 12 of 20 items right in prose.

    Strict: base 0/20, RPT 12/20 (McNemar p = 2 x 0.5^12). Flexible: both 12/20, no difference. On 'code'
    both policies agree (RPT +5 of 10), and 3 base samples there are excluded for a missing toolchain.
    """
    rows = []
    for item in range(20):
        right = item < 12
        rows.append(
            sample("base", "arith", item, correct=0, correct_flexible=float(right), format_followed=False)
        )
        rows.append(
            sample("rpt", "arith", item, correct=right, correct_flexible=float(right), format_followed=True)
        )
    for item in range(10):
        code = {"benchmark_domain": "code", "correct_flexible": None, "format_followed": True}
        rows.append(sample("base", "prog", item, correct=0, **code))
        rows.append(sample("rpt", "prog", item, correct=item < 5, **code))
    for item in range(10, 13):
        rows.append(
            sample("base", "prog", item, benchmark_domain="code", reason="toolchain_missing",
                   explanation="rustc not found on PATH")
        )  # fmt: skip
    return pd.DataFrame(rows).assign(study="demo")


def test_a_cell_with_every_sample_excluded_is_not_compared_and_says_why() -> None:
    scores = format_only_gain()
    base_prog = (scores["model"] == "base") & (scores["benchmark"] == "prog")
    scores.loc[base_prog, ["reason", "explanation"]] = ["toolchain_missing", "rustc not found on PATH"]
    result = analyse(scores, [PAIR], resamples=20)
    assert result.deltas["benchmark"].tolist() == ["arith"]
    assert "prog" not in set(result.tests["group"]) | set(result.flexible.tests["group"])
    assert result.warnings == [
        "pair 'm-grpo': no scores on 'prog' for base model 'base'; benchmark left out of this pair's deltas",
        "model 'base' on 'prog': 13 of 13 samples excluded (toolchain_missing: rustc not found on PATH); "
        "not counted as wrong, left out of every number",
    ]


def test_flexible_tables_come_from_the_same_code_as_strict() -> None:
    """Where both policies score every sample alike ('prog'), the flexible rows equal the strict ones."""
    result = analyse(format_only_gain(), [PAIR], resamples=50)
    for name, key, same in (("tests", "group", ["prog", "domain:code"]), ("effects", "benchmark", ["prog"])):
        strict, flexible = getattr(result, name), getattr(result.flexible, name)
        assert not strict.equals(flexible)
        pd.testing.assert_frame_equal(
            flexible[flexible[key].isin(same)], strict[strict[key].isin(same)], check_exact=True, obj=name
        )
    everywhere = analyse(format_only_gain().assign(correct_flexible=None), [PAIR], resamples=50)
    assert everywhere.flexible.effects.equals(everywhere.effects)
    assert everywhere.metrics["mean_delta_seen_flexible"] == everywhere.metrics["mean_delta_seen"]


def test_report_shows_both_policies_flags_format_gain_and_names_exclusions(tmp_path) -> None:
    result = write_report(
        study="demo", scores=format_only_gain(), pairs=[PAIR], provenance={}, out_dir=tmp_path
    )
    analysis = result.analysis
    tests = analysis.tests.set_index("group")
    assert tests.loc["arith", "p_value"] == pytest.approx(2 * 0.5**12)
    assert analysis.flexible.tests.set_index("group").loc["arith", "p_value"] == 1.0
    flagged = analysis.agreement[analysis.agreement["flag"] != ""]
    assert flagged["group"].tolist() == ["arith", "domain:math"]
    acc = analysis.accuracy.set_index(["model", "benchmark"])
    assert acc.loc[("base", "arith"), ["accuracy", "accuracy_flexible", "format_rate"]].tolist() == [
        0,
        0.6,
        0,
    ]
    assert acc.loc[("base", "prog"), ["n_items", "n_excluded"]].tolist() == [10, 3]

    metrics = result.metrics
    assert metrics["mean_delta_seen"] == pytest.approx(0.6) and metrics["mean_delta_seen_flexible"] == 0
    assert metrics["delta_flexible/m-grpo/arith"] == 0 and metrics["delta/m-grpo/prog"] == pytest.approx(0.5)
    assert metrics["format_rate/base/arith"] == 0 and metrics["format_rate/rpt/arith"] == 1
    assert metrics["n_excluded_samples"] == 3 and metrics["n_policy_disagreements"] == 2
    assert all(re.fullmatch(r"[A-Za-z0-9_./-]+", key) for key in metrics)
    assert any("3 of 13 samples excluded (toolchain_missing: rustc not found" in w for w in result.warnings)

    html = (tmp_path / "report.html").read_text()
    assert "<h2>Strict and flexible scoring</h2>" in html and "changes a model&#39;s output format" in html
    row = re.search(r'<tr class="flag">(.*?)</tr>', html).group(1)
    assert "<td>arith</td>" in row and "significant (p&lt;0.05) under strict only" in row
    assert "<h3>Transfer matrix (flexible)</h3>" in html and "<h2>Excluded samples</h2>" in html
    md = (tmp_path / "report.md").read_text()
    assert (
        "| m-grpo | arith | 20 | +0.600 | 0.000488 | +0.000 | 1 | +0.600 | "
        "significant (p<0.05) under strict only |"
    ) in md
    assert "| base | prog | code | 3 | 13 | toolchain_missing | rustc not found on PATH |" in md
    written = {path.name for path in result.files}
    assert {
        "effects_flexible.csv",
        "transfer_flexible.csv",
        "policy_agreement.csv",
        "excluded.csv",
    } <= written
    assert np.isclose(pd.read_csv(tmp_path / "accuracy.csv")["accuracy_flexible"], [0.6, 0.0, 0.6, 0.5]).all()
