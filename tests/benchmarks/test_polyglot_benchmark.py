"""Aider Polyglot records, items, options and references from the local copy."""

import json
from collections import Counter

import pytest

from conftest import BENCHMARK_DATA, needs_benchmark_data
from rpt_transfer.benchmarks.polyglot import BENCHMARK, LANGUAGES, SIZES, read_hub
from rpt_transfer.benchmarks.sources import DATA_ENV
from rpt_transfer.errors import RptError

DATA = BENCHMARK_DATA
needs_data = needs_benchmark_data("polyglot")


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


@needs_data
def test_records_carry_the_whole_exercise_but_no_track_tooling() -> None:
    """Files the tests read or build against come along even where config.json does not list them."""
    items = {item.id: json.loads(item.reference) for item in BENCHMARK.items()}
    grep = items["polyglot-javascript-grep"]
    assert {"data/iliad.txt", "data/midsummer-night.txt", "data/paradise-lost.txt"} <= set(grep["files"])
    assert "cases_test.go" in items["polyglot-go-bottle-song"]["files"]
    assert "src/pre_implemented.rs" in items["polyglot-rust-doubly-linked-list"]["files"]
    assert "src/test/java/TreeTest.java" in items["polyglot-java-satellite"]["test_files"]
    robot = items["polyglot-go-robot-simulator"]["test_files"]
    assert len([name for name in robot if name.startswith("robot_simulator")]) == 3
    for reference in items.values():
        names = set(reference["files"])
        assert not names & {"package.json", "babel.config.js", "build.gradle", "gradlew", "LICENSE"}
        assert not any(name.startswith((".approaches/", ".articles/", "gradle/")) for name in names)
        assert not set(reference["test_files"]) & set(reference["solution_files"])


@needs_data
def test_java_prompt_shows_the_other_solution_stubs() -> None:
    items = {item.id: item for item in BENCHMARK.items(options={"languages": ["java"]})}
    queen = BENCHMARK.render_prompt(items["polyglot-java-queen-attack"])
    assert "// --- src/main/java/Queen.java (a stub" in queen and "replaces the stub file" in queen
    assert "replaces the stub file" not in BENCHMARK.render_prompt(items["polyglot-java-zipper"])
    assert BENCHMARK.version == "2"
