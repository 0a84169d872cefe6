"""FinBen (Xie et al., NeurIPS 2024 Datasets and Benchmarks; the FLARE tasks of PIXIU): finance questions.

Deviations from the RPT paper (arXiv 2506.19733): it used 10 multiple-choice and 3 open QA FinBen subsets from
TheFinAI; only two subsets are available offline, so this benchmark offers them (option `subsets`, default
both): `flare_cfa` (CFA level-I questions, 1,032; not among the paper's subsets) and `sm_bigdata` (BigData22
stock movement from prices and tweets, Rise/Fall, 1,472; one of the paper's). The prompt is the subset's own
`query` without its closing "Answer:", followed by the project's answer-format line.

Hub schema (split `test`): `query` (the full FLARE prompt), `answer` (the gold label), `text`, `choices` (the
labels) and `gold` (the label's index); sm_bigdata rows also have an `id`. Records here also carry `subset`,
the dataset they came from. The local copies are dumps of the Hub datasets (flare_cfa: TheFinAI/flare-cfa;
sm_bigdata: Salesforce/FinEval `CRA-Bigdata`, the FLARE sm-bigdata rows) in the same schema; `read_local` only
adds `subset`. The reference is the choice matching `answer` ignoring case, so flare_cfa's lower-case answers
("a") become "A"; where `answer` and `gold` disagree (3 flare_cfa rows, whose `answer` is the correct option)
`answer` wins. Items list their options in `metadata["choices"]` for the choice scorer's flexible policy,
with flare_cfa's option texts read from the query.

From the Hub, `read_hub` loads one dataset per subset (`HUB_DATASETS`) and tags each row with its subset.
No revision of either Hub dataset was found pinned in public sources: planning resolves both to the commits
their default branches point at (`hub_ids`), and the jobs load those.
"""

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from rpt_transfer.benchmarks.base import BenchmarkSpec, Item, Subset, stable_id
from rpt_transfer.benchmarks.prompts import CHOICE_PROMPT_V1
from rpt_transfer.benchmarks.sources import UNPINNED, DatasetSource, HubLoad, Record, read_json

FinBenSubset = Literal["flare_cfa", "sm_bigdata"]
SUBSETS: tuple[FinBenSubset, ...] = get_args(FinBenSubset)
SUBSET_SIZES: dict[FinBenSubset, int] = {"flare_cfa": 1032, "sm_bigdata": 1472}
HUB_DATASETS: dict[FinBenSubset, str] = {
    "flare_cfa": "TheFinAI/flare-cfa",
    "sm_bigdata": "TheFinAI/flare-sm-bigdata",
}
"""The Hub dataset of each subset (split `test`)."""


class FinBenOptions(BaseModel):
    """Which FinBen subsets to evaluate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    subsets: list[FinBenSubset] = Field(default_factory=lambda: list(SUBSETS), min_length=1)
    """Subset names; by default both."""


def read_local(root: Path) -> Iterator[Record]:
    """The subsets' test dumps, in subset order, each row tagged with its subset."""
    for subset in SUBSETS:
        for row in read_json(root / "finben" / subset / "test.json"):
            yield {**row, "subset": subset}


def read_hub(load: HubLoad) -> Iterator[Record]:
    """Every subset's Hub dataset, in subset order, each row tagged with its subset."""
    for subset in SUBSETS:
        for row in load(HUB_DATASETS[subset], None, "test", UNPINNED):
            yield {**row, "subset": subset}


SOURCE = DatasetSource(
    hf_id=HUB_DATASETS["flare_cfa"],
    config=None,
    split="test",
    revision=UNPINNED,
    local_files=tuple(f"finben/{subset}/test.json" for subset in SUBSETS),
    read_local=read_local,
    read_hub=read_hub,
    hub_ids=tuple(HUB_DATASETS.values()),
    count=sum(SUBSET_SIZES.values()),
    required=("subset", "query", "answer", "choices"),
)


def option_texts(question: str, labels: list[str]) -> list[str]:
    """Each label's option text as a FLARE query lists it (`CHOICES: A: maturity.,B: ...`), else the label.

    Only an unambiguous listing is read (each label's marker exactly once, in label order); otherwise the
    labels stand for themselves, as sm_bigdata's Rise and Fall do.
    """
    markers = [f"CHOICES: {labels[0]}: ", *(f",{label}: " for label in labels[1:])]
    if any(question.count(marker) != 1 for marker in markers):
        return labels
    starts = [question.index(marker) for marker in markers]
    if starts != sorted(starts):
        return labels
    ends = [*starts[1:], len(question)]
    return [question[s + len(m) : e].strip() for s, m, e in zip(starts, markers, ends, strict=True)]


def to_item(record: Mapping[str, Any]) -> Item:
    """The FLARE query (without "Answer:") to prompt; the choice matching the answer to reference."""
    choices = [str(choice) for choice in record["choices"]]
    answer = str(record["answer"]).strip()
    matches = [choice for choice in choices if choice.lower() == answer.lower()]
    if len(matches) != 1:
        raise ValueError(f"finben record {record['query'][:60]!r}: answer {answer!r} is not one of {choices}")
    query = str(record["query"]).rstrip()
    question = query.removesuffix("Answer:").rstrip()
    subset = record["subset"]
    item_id = f"finben-{subset}-{record['id']}" if record.get("id") else stable_id(f"finben-{subset}", query)
    return Item(
        id=item_id,
        prompt_vars={"question": question, "labels": ", ".join(choices)},
        reference=matches[0],
        metadata={
            "subset": subset,
            "choices": [list(pair) for pair in zip(choices, option_texts(question, choices), strict=True)],
        },
    )


BENCHMARK = BenchmarkSpec(
    name="finben",
    version="1",
    domain="knowledge",
    source=SOURCE,
    to_item=to_item,
    prompt=CHOICE_PROMPT_V1,
    scorer="choice",
    repeats=1,
    description="FinBen flare_cfa (1,032, A-C) and sm_bigdata (1,472, Rise/Fall): 2,504 questions.",
    subset=Subset(
        options=FinBenOptions,
        keep=lambda record, options: record["subset"] in options.subsets,
        count=lambda options: sum(SUBSET_SIZES[subset] for subset in set(options.subsets)),
    ),
)

__all__ = ["BENCHMARK"]
