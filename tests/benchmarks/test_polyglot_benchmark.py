"""Aider Polyglot records, items, options and references from the local copy."""

import json
import os
from collections import Counter
from pathlib import Path

import pytest

from rpt_transfer.benchmarks.polyglot import BENCHMARK, LANGUAGES, SIZES, read_hub
from rpt_transfer.benchmarks.sources import DATA_ENV
from rpt_transfer.errors import RptError

DATA = Path(
    os.environ.get(DATA_ENV) or Path(__file__).resolve().parents[2].parent / "shared" / "data" / "benchmarks"
)
needs_data = pytest.mark.skipif(
    not (DATA / "polyglot").is_dir(), reason=f"no Polyglot data at {DATA}/polyglot (set {DATA_ENV})"
)


@pytest.fixture(autouse=True)
def _data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_ENV, str(DATA))


def test_sizes_without_loading() -> None:
    assert BENCHMARK.size() == 225 == sum(SIZES.values())
    assert BENCHMARK.size(options={"languages": ["cpp", "rust"]}) == 56
    with pytest.raises(ValueError):
        BENCHMARK.parse_options({"languages": ["cobol"]})


def test_hub_load_says_how_to_get_a_local_copy() -> None:
    with pytest.raises(RptError, match="RPT_BENCHMARK_DATA"):
        next(read_hub(lambda *args: iter(())))


@needs_data
def test_items_match_the_count_table_and_render() -> None:
    items = BENCHMARK.items()
    assert Counter(item.metadata["language"] for item in items) == SIZES
    assert len({item.id for item in items}) == 225
    for item in items:
        prompt = BENCHMARK.render_prompt(item)
        assert item.id.startswith(f"polyglot-{item.metadata['language']}-")
        assert item.prompt_vars["stub"] in prompt and "{" not in item.prompt_vars["fence"]
        reference = json.loads(item.reference)
        assert reference["answer_file"] in reference["files"]
        assert set(reference["test_files"]) <= set(reference["files"])
        assert not any(name.startswith(".meta/") for name in reference["files"])  # no example solution
        catch = [name for name in reference["files"] if name.endswith("catch.hpp")]
        assert catch == (["test/catch.hpp"] if reference["language"] == "cpp" else [])


@needs_data
def test_language_option_keeps_only_those_languages() -> None:
    items = BENCHMARK.items(options={"languages": ["python"]})
    assert len(items) == SIZES["python"] == BENCHMARK.size(options={"languages": ["python"]})
    assert {item.metadata["language"] for item in items} == {"python"}
    assert set(LANGUAGES) == set(SIZES)
