"""The benchmark table of the docs and README, generated from the registry so it never drifts."""

import re

from rpt_transfer.benchmarks.base import BenchmarkSpec
from rpt_transfer.benchmarks.sources import DatasetSource

START, END = "<!-- benchmarks:start -->", "<!-- benchmarks:end -->"
_CODE_FORMATS = {
    "code_function": "one python block: the function",
    "code_stdio": "one python block: a stdin/stdout program",
    "polyglot": "one block in the exercise's language",
}
_ANSWER_FORMAT = re.compile(r"\\boxed\{\{[^}]*\}\}|ANSWER: ?<[^>]+>")


def answer_format(bench: BenchmarkSpec) -> str:
    """The answer format the prompt asks for, as the reader would type it."""
    if bench.scorer in _CODE_FORMATS:
        return _CODE_FORMATS[bench.scorer]
    match = _ANSWER_FORMAT.search(bench.prompt)
    return match.group(0).replace("{{", "{").replace("}}", "}") if match else "see prompt"


def source_cell(bench: BenchmarkSpec) -> str:
    """Where the data comes from: Hub id, config, split and revision, or the synthetic generator."""
    source = bench.source
    if not isinstance(source, DatasetSource):
        return "synthetic (generated offline)"
    config = f" ({source.config})" if source.config else ""
    return f"`{source.hf_id}`{config} {source.split} @ `{source.revision[:12]}`"


def markdown_table(benchmarks: tuple[BenchmarkSpec, ...]) -> str:
    """One row per benchmark: name, domain, source, size, prompt's answer format, scorer, default repeats."""
    rows = [
        "| benchmark | domain | source | items | answer format | scorer | repeats |",
        "|---|---|---|---|---|---|---|",
    ]
    for bench in sorted(benchmarks, key=lambda b: (b.domain, b.name)):
        rows.append(
            f"| `{bench.name}` | {bench.domain} | {source_cell(bench)} | {bench.size()} | "
            f"`{answer_format(bench)}` | {bench.scorer} | {bench.repeats} |"
        )
    return "\n".join(rows) + "\n"


def with_table(text: str, table: str) -> str:
    """`text` with the part between the benchmark markers replaced by `table`."""
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{table}{END}{tail}"
