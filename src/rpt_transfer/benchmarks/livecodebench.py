"""LiveCodeBench (Jain et al., 2024, arXiv:2403.07974): contest problems dated after models' cut-offs.

Deviations from the RPT paper (arXiv 2506.19733), which ran LCB's own runner on
`livecodebench/code_generation` (release unpinned), public and private tests, greedy, 6 s per test:
- Data: the Hub pin is `livecodebench/code_generation_lite` config `release_v5` (880 problems, 2023-05 to
  2025-01). The local copy is the rllm file of the same problems with **public tests only** (879: `abc350_c`
  is missing), so offline scores are on the samples only and higher than with private tests.
- Problems: all 879 by default: 498 stdin/stdout problems (AtCoder, Codeforces and the few LeetCode ones
  without starter code) and 381 LeetCode-style functional ones (non-empty `starter_code`; each test calls a
  `Solution` method). Option `testtype` keeps one kind (`stdin` or `functional`). Functional items get a
  `solution_reference` (see `rpt_transfer.scoring.code`): the test input's lines are the JSON arguments,
  the output is the JSON result, compared with `==` after a returned tuple is read as a list, as LCB's
  runner does; the method name comes from the starter code (the local copy has no `metadata.func_name`).
  The "code_stdio" scorer runs both kinds: the reference says which. Time limit: 6 s per test, all the
  tests of a functional item sharing one budget (they run in one process).
- Window: options `start` and `end` (months, `YYYY-MM`, inclusive) filter on `contest_date`; the default is
  the whole release_v5 window. The count comes from `PER_MONTH`, a table of the local copy, so planning
  never loads data; the Hub's release_v5 has `abc350_c` (2024-04) more.
- Prompt: the problem statement and our answer format, not LCB's system prompt: for stdin problems the
  stdin/stdout format of `CODE_STDIO_PROMPT_V1` (outputs compared token by token; LCB compares lines of
  stripped tokens), for functional ones the starter code and a request for the complete `class Solution`.

Hub schema (`livecodebench/code_generation_lite`, `release_v5`, split `test`): `question_title`,
`question_content`, `platform`, `question_id`, `contest_id`, `contest_date` (ISO datetime), `starter_code`,
`difficulty`, `public_test_cases` and `private_test_cases` (JSON lists of `{input, output, testtype}`; the
private ones may be base64 of zlib of a pickled JSON string), `metadata`. `read_local` builds these fields by
joining the rllm problems (`problem`, `starter_code`, `public_test_cases`) to the metadata file (LCB's
submissions repository) on `question_content` = `problem` (first 200 characters after strip);
`private_test_cases` is "" and `metadata` "{}".
"""

import base64
import io
import json
import pickle
import re
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rpt_transfer.benchmarks.base import BenchmarkSpec, Item, Subset
from rpt_transfer.benchmarks.prompts import CODE_STDIO_PROMPT_V1
from rpt_transfer.benchmarks.sources import DatasetSource, HubLoad, Record, read_json, read_jsonl
from rpt_transfer.errors import RptError
from rpt_transfer.scoring.code import STDIO_TIMEOUT, solution_reference, stdio_reference

HF_ID = "livecodebench/code_generation_lite"
REVISION = "0fe84c3912ea0c4d4a78037083943e8f0c4dd505"
RELEASES = {"v5": "release_v5"}
"""Our release option to the Hub config that holds it."""
PER_MONTH: dict[str, tuple[int, int]] = {
    "2023-05": (17, 17), "2023-06": (20, 19), "2023-07": (28, 26), "2023-08": (18, 18), "2023-09": (26, 18),
    "2023-10": (26, 18), "2023-11": (21, 14), "2023-12": (19, 21), "2024-01": (19, 17), "2024-02": (20, 12),
    "2024-03": (21, 24), "2024-04": (20, 16), "2024-05": (20, 16), "2024-06": (25, 21), "2024-07": (23, 20),
    "2024-08": (44, 22), "2024-09": (29, 18), "2024-10": (37, 16), "2024-11": (37, 20), "2024-12": (28, 21),
    "2025-01": (0, 7),
}  # fmt: skip
"""(stdin, functional) problems of release_v5 per contest month, as in the local copy (498 and 381)."""
PROMPT = "{question}\n\n{answer_format}"
"""Version 2: the statement, then the answer format of the item's kind (stdin: as `CODE_STDIO_PROMPT_V1`)."""
STDIN_FORMAT = CODE_STDIO_PROMPT_V1.removeprefix("{question}\n\n")
FUNCTIONAL_FORMAT = (
    "Write the solution in Python 3 by completing this starter code:\n\n```python\n{starter}\n```\n\n"
    "Reason first if it helps, then end your answer with a single ```python fenced code block holding the "
    "complete `class Solution` and every import it needs."
)
_METHOD = re.compile(r"^\s+def\s+(\w+)\s*\(\s*self\b", re.MULTILINE)
_MONTH = r"^\d{4}-(0[1-9]|1[0-2])$"
_LOCAL = (
    "livecodebench/rllm_livecodebench_test.json",
    "livecodebench/problems_v5_metadata_from_submissions.jsonl",
)


