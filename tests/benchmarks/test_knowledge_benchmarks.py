"""The knowledge benchmarks against their real local copies: counts per selection, prompts, ids, gold scoring."""

import json
import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from rpt_transfer.benchmarks import SUITES, get_benchmark
from rpt_transfer.benchmarks.base import Item
from rpt_transfer.benchmarks.pubmedqa import TEST_PMIDS
from rpt_transfer.benchmarks.sources import UNPINNED, DatasetSource
from rpt_transfer.errors import RptError
from rpt_transfer.scoring import get_scorer
from rpt_transfer.scoring.choice import verify as verify_choice

NAMES = ["pubmedqa", "medqa", "tabfact", "legalbench", "finben"]

# (benchmark, options, expected item count): every selection a study can make, sized without loading.
SELECTIONS: list[tuple[str, dict[str, Any] | None, int]] = [
    ("pubmedqa", None, 500),
    ("pubmedqa", {"split": "all"}, 1000),
    ("medqa", None, 1273),
    ("tabfact", None, 12779),
    ("tabfact", {"split": "small_test"}, 1998),
    ("tabfact", {"split": "simple_test"}, 4171),
    ("tabfact", {"split": "complex_test"}, 8608),
    ("legalbench", None, 2325),
    ("legalbench", {"tasks": ["hearsay", "proa"]}, 190),
    ("legalbench", {"tasks": ["corporate_lobbying"]}, 490),
    ("legalbench", {"tasks": ["diversity_3", "personal_jurisdiction", "abercrombie"]}, 445),
    ("finben", None, 2504),
    ("finben", {"subsets": ["flare_cfa"]}, 1032),
    ("finben", {"subsets": ["sm_bigdata"]}, 1472),
]

# (benchmark, bad options, the value the error must name, one accepted value it must list)
BAD_OPTIONS: list[tuple[str, dict[str, Any], str, str]] = [
    ("pubmedqa", {"split": "train"}, "train", "'all'"),
    ("tabfact", {"split": "dev"}, "dev", "'complex_test'"),
    ("legalbench", {"tasks": ["hearsay", "scalr"]}, "scalr", "'personal_jurisdiction'"),
    ("legalbench", {"task": ["hearsay"]}, "task", "Extra inputs"),
    ("finben", {"subsets": ["flare_fpb"]}, "flare_fpb", "'sm_bigdata'"),
]


@pytest.fixture(scope="module")
def items(data_root: Path) -> dict[str, list[Item]]:
    """Default-option items of each benchmark, loaded once for the module."""
    return {name: get_benchmark(name).items() for name in NAMES}


@pytest.mark.parametrize("name", NAMES)
def test_static_fields(name: str) -> None:
    bench = get_benchmark(name)
    assert isinstance(bench.source, DatasetSource)
    assert re.fullmatch(r"[0-9a-f]{40}", bench.source.revision) or bench.source.revision == UNPINNED
    assert (bench.domain, bench.scorer, bench.repeats, bench.version) == ("knowledge", "choice", 1, "1")
    assert name in SUITES["knowledge"]


@pytest.mark.parametrize("name", NAMES)
def test_local_copy_has_the_declared_record_count(name: str, data_root: Path) -> None:
    source = get_benchmark(name).source
    assert sum(1 for _ in source.records()) == source.count


@pytest.mark.parametrize(("name", "options", "expected"), SELECTIONS)
def test_each_selection_loads_the_counted_items(
    name: str, options: dict[str, Any] | None, expected: int, data_root: Path, items: dict[str, list[Item]]
) -> None:
    bench = get_benchmark(name)
    loaded = items[name] if options is None else bench.items(options=options)
    assert bench.size(options=options) == len(loaded) == expected


@pytest.mark.parametrize("name", NAMES)
def test_prompts_render_and_ids_are_unique(name: str, items: dict[str, list[Item]]) -> None:
    bench = get_benchmark(name)
    for item in items[name]:
        prompt = bench.render_prompt(item)
        assert "ANSWER: <label>" in prompt and item.reference in item.prompt_vars["labels"].split(", "), (
            item.id
        )
    assert len({item.id for item in items[name]}) == len(items[name])


@pytest.mark.parametrize("name", NAMES)
def test_gold_label_scores_and_another_label_does_not(name: str, items: dict[str, list[Item]]) -> None:
    verify = get_scorer(get_benchmark(name).scorer).verify
    for item in items[name]:
        other = next(label for label, _ in item.metadata["choices"] if label != item.reference)
        assert verify(f"Reasoning.\nANSWER: {item.reference}", item.reference).correct == 1.0, item.id
        assert verify(f"Reasoning.\nANSWER: {other}", item.reference).correct == 0.0, item.id
        for label in (item.reference, other):  # both policies, with the item's choices
            verdict = verify(f"Reasoning.\nThe answer is {label}.", item.reference, item.metadata)
            assert (verdict.correct, verdict.flexible) == (0.0, float(label == item.reference)), item.id


@pytest.mark.parametrize("name", NAMES)
def test_choices_are_the_labels_in_prompt_order(name: str, items: dict[str, list[Item]]) -> None:
    for item in items[name]:
        choices = item.metadata["choices"]
        labels = [label for label, _ in choices]
        assert ", ".join(labels) == item.prompt_vars["labels"] and item.reference in labels, item.id
        for label, text in choices:  # option texts are those the question lists (else the label itself)
            assert (
                text == label
                or f"{label}) {text}" in item.prompt_vars["question"]
                or (f"{label}: {text}" in item.prompt_vars["question"])
            ), item.id


