"""BigCodeBench (Zhuo et al., ICLR 2025, arXiv:2406.15877): 1,140 practical Python tasks using libraries.

Deviations from the RPT paper (arXiv 2506.19733), which ran inspect_evals' upstream BigCodeBench on split
v0.1.2 with the "complete" prompts:
- Data: the Hub pin is split `v0.1.4` (the only one whose commit was found; see docs/benchmarks/revisions.md),
  and the local copy is the initial `v0.1.0` layout. Later versions fixed some tests and environments, so a
  few tasks differ between the three; job ids tell them apart (Hub revision or file digest).
- Prompt: option `split` chooses the `complete_prompt` (code stub with docstring; the paper's and our
  default) or the `instruct_prompt` (natural-language instruction); either way our template asks for the
  complete function in one fenced ```python block, and the candidate program is `complete_prompt` followed by
  the completion (a whole function redefines the stub; the stub brings the task's imports).
- Execution: the task's unittest `TestCases` run in our sandbox with site-packages importable (`site`),
  not in BigCodeBench's Docker image. A task whose libraries (pandas, matplotlib, sklearn, ...) are not
  installed where scoring runs fails even for a correct answer: install `libs` there first.

Hub schema (`bigcode/bigcodebench`, split `v0.1.4`): `task_id` (`BigCodeBench/N`), `complete_prompt`,
`instruct_prompt`, `canonical_solution`, `code_prompt`, `test`, `entry_point`, `doc_struct`, `libs`. The
local copy (bigcode-project/bigcodebench-annotation `hf_data/BigCodeBench.jsonl.gz`, v0.1.0) has the same
fields. Records here also carry `split` (`complete` or `instruct`): both `read_local` and `read_hub` yield
every task once per prompt style, and the option keeps one, because the record is all `to_item` sees.
"""

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from rpt_transfer.benchmarks.base import BenchmarkSpec, Item, Subset
from rpt_transfer.benchmarks.prompts import CODE_FUNCTION_PROMPT_V1
from rpt_transfer.benchmarks.sources import DatasetSource, HubLoad, Record, read_jsonl
from rpt_transfer.scoring.code import function_reference

HF_ID = "bigcode/bigcodebench"
REVISION = "b74c0d0bf70d2c0bc459be537895cca163007f1a"
HUB_SPLIT = "v0.1.4"
TASKS = 1140
Split = Literal["complete", "instruct"]
SPLITS: tuple[Split, ...] = ("complete", "instruct")


class BigCodeBenchOptions(BaseModel):
    """Which prompt style to evaluate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    split: Split = "complete"
    """`complete` (code stub with docstring, the paper's choice) or `instruct` (natural-language task)."""


def _both_styles(rows: Iterator[Record]) -> Iterator[Record]:
    """Every task once per prompt style, tagged with it (the option keeps one)."""
    for row in rows:
        for split in SPLITS:
            yield {**row, "split": split}


def read_local(root: Path) -> Iterator[Record]:
    """The v0.1.0 file, each task once per prompt style."""
    return _both_styles(read_jsonl(root / "bigcodebench" / "BigCodeBench_v0.1.0_hf.jsonl.gz"))


def read_hub(load: HubLoad) -> Iterator[Record]:
    """The pinned Hub split, each task once per prompt style."""
    return _both_styles(load(HF_ID, None, HUB_SPLIT, REVISION))


SOURCE = DatasetSource(
    hf_id=HF_ID,
    config=None,
    split=HUB_SPLIT,
    revision=REVISION,
    local_files=("bigcodebench/BigCodeBench_v0.1.0_hf.jsonl.gz",),
    read_local=read_local,
    read_hub=read_hub,
    count=TASKS * len(SPLITS),
    required=("task_id", "complete_prompt", "instruct_prompt", "test", "entry_point", "split"),
)


def to_item(record: Mapping[str, Any]) -> Item:
    """The prompt of the record's style to prompt; the task's unittest classes to reference.

    Metadata `solution` is the canonical program, for gold-solution tests.
    """
    number = str(record["task_id"]).rpartition("/")[2]
    complete = str(record["complete_prompt"])
    if record["split"] == "complete":
        item_id = f"bigcodebench-{number}"
        question = f"Complete this Python function.\n\n```python\n{complete.rstrip()}\n```"
    else:
        item_id = f"bigcodebench-{number}-instruct"
        question = str(record["instruct_prompt"]).strip()
    return Item(
        id=item_id,
        prompt_vars={"question": question},
        reference=function_reference(
            str(record["entry_point"]), str(record["test"]), prompt=complete, mode="unittest", site=True
        ),
        metadata={
            "task_id": record["task_id"],
            "split": record["split"],
            "libs": record.get("libs"),
            "solution": complete + str(record.get("canonical_solution", "")),
        },
    )


BENCHMARK = BenchmarkSpec(
    name="bigcodebench",
    version="1",
    domain="code",
    source=SOURCE,
    to_item=to_item,
    prompt=CODE_FUNCTION_PROMPT_V1,
    scorer="code_function",
    repeats=1,
    description="BigCodeBench: 1,140 library-using Python tasks (complete or instruct prompts); unittest.",
    subset=Subset(
        options=BigCodeBenchOptions,
        keep=lambda record, options: record["split"] == options.split,
        count=lambda options: TASKS,
    ),
)

__all__ = ["BENCHMARK"]
