"""Tidy tables built from per-sample scores: accuracy per model × benchmark, RPT − base deltas per pair.

Everything here is a pure function from frames to frames (or to plain values), so that later statistics
(bootstrap CIs, paired tests, CMH) can be added as more functions over the same tables while rendering
stays last, in `report.py`.

Accuracy is reported under both scoring policies, and rows excluded for a missing toolchain are only
counted: `samples.py` says which rows count and what each policy scored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from rpt_transfer.analysis.samples import FLEXIBLE, STRICT, excluded, format_followed, with_policies

SEEN = "seen"
UNSEEN = "unseen"

MAX_TRUNCATED_RATE = 0.05
"""Above this share of samples cut at the length limit, a model × benchmark cell earns a warning."""

SCORE_COLUMNS = (
    "model",
    "benchmark",
    "benchmark_domain",
    "item_id",
    "sample_index",
    "correct",
    "reason",
    "finish_reason",
)
ACCURACY_COLUMNS = (
    "model",
    "benchmark",
    "benchmark_domain",
    "n_items",
    "n_samples",
    "accuracy",
    "truncated_rate",
    "no_answer_rate",
    "error_rate",
    "accuracy_flexible",
    "format_rate",
    "n_excluded",
)
DELTA_COLUMNS = (
    "pair",
    "rpt_model",
    "base_model",
    "benchmark",
    "benchmark_domain",
    "seen",
    "base_accuracy",
    "rpt_accuracy",
    "delta",
    "relative_delta",
)
SUMMARY_COLUMNS = ("pair", "seen", "n_benchmarks", "mean_delta", "mean_base_accuracy", "mean_rpt_accuracy")

_CELL = ["model", "benchmark", "benchmark_domain"]
_METRIC_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_./-]")


class PairInfo(NamedTuple):
    """One RPT model and the base model it was trained from, as the study pairs them."""

    name: str
    rpt_model: str
    base_model: str
    rpt_domains: tuple[str, ...]
    algorithm: str


NOT_ERRORS = ("no_answer", "truncated", "parse_error")
"""Reasons that are the model's answer (none given, cut off by the length limit, or not parseable as an
answer or a program), not a scoring failure."""

SAMPLE_RATES: Mapping[str, Callable[[pd.DataFrame], pd.Series]] = {
    "truncated_rate": lambda s: s["finish_reason"].eq("length"),
    "no_answer_rate": lambda s: s["reason"].eq("no_answer"),
    "error_rate": lambda s: s["reason"].notna() & ~s["reason"].isin(NOT_ERRORS),
}
"""Per-sample flags whose share per model × benchmark goes into the accuracy table; declared as data so
a new rate is one line here."""


def accuracy_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Accuracy under both scoring policies and sample-health rates per model × benchmark.

    Accuracy is the mean over items of the per-item mean over samples (pass@1 averaged), so an item
    with more samples does not weigh more than the others; `accuracy` is the strict policy,
    `accuracy_flexible` the flexible one. Rates are shares of the scored samples; `format_rate` is the
    share that followed the stated answer format. `n_excluded` counts rows left out of all of these
    (`EXCLUDED_REASON`); a cell with every row excluded keeps its row, with 0 items and NaN numbers.

    Args:
        scores: One row per scored sample, with at least the columns in `SCORE_COLUMNS`.

    Returns:
        One row per model × benchmark with `ACCURACY_COLUMNS`, sorted by model and benchmark.
    """
    _require_columns(scores, SCORE_COLUMNS, "scores")
    _check_scores(scores)
    n_excluded = scores[excluded(scores)].groupby(_CELL).size()
    kept = with_policies(scores)
    flags = {name: rule(kept).astype(float) for name, rule in SAMPLE_RATES.items()}
    flags["format_rate"] = format_followed(kept)
    frame = kept[[*_CELL, "item_id", STRICT, FLEXIBLE]].assign(**flags)
    per_item = frame.groupby([*_CELL, "item_id"])[[STRICT, FLEXIBLE]].mean()
    items = per_item.groupby(level=_CELL)
    samples = frame.groupby(_CELL)
    table = pd.DataFrame(
        {
            "n_items": items.size(),
            "n_samples": samples.size(),
            "accuracy": items[STRICT].mean(),
            "accuracy_flexible": items[FLEXIBLE].mean(),
        }
    )
    for name in [*SAMPLE_RATES, "format_rate"]:
        table[name] = samples[name].mean()
    only_excluded = n_excluded.index.difference(table.index)
    if len(only_excluded):  # nothing scored: the cell stays, with counts 0 and no accuracy
        table = table.reindex(table.index.append(only_excluded))
        table[["n_items", "n_samples"]] = table[["n_items", "n_samples"]].fillna(0).astype(int)
    table["n_excluded"] = n_excluded.reindex(table.index, fill_value=0).astype(int)
    table = table.reset_index()
    return table.sort_values(["model", "benchmark"]).reset_index(drop=True)[list(ACCURACY_COLUMNS)]


