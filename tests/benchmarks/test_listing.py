"""docs/benchmarks.md and the README's table are generated from the registry; CI fails on drift."""

import os
from pathlib import Path

import pytest

from rpt_transfer.benchmarks import ALL_BENCHMARKS
from rpt_transfer.benchmarks.listing import END, START, markdown_table, with_table

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("relative", ["docs/benchmarks.md", "README.md"])
def test_benchmark_tables_are_current(relative: str) -> None:
    path = REPO / relative
    text = path.read_text(encoding="utf-8")
    assert START in text and END in text, f"{relative} lacks the benchmark table markers"
    expected = with_table(text, markdown_table(ALL_BENCHMARKS))
    if os.environ.get("RPT_REGENERATE"):
        path.write_text(expected, encoding="utf-8")
    assert text == expected, f"stale benchmark table in {relative}: rerun the tests with RPT_REGENERATE=1"
