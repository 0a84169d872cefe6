"""The code verifiers on real benchmark data: reference solutions pass, other tasks' solutions fail.

The data is read in place (never copied) from `BENCHMARK_DATA` (see tests/conftest.py). Neither
LiveCodeBench nor Codeforces ships reference solutions in that data (see its SOURCES.md: the LCB
submissions file has its model outputs removed), so the stdin/stdout and LeetCode-style checks use
solutions written for this test to a few simple problems.
"""

import ast
import gzip
import json
from pathlib import Path

import pytest

from conftest import BENCHMARK_DATA, benchmark_data
from rpt_transfer.benchmarks import bigcodebench, livecodebench, mbpp
from rpt_transfer.scoring import code, sandbox

DATA = BENCHMARK_DATA


def data_file(relative: str) -> Path:
    return benchmark_data(relative)


@pytest.fixture(scope="module")
def pool() -> sandbox.SandboxPool:
    try:
        sandbox.run(["/bin/true"], timeout=10)
    except sandbox.SandboxError as err:
        pytest.skip(f"no sandbox on this machine: {err}")
    with sandbox.SandboxPool() as workers:
        yield workers


def humaneval_reference(task: dict) -> str:
    test = f"{task['test']}\ncheck({task['entry_point']})\n"
    return code.function_reference(task["entry_point"], test, prompt=task["prompt"], context=task["prompt"])


def test_humaneval_canonical_solutions_pass_and_other_tasks_solutions_fail(pool: sandbox.SandboxPool) -> None:
    with gzip.open(data_file("humaneval/HumanEval.jsonl.gz"), "rt") as lines:
        tasks = [json.loads(line) for line in lines]
    assert len(tasks) == 164
    shifted = [tasks[(index + 1) % len(tasks)]["canonical_solution"] for index in range(len(tasks))]
    jobs = [(task["canonical_solution"], task) for task in tasks] + list(zip(shifted, tasks, strict=True))
    verdicts = pool.map(lambda job: code.verify_function(job[0], humaneval_reference(job[1])), jobs)
    failed = [
        task["task_id"] for task, verdict in zip(tasks, verdicts[:164], strict=True) if verdict.correct != 1
    ]
    assert failed == []
    assert sum(verdict.correct for verdict in verdicts[164:]) == 0


def test_mbpp_reference_code_passes_the_sanitized_test_range(pool: sandbox.SandboxPool) -> None:
    """The benchmark's own references (mbpp.to_item), including task 596 (its asserts use the reference's
    `import sys`) and task 88 (it returns a collections.Counter)."""
    tasks = [
        task
        for task in json.loads(data_file("mbpp/sanitized-mbpp.json").read_text())
        if task["task_id"] in mbpp.TEST_IDS
    ]
    assert len(tasks) == 257
    items = [mbpp.to_item(task) for task in tasks]
    # timeout: task 123's reference needs ~9 s of CPU (naive divisor sums up to 9999)
    verdicts = pool.map(
        lambda item: code.verify_function(item.metadata["solution"], item.reference, timeout=30), items
    )
    failed = {
        item.id: verdict.explanation[:300]
        for item, verdict in zip(items, verdicts, strict=True)
        if verdict.correct != 1
    }
    assert failed == {}


# BigCodeBench tasks whose canonical solutions pass here, a few of each kind: standard library, numpy,
# unittest.mock, files, pandas, matplotlib, scikit-learn. (842 of the 942 tasks whose libraries are
# installed pass; the rest fail on newer pandas/numpy/sklearn APIs, missing test-only packages such as
# faker and openpyxl, or the network, none on the harness.)
BIGCODEBENCH_TASKS = tuple(
    f"BigCodeBench/{number}"
    for number in (1, 2, 4, 7, 3, 10, 11, 5, 6, 12, 13, 14, 15, 16, 38, 41, 44, 48, 182, 1101)
)


