"""Which pair x benchmark cells may be compared at all, and the warnings that say why others may not.

A delta is only meaningful when base and RPT model were evaluated the same way. Cells evaluated with
different sampling (from the plan's settings, or visibly from a different number of samples per item)
are excluded from every table and test and named in the warnings; differences that are a study's
deliberate choice (how prompts reach each model) are kept but named.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from rpt_transfer.analysis.tables import PairInfo

NOTE_ONLY = ("prompt_mode", "backend")
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
                warnings += _item_overlap(per_item, pair, benchmark, where)
    return exclude, warnings


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
