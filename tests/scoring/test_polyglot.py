"""The Polyglot verifier on real exercises: gold passes, stubs and fakes fail, missing toolchains say so."""

import re

import pytest

from conftest import BENCHMARK_DATA
from rpt_transfer.benchmarks.polyglot import CATCH, exercise_record, to_item
from rpt_transfer.benchmarks.sources import DATA_ENV
from rpt_transfer.scoring import polyglot

DATA = BENCHMARK_DATA
pytestmark = [
    pytest.mark.skipif(
        not (DATA / "polyglot").is_dir(), reason=f"no Polyglot data at {DATA}/polyglot (set {DATA_ENV})"
    ),
    pytest.mark.usefixtures("sandbox_ready"),
]


@pytest.fixture(autouse=True)
def _data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_ENV, str(DATA))


def record(language: str, slug: str) -> dict:
    """One exercise, read as the benchmark reads it."""
    catch = (DATA / "polyglot" / CATCH).read_text(encoding="utf-8") if language == "cpp" else ""
    return dict(
        exercise_record(language, DATA / "polyglot" / language / "exercises" / "practice" / slug, catch)
    )


def gold(rec: dict) -> str:
    """The example solution as one file (C++: header then source, without the self-include)."""
    example = rec["example"]
    if rec["language"] != "cpp":
        return next(iter(example.values()))
    header = "".join(v for k, v in example.items() if k.endswith(".h"))
    source = "".join(v for k, v in example.items() if k.endswith(".cpp"))
    return header + "\n" + re.sub(r'^#include ".*\.h"$', "", source, flags=re.MULTILINE)


def score(rec: dict, code: str) -> polyglot.Verdict:
    """Verdict of `code` in a fenced block against the exercise's reference."""
    return polyglot.verify(f"Here it is:\n```\n{code}\n```\n", to_item(rec).reference)


@pytest.mark.parametrize(("language", "slug"), [("python", "affine-cipher"), ("python", "zipper")])
def test_python_gold_passes_and_stub_fails(language: str, slug: str) -> None:
    rec = record(language, slug)
    assert score(rec, gold(rec)).correct == 1.0
    stub = score(rec, rec["files"][rec["solution_files"][0]])
    assert (stub.correct, stub.reason) == (0.0, None)


@pytest.mark.parametrize(
    "fake",
    [
        "import os\nos._exit(0)",  # exits 0 at import, before any test runs
        "import os\nprint('===== 1 passed in 0.01s =====', flush=True)\nos._exit(0)",  # generic summary
    ],
    ids=["exit0", "fake_summary"],
)
def test_python_fakes_fail(fake: str) -> None:
    rec = record("python", "affine-cipher")
    verdict = score(rec, fake + "\n" + gold(rec))
    assert verdict.correct == 0.0


def test_cpp_gold_passes_stub_and_fake_fail() -> None:
    rec = record("cpp", "all-your-base")
    if polyglot._missing_tool("cpp"):
        pytest.skip("g++ not in the sandbox")
    assert score(rec, gold(rec)).correct == 1.0
    assert score(rec, rec["files"]["all_your_base.h"]).correct == 0.0
    fake = (
        "#include <cstdio>\n#include <cstdlib>\n"
        'static int fake = (std::puts("All tests passed (1 assertion in 1 test case)"), std::exit(0), 0);\n'
    )
    verdict = score(rec, fake + gold(rec))
    assert (verdict.correct, verdict.reason) == (0.0, None)
    assert "expected 17" in verdict.explanation


@pytest.mark.parametrize(
    ("language", "slug"),
    [("go", "beer-song"), ("rust", "acronym"), ("java", "bowling"), ("javascript", "bowling")],
)
def test_other_languages_pass_or_say_toolchain_missing(language: str, slug: str) -> None:
    rec = record(language, slug)
    verdict = score(rec, gold(rec))
    if polyglot._missing_tool(language) is None:
        assert verdict.correct == 1.0, verdict.explanation
        assert score(rec, rec["files"][rec["solution_files"][0]]).correct == 0.0
    else:
        assert (verdict.correct, verdict.reason) == (0.0, "toolchain_missing")
        assert verdict.explanation


def test_no_code_is_no_answer() -> None:
    verdict = score(record("python", "affine-cipher"), "")
    assert (verdict.correct, verdict.reason) == (0.0, "no_answer")
