"""GSM8K (Cobbe et al., 2021, arXiv:2110.14168): grade-school math word problems, test split.

Deviations from the paper: none. The reference is the number after `####`, thousands separators removed.
"""

from collections.abc import Mapping
from typing import Any

from rpt_transfer.benchmarks.base import BenchmarkSpec, Item, stable_id
from rpt_transfer.benchmarks.prompts import MATH_PROMPT_V1
from rpt_transfer.benchmarks.sources import DatasetSource, read_jsonl

SOURCE = DatasetSource(
    hf_id="openai/gsm8k",
    config="main",
    split="test",
    revision="cc7b047b6e5bb11b4f1af84efc572db110a51b3c",
    local_files=("gsm8k/test.jsonl",),
    read_local=lambda root: read_jsonl(root / "gsm8k" / "test.jsonl"),
    count=1319,
    required=("question", "answer"),
)


def to_item(record: Mapping[str, Any]) -> Item:
    """Question to prompt; the final answer after `####` to reference."""
    _, _, answer = str(record["answer"]).rpartition("####")
    return Item(
        id=stable_id("gsm8k", record["question"]),
        prompt_vars={"question": record["question"]},
        reference=answer.strip().replace(",", ""),
    )


BENCHMARK = BenchmarkSpec(
    name="gsm8k",
    version="1",
    domain="math",
    source=SOURCE,
    to_item=to_item,
    prompt=MATH_PROMPT_V1,
    scorer="math",
    repeats=1,
    description="GSM8K test: 1,319 grade-school math word problems; numeric answer.",
)

__all__ = ["BENCHMARK"]