def test_option_texts_where_the_question_lists_them(items: dict[str, list[Item]]) -> None:
    medqa = items["medqa"][0].metadata["choices"]
    assert [label for label, _ in medqa] == ["A", "B", "C", "D", "E"]
    assert medqa[2][1] == "Tell the attending that he cannot fail to disclose this mistake"
    cfa = next(item for item in items["finben"] if item.metadata["subset"] == "flare_cfa")
    assert cfa.metadata["choices"] == [["A", "maturity."], ["B", "liquidity."], ["C", "expected inflation."]]
    bigdata = next(item for item in items["finben"] if item.metadata["subset"] == "sm_bigdata")
    assert bigdata.metadata["choices"] == [["Rise", "Rise"], ["Fall", "Fall"]]


@pytest.mark.parametrize("name", ["canary_knowledge", "smoke_facts"])
def test_synthetic_choices_are_the_lettered_options(name: str) -> None:
    for item in get_benchmark(name).items():
        assert item.metadata["choices"] == [[letter, item.prompt_vars[letter]] for letter in "ABCD"], item.id
        assert verify_choice(
            f"ANSWER: {item.prompt_vars[item.reference]}", item.reference, item.metadata
        ).flexible


@pytest.mark.parametrize("name", ["canary_knowledge", "smoke_facts"])
def test_choices_move_no_job_id(name: str) -> None:
    """Generate jobs keep their ids: the choices enter neither identity, prompt nor demonstration."""
    bench = get_benchmark(name)

    def without_choices(record: Mapping[str, Any]) -> Item:
        item = bench.to_item(record)
        return replace(item, metadata={k: v for k, v in item.metadata.items() if k != "choices"})

    bare = replace(bench, to_item=without_choices)
    assert bare.identity() == bench.identity()
    assert [(bench.render_prompt(i), bench.demonstrate(i)) for i in bench.items()] == [
        (bare.render_prompt(i), bare.demonstrate(i)) for i in bare.items()
    ]


@pytest.mark.parametrize(("name", "options", "bad", "accepted"), BAD_OPTIONS)
def test_bad_options_name_the_value_and_what_is_accepted(
    name: str, options: dict[str, Any], bad: str, accepted: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        get_benchmark(name).parse_options(options)
    assert bad in str(caught.value) and accepted in str(caught.value)


def test_pubmedqa_test_pmids_are_the_official_ones(data_root: Path, items: dict[str, list[Item]]) -> None:
    truth = json.loads((data_root / "pubmedqa" / "test_ground_truth.json").read_text())
    assert {int(pmid) for pmid in truth} == TEST_PMIDS
    assert {item.id: item.reference for item in items["pubmedqa"]} == {
        f"pubmedqa-{pmid}": label for pmid, label in truth.items()
    }


def test_medqa_letters_match_the_local_answer_index(data_root: Path, items: dict[str, list[Item]]) -> None:
    lines = (data_root / "medqa" / "US_test_5options.jsonl").read_text().splitlines()
    assert [item.reference for item in items["medqa"]] == [json.loads(line)["answer_idx"] for line in lines]


def test_tabfact_sub_splits_need_the_official_lists() -> None:
    subset = get_benchmark("tabfact").subset
    assert subset is not None
    keep = subset.keep
    options = get_benchmark("tabfact").parse_options({"split": "small_test"})
    with pytest.raises(RptError, match="split 'small_test' needs the official table-id lists"):
        keep({"id": 0, "statement_index": 0}, options)
    assert keep({"subsplits": ["small_test", "simple_test"]}, options)


def test_tabfact_renders_the_table_and_repeated_statements_keep_their_own_ids(
    items: dict[str, list[Item]],
) -> None:
    bench = get_benchmark("tabfact")
    first = items["tabfact"][0]
    prompt = bench.render_prompt(first)
    assert "| tournament | wins |" in prompt and "|---|" in prompt and "Statement: " in prompt
    assert first.id == "tabfact-0-0"
    assert {item.reference for item in items["tabfact"]} == {"entailed", "refuted"}
    distinct = {
        (item.metadata["table_id"], item.reference, bench.render_prompt(item)) for item in items["tabfact"]
    }
    assert (
        len(distinct) == len(items["tabfact"]) - 18
    )  # 18 statements repeat in their table with the same label


def test_legalbench_ids_and_labels_per_task(items: dict[str, list[Item]]) -> None:
    by_task: dict[str, set[str]] = {}
    for item in items["legalbench"]:
        by_task.setdefault(item.metadata["task"], set()).add(item.reference)
    assert by_task["abercrombie"] == {"generic", "descriptive", "suggestive", "arbitrary", "fanciful"}
    assert all(labels == {"Yes", "No"} for task, labels in by_task.items() if task != "abercrombie")
    assert items["legalbench"][0].id == "legalbench-abercrombie-0"


def test_finben_references_are_upper_case_choices(items: dict[str, list[Item]]) -> None:
    cfa = [item for item in items["finben"] if item.metadata["subset"] == "flare_cfa"]
    assert {item.reference for item in cfa} == {"A", "B", "C"}
    bigdata = [item for item in items["finben"] if item.metadata["subset"] == "sm_bigdata"]
    assert {item.reference for item in bigdata} == {"Rise", "Fall"}
    assert all(not item.prompt_vars["question"].endswith("Answer:") for item in items["finben"])