def test_bigcodebench_canonical_solutions_pass(pool: sandbox.SandboxPool) -> None:
    with gzip.open(data_file("bigcodebench/BigCodeBench_v0.1.0_hf.jsonl.gz"), "rt") as lines:
        tasks = {task["task_id"]: task for task in map(json.loads, lines)}
    chosen = [tasks[task_id] for task_id in BIGCODEBENCH_TASKS]

    def score(task: dict) -> sandbox.ExecResult:
        reference = code.function_reference(
            task["entry_point"], task["test"], prompt=task["complete_prompt"], mode="unittest"
        )
        return code.verify_function(task["canonical_solution"], reference)

    verdicts = pool.map(score, chosen)
    failed = {
        task["task_id"]: verdict.explanation[-500:]
        for task, verdict in zip(chosen, verdicts, strict=True)
        if verdict.correct != 1
    }
    assert failed == {}
    wrong = tasks[BIGCODEBENCH_TASKS[1]]
    reference = code.function_reference(
        wrong["entry_point"], wrong["test"], prompt=wrong["complete_prompt"], mode="unittest"
    )
    assert code.verify_function(tasks[BIGCODEBENCH_TASKS[0]]["canonical_solution"], reference).correct == 0


@pytest.mark.slow
@pytest.mark.usefixtures("pool")
def test_bigcodebench_0_reference_passes_with_bigcodebench_limits() -> None:
    """Task 0 shuffles all 3.6 million permutations of 10 numbers: ~0.5 GB, about a minute on 2 busy cores.

    It used to fail on the 60 s limit; the defaults are now BigCodeBench's own (240 s, 30 GiB of address
    space).
    """
    with gzip.open(data_file("bigcodebench/BigCodeBench_v0.1.0_hf.jsonl.gz"), "rt") as lines:
        record = json.loads(next(lines))
    item = bigcodebench.to_item({**record, "split": "complete"})
    verdict = code.verify_function(item.metadata["solution"], item.reference)
    assert verdict.correct == 1.0, verdict.explanation[-1000:]


# Written for this test (the data has no reference solutions): (source, problem id or title, program).
STDIO_SOLUTIONS = [
    (
        "codeforces",
        "1971A",
        "t = int(input())\nfor _ in range(t):\n    x, y = map(int, input().split())\n    print(min(x, y), max(x, y))",
    ),
    (
        "codeforces",
        "1971C",
        "t = int(input())\nfor _ in range(t):\n    a, b, c, d = map(int, input().split())\n"
        "    inside = lambda p: min(a, b) < p < max(a, b)\n    print('YES' if inside(c) != inside(d) else 'NO')",
    ),
    (
        "livecodebench",
        "A. Short Sort",
        "for _ in range(int(input())):\n    s = input().strip()\n    print('YES' if sum(a != b for a, b in zip(s, 'abc')) in (0, 2) else 'NO')",
    ),
    (
        "livecodebench",
        "B. Good Kid",
        "import math\nfor _ in range(int(input())):\n    input()\n    a = sorted(map(int, input().split()))\n    a[0] += 1\n    print(math.prod(a))",
    ),
    (
        "livecodebench",
        "D. 1D Eraser",
        "for _ in range(int(input())):\n    n, k = map(int, input().split())\n    s = input().strip()\n    i = count = 0\n"
        "    while i < n:\n        if s[i] == 'B':\n            count += 1\n            i += k\n        else:\n            i += 1\n    print(count)",
    ),
]


def stdio_tests(source: str, problem: str) -> list[dict]:
    if source == "codeforces":
        ids = json.loads(data_file("codeforces/metadata_cf.json").read_text())
        problems = json.loads(data_file("codeforces/deepcoder_codeforces_test.json").read_text())
        tests = problems[ids.index(problem)]["tests"]
        return ast.literal_eval(tests) if isinstance(tests, str) else tests
    problems = json.loads(data_file("livecodebench/rllm_livecodebench_test.json").read_text())
    found = next(item for item in problems if item["problem_title"] == problem)
    return [case for case in json.loads(found["public_test_cases"]) if case["testtype"] == "stdin"]


