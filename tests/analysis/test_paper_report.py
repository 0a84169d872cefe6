"""A score table shaped like the paper's (18 RPT/base pairs x 16 benchmarks, made-up outcomes): every
derived number the report writes is recomputed here, independently, from the raw rows with plain loops.
"""

from collections import defaultdict

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest, permutation_test
from test_transfer import cmh_by_hand

from rpt_transfer.analysis import PairInfo, write_report

BENCHMARKS = {
    "gsm8k": "math", "math500": "math", "aime2024": "math", "amc2023": "math",
    "mbpp": "code", "humaneval": "code", "bigcodebench": "code", "livecodebench": "code", "usaco": "code",
    "codeforces": "code", "polyglot": "code",
    "pubmedqa": "knowledge", "medqa": "knowledge", "tabfact": "knowledge", "legalbench": "knowledge",
    "finben": "knowledge",
}  # fmt: skip
REPEATS = {"aime2024": 16, "amc2023": 16}
PAIRS = [
    PairInfo(name, name, base, tuple(domains.split("+")), algorithm)
    for name, base, domains, algorithm in [
        ("deepscaler-1.5b", "r1-qwen-1.5b", "math", "grpo"),
        ("still3-1.5b", "r1-qwen-1.5b", "math", "rl"),
        ("open-rs3", "r1-qwen-1.5b", "math", "grpo"),
        ("fastcurl-1.5b", "r1-qwen-1.5b", "math", "grpo"),
        ("deepcoder-1.5b", "r1-qwen-1.5b", "code", "grpo+"),
        ("zr1-1.5b", "r1-qwen-1.5b", "math+code", "prime"),
        ("polaris-4b", "qwen3-4b", "math", "grpo"),
        ("eurus2-7b-prime", "eurus2-7b-sft", "math+code", "prime"),
        ("azr-coder-7b", "qwen2.5-coder-7b", "code", "reinforce++"),
        ("skywork-or1-math-7b", "r1-qwen-7b", "math", "grpo"),
        ("skywork-or1-7b", "r1-qwen-7b", "math+code", "grpo"),
        ("areal-boba-rl-7b", "r1-qwen-7b", "math", "ppo"),
        ("huatuo-o1-7b", "qwen2.5-7b-instruct", "knowledge", "ppo"),
        ("tulu3-8b", "tulu3-8b-dpo", "math", "rlvr-ppo"),
        ("huatuo-o1-8b", "llama3.1-8b-instruct", "knowledge", "ppo"),
        ("fino1-8b", "llama3.1-8b-instruct", "knowledge", "grpo"),
        ("olmo2-13b-instruct", "olmo2-13b-dpo", "math", "rlvr-ppo"),
        ("deepcoder-14b", "r1-qwen-14b", "code", "grpo+"),
    ]
]
RESAMPLES = 2_000
Z95 = 1.959963984540054  # the standard normal's 97.5th percentile


def make_scores() -> pd.DataFrame:
    """Made-up outcomes: each model a skill per domain, RPT models better on their trained domains."""
    rng = np.random.default_rng(2026)
    models = {}
    for pair in PAIRS:
        models.setdefault(pair.base_model, None)
        models[pair.rpt_model] = pair
    records = []
    for model, pair in models.items():
        skill = {d: rng.uniform(0.2, 0.7) for d in ("math", "code", "knowledge")}
        if pair is not None:
            for domain in skill:
                skill[domain] += 0.15 if domain in pair.rpt_domains else rng.uniform(-0.1, 0.05)
        for b, (bench, domain) in enumerate(BENCHMARKS.items()):
            for i in range(6 + b):
                difficulty = rng.uniform(-0.2, 0.3)
                for s in range(REPEATS.get(bench, 1)):
                    correct = float(rng.random() < np.clip(skill[domain] - difficulty, 0.02, 0.98))
                    if model == "qwen2.5-coder-7b" and bench == "codeforces":
                        correct = 0.0  # a base accuracy of 0: relative delta undefined
                    records.append((model, bench, domain, f"{bench}-{i}", s, correct))
    columns = ["model", "benchmark", "benchmark_domain", "item_id", "sample_index", "correct"]
    frame = pd.DataFrame.from_records(records, columns=columns)
    return frame.assign(study="paper", reason=None, finish_reason="stop")


@pytest.fixture(scope="module")
def paper(tmp_path_factory):
    scores = make_scores()
    out = tmp_path_factory.mktemp("paper")
    result = write_report(
        study="paper", scores=scores, pairs=PAIRS, provenance={"spec_sha": "x"}, out_dir=out
    )
    return scores, out, result, expected(scores)