class LiveCodeBenchOptions(BaseModel):
    """Which release, test type and contest months to evaluate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    release: Literal["v5"] = "v5"
    """LCB release (cumulative: v5 holds every problem up to 2025-01)."""
    testtype: Literal["all", "stdin", "functional"] = "all"
    """Which problems: all, stdin/stdout ones only, or functional (LeetCode-style `Solution`) ones only."""
    start: str = Field("2023-05", pattern=_MONTH)
    """First contest month kept, `YYYY-MM`."""
    end: str = Field("2025-01", pattern=_MONTH)
    """Last contest month kept, `YYYY-MM`, inclusive."""

    @model_validator(mode="after")
    def _ordered(self) -> "LiveCodeBenchOptions":
        if self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")
        return self


def read_local(root: Path) -> Iterator[Record]:
    """The rllm problems joined to their metadata, in the Hub schema (no private tests)."""
    problems, metadata = (root / name for name in _LOCAL)
    by_text = {str(row["question_content"]).strip()[:200]: row for row in read_jsonl(metadata)}
    for problem in read_json(problems):
        meta = by_text.get(str(problem["problem"]).strip()[:200])
        if meta is None:
            raise RptError(f"{problems}: problem {problem['problem_title']!r} has no row in {metadata}")
        yield {
            **meta,
            "question_content": problem["problem"],
            "starter_code": problem["starter_code"],
            "public_test_cases": problem["public_test_cases"],
            "private_test_cases": "",
            "metadata": "{}",
        }


def read_hub(load: HubLoad) -> Iterator[Record]:
    """The release's config of the pinned lite dataset."""
    return load(HF_ID, RELEASES["v5"], "test", REVISION)


SOURCE = DatasetSource(
    hf_id=HF_ID,
    config=RELEASES["v5"],
    split="test",
    revision=REVISION,
    local_files=_LOCAL,
    read_local=read_local,
    read_hub=read_hub,
    count=879,
    required=("question_id", "question_content", "contest_date", "starter_code", "public_test_cases"),
)


class _StrOnly(pickle.Unpickler):
    """Unpickles LCB's private tests, which are one pickled str: no class may be loaded."""

    def find_class(self, module: str, name: str) -> Any:
        raise RptError(f"LiveCodeBench private tests: unexpected pickled object {module}.{name}")


def decode_tests(field: str) -> list[dict[str, Any]]:
    """A test-case field as a list: plain JSON, or LCB's base64(zlib(pickle(JSON))) for private tests."""
    if not field:
        return []
    if field.lstrip().startswith("["):
        return json.loads(field)
    return json.loads(_StrOnly(io.BytesIO(zlib.decompress(base64.b64decode(field)))).load())


def keep(record: Mapping[str, Any], options: LiveCodeBenchOptions) -> bool:
    """A problem of the chosen test type (functional: it has starter code) inside the month window."""
    month = str(record["contest_date"])[:7]
    kind = "functional" if record["starter_code"] else "stdin"
    return options.testtype in ("all", kind) and options.start <= month <= options.end


def count(options: LiveCodeBenchOptions) -> int:
    """Problems of the chosen type in the window, from the embedded table."""
    kinds = [kind for kind in (0, 1) if options.testtype in ("all", ("stdin", "functional")[kind])]
    return sum(
        counts[kind]
        for month, counts in PER_MONTH.items()
        if options.start <= month <= options.end
        for kind in kinds
    )


def to_item(record: Mapping[str, Any]) -> Item:
    """Statement and answer format to prompt; the public and private tests of its kind to reference."""
    tests = decode_tests(str(record["public_test_cases"])) + decode_tests(str(record["private_test_cases"]))
    starter = str(record["starter_code"])
    if starter:
        answer_format = FUNCTIONAL_FORMAT.format(starter=starter.rstrip())
        reference = functional_reference(starter, tests)
    else:
        answer_format = STDIN_FORMAT
        reference = stdio_reference([case for case in tests if case["testtype"] == "stdin"])
    return Item(
        id=f"livecodebench-{record['question_id']}",
        prompt_vars={"question": str(record["question_content"]).strip(), "answer_format": answer_format},
        reference=reference,
        metadata={
            "platform": record.get("platform"),
            "contest_date": str(record["contest_date"]),
            "difficulty": record.get("difficulty"),
            "testtype": "functional" if starter else "stdin",
        },
    )


def functional_reference(starter_code: str, tests: list[dict[str, Any]]) -> str:
    """The `solution_reference` of a LeetCode-style problem: method from the starter code, JSON tests."""
    methods = _METHOD.findall(starter_code)
    if len(methods) != 1:
        raise RptError(
            f"LiveCodeBench starter code should define one method, found {methods}:\n{starter_code}"
        )
    cases = [
        ([json.loads(line) for line in case["input"].split("\n")], json.loads(case["output"]))
        for case in tests
        if case["testtype"] == "functional"
    ]
    return solution_reference(methods[0], cases, timeout=STDIO_TIMEOUT * max(1, len(cases)))


BENCHMARK = BenchmarkSpec(
    name="livecodebench",
    version="2",
    domain="code",
    source=SOURCE,
    to_item=to_item,
    prompt=PROMPT,
    scorer="code_stdio",
    repeats=1,
    description=(
        "LiveCodeBench release_v5, 2023-05..2025-01: 879 problems, stdin and LeetCode-style (public tests)."
    ),
    subset=Subset(options=LiveCodeBenchOptions, keep=keep, count=count),
)

__all__ = ["BENCHMARK"]
