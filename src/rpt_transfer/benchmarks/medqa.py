"""MedQA (Jin et al., 2021, "What Disease Does This Patient Have?"): USMLE questions, US English test set.

Deviations from the RPT paper (arXiv 2506.19733): none in the data (it loaded bigbio/med_qa
`med_qa_en_bigbio_qa`, test: the 1,273 five-option US questions, as here). The prompt lists the options as A-E
and asks for the letter.

Hub schema (BigBio QA): `id`, `question_id`, `document_id`, `question`, `type`, `choices` (the five option
texts, A-E in order), `context` (empty) and `answer` (a one-element list holding the right option's text). The
local copy (jind11/MedQA `data_clean/questions/US/test.jsonl`, via gersteinlab/MedAgents) has `question`,
`options` ({"A": ..., "E": ...}), `answer` (the text), `answer_idx` and `meta_info`; `read_local` converts
each row as the BigBio loader does: `id` is the row number, `choices` the option texts in key order, `answer`
the text in a list. The reference letter is recomputed from the answer text, so both sources agree.
"""

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from rpt_transfer.benchmarks.base import BenchmarkSpec, Item
from rpt_transfer.benchmarks.prompts import CHOICE_PROMPT_V1
from rpt_transfer.benchmarks.sources import DatasetSource, Record, read_jsonl

LOCAL_FILE = "medqa/US_test_5options.jsonl"
LETTERS = ("A", "B", "C", "D", "E")


def read_local(root: Path) -> Iterator[Record]:
    """The jind11 test file in the BigBio QA schema, numbered from 0 like the BigBio loader."""
    for index, row in enumerate(read_jsonl(root / LOCAL_FILE)):
        yield {
            "id": str(index),
            "question_id": str(index),
            "document_id": str(index),
            "question": row["question"],
            "type": "multiple_choice",
            "choices": list(row["options"].values()),
            "context": "",
            "answer": [row["answer"]],
        }


SOURCE = DatasetSource(
    hf_id="bigbio/med_qa",
    config="med_qa_en_bigbio_qa",
    split="test",
    revision="ddef95d268cdad413693d634279a9a679d468469",
    local_files=(LOCAL_FILE,),
    read_local=read_local,
    count=1273,
    required=("id", "question", "choices", "answer"),
)


def to_item(record: Mapping[str, Any]) -> Item:
    """Question and lettered options to prompt; the letter of the option matching the answer to reference."""
    choices = list(record["choices"])
    answer = record["answer"][0]
    if len(choices) != len(LETTERS) or choices.count(answer) != 1:
        raise ValueError(f"medqa record {record['id']}: answer {answer!r} is not exactly one of 5 choices")
    options = "\n".join(f"{letter}) {text}" for letter, text in zip(LETTERS, choices, strict=True))
    return Item(
        id=f"medqa-{record['id']}",
        prompt_vars={"question": f"{record['question']}\n\n{options}", "labels": ", ".join(LETTERS)},
        reference=LETTERS[choices.index(answer)],
        metadata={"choices": [[letter, str(text)] for letter, text in zip(LETTERS, choices, strict=True)]},
    )


BENCHMARK = BenchmarkSpec(
    name="medqa",
    version="1",
    domain="knowledge",
    source=SOURCE,
    to_item=to_item,
    prompt=CHOICE_PROMPT_V1,
    scorer="choice",
    repeats=1,
    description="MedQA USMLE (US, English) test: 1,273 five-option questions; letter A-E.",
)

__all__ = ["BENCHMARK"]