def expected(scores: pd.DataFrame) -> dict:
    """Every number recomputed from the rows with dictionaries and loops."""
    samples: dict = defaultdict(lambda: defaultdict(list))
    for row in scores.itertuples(index=False):
        samples[(row.model, row.benchmark)][row.item_id].append(row.correct)
    means = {cell: {item: sum(v) / len(v) for item, v in items.items()} for cell, items in samples.items()}
    accuracy = {cell: sum(m.values()) / len(m) for cell, m in means.items()}
    spread = {}
    for cell, m in means.items():
        values = np.array([m[item] for item in sorted(m)])
        draws = np.random.default_rng(0).integers(0, len(values), size=(RESAMPLES, len(values)))
        low, high = np.percentile(values[draws].mean(axis=1), [2.5, 97.5])
        spread[cell] = (np.std(values, ddof=1) / np.sqrt(len(values)), low, high)
    effects, domains, tests = {}, {}, {}
    for pair in PAIRS:
        for bench, domain in BENCHMARKS.items():
            base_m, rpt_m = means[(pair.base_model, bench)], means[(pair.rpt_model, bench)]
            items = sorted(base_m)
            base = np.array([base_m[i] for i in items])
            rpt = np.array([rpt_m[i] for i in items])
            draws = np.random.default_rng(0).integers(0, len(items), size=(RESAMPLES, len(items)))
            boot_b, boot_r = base[draws].mean(axis=1), rpt[draws].mean(axis=1)
            delta = accuracy[(pair.rpt_model, bench)] - accuracy[(pair.base_model, bench)]
            base_acc = accuracy[(pair.base_model, bench)]
            relative = delta / base_acc if base_acc else float("nan")
            ok = boot_b > 0
            rel_ci = (
                np.percentile((boot_r[ok] - boot_b[ok]) / boot_b[ok], [2.5, 97.5])
                if base_acc
                else [np.nan] * 2
            )
            count = {m: (sum(sum(v) for v in samples[(m, bench)].values()),
                         sum(len(v) for v in samples[(m, bench)].values()))
                     for m in (pair.base_model, pair.rpt_model)}  # fmt: skip
            effects[(pair.name, bench)] = {
                "n_items": len(items), "base_accuracy": base_acc, "rpt_accuracy": base_acc + delta,
                "delta": delta, "delta_low": np.percentile(boot_r - boot_b, 2.5),
                "delta_high": np.percentile(boot_r - boot_b, 97.5), "relative_delta": relative,
                "relative_low": rel_ci[0], "relative_high": rel_ci[1],
                "delta_se": np.std(rpt - base, ddof=1) / np.sqrt(len(items)),
                "p_value": p_value(base, rpt), "seen": "seen" if domain in pair.rpt_domains else "unseen",
                "rpt_correct": count[pair.rpt_model][0], "rpt_samples": count[pair.rpt_model][1],
                "base_correct": count[pair.base_model][0], "base_samples": count[pair.base_model][1],
                "domain": domain,
            }  # fmt: skip
        for domain in ("math", "code", "knowledge"):
            # items in (benchmark, item id) order: the report's draws must not depend on row order
            chosen = sorted(b for b, d in BENCHMARKS.items() if d == domain)
            keys = [(b, i) for b in chosen for i in sorted(means[(pair.base_model, b)])]
            base = np.array([means[(pair.base_model, b)][i] for b, i in keys])
            rpt = np.array([means[(pair.rpt_model, b)][i] for b, i in keys])
            tests[(pair.name, domain)] = (rpt.mean() - base.mean(), p_value(base, rpt), len(base))
    for pair in PAIRS:
        mine = {b: e for (name, b), e in effects.items() if name == pair.name}
        for label, keep in groups():
            domains[(pair.name, label)] = pooled([e for b, e in mine.items() if keep(e)])
    for label, keep in groups():
        cells = [e for e in effects.values() if keep(e)]
        per_pair = [domains[(p.name, label)] for p in PAIRS if (p.name, label) in domains]
        everyone = pooled(cells)
        everyone["delta_unweighted"] = np.mean([d["delta_unweighted"] for d in per_pair])
        everyone["mean_relative_delta"] = np.nanmean([d["mean_relative_delta"] for d in per_pair])
        domains[("all pairs", label)] = everyone
    return {
        "accuracy": accuracy,
        "spread": spread,
        "effects": effects,
        "domains": domains,
        "tests": tests,
        "ti": ti(effects),
    }


def groups():
    yield from [(f"domain:{d}", lambda e, d=d: e["domain"] == d) for d in ("code", "knowledge", "math")]
    yield from [(k, lambda e, k=k: e["seen"] == k) for k in ("seen", "unseen")]


