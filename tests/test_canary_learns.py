"""The canary proves the pipeline learns: GRPO on canary math beats the base by a significant margin.

It runs the canary study as shipped (studies/canary.yaml: the same base recipe, hyperparameters, data
and sampling), keeping only the math run so that it takes a few minutes, then recomputes the paired test
from the stored per-sample scores and checks that the report's transfer matrix holds the same numbers.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.stats import permutation_test

from conftest import REPO, run_cli

pytestmark = pytest.mark.slow


def per_item(scores: pd.DataFrame, model: str, benchmark: str) -> pd.Series:
    cell = scores[(scores["model"] == model) & (scores["benchmark"] == benchmark)]
    return cell.groupby("item_id")["correct"].mean().sort_index()


def test_grpo_on_canary_math_beats_the_base(tmp_path: Path, sandbox_ready: None) -> None:
    spec = yaml.safe_load((REPO / "studies" / "canary.yaml").read_text())
    spec |= {"study": "canary-math", "store": str(tmp_path / "store")}
    spec["train"] = [run for run in spec["train"] if run["domain"] == "math"]
    study = tmp_path / "canary-math.yaml"
    study.write_text(yaml.safe_dump(spec, sort_keys=False))
    result = run_cli("run", str(study), env={"RPT_CACHE": str(tmp_path / "cache")}, timeout=1500)
    assert result.returncode == 0, result.stderr[-3000:]

    store = tmp_path / "store"
    scores = pd.concat(pd.read_parquet(path) for path in store.glob("scores/*/attempt-*/part-*.parquet"))
    (trained,) = [run["name"] for run in spec["train"]]
    base, rpt = per_item(scores, spec["base"], "canary_math"), per_item(scores, trained, "canary_math")
    assert list(base.index) == list(rpt.index) and len(base) == 150
    delta = float(rpt.mean() - base.mean())
    p_value = permutation_test(
        (rpt.to_numpy(), base.to_numpy()),
        lambda x, y, axis=-1: np.mean(x - y, axis=axis),
        permutation_type="samples",
        vectorized=True,
        n_resamples=10_000,
        alternative="two-sided",
        random_state=0,
    ).pvalue
    print(
        f"\ncanary_math: base {base.mean():.3f}, {trained} {rpt.mean():.3f}, delta {delta:+.3f}, p {p_value:.2g}"
    )
    assert delta > 0.05 and p_value < 0.01

    (report,) = store.glob("reports/canary-math/*/attempt-*/transfer.csv")
    matrix = pd.read_csv(report).set_index(["pair", "eval_domain"])
    cell = matrix.loc[(trained, "math")]
    assert cell["delta"] == pytest.approx(delta, abs=1e-12)
    assert cell["p_value"] == pytest.approx(p_value, rel=1e-9)
    assert set(matrix.index.get_level_values("eval_domain")) == {"math", "code", "knowledge"}
