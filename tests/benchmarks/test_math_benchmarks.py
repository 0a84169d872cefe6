"""AIME 2024 and AMC 2023 against their real local copies: counts, prompts, ids, and gold answers scoring."""

import json
import re
from pathlib import Path

import pytest

from rpt_transfer.benchmarks import SUITES, get_benchmark
from rpt_transfer.benchmarks.base import Item
from rpt_transfer.benchmarks.sources import UNPINNED, DatasetSource
from rpt_transfer.scoring import get_scorer

NAMES = ["aime24", "amc23"]


@pytest.fixture(scope="module")
def items(data_root: Path) -> dict[str, list[Item]]:
    return {name: get_benchmark(name).items() for name in NAMES}


@pytest.mark.parametrize("name", NAMES)
def test_static_fields(name: str) -> None:
    bench = get_benchmark(name)
    assert isinstance(bench.source, DatasetSource)
    assert re.fullmatch(r"[0-9a-f]{40}", bench.source.revision) or bench.source.revision == UNPINNED
    assert (bench.domain, bench.scorer, bench.repeats, bench.version) == ("math", "math", 16, "1")
    assert name in SUITES["math"]


@pytest.mark.parametrize("name", NAMES)
def test_local_copy_loads_every_record(name: str, data_root: Path, items: dict[str, list[Item]]) -> None:
    bench = get_benchmark(name)
    assert sum(1 for _ in bench.source.records()) == bench.source.count == bench.size() == len(items[name])


@pytest.mark.parametrize("name", NAMES)
def test_prompts_render_and_ids_are_unique(name: str, items: dict[str, list[Item]]) -> None:
    bench = get_benchmark(name)
    for item in items[name]:
        assert item.prompt_vars["question"] in bench.render_prompt(item)
    assert len({item.id for item in items[name]}) == len(items[name])


@pytest.mark.parametrize("name", NAMES)
def test_gold_answer_scores_and_another_answer_does_not(name: str, items: dict[str, list[Item]]) -> None:
    verify = get_scorer(get_benchmark(name).scorer).verify
    for index, item in enumerate(items[name]):
        assert verify(f"Working...\nANSWER: {item.reference}", item.reference).correct == 1.0, item.id
        other = next(
            o for o in items[name][index + 1 :] + items[name][:index] if o.reference != item.reference
        )
        assert verify(f"Working...\nANSWER: {other.reference}", item.reference).correct == 0.0, item.id


def test_aime24_ids_follow_the_hub_and_references_drop_leading_zeros(items: dict[str, list[Item]]) -> None:
    ids = [item.id for item in items["aime24"]]
    assert all(re.fullmatch(r"aime24-2024-(I|II)-([1-9]|1[0-5])", i) for i in ids)
    by_id = {item.id: item.reference for item in items["aime24"]}
    assert by_id["aime24-2024-I-2"] == "25"  # "025" in the local file
    assert all(ref == str(int(ref)) for ref in by_id.values())


def test_amc23_references_are_integers_without_a_decimal_point(
    data_root: Path, items: dict[str, list[Item]]
) -> None:
    raw = [json.loads(line) for line in (data_root / "amc23" / "test.jsonl").read_text().splitlines()]
    assert raw[0]["answer"] == 27.0
    assert [item.reference for item in items["amc23"]] == [str(int(row["answer"])) for row in raw]
    assert items["amc23"][0].id == "amc23-0"