def pooled(cells: list[dict]) -> dict:
    if not cells:
        return None
    n = sum(e["n_items"] for e in cells)
    tables = [[[e["rpt_correct"], e["rpt_samples"] - e["rpt_correct"]],
               [e["base_correct"], e["base_samples"] - e["base_correct"]]] for e in cells]  # fmt: skip
    odds, p = cmh_by_hand(tables)
    relative = [e["relative_delta"] for e in cells if not np.isnan(e["relative_delta"])]
    weighted = sum(e["n_items"] * e["delta"] for e in cells) / n
    se = np.sqrt(sum((e["n_items"] * e["delta_se"]) ** 2 for e in cells)) / n  # independent benchmarks
    return {
        "n_benchmarks": len(cells), "n_items": n, "delta_weighted": weighted, "delta_weighted_se": se,
        "delta_weighted_low": weighted - Z95 * se, "delta_weighted_high": weighted + Z95 * se,
        "delta_unweighted": sum(e["delta"] for e in cells) / len(cells),
        "mean_relative_delta": sum(relative) / len(relative) if relative else float("nan"),
        "cmh_odds_ratio": odds, "cmh_p_value": p,
    }  # fmt: skip


def p_value(base: np.ndarray, rpt: np.ndarray) -> float:
    if set(base) <= {0.0, 1.0} and set(rpt) <= {0.0, 1.0}:
        only_base, only_rpt = int(((base == 1) & (rpt == 0)).sum()), int(((base == 0) & (rpt == 1)).sum())
        return 1.0 if only_base + only_rpt == 0 else binomtest(only_base, only_base + only_rpt).pvalue
    if np.allclose(base, rpt):
        return 1.0
    return permutation_test((rpt, base), lambda x, y, axis: np.mean(x - y, axis=axis), vectorized=True,
                            permutation_type="samples", n_resamples=10_000, random_state=0).pvalue  # fmt: skip


def ti(effects: dict) -> dict:
    out = {}
    for pair in PAIRS:
        mine = [
            e for (name, _), e in effects.items() if name == pair.name and not np.isnan(e["relative_delta"])
        ]
        seen = [e["relative_delta"] for e in mine if e["seen"] == "seen"]
        unseen = [e["relative_delta"] for e in mine if e["seen"] == "unseen"]
        gain = sum(seen) / len(seen)
        out[pair.name] = (sum(unseen) / len(unseen)) / gain if gain >= 0.01 else float("nan")
    return out


def test_shape_is_the_papers(paper) -> None:
    scores, out, _, _ = paper
    assert scores["benchmark"].nunique() == 16 and len(PAIRS) == 18
    assert len(pd.read_parquet(out / "effects.parquet")) == 18 * 16


def test_accuracy_and_effects(paper) -> None:
    _, out, _, want = paper
    accuracy = pd.read_parquet(out / "accuracy.parquet")
    for row in accuracy.itertuples(index=False):
        assert row.accuracy == pytest.approx(want["accuracy"][(row.model, row.benchmark)], abs=1e-12)
        spread = (row.accuracy_se, row.accuracy_low, row.accuracy_high)
        assert spread == pytest.approx(want["spread"][(row.model, row.benchmark)], abs=1e-12)
    effects = pd.read_parquet(out / "effects.parquet")
    columns = ["n_items", "base_accuracy", "rpt_accuracy", "delta", "delta_low", "delta_high", "delta_se",
               "relative_delta", "relative_low", "relative_high", "p_value", "rpt_correct", "rpt_samples",
               "base_correct", "base_samples"]  # fmt: skip
    for row in effects.to_dict("records"):
        expect = want["effects"][(row["pair"], row["benchmark"])]
        assert row["seen"] == expect["seen"]
        for column in columns:
            assert row[column] == pytest.approx(expect[column], abs=1e-9, nan_ok=True), (row["pair"], column)
    zero_base = effects.set_index(["pair", "benchmark"]).loc[("azr-coder-7b", "codeforces")]
    assert zero_base["base_accuracy"] == 0 and np.isnan(zero_base["relative_delta"])
    deltas = pd.read_parquet(out / "deltas.parquet")
    for row in deltas.itertuples(index=False):
        assert row.delta == pytest.approx(want["effects"][(row.pair, row.benchmark)]["delta"], abs=1e-12)


def test_domains_seen_unseen_and_cmh(paper) -> None:
    _, out, _, want = paper
    domains = pd.read_parquet(out / "domains.parquet")
    assert len(domains) == len(want["domains"])
    for row in domains.to_dict("records"):
        expect = want["domains"][(row["pair"], row["group"])]
        for column, value in expect.items():
            assert row[column] == pytest.approx(value, abs=1e-9, nan_ok=True), (
                row["pair"],
                row["group"],
                column,
            )
    summary = pd.read_parquet(out / "summary.parquet")
    for row in summary.itertuples(index=False):
        assert row.mean_delta == pytest.approx(
            want["domains"][(row.pair, row.seen)]["delta_unweighted"], abs=1e-12
        )


