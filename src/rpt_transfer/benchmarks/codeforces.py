"""Codeforces problems (MatrixStudio, 2024; the RPT paper's `chuxuan/RL-gen-codeforces-test`): stdin programs.

Deviations from the RPT paper (arXiv 2506.19733), which ran its own test runner, greedy, on the authors' Hub
dataset (MatrixStudio-style fields: name, problem description, input/output specification, demo I/O, note,
test cases), whose rows and revision are unknown here (`UNPINNED`):
- Data: the local copy is DeepCoder's Codeforces test set (agentica-project/rllm), 408 problems from
  contests 1971 onwards. 378 of them have only the sample test (468 tests in all), so a pass here means the
  samples pass; there are no hidden tests.
- Prompt: the statement with its Input/Output Format and limits, without the "Tags:" block DeepCoder appends
  (a hint the paper's fields do not give), and our stdin/stdout answer format (`CODE_STDIO_PROMPT_V1`).
- Scoring: outputs compared token by token; problems whose statement allows an absolute or relative error
  of 10^-k get that float tolerance. Time limits of the statement are not applied (the verifier's default is).

Schema (the local one; the Hub rows are assumed to be mapped to it): `problem` (str: statement with
Input Format, Output Format, Tags, Time Limit and Memory Limit), `tests` (str: a Python-literal list of
`{input, output}`, parsed with `ast.literal_eval`, never `eval`), and `problem_id` (e.g. `1971A`), which
`read_local` adds from `metadata_cf.json` (aligned by index). Rows without `problem_id` get a content id.
Hub rows in the MatrixStudio schema fail the required-fields check with a message naming them.
"""

import ast
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from rpt_transfer.benchmarks.base import BenchmarkSpec, Item, stable_id
from rpt_transfer.benchmarks.prompts import CODE_STDIO_PROMPT_V1
from rpt_transfer.benchmarks.sources import UNPINNED, DatasetSource, Record, read_json
from rpt_transfer.errors import RptError
from rpt_transfer.scoring.code import stdio_reference

_LOCAL = ("codeforces/deepcoder_codeforces_test.json", "codeforces/metadata_cf.json")
_TAGS = re.compile(r"\n+Tags:\n\[[^\n]*\]\n")
_TOLERANCE = re.compile(r"(?:absolute|relative) error[^.]{0,80}?10\^\{?-(\d+)\}?")


def read_local(root: Path) -> Iterator[Record]:
    """DeepCoder's problems with their Codeforces ids (the metadata list is aligned by index)."""
    problems, ids = (read_json(root / name) for name in _LOCAL)
    if len(problems) != len(ids):
        raise RptError(f"{root / _LOCAL[1]}: {len(ids)} ids for {len(problems)} problems in {_LOCAL[0]}")
    for problem, problem_id in zip(problems, ids, strict=True):
        yield {**problem, "problem_id": problem_id}


SOURCE = DatasetSource(
    hf_id="chuxuan/RL-gen-codeforces-test",
    config=None,
    split="test",
    revision=UNPINNED,
    local_files=_LOCAL,
    read_local=read_local,
    count=408,
    required=("problem", "tests"),
)


def float_tolerance(statement: str) -> float | None:
    """10^-k when the statement accepts an absolute or relative error of 10^-k, else None (exact tokens)."""
    match = _TOLERANCE.search(statement)
    return 10.0 ** -int(match.group(1)) if match else None


def to_item(record: Mapping[str, Any]) -> Item:
    """Statement without tags to prompt; its tests (a Python literal) to reference."""
    statement = str(record["problem"])
    tests = ast.literal_eval(str(record["tests"]))
    problem_id = record.get("problem_id")
    return Item(
        id=f"codeforces-{problem_id}" if problem_id else stable_id("codeforces", statement),
        prompt_vars={"question": _TAGS.sub("\n", statement).strip()},
        reference=stdio_reference(tests, float_tolerance(statement)),
        metadata={"problem_id": problem_id, "tests": len(tests)},
    )


BENCHMARK = BenchmarkSpec(
    name="codeforces",
    version="1",
    domain="code",
    source=SOURCE,
    to_item=to_item,
    prompt=CODE_STDIO_PROMPT_V1,
    scorer="code_stdio",
    repeats=1,
    description="Codeforces (DeepCoder test set): 408 problems, mostly sample tests only; stdin/stdout.",
)

__all__ = ["BENCHMARK"]