def pair_deltas(acc: pd.DataFrame, pairs: Sequence[PairInfo]) -> pd.DataFrame:
    """RPT − base accuracy per pair and benchmark, with the benchmark marked seen or unseen.

    A benchmark is seen when its domain is among the pair's RPT training domains. Only benchmarks that
    both models of a pair have enter; `missing_cells` reports the others.

    Args:
        acc: The output of `accuracy_table`.
        pairs: The study's pairs; their order is kept.

    Returns:
        `DELTA_COLUMNS`; `relative_delta` is NaN where the base accuracy is 0.
    """
    _require_columns(acc, ("model", "benchmark", "benchmark_domain", "accuracy"), "accuracy table")
    names = [pair.name for pair in pairs]
    if len(set(names)) != len(names):
        raise ValueError(f"pair names must be unique, got {names}")
    keep = ["benchmark", "benchmark_domain", "accuracy"]
    frames = []
    for pair in pairs:
        base = acc.loc[acc["model"] == pair.base_model, keep]
        rpt = acc.loc[acc["model"] == pair.rpt_model, keep]
        both = base.merge(rpt, on=["benchmark", "benchmark_domain"], suffixes=("_base", "_rpt"))
        both = both.rename(columns={"accuracy_base": "base_accuracy", "accuracy_rpt": "rpt_accuracy"})
        delta = both["rpt_accuracy"] - both["base_accuracy"]
        frames.append(
            both.assign(
                pair=pair.name,
                rpt_model=pair.rpt_model,
                base_model=pair.base_model,
                seen=np.where(both["benchmark_domain"].isin(pair.rpt_domains), SEEN, UNSEEN),
                delta=delta,
                relative_delta=delta / both["base_accuracy"].where(both["base_accuracy"] != 0),
            ).sort_values("benchmark")
        )
    if not frames:
        return pd.DataFrame(columns=list(DELTA_COLUMNS))
    return pd.concat(frames, ignore_index=True)[list(DELTA_COLUMNS)]


def missing_cells(acc: pd.DataFrame, pairs: Sequence[PairInfo]) -> list[str]:
    """Warnings for each pair × benchmark that `pair_deltas` had to leave out.

    The benchmarks expected are all those in the accuracy table, so a benchmark that neither model of
    a pair has is reported too.
    """
    benchmarks = sorted(acc["benchmark"].unique())
    have = set(zip(acc["model"], acc["benchmark"], strict=True))
    models = set(acc["model"])
    warnings = []
    for pair in pairs:
        roles = (("RPT model", pair.rpt_model), ("base model", pair.base_model))
        absent = [f"{role} '{model}'" for role, model in roles if model not in models]
        if absent:
            warnings.append(f"pair '{pair.name}': no scores at all for {' and '.join(absent)}; pair left out")
            continue
        for benchmark in benchmarks:
            lacking = [f"{role} '{model}'" for role, model in roles if (model, benchmark) not in have]
            if lacking:
                warnings.append(
                    f"pair '{pair.name}': no scores on '{benchmark}' for {' and '.join(lacking)}; "
                    "benchmark left out of this pair's deltas"
                )
    return warnings