def test_transfer_matrix_and_domain_tests(paper) -> None:
    _, out, _, want = paper
    matrix = pd.read_parquet(out / "transfer.parquet")
    single = [pair for pair in PAIRS if len(pair.rpt_domains) == 1]
    assert len(matrix) == 3 * len(single)
    for row in matrix.itertuples(index=False):
        delta, p, n = want["tests"][(row.pair, row.eval_domain)]
        assert (row.delta, row.p_value, row.n_items) == pytest.approx((delta, p, n), abs=1e-9)
    by_algorithm = pd.read_parquet(out / "transfer_by_algorithm.parquet")
    cell = by_algorithm.set_index(["value", "train_domain", "eval_domain"]).loc[("grpo", "math", "code")]
    names = [p.name for p in single if p.algorithm == "grpo" and p.rpt_domains == ("math",)]
    assert cell["n_pairs"] == len(names)
    cells = [want["effects"][(name, b)] for name in names for b, d in BENCHMARKS.items() if d == "code"]
    odds, p = cmh_by_hand([[[e["rpt_correct"], e["rpt_samples"] - e["rpt_correct"]],
                            [e["base_correct"], e["base_samples"] - e["base_correct"]]] for e in cells])  # fmt: skip
    assert (cell["cmh_odds_ratio"], cell["cmh_p_value"]) == pytest.approx((odds, p), abs=1e-9)


def test_transferability_and_headline_metrics(paper) -> None:
    _, out, result, want = paper
    index = pd.read_parquet(out / "transferability.parquet")
    unseen = index[index["target"] == "unseen"].set_index("pair")["transferability_index"]
    for name, value in want["ti"].items():
        assert unseen[name] == pytest.approx(value, abs=1e-9, nan_ok=True)
    metrics = result.metrics
    domains = want["domains"]
    for kind in ("seen", "unseen"):
        per_pair = [domains[(p.name, kind)]["delta_unweighted"] for p in PAIRS if (p.name, kind) in domains]
        assert metrics[f"mean_delta_{kind}"] == pytest.approx(np.mean(per_pair), abs=1e-12)
        for column in ("delta_weighted", "cmh_odds_ratio", "cmh_p_value"):
            assert metrics[f"{column}_{kind}"] == pytest.approx(
                domains[("all pairs", kind)][column], abs=1e-9
            )
    assert metrics["n_pairs"] == 18
    html = (out / "report.html").read_text()
    odds = (
        f'<td class="num">{metrics["cmh_odds_ratio_seen"]:.3g}</td><td><code class="key">cmh_odds_ratio_seen'
    )
    assert "<tr><td>Odds ratio on trained domains (CMH)<span" in html and odds in html
    assert f"{metrics['mean_delta_unseen'] * 100:+.1f}</td>" in html  # headline deltas are in points


def shown(value: float, fmt: str) -> str:
    return "n/a" if np.isnan(value) else fmt.format(value)


def test_markdown_shows_the_independently_computed_numbers(paper) -> None:
    _, out, _, want = paper
    md = (out / "report.md").read_text()
    for (pair, group), d in want["domains"].items():
        row = (f"| {pair} | {group} | {d['n_benchmarks']} | {d['n_items']} | {d['delta_weighted']:+.3f} | "
               f"{d['delta_weighted_se']:.3f} | {d['delta_weighted_low']:+.3f} | {d['delta_weighted_high']:+.3f} | "
               f"{d['delta_unweighted']:+.3f} | {shown(d['mean_relative_delta'], '{:+.1%}')} | "
               f"{d['cmh_odds_ratio']:.3f} | {d['cmh_p_value']:.3g} |")  # fmt: skip
        assert row in md, row
    for (pair, bench), e in want["effects"].items():
        test = "mcnemar_exact" if bench not in REPEATS else "permutation"
        row = (f"| {pair} | {bench} | {e['domain']} | {e['seen']} | {e['n_items']} | {e['base_accuracy']:.3f} | "
               f"{e['rpt_accuracy']:.3f} | {e['delta']:+.3f} | {e['delta_se']:.3f} | {e['delta_low']:+.3f} | "
               f"{e['delta_high']:+.3f} | {shown(e['relative_delta'], '{:+.1%}')} | "
               f"{shown(e['relative_low'], '{:+.1%}')} | {shown(e['relative_high'], '{:+.1%}')} | {test} | "
               f"{e['p_value']:.3g} |")  # fmt: skip
        assert row in md, row
