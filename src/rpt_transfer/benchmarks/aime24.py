r"""AIME 2024 ("Jia, 2024": HF Maxwell-Jia/AIME_2024): the 30 problems of AIME 2024 I and II.

Deviations from the RPT paper (arXiv 2506.19733): the prompt is the project's math prompt (`\boxed{}`; the
verifier also reads an `ANSWER:` line) instead of the paper's "ANSWER:" template. As in the paper, each
problem is sampled 16 times.

The Hub dataset has one split, `train`, holding all 30 problems as `ID` ("2024-II-4"), `Problem`, `Solution`
and `Answer` (an integer). The local copy (QwenLM/Qwen2.5-Math `evaluation/data/aime24/test.jsonl`) has `id`,
`problem`, `solution`, `answer` (text with leading zeros, "025") and the AoPS `url`; `read_local` maps it to
the Hub schema, taking `ID` from the url ("2024_AIME_II_Problems/Problem_4" -> "2024-II-4").
"""

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from rpt_transfer.benchmarks.base import BenchmarkSpec, Item
from rpt_transfer.benchmarks.prompts import MATH_PROMPT_V1
from rpt_transfer.benchmarks.sources import DatasetSource, Record, read_jsonl
from rpt_transfer.errors import RptError

LOCAL_FILE = "aime24/test.jsonl"
_PROBLEM_URL = re.compile(r"(?P<year>\d{4})_AIME_(?P<exam>I{1,2})_Problems/Problem_(?P<number>\d+)$")


def read_local(root: Path) -> Iterator[Record]:
    """The Qwen2.5-Math copy in the Hub schema (ID, Problem, Solution, Answer)."""
    for row in read_jsonl(root / LOCAL_FILE):
        match = _PROBLEM_URL.search(str(row["url"]))
        if match is None:
            raise RptError(f"{root / LOCAL_FILE}: id {row['id']}: url {row['url']!r} names no AIME problem")
        yield {
            "ID": f"{match['year']}-{match['exam']}-{match['number']}",
            "Problem": row["problem"],
            "Solution": row["solution"],
            "Answer": int(row["answer"]),
        }


SOURCE = DatasetSource(
    hf_id="Maxwell-Jia/AIME_2024",
    config=None,
    split="train",
    revision="8d88b2876a82a080e2f172cc9b25d0d9d2cb4792",
    local_files=(LOCAL_FILE,),
    read_local=read_local,
    count=30,
    required=("ID", "Problem", "Answer"),
)


def to_item(record: Mapping[str, Any]) -> Item:
    """Problem to prompt; the integer answer, written without leading zeros, to reference."""
    return Item(
        id=f"aime24-{record['ID']}",
        prompt_vars={"question": record["Problem"]},
        reference=str(int(record["Answer"])),
    )


BENCHMARK = BenchmarkSpec(
    name="aime24",
    version="1",
    domain="math",
    source=SOURCE,
    to_item=to_item,
    prompt=MATH_PROMPT_V1,
    scorer="math",
    repeats=16,
    description="AIME 2024 I and II: 30 problems, integer answers 0-999; 16 samples each.",
)

__all__ = ["BENCHMARK"]
