"""Strict and flexible code policies (issue 10 section 3) on real HumanEval, MBPP and LiveCodeBench items.

Strict runs the last fenced block (as before); flexible also finds the program a human grader would run
when the last block is an example or an output, or when unfenced code sits in prose; `format_followed`
says whether the answer ended in the ```python block the prompts ask for. The data is read in place.
"""

import gzip
import json

import pytest

from conftest import BENCHMARK_DATA, benchmark_data
from rpt_transfer.benchmarks import humaneval, livecodebench, mbpp
from rpt_transfer.scoring import code
from rpt_transfer.scoring.code_extract import flexible_code, strict_code

pytestmark = pytest.mark.usefixtures("sandbox_ready")

SHORT_SORT = (  # LiveCodeBench livecodebench-1873_A ("A. Short Sort"), written for this test
    "for _ in range(int(input())):\n    s = input().strip()\n"
    "    print('YES' if sum(a != b for a, b in zip(s, 'abc')) in (0, 2) else 'NO')"
)
COUNT_SENIORS = (  # LiveCodeBench livecodebench-2727 (LeetCode style), written for this test
    "class Solution:\n    def countSeniors(self, details: List[str]) -> int:\n"
    "        return sum(int(d[11:13]) > 60 for d in details)"
)


@pytest.fixture(scope="module")
def items() -> dict[str, tuple[str, str, str]]:
    """Item id -> (reference, right program, a usage line that calls it): real items, read in place."""
    with gzip.open(benchmark_data("humaneval/HumanEval.jsonl.gz"), "rt") as lines:
        task = json.loads(next(lines))
    found = {"humaneval-0": (humaneval.to_item(task), "print(has_close_elements([1.0, 2.0], 0.5))")}
    tasks = json.loads(benchmark_data("mbpp/sanitized-mbpp.json").read_text())
    mbpp_11 = next(record for record in tasks if record["task_id"] == 11)
    found["mbpp-11"] = (mbpp.to_item(mbpp_11), 'print(remove_Occ("hello", "l"))')
    benchmark_data("livecodebench")
    lcb = {item.id: item for item in map(livecodebench.to_item, livecodebench.read_local(BENCHMARK_DATA))}
    found["livecodebench-1873_A"] = (lcb["livecodebench-1873_A"], "print('YES')")
    found["livecodebench-2727"] = (lcb["livecodebench-2727"], "print(Solution().countSeniors(['x']))")
    programs = {"livecodebench-1873_A": SHORT_SORT, "livecodebench-2727": COUNT_SENIORS}
    return {
        key: (item.reference, programs.get(key) or item.metadata["solution"], usage)
        for key, (item, usage) in found.items()
    }


FORMS = [
    # (name, completion with {p} = the right program and {u} = a line using it, strict, flexible, format)
    ("python block", "Reasoning first.\n```python\n{p}\n```", 1.0, 1.0, True),
    ("python block, words after", "```python\n{p}\n```\nThis runs in linear time.", 1.0, 1.0, True),
    ("py tag", "```py\n{p}\n```", 1.0, 1.0, True),
    ("untagged block", "```\n{p}\n```", 1.0, 1.0, False),
    ("think, then block", "<think>```python\nnot this\n```</think>\n```python\n{p}\n```", 1.0, 1.0, True),
    ("usage block last", "```python\n{p}\n```\nFor example:\n```python\n{u}\n```", 0.0, 1.0, True),
    ("output block last", "```python\n{p}\n```\nIt prints:\n```text\nYES\n```", 0.0, 1.0, False),
    (
        "unfenced, prose around",
        "Here is my solution:\n\n{p}\n\nIt is correct because it checks all.",
        0.0,
        1.0,
        False,
    ),
    ("unfenced program", "{p}", 1.0, 1.0, False),
    ("no code", "I do not know.", 0.0, 0.0, False),
    ("empty block", "```python\n```", 0.0, 0.0, True),
]
ITEMS = ["humaneval-0", "mbpp-11", "livecodebench-1873_A", "livecodebench-2727"]


@pytest.mark.parametrize(("name", "form", "strict", "flexible", "followed"), FORMS, ids=[f[0] for f in FORMS])
@pytest.mark.parametrize("item_id", ITEMS)
def test_strict_flexible_and_format(
    items: dict, item_id: str, name: str, form: str, strict: float, flexible: float, followed: bool
) -> None:
    reference, program, usage = items[item_id]
    verify = code.verify_stdio if item_id.startswith("livecodebench") else code.verify_function
    verdict = verify(form.format(p=program, u=usage), reference)
    got = (verdict.correct, verdict.flexible, verdict.format_followed)
    assert got == (strict, flexible, followed), verdict.explanation[-600:]
    assert verdict.flexible >= verdict.correct
    if verdict.correct == 1.0:  # a strict pass is never run again for the flexible policy
        assert verdict.flexible_extracted == verdict.extracted
    assert verdict.resolved() == verdict


def test_flexible_takes_the_last_python_block_that_defines_the_entry_point() -> None:
    completion = (
        "```python\ndef f(x):\n    return 1\n```\n```python\ndef f(x):\n    return 2\n```\n"
        "```python\nprint(f(3))\n```\n```text\n2\n```"
    )
    assert strict_code(completion) == ("2", False)
    assert flexible_code(completion, r"^def[ \t]+f[ \t]*\(") == "def f(x):\n    return 2"
    assert flexible_code(completion) == "print(f(3))"  # no entry point: the last Python block


@pytest.mark.parametrize(
    ("completion", "program"),
    [
        (
            "Sure.\nn, m = map(int, input().split())\nprint(n + m)\nDone.",
            "n, m = map(int, input().split())\nprint(n + m)",
        ),
        (
            "Code:\nimport sys\n\ndef main():\n    pass\n\nmain()\n\nThat is all.",
            "import sys\n\ndef main():\n    pass\n\nmain()",
        ),
        ("    return x + 1\n", "    return x + 1"),
        ("only words here", "only words here"),
    ],
)
def test_flexible_drops_prose_around_unfenced_code(completion: str, program: str) -> None:
    assert flexible_code(completion) == program


def test_rejected_completions_carry_both_policies() -> None:
    reference = code.stdio_reference([{"input": "", "output": "1"}])
    verdict = code.verify_stdio(b"\xff\xfe", reference)
    assert (verdict.reason, verdict.correct, verdict.flexible, verdict.format_followed) == (
        "parse_error", 0.0, 0.0, False,
    )  # fmt: skip
