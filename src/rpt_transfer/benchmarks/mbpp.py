"""MBPP (Austin et al., 2021, arXiv:2108.07732): crowd-sourced Python tasks, sanitized test split (257).

Deviations from the RPT paper (arXiv 2506.19733), which ran inspect_evals' upstream MBPP (sanitized, test):
our prompt is zero-shot (inspect_evals adds few-shot examples) and asks for the complete function in one
fenced ```python block; tests run in our sandbox, not Docker. As in MBPP evaluations since Austin et al., the
prompt shows the task's text and its first test assert, which names the function and its call signature;
the item passes only when every assert of `test_list` passes.

Hub schema (`google-research-datasets/mbpp`, config `sanitized`, split `test`): `source_file`, `task_id`
(int), `prompt`, `code`, `test_imports` (list), `test_list` (asserts). The local copy (google-research
`mbpp/sanitized-mbpp.json`, all 427 sanitized tasks) has the same fields; `read_local` keeps the test split,
task_id 11 to 510, as the Hub's `test` split does.
"""

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from rpt_transfer.benchmarks.base import BenchmarkSpec, Item
from rpt_transfer.benchmarks.prompts import CODE_FUNCTION_PROMPT_V1
from rpt_transfer.benchmarks.sources import DatasetSource, Record, read_json
from rpt_transfer.errors import RptError
from rpt_transfer.scoring.code import function_reference

TEST_IDS = range(11, 511)
"""Task ids of MBPP's test split (the sanitized set keeps 257 of them)."""


def read_local(root: Path) -> Iterator[Record]:
    """The sanitized tasks of the test split, in file order, unchanged."""
    path = root / "mbpp" / "sanitized-mbpp.json"
    return (row for row in read_json(path) if row["task_id"] in TEST_IDS)


SOURCE = DatasetSource(
    hf_id="google-research-datasets/mbpp",
    config="sanitized",
    split="test",
    revision="4bb6404fdc6cacfda99d4ac4205087b89d32030c",
    local_files=("mbpp/sanitized-mbpp.json",),
    read_local=read_local,
    count=257,
    required=("task_id", "prompt", "code", "test_imports", "test_list"),
)


def entry_point(record: Mapping[str, Any]) -> str:
    """The function the tests call: the first name called in the first assert that the reference defines."""
    defined = {
        node.name
        for node in ast.parse(str(record["code"])).body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    for node in ast.walk(ast.parse(str(record["test_list"][0]))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in defined:
            return node.func.id
    raise RptError(f"mbpp task {record['task_id']}: its first test calls no function its reference defines")


def test_context(record: Mapping[str, Any]) -> str:
    """What the asserts run after: the test imports and the reference program's top-level imports.

    MBPP's harness runs the asserts in the program's own namespace, so some asserts use a module that
    only the reference imports (task 596 calls `sys.getsizeof`). Our asserts run apart from the
    candidate's program, so they get those imports here; the candidate gains nothing from them.
    """
    imports = [
        ast.unparse(node)
        for node in ast.parse(str(record["code"])).body
        if isinstance(node, ast.Import | ast.ImportFrom)
    ]
    return "\n".join([*(str(line) for line in record["test_imports"]), *imports])


def to_item(record: Mapping[str, Any]) -> Item:
    """Task text and first assert to prompt; all asserts, with their imports (`test_context`), to reference.

    Metadata `solution` is the reference program, for gold-solution tests.
    """
    tests = [str(test) for test in record["test_list"]]
    question = (
        f"{str(record['prompt']).strip()}\n\nYour code should pass this test:\n\n```python\n{tests[0]}\n```"
    )
    return Item(
        id=f"mbpp-{record['task_id']}",
        prompt_vars={"question": question},
        reference=function_reference(
            entry_point(record),
            "\n".join(tests) + "\n",
            context=test_context(record),
            mode="call",
        ),
        metadata={"task_id": record["task_id"], "solution": str(record["code"])},
    )


BENCHMARK = BenchmarkSpec(
    name="mbpp",
    version="2",
    domain="code",
    source=SOURCE,
    to_item=to_item,
    prompt=CODE_FUNCTION_PROMPT_V1,
    scorer="code_function",
    repeats=1,
    description="MBPP sanitized test: 257 Python function tasks; passes when every test assert passes.",
)

__all__ = ["BENCHMARK"]
