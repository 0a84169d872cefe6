"""TabFact (Chen et al., ICLR 2020): is a statement entailed or refuted by a Wikipedia table? Test set.

Deviations from the RPT paper (arXiv 2506.19733): it loaded ibm-research/tab_fact (test, 12,779 statements;
whether it subsampled is not known) and asked True/False as letters; we ask for `entailed` or `refuted`. The
table is rendered as a Markdown table under its caption, as in the paper. Option `split` selects TabFact's
official sub-splits by table: `test` (all 12,779 statements, the default), `small_test` (1,998), `simple_test`
(4,171) or `complex_test` (8,608).

Hub schema (the `tab_fact` config): `id` (the table's position in `test_examples.json`), `table_id`,
`table_text` (the `#`-separated CSV file), `table_caption`, `statement`, `label` (0 refuted, 1 entailed).
Every Hub copy (ibm-research/tab_fact, wenhu/tab_fact) is a loading script that `datasets` 4 and later cannot
run, and no public source pins a revision of them (`UNPINNED`). The local copy is the source those scripts
read (wenhuchen/Table-Fact-Checking: `tokenized_data/test_examples.json` plus `data/all_csv/`); `read_local`
builds the same records in the same order and adds two fields the Hub rows lack: `statement_index` (the
statement's position in its table, the second half of the loader's example key `{id}_{statement_index}`;
needed because 18 statements repeat within their table with the same label) and `subsplits` (the official
sub-split id lists the table is in).
"""

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from rpt_transfer.benchmarks.base import BenchmarkSpec, Item, Subset
from rpt_transfer.benchmarks.prompts import CHOICE_PROMPT_V1
from rpt_transfer.benchmarks.sources import UNPINNED, DatasetSource, Record, read_json
from rpt_transfer.errors import RptError

LOCAL_DIR = "tabfact"
LABELS = ("refuted", "entailed")
"""Label names by the Hub's class index."""
SUBSPLITS = ("small_test", "simple_test", "complex_test")
SPLIT_SIZES = {"test": 12779, "small_test": 1998, "simple_test": 4171, "complex_test": 8608}

Split = Literal["test", "small_test", "simple_test", "complex_test"]


class TabFactOptions(BaseModel):
    """Which official TabFact test split to evaluate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    split: Split = "test"
    """`test` (all statements) or an official sub-split: `small_test`, `simple_test` or `complex_test`."""


def read_local(root: Path) -> Iterator[Record]:
    """The Table-Fact-Checking test files as Hub `tab_fact` records, plus statement index and sub-splits."""
    folder = root / LOCAL_DIR
    members = {name: set(read_json(folder / f"{name}_id.json")) for name in SUBSPLITS}
    for table_index, (table_id, (statements, labels, caption)) in enumerate(
        read_json(folder / "test_examples.json").items()
    ):
        table_text = (folder / "all_csv" / table_id).read_text(encoding="utf-8")
        subsplits = [name for name in SUBSPLITS if table_id in members[name]]
        for statement_index, (statement, label) in enumerate(zip(statements, labels, strict=True)):
            yield {
                "id": table_index,
                "table_id": table_id,
                "table_text": table_text,
                "table_caption": caption,
                "statement": statement,
                "label": label,
                "statement_index": statement_index,
                "subsplits": subsplits,
            }


SOURCE = DatasetSource(
    hf_id="ibm-research/tab_fact",
    config="tab_fact",
    split="test",
    revision=UNPINNED,
    local_files=(LOCAL_DIR,),
    read_local=read_local,
    count=12779,
    required=("id", "table_id", "table_text", "table_caption", "statement", "label", "statement_index"),
)


def keep(record: Mapping[str, Any], options: TabFactOptions) -> bool:
    """Whether a statement's table is in the chosen split; sub-splits need the official id lists."""
    if options.split == "test":
        return True
    if "subsplits" not in record:
        raise RptError(
            f"tabfact split {options.split!r} needs the official table-id lists, which only the local copy "
            f"carries (set RPT_BENCHMARK_DATA); split 'test' works from any source"
        )
    return options.split in record["subsplits"]


def render_table(table_text: str) -> str:
    """A `#`-separated CSV (header row first) as a Markdown table."""
    rows = [line.split("#") for line in table_text.splitlines() if line.strip()]
    cells = [[cell.strip().replace("|", "\\|") for cell in row] for row in rows]
    lines = ["| " + " | ".join(row) + " |" for row in cells]
    lines.insert(1, "|" + "---|" * len(cells[0]))
    return "\n".join(lines)


def to_item(record: Mapping[str, Any]) -> Item:
    """Caption, table and statement to prompt; `entailed` or `refuted` to reference."""
    question = (
        f"Table caption: {record['table_caption']}\n\n{render_table(record['table_text'])}\n\n"
        f"Statement: {record['statement']}\n\nIs the statement entailed or refuted by the table?"
    )
    return Item(
        id=f"tabfact-{record['id']}-{record['statement_index']}",
        prompt_vars={"question": question, "labels": ", ".join(sorted(LABELS))},
        reference=LABELS[int(record["label"])],
        metadata={"table_id": record["table_id"], "choices": [[label, label] for label in sorted(LABELS)]},
    )


BENCHMARK = BenchmarkSpec(
    name="tabfact",
    version="1",
    domain="knowledge",
    source=SOURCE,
    to_item=to_item,
    prompt=CHOICE_PROMPT_V1,
    scorer="choice",
    repeats=1,
    description="TabFact test: 12,779 statements on 1,695 Wikipedia tables; entailed/refuted.",
    subset=Subset(options=TabFactOptions, keep=keep, count=lambda options: SPLIT_SIZES[options.split]),
)

__all__ = ["BENCHMARK"]
