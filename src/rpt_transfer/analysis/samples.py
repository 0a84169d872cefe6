"""Which score rows count, and what each scoring policy gave them.

Two scoring policies (docs/scoring-policies.md): `correct` is the strict one (the benchmark's stated
answer format), `correct_flexible` the flexible one (null in rows stored before it existed: equal to
`correct`); `format_followed` says whether the stated format was used. Rows whose reason is
`toolchain_missing` (the scoring machine lacked a compiler or interpreter, and the study accepted that) are
not the model's failure: they are left out of every number and only counted (`excluded_table`).
"""

import numpy as np
import pandas as pd

EXCLUDED_REASON = "toolchain_missing"
"""Score rows with this reason are excluded from every number (not counted 0) and reported as such."""
STRICT = "correct"
FLEXIBLE = "correct_flexible"
"""The per-sample score column of each policy; analyses take one of these as their `column`."""

EXCLUDED_COLUMNS = ("model", "benchmark", "benchmark_domain", "n_excluded", "n_samples", "reason", "why")
CELL = ["model", "benchmark", "benchmark_domain"]


def excluded(scores: pd.DataFrame) -> pd.Series:
    """Rows left out of every number: their reason is `EXCLUDED_REASON`."""
    return scores["reason"].eq(EXCLUDED_REASON)


def with_policies(scores: pd.DataFrame) -> pd.DataFrame:
    """The rows to analyse: excluded rows dropped, `correct_flexible` filled from `correct` where null.

    Rows stored before the flexible policy existed read back with it null (or without the column);
    such a sample's flexible score is its strict one. `correct` itself is never touched.
    """
    mask = excluded(scores)
    kept = scores[~mask] if mask.any() else scores  # no row copy in the usual case
    if FLEXIBLE in kept.columns:
        return kept.assign(**{FLEXIBLE: kept[FLEXIBLE].astype(float).fillna(kept[STRICT])})
    return kept.assign(**{FLEXIBLE: kept[STRICT]})


def format_followed(scores: pd.DataFrame) -> pd.Series:
    """Per sample, 1.0 when the answer was in the benchmark's stated format, else 0.0; NaN if unknown.

    Where `format_followed` is null (rows stored before it existed), the strict policy found an answer
    that was not cut off, as `Verdict.resolved` decides; without an `extracted` column either, unknown.
    """
    if "extracted" in scores.columns:
        found = scores["extracted"].notna() & ~scores["reason"].isin(("no_answer", "truncated"))
        fallback = found.astype(float)
    else:
        fallback = pd.Series(np.nan, index=scores.index)
    if "format_followed" not in scores.columns:
        return fallback
    known = scores["format_followed"].astype("boolean").astype("Float64")
    return known.fillna(fallback).astype(float)


def excluded_table(scores: pd.DataFrame, *, max_reasons: int = 3) -> pd.DataFrame:
    """Per model × benchmark with excluded rows: how many of its samples, and why (distinct explanations).

    `why` joins up to `max_reasons` distinct explanations (e.g. which tool was not found); without an
    `explanation` column it names the reason only.
    """
    mask = excluded(scores)
    if not mask.any():
        return pd.DataFrame(columns=list(EXCLUDED_COLUMNS))
    totals = scores.groupby(CELL).size()
    records = []
    for cell, rows in scores[mask].groupby(CELL, sort=True):
        texts = rows["explanation"].dropna() if "explanation" in rows.columns else pd.Series(dtype=str)
        distinct = sorted({str(text).strip() for text in texts if str(text).strip()})
        why = "; ".join(distinct[:max_reasons]) + (
            f"; +{len(distinct) - max_reasons} more" if len(distinct) > max_reasons else ""
        )
        records.append(
            (*cell, len(rows), int(totals[cell]), EXCLUDED_REASON, why or "toolchain not installed")
        )
    return pd.DataFrame.from_records(records, columns=list(EXCLUDED_COLUMNS))


def excluded_warnings(table: pd.DataFrame) -> list[str]:
    """One line per model × benchmark with excluded samples: how many, why, and that they do not count."""
    return [
        f"model '{row.model}' on '{row.benchmark}': {row.n_excluded} of {row.n_samples} samples excluded "
        f"({row.reason}: {row.why}); not counted as wrong, left out of every number"
        for row in table.itertuples(index=False)
    ]
