"""USACO (Shi et al., 2024, arXiv:2404.10952, "Can Language Models Solve Olympiad Programming?"): subset307.

307 USA Computing Olympiad problems (bronze to platinum) judged on their full official test data. Deviations
from the RPT paper (arXiv 2506.19733), which ran inspect_evals' upstream USACO (temperature 0.7): our
prompt is the problem description with our stdin/stdout answer format (`CODE_STDIO_PROMPT_V1`), not the
upstream zero-shot prompt; outputs are compared token by token under the verifier's default time limit per
test, not the problem's `runtime_limit` and `memory_limit`.

Data: princeton-nlp/USACO ships `usaco_subset307` only as a Google Drive archive (`data.zip`); there is no
Hub dataset (`hub_ids=()`), so USACO needs its local copy wherever a study that evaluates it is planned (that
copy's sha256 is its identity); without one, planning says how to set it up. The local layout under
RPT_BENCHMARK_DATA mirrors the archive's `data/datasets/`:

    usaco/usaco_subset307_dict.json        # {problem_id: problem}, as in the archive
    usaco/tests/<problem_id>/1.in, 1.out   # the archive's usaco_v3/tests/<problem_id>/ (or I.1, O.1)

Schema (one record per problem, the dict's values): `problem_id` (e.g. `1333_platinum_good_bitstrings`),
`name`, `problem_level`, `cp_id`, `description` (statement with the sample I/O), `num_tests`,
`runtime_limit`, `memory_limit`, and more; `read_local` adds `tests`, the list of `{input, output}` read from
tests 1 to `num_tests`, trying `<n>.in`/`<n>.out` then `I.<n>`/`O.<n>` as USACO's judge does.
"""

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from rpt_transfer.benchmarks.base import BenchmarkSpec, Item
from rpt_transfer.benchmarks.prompts import CODE_STDIO_PROMPT_V1
from rpt_transfer.benchmarks.sources import DATA_ENV, UNPINNED, DatasetSource, HubLoad, Record, read_json
from rpt_transfer.errors import RptError
from rpt_transfer.scoring.code import stdio_reference

DICT_FILE = "usaco/usaco_subset307_dict.json"
TESTS_DIR = "usaco/tests"


def _test_case(folder: Path, number: int) -> dict[str, str]:
    """Test `number` of a problem: `<n>.in`/`<n>.out`, else `I.<n>`/`O.<n>`."""
    for given, expected in ((f"{number}.in", f"{number}.out"), (f"I.{number}", f"O.{number}")):
        if (folder / given).is_file():
            return {
                "input": (folder / given).read_text(encoding="utf-8"),
                "output": (folder / expected).read_text(encoding="utf-8"),
            }
    raise RptError(f"{folder}: no test {number} ({number}.in or I.{number})")


def read_local(root: Path) -> Iterator[Record]:
    """The problems of the subset307 dict, each with its official tests read from the tests folder."""
    for problem_id, problem in read_json(root / DICT_FILE).items():
        folder = root / TESTS_DIR / str(problem_id)
        tests = [_test_case(folder, number) for number in range(1, int(problem["num_tests"]) + 1)]
        yield {**problem, "problem_id": problem_id, "tests": tests}


def read_hub(load: HubLoad) -> Iterator[Record]:
    """Not on the Hub: fail with how to provide the local copy."""
    raise RptError(
        f"usaco_subset307 is not on the Hugging Face Hub: download princeton-nlp/USACO's data.zip, then set "
        f"{DATA_ENV} to a folder holding {DICT_FILE} and {TESTS_DIR}/<problem_id>/ (from usaco_v3/tests)"
    )


SOURCE = DatasetSource(
    hf_id="princeton-nlp/USACO",
    config="usaco_subset307",
    split="test",
    revision=UNPINNED,
    local_files=(DICT_FILE, TESTS_DIR),
    read_local=read_local,
    read_hub=read_hub,
    count=307,
    required=("problem_id", "description", "tests"),
    hub_ids=(),
    obtain=(
        "download the data.zip that github.com/princeton-nlp/USACO links to, and put "
        f"its data/datasets/usaco_subset307_dict.json at {DICT_FILE} and its usaco_v3/tests/ at {TESTS_DIR}"
    ),
)


def to_item(record: Mapping[str, Any]) -> Item:
    """Description to prompt; the official tests to reference."""
    return Item(
        id=f"usaco-{record['problem_id']}",
        prompt_vars={"question": str(record["description"]).strip()},
        reference=stdio_reference(record["tests"]),
        metadata={
            "level": record.get("problem_level"),
            "runtime_limit": record.get("runtime_limit"),
            "memory_limit": record.get("memory_limit"),
        },
    )


BENCHMARK = BenchmarkSpec(
    name="usaco",
    version="1",
    domain="code",
    source=SOURCE,
    to_item=to_item,
    prompt=CODE_STDIO_PROMPT_V1,
    scorer="code_stdio",
    repeats=1,
    description="USACO subset307: 307 olympiad problems on their official tests; stdin/stdout.",
)

__all__ = ["BENCHMARK"]