@pytest.mark.parametrize(
    ("source", "problem", "program"), STDIO_SOLUTIONS, ids=[p for _, p, _ in STDIO_SOLUTIONS]
)
def test_stdio_solutions_pass_and_a_wrong_one_fails(source: str, problem: str, program: str) -> None:
    reference = code.stdio_reference(stdio_tests(source, problem))
    assert code.verify_stdio(f"```python\n{program}\n```", reference).correct == 1.0
    other = STDIO_SOLUTIONS[(STDIO_SOLUTIONS.index((source, problem, program)) + 1) % len(STDIO_SOLUTIONS)][2]
    assert code.verify_stdio(other, reference).correct == 0.0


# Written for this test: LeetCode-style solutions (class Solution) of the first functional LCB problems,
# and for each a wrong one (right method, wrong answer).
LEETCODE_SOLUTIONS = {
    "livecodebench-2727": (
        "class Solution:\n    def countSeniors(self, details: List[str]) -> int:\n"
        "        return sum(int(d[11:13]) > 60 for d in details)",
        "class Solution:\n    def countSeniors(self, details):\n        return len(details)",
    ),
    "livecodebench-2728": (
        "class Solution:\n    def matrixSum(self, nums: List[List[int]]) -> int:\n"
        "        return sum(max(column) for column in zip(*(sorted(row) for row in nums)))",
        "class Solution:\n    def matrixSum(self, nums):\n        return sum(map(max, nums))",
    ),
    "livecodebench-2730": (
        "class Solution:\n    def maximumOr(self, nums: List[int], k: int) -> int:\n"
        "        suffix = [0] * (len(nums) + 1)\n        for i in range(len(nums) - 1, -1, -1):\n"
        "            suffix[i] = suffix[i + 1] | nums[i]\n        best = prefix = 0\n"
        "        for i, x in enumerate(nums):\n            best = max(best, prefix | (x << k) | suffix[i + 1])\n"
        "            prefix |= x\n        return best",
        "class Solution:\n    def maximumOr(self, nums, k):\n        return max(nums) << k",
    ),
}


@pytest.fixture(scope="module")
def livecodebench_items() -> dict[str, object]:
    data_file(livecodebench._LOCAL[0])
    return {item.id: item for item in map(livecodebench.to_item, livecodebench.read_local(DATA))}


@pytest.mark.parametrize("item_id", list(LEETCODE_SOLUTIONS))
def test_livecodebench_functional_solutions_pass_and_wrong_ones_fail(
    item_id: str, livecodebench_items: dict, pool: sandbox.SandboxPool
) -> None:
    item = livecodebench_items[item_id]
    assert item.metadata["testtype"] == "functional" and "class Solution" in item.prompt_vars["answer_format"]
    right, wrong = LEETCODE_SOLUTIONS[item_id]
    verdict = code.verify_stdio(f"```python\n{right}\n```", item.reference)
    assert verdict.correct == 1.0, verdict.explanation
    verdict = code.verify_stdio(f"```python\n{wrong}\n```", item.reference)
    assert verdict.correct == 0.0 and "expected" in verdict.explanation
    other = LEETCODE_SOLUTIONS[next(key for key in LEETCODE_SOLUTIONS if key != item_id)][0]
    assert code.verify_stdio(other, item.reference).correct == 0.0


def test_livecodebench_functional_forgeries_fail(livecodebench_items: dict) -> None:
    reference = livecodebench_items["livecodebench-2727"].reference
    forgeries = [
        "class Solution:\n    def countSeniors(self, details):\n"
        "        class Same:\n            def __eq__(self, other):\n                return True\n"
        "        return Same()",
        "class Int(int):\n    def __eq__(self, other):\n        return True\n"
        "class Solution:\n    def countSeniors(self, details):\n        return Int(0)",
        "import os\nos.write(3, b'{\"passed\": true}')\nos._exit(0)",
        "class Solution:\n    def countSeniors(self, details):\n        raise SystemExit(0)",
    ]
    for program in forgeries:
        assert code.verify_stdio(f"```python\n{program}\n```", reference).correct == 0.0, program