def domain_summary(deltas: pd.DataFrame) -> pd.DataFrame:
    """Unweighted mean over benchmarks per pair and per seen/unseen, the transfer question in one table.

    Returns:
        `SUMMARY_COLUMNS`, pairs in their order in `deltas`, seen before unseen; a pair with no
        benchmark of one kind has no row for it.
    """
    _require_columns(deltas, ("pair", "seen", "delta", "base_accuracy", "rpt_accuracy"), "deltas")
    grouped = deltas.groupby(["pair", "seen"], sort=False)
    summary = grouped.agg(
        n_benchmarks=("delta", "size"),
        mean_delta=("delta", "mean"),
        mean_base_accuracy=("base_accuracy", "mean"),
        mean_rpt_accuracy=("rpt_accuracy", "mean"),
    ).reset_index()
    pair_order = {name: i for i, name in enumerate(dict.fromkeys(deltas["pair"]))}
    order = {"pair": pair_order, "seen": {SEEN: 0, UNSEEN: 1}}
    summary = summary.sort_values(["pair", "seen"], key=lambda col: col.map(order[col.name]))
    return summary.reset_index(drop=True)[list(SUMMARY_COLUMNS)]


def quality_warnings(acc: pd.DataFrame, *, max_truncated_rate: float = MAX_TRUNCATED_RATE) -> list[str]:
    """Warnings for cells whose accuracy may be an artefact of truncation or failed scoring.

    A cell warns when more than `max_truncated_rate` of its samples hit the length limit, or when any
    sample could not be scored (error or timeout), because both push accuracy down for reasons other
    than the model's reasoning.
    """
    warnings = []
    for row in acc.itertuples(index=False):
        cell = f"model '{row.model}' on '{row.benchmark}'"
        if row.truncated_rate > max_truncated_rate:
            warnings.append(
                f"{cell}: {row.truncated_rate:.1%} of samples truncated at the length limit "
                f"(above {max_truncated_rate:.0%})"
            )
        if row.error_rate > 0:
            n_failed = round(row.error_rate * row.n_samples)
            warnings.append(
                f"{cell}: {n_failed} of {row.n_samples} samples ({row.error_rate:.1%}) failed to score "
                "(error or timeout)"
            )
    return warnings


def headline_metrics(deltas: pd.DataFrame, summary: pd.DataFrame) -> dict[str, float]:
    """Flat, MLflow-friendly metrics: overall and per-pair seen/unseen deltas, and every cell's delta.

    `mean_delta_seen` and `mean_delta_unseen` average the per-pair means, so each pair counts once
    however many benchmarks it has. Metrics that would be NaN (e.g. no unseen benchmark) are left out.
    Keys keep to [A-Za-z0-9_./-]; other characters in names become '_'.
    """
    metrics: dict[str, float] = {"n_pairs": float(deltas["pair"].nunique())}
    for kind in (SEEN, UNSEEN):
        per_pair = summary.loc[summary["seen"] == kind]
        metrics[f"mean_delta_{kind}"] = float(per_pair["mean_delta"].mean())
        for row in per_pair.itertuples(index=False):
            _put(metrics, f"delta_{kind}/{row.pair}", row.mean_delta)
    for row in deltas.itertuples(index=False):
        _put(metrics, f"delta/{row.pair}/{row.benchmark}", row.delta)
    return {key: value for key, value in metrics.items() if not np.isnan(value)}


def metric_key(name: str) -> str:
    """Replace characters outside [A-Za-z0-9_./-] so the name is a valid metric key everywhere."""
    return _METRIC_KEY_UNSAFE.sub("_", name)


def _put(metrics: dict[str, float], name: str, value: float) -> None:
    """Add a metric under a safe key; two names that clean to one key would silently overwrite."""
    key = metric_key(name)
    if key in metrics:
        raise ValueError(f"metric names collide after cleaning: {name!r} -> {key!r}")
    metrics[key] = float(value)


def _require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """Fail with the missing column names rather than a KeyError deep inside a groupby."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} lack columns {missing}; have {list(frame.columns)}")


def _check_scores(scores: pd.DataFrame) -> None:
    """Reject inputs that would silently skew accuracy: duplicated samples or a benchmark in two domains."""
    key = ["model", "benchmark", "item_id", "sample_index"]
    duplicated = scores.duplicated(key)
    if duplicated.any():
        first = scores.loc[duplicated, key].iloc[0].to_dict()
        raise ValueError(f"{int(duplicated.sum())} duplicated score rows (same {key}), e.g. {first}")
    domains = scores.groupby("benchmark")["benchmark_domain"].nunique()
    if (domains > 1).any():
        raise ValueError(f"benchmarks with more than one domain: {sorted(domains[domains > 1].index)}")
