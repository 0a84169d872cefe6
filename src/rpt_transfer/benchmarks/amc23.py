r"""AMC 2023 (HF zwhe99/amc23, test split): the standard 40-problem AMC 12 2023 set (as in Qwen2.5-Math).

Deviations from the RPT paper (arXiv 2506.19733): the prompt is the project's math prompt (`\boxed{}`; the
verifier also reads an `ANSWER:` line); the paper's AMC prompt also told the model that answers are integers
without units. As in the paper, each problem is sampled 16 times.

Schema: `id`, `question` (also as `problem`), `answer` (a float, e.g. 27.0) and the AoPS `url`. The local copy
(QwenLM/Qwen2.5-Math `evaluation/data/amc23/test.jsonl`) has exactly the fields public loaders read from the
Hub dataset (`id`, `question`/`problem`, a float `answer`), so `read_local` passes it through unchanged; that
the two are byte-identical is not verified (the Hub was unreachable). The reference is the answer written as
an integer when it is integral ("27", not "27.0"), so exact-match and numeric verifiers agree.
"""

from collections.abc import Mapping
from typing import Any

from rpt_transfer.benchmarks.base import BenchmarkSpec, Item
from rpt_transfer.benchmarks.prompts import MATH_PROMPT_V1
from rpt_transfer.benchmarks.sources import DatasetSource, read_jsonl

LOCAL_FILE = "amc23/test.jsonl"

SOURCE = DatasetSource(
    hf_id="zwhe99/amc23",
    config=None,
    split="test",
    revision="f9810c0439cd3c670ec885d328a2f06a87f3694a",
    local_files=(LOCAL_FILE,),
    read_local=lambda root: read_jsonl(root / LOCAL_FILE),
    count=40,
    required=("id", "question", "answer"),
)


def reference_text(answer: Any) -> str:
    """An answer as the verifier's reference: integral numbers without a decimal point."""
    value = float(answer)
    return str(int(value)) if value.is_integer() else str(answer)


def to_item(record: Mapping[str, Any]) -> Item:
    """Question to prompt; the numeric answer, as text, to reference."""
    return Item(
        id=f"amc23-{record['id']}",
        prompt_vars={"question": record["question"]},
        reference=reference_text(record["answer"]),
    )


BENCHMARK = BenchmarkSpec(
    name="amc23",
    version="1",
    domain="math",
    source=SOURCE,
    to_item=to_item,
    prompt=MATH_PROMPT_V1,
    scorer="math",
    repeats=16,
    description="AMC 2023: 40 problems with numeric answers; 16 samples each.",
)

__all__ = ["BENCHMARK"]
