"""Which pair x benchmark cells may be compared at all, and the warnings that say why others may not.

A delta is only meaningful when base and RPT model were evaluated the same way. Cells evaluated with
different sampling (from the plan's settings, or visibly from a different number of samples per item)
are excluded from every table and test and named in the warnings; differences that are a study's
deliberate choice (how prompts reach each model) are kept but named.

The software behind each row is not in job ids (a patch upgrade of torch or Go reuses cached results) but
every row records it (`engine`: generation engine, device, dtype; `toolchain`: the scorer's libraries and
compilers). A cell whose base and RPT rows were produced by different software, or whose rows mix
versions, is kept but named with the versions, so no report mixes them silently.
"""

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from rpt_transfer.analysis.tables import PairInfo

RECORDED = ("engine", "toolchain")
"""Score-row columns (canonical JSON objects) that record the software behind each row."""
NOT_RECORDED = "not recorded"
"""How rows stored before a column existed show in a warning (rows that have it show "recorded")."""

OWN_SAMPLING = "own_sampling"
"""Prefix of the sampling keys a model took from its own generation_config.json (`sampling_defaults:
model`): they differ between base and RPT by the study's design."""
NOTE_ONLY = ("prompt_mode", "backend", *(f"{OWN_SAMPLING}.{k}" for k in ("temperature", "top_p", "top_k")))
"""Settings that may differ between base and RPT by design; named in a warning, cell kept."""

Settings = Mapping[tuple[str, str], Mapping[str, Any]]
"""Per (model, benchmark): flat settings, e.g. {"sampling.temperature": 0.6, "prompt_mode": "chat"}."""


def check_pairs(
    scores: pd.DataFrame, pairs: Sequence[PairInfo], settings: Settings | None = None
) -> tuple[set[tuple[str, str]], list[str]]:
    """The (pair, benchmark) cells to exclude, and one warning per problem found."""
    exclude: set[tuple[str, str]] = set()
    warnings: list[str] = []
    per_item = scores.groupby(["model", "benchmark", "item_id"]).size()
    software = recorded_software(scores)
    for pair in pairs:
        for benchmark in sorted(scores["benchmark"].unique()):
            base_n = _sample_counts(per_item, pair.base_model, benchmark)
            rpt_n = _sample_counts(per_item, pair.rpt_model, benchmark)
            if base_n is None or rpt_n is None:
                continue  # `tables.missing_cells` reports cells one model lacks
            where = f"pair '{pair.name}' on '{benchmark}'"
            differ = _differences(settings, pair, benchmark) if settings is not None else {}
            strict = {key: value for key, value in differ.items() if key not in NOTE_ONLY}
            if strict:
                exclude.add((pair.name, benchmark))
                warnings.append(f"{where}: base and RPT evaluated with different settings ({_show(strict)}); "
                                "not compared")  # fmt: skip
            elif base_n != rpt_n:
                exclude.add((pair.name, benchmark))
                warnings.append(f"{where}: samples per item differ (base {_counts(base_n)}, RPT "
                                f"{_counts(rpt_n)}), so sampling differed; not compared")  # fmt: skip
            if differ.keys() & set(NOTE_ONLY):
                noted = {key: differ[key] for key in NOTE_ONLY if key in differ}
                warnings.append(f"{where}: compared although {_show(noted)} differ by the study's design")
            if (pair.name, benchmark) not in exclude:
                warnings += _software(software, pair, benchmark, where)
                warnings += _item_overlap(per_item, pair, benchmark, where)
    return exclude, warnings


Versions = dict[str, tuple[str, ...]]
"""A recorded key ("engine.transformers", "toolchain.go") -> the distinct values a cell's rows carry."""


def recorded_software(scores: pd.DataFrame) -> dict[tuple[str, str], Versions]:
    """Per (model, benchmark): the software versions its score rows record, flattened per key."""
    columns = [column for column in RECORDED if column in scores.columns]
    found: dict[tuple[str, str], dict[str, set[str]]] = {}
    if not columns:
        return {}
    distinct = scores[["model", "benchmark", *columns]].astype(object).drop_duplicates()
    for row in distinct.itertuples(index=False):
        cell = found.setdefault((row[0], row[1]), {})
        for column, text in zip(columns, row[2:], strict=True):
            recorded = isinstance(text, str)  # null: a row stored before the column existed
            cell.setdefault(column, set()).add("recorded" if recorded else NOT_RECORDED)
            for key, value in json.loads(text).items() if recorded else ():
                cell.setdefault(f"{column}.{key}", set()).add(str(value))
    return {
        cell: {key: tuple(sorted(values)) for key, values in keys.items()} for cell, keys in found.items()
    }


def _software(
    software: Mapping[tuple[str, str], Versions], pair: PairInfo, benchmark: str, where: str
) -> list[str]:
    """Warnings when base and RPT rows come from different software, or either mixes versions."""
    base = software.get((pair.base_model, benchmark), {})
    rpt = software.get((pair.rpt_model, benchmark), {})
    keys = sorted(set(base) | set(rpt))
    differ = {key: (base.get(key), rpt.get(key)) for key in keys if base.get(key) != rpt.get(key)}
    warnings = []
    if differ:
        shown = "; ".join(
            f"{key}: base {_versions(b)} vs RPT {_versions(r)}" for key, (b, r) in differ.items()
        )
        warnings.append(
            f"{where}: compared although base and RPT rows come from different software ({shown})"
        )
    mixed = {key: base[key] for key in keys if key not in differ and len(base.get(key, ())) > 1}
    if mixed:
        shown = "; ".join(f"{key}: {_versions(values)}" for key, values in mixed.items())
        warnings.append(f"{where}: base and RPT rows each mix software versions ({shown})")
    return warnings


def _versions(values: tuple[str, ...] | None) -> str:
    """One side's versions of a key: 'a', or 'a' + 'b' when its rows mix them; none if it lacks the key."""
    return " + ".join(repr(value) for value in values) if values else "none"


def _sample_counts(per_item: pd.Series, model: str, benchmark: str) -> frozenset[int] | None:
    """The distinct numbers of samples per item a model has on a benchmark; None when it has none."""
    try:
        counts = per_item.loc[(model, benchmark)]
    except KeyError:
        return None
    return frozenset(int(n) for n in counts.unique())


def _differences(settings: Settings, pair: PairInfo, benchmark: str) -> dict[str, tuple[Any, Any]]:
    """Setting -> (base value, RPT value) for every setting that differs; missing settings count as None."""
    base = settings.get((pair.base_model, benchmark), {})
    rpt = settings.get((pair.rpt_model, benchmark), {})
    keys = sorted(set(base) | set(rpt))
    return {key: (base.get(key), rpt.get(key)) for key in keys if base.get(key) != rpt.get(key)}


def _item_overlap(per_item: pd.Series, pair: PairInfo, benchmark: str, where: str) -> list[str]:
    """A warning when the two models answered different items: only the shared ones are compared."""
    base = set(per_item.loc[(pair.base_model, benchmark)].index)
    rpt = set(per_item.loc[(pair.rpt_model, benchmark)].index)
    if base == rpt:
        return []
    return [f"{where}: compared on the {len(base & rpt)} items both answered (base has {len(base)}, "
            f"RPT {len(rpt)})"]  # fmt: skip


def _show(differ: Mapping[str, tuple[Any, Any]]) -> str:
    return ", ".join(f"{key}: base {base!r} vs RPT {rpt!r}" for key, (base, rpt) in differ.items())


def _counts(counts: frozenset[int]) -> str:
    return "/".join(str(n) for n in sorted(counts))
