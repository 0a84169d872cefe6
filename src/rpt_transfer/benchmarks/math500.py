"""MATH-500 (Lightman et al., 2023, "Let's Verify Step by Step"): 500 MATH test problems.

Deviations from the paper: none. The reference is the dataset's `answer` (LaTeX), checked for equivalence.
"""

from collections.abc import Mapping
from typing import Any

from rpt_transfer.benchmarks.base import BenchmarkSpec, Item
from rpt_transfer.benchmarks.prompts import MATH_PROMPT_V1
from rpt_transfer.benchmarks.sources import DatasetSource, read_jsonl

SOURCE = DatasetSource(
    hf_id="HuggingFaceH4/MATH-500",
    config=None,
    split="test",
    revision="6e4ed1a2a79af7d8630a6b768ec859cb5af4d3be",
    local_files=("math500/test.jsonl",),
    read_local=lambda root: read_jsonl(root / "math500" / "test.jsonl"),
    count=500,
    required=("problem", "answer", "unique_id"),
)


def to_item(record: Mapping[str, Any]) -> Item:
    """Problem to prompt; the LaTeX answer to reference; the MATH path is the id."""
    return Item(
        id=f"math500-{record['unique_id']}",
        prompt_vars={"question": record["problem"]},
        reference=str(record["answer"]),
        metadata={"subject": record.get("subject"), "level": record.get("level")},
    )


BENCHMARK = BenchmarkSpec(
    name="math500",
    version="1",
    domain="math",
    source=SOURCE,
    to_item=to_item,
    prompt=MATH_PROMPT_V1,
    scorer="math",
    repeats=1,
    description="MATH-500: 500 competition problems (7 subjects, levels 1-5); LaTeX answer.",
)
