"""HumanEval (Chen et al., 2021, arXiv:2107.03374): 164 hand-written Python function tasks, test split.

Deviations from the RPT paper (arXiv 2506.19733), which ran inspect_evals' upstream HumanEval: our prompt
asks for the complete function in one fenced ```python block (see `CODE_FUNCTION_PROMPT_V1`) instead of
inspect_evals' completion instruction, and tests run in our sandbox, not Docker. Scoring is otherwise the
same: the candidate program is the task's prompt followed by the completion (a whole function redefines the
stub), then the task's `check(candidate)` runs against the entry point.

Hub schema (`openai/openai_humaneval`, config `openai_humaneval`, split `test`): `task_id` (`HumanEval/N`),
`prompt`, `canonical_solution`, `test`, `entry_point`. The local copy (openai/human-eval
`data/HumanEval.jsonl.gz`) has the same fields, so `read_local` reads it unchanged.
"""

from collections.abc import Mapping
from typing import Any

from rpt_transfer.benchmarks.base import BenchmarkSpec, Item
from rpt_transfer.benchmarks.prompts import CODE_FUNCTION_PROMPT_V1
from rpt_transfer.benchmarks.sources import DatasetSource, read_jsonl
from rpt_transfer.scoring.code import function_reference

SOURCE = DatasetSource(
    hf_id="openai/openai_humaneval",
    config="openai_humaneval",
    split="test",
    revision="7dce6050a7d6d172f3cc5c32aa97f52fa1a2e544",
    local_files=("humaneval/HumanEval.jsonl.gz",),
    read_local=lambda root: read_jsonl(root / "humaneval" / "HumanEval.jsonl.gz"),
    count=164,
    required=("task_id", "prompt", "test", "entry_point"),
)


def to_item(record: Mapping[str, Any]) -> Item:
    """The signature and docstring to prompt; a `check(entry_point)` run against the candidate to reference.

    The prompt also goes into the tests' context, because some checks call its helpers (HumanEval/32 calls
    `poly`, HumanEval/38 `encode_cyclic`); the stub it defines is then replaced by the candidate's function.
    Metadata `solution` is the canonical program, for gold-solution tests.
    """
    entry = str(record["entry_point"])
    prompt = str(record["prompt"])
    return Item(
        id="humaneval-" + str(record["task_id"]).rpartition("/")[2],
        prompt_vars={"question": f"Complete this Python function.\n\n```python\n{prompt.rstrip()}\n```"},
        reference=function_reference(
            entry, f"{record['test']}\n\ncheck({entry})\n", prompt=prompt, context=prompt, mode="call"
        ),
        metadata={
            "task_id": record["task_id"],
            "solution": prompt + str(record.get("canonical_solution", "")),
        },
    )


BENCHMARK = BenchmarkSpec(
    name="humaneval",
    version="1",
    domain="code",
    source=SOURCE,
    to_item=to_item,
    prompt=CODE_FUNCTION_PROMPT_V1,
    scorer="code_function",
    repeats=1,
    description="HumanEval test: 164 Python function tasks; passes when the task's check() passes.",
)

__all__ = ["BENCHMARK"]
