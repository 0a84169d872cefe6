"""LegalBench (Guha et al., NeurIPS 2023 Datasets and Benchmarks): legal reasoning tasks, test sets.

Deviations from the RPT paper (arXiv 2506.19733): it concatenated the test sets of the 155 exact-match tasks
of nguha/legalbench with the authors' chat prompts; we offer the 10 tasks whose test labels could be checked
offline (option `tasks`, default all 10, 2,325 questions), and zero-shot prompts written here: each task's
rule in one or two sentences (our wording of the task's README definition, without LegalBench's few-shot
examples), the record's fields, and the task's labels. Prompts depend only on the record, never on where it
was loaded.

Hub schema (one config per task, split `test`): `answer` (the label), `index`, `text` (corporate_lobbying has
`bill_title`, `bill_summary`, `company_name`, `company_description` instead) and task extras. Records here
also carry `task`, the config they came from. The local copy is LegalBench's pre-release `<task>/test.tsv`
(HazyResearch/legalbench, 2023-03-10); `read_local` renames `label` to `answer`, numbers rows from 0 as
`index` and adds `task`. Known differences from the final Hub data: abercrombie has the same labels in another
order and hearsay one row more (95, final 94), so their `index` values do not match the Hub's.

From the Hub, `read_hub` loads one config per task at the pinned revision and tags each row with its task.
"""

import csv
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, NamedTuple, get_args

from pydantic import BaseModel, ConfigDict, Field

from rpt_transfer.benchmarks.base import BenchmarkSpec, Item, Subset
from rpt_transfer.benchmarks.prompts import CHOICE_PROMPT_V1
from rpt_transfer.benchmarks.sources import DatasetSource, HubLoad, Record

Task = Literal[
    "abercrombie",
    "corporate_lobbying",
    "diversity_1",
    "diversity_2",
    "diversity_3",
    "diversity_4",
    "diversity_5",
    "hearsay",
    "personal_jurisdiction",
    "proa",
]
TASKS: tuple[Task, ...] = get_args(Task)

_YES_NO = ("Yes", "No")
_DIVERSITY = (
    "Diversity jurisdiction exists when (1) no plaintiff is a citizen of the same state as any defendant "
    "(complete diversity) and (2) the amount in controversy exceeds $75,000. A plaintiff may add up the "
    "values of separate claims against one defendant, but not claims against different defendants, and two "
    "plaintiffs may not add up their claims against the same defendant."
)


class TaskSpec(NamedTuple):
    """What a task's prompt says: its rule, the question asked of each record, its labels and test size."""

    rule: str
    question: str
    labels: tuple[str, ...]
    size: int


TASK_SPECS: dict[Task, TaskSpec] = {
    "abercrombie": TaskSpec(
        "Trademark distinctiveness (Abercrombie & Fitch v. Hunting World). A mark is generic if it names "
        "the basic nature of the product; descriptive if it describes a characteristic such as its purpose, "
        "function or ingredients; suggestive if it hints at a characteristic and needs imagination to "
        "connect to the product; arbitrary if it is a real word unrelated to the product; fanciful if it is "
        "an invented word.",
        "What type of mark is this?",
        ("generic", "descriptive", "suggestive", "arbitrary", "fanciful"),
        95,
    ),
    "corporate_lobbying": TaskSpec(
        "You analyse Congressional bills for their effect on companies. A bill is relevant to a company if, "
        "were it enacted, it could plausibly affect the company's bottom line.",
        "Is this bill at least somewhat relevant to the company?",
        _YES_NO,
        490,
    ),
    **{
        f"diversity_{variant}": TaskSpec(_DIVERSITY, "Is there diversity jurisdiction?", _YES_NO, 300)
        for variant in range(1, 6)
    },
    "hearsay": TaskSpec(
        "Hearsay is an out-of-court statement (oral, written, or conduct meant to assert something) offered "
        "to prove the truth of the matter it asserts. Ignore the exceptions to the hearsay rule.",
        "Is this evidence hearsay?",
        _YES_NO,
        95,
    ),
    "personal_jurisdiction": TaskSpec(
        "A court has personal jurisdiction over a defendant in the state where the defendant is domiciled, "
        "or where (1) the defendant has sufficient contacts with the state, having availed themselves of its "
        "privileges, and (2) the claim arises out of those contacts.",
        "Does the court where the suit is filed have personal jurisdiction over the defendant?",
        _YES_NO,
        50,
    ),
    "proa": TaskSpec(
        "A private right of action exists when a statute lets a private person enforce it by suing in court, "
        "for example to recover damages or stop the offending conduct.",
        "Does this clause create a private right of action?",
        _YES_NO,
        95,
    ),
}


class LegalBenchOptions(BaseModel):
    """Which LegalBench tasks to evaluate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tasks: list[Task] = Field(default_factory=lambda: list(TASKS), min_length=1)
    """Task names (the Hub config names); by default all 10 with local test data."""


def read_local(root: Path) -> Iterator[Record]:
    """The pre-release test TSVs of every task, in the Hub schema plus `task`."""
    for task in TASKS:
        path = root / "legalbench" / task / "test.tsv"
        with path.open(encoding="utf-8", newline="") as rows:
            for index, row in enumerate(csv.DictReader(rows, delimiter="\t")):
                fields = {name: value for name, value in row.items() if name != "label"}
                yield {**fields, "answer": row["label"], "index": index, "task": task}


REVISION = "daec8237410aa23e3faf4bc41ad8b3a7e1696826"


def read_hub(load: HubLoad) -> Iterator[Record]:
    """Each task's config of the Hub dataset (one config per task), each row tagged with its task."""
    for task in TASKS:
        for row in load("nguha/legalbench", task, "test", REVISION):
            yield {**row, "task": task}


SOURCE = DatasetSource(
    hf_id="nguha/legalbench",
    config=None,
    split="test",
    revision=REVISION,
    local_files=tuple(f"legalbench/{task}/test.tsv" for task in TASKS),
    read_local=read_local,
    read_hub=read_hub,
    count=sum(spec.size for spec in TASK_SPECS.values()),
    required=("task", "index", "answer"),
)


def case_text(record: Mapping[str, Any]) -> str:
    """The record's facts as the prompt shows them."""
    if record["task"] == "corporate_lobbying":
        return (
            f"Bill title: {record['bill_title']}\nBill summary: {record['bill_summary']}\n"
            f"Company name: {record['company_name']}\nCompany description: {record['company_description']}"
        )
    return str(record["text"]).strip()


def to_item(record: Mapping[str, Any]) -> Item:
    """The task's rule, the record's facts and the task's question to prompt; the label to reference."""
    spec = TASK_SPECS[record["task"]]
    return Item(
        id=f"legalbench-{record['task']}-{record['index']}",
        prompt_vars={
            "question": f"{spec.rule}\n\n{case_text(record)}\n\n{spec.question}",
            "labels": ", ".join(spec.labels),
        },
        reference=str(record["answer"]).strip(),
        metadata={"task": record["task"], "choices": [[label, label] for label in spec.labels]},
    )


BENCHMARK = BenchmarkSpec(
    name="legalbench",
    version="1",
    domain="knowledge",
    source=SOURCE,
    to_item=to_item,
    prompt=CHOICE_PROMPT_V1,
    scorer="choice",
    repeats=1,
    description="LegalBench, 10 tasks with checked test labels: 2,325 questions; per-task labels.",
    subset=Subset(
        options=LegalBenchOptions,
        keep=lambda record, options: record["task"] in options.tasks,
        count=lambda options: sum(TASK_SPECS[task].size for task in set(options.tasks)),
    ),
)

__all__ = ["BENCHMARK"]
