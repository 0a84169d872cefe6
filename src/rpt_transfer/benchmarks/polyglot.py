"""Aider Polyglot (Aider-AI, 2025): 225 hard Exercism exercises in C++, Go, Java, JavaScript, Python, Rust.

Source: GitHub repository Aider-AI/polyglot-benchmark at a pinned commit (the Exercism tracks, MIT), laid
out as `<language>/exercises/practice/<slug>/` with `.docs/` (task text), `.meta/config.json` (which files
are solution, test, example and editor files), `.meta/example*`/`.meta/proof*` (reference solutions), the
stub and the tests. The local copy keeps one `catch.hpp` at `_shared/catch.hpp` instead of one per C++
exercise; records put it back at `test/catch.hpp`.

Deviations from the RPT paper (arXiv 2506.19733), whose harness ran each track's toolchain (timeout 60 s)
and reported `average_pass_ratio` or `fully_passed_rate` (which one is unknown): we score fully passed
(1 when every test passes), one attempt, no second try with the test output as Aider's own benchmark
gives. The model returns one file in one fenced block; for C++ that is a single header holding both
declarations and definitions (the `.cpp` stub is not compiled), since one block cannot fill two files; for
the three Java exercises with several solution files (hangman, queen-attack, rest-api) the prompt shows
the other stubs too, and a type the answer declares replaces the stub of that name. Since version 2,
records carry the whole exercise folder but its docs, references and track tooling, as the authors'
harness copied the folder (version 1 missed data files and unlisted helpers some tests need).
Which toolchains can run offline is the verifier's business (`rpt_transfer.scoring.polyglot`).
"""

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from rpt_transfer.benchmarks.base import BenchmarkSpec, Item, Subset
from rpt_transfer.benchmarks.sources import DatasetSource, HubLoad, Record
from rpt_transfer.errors import RptError
from rpt_transfer.scoring.polyglot import make_reference

Language = Literal["cpp", "go", "java", "javascript", "python", "rust"]
LANGUAGES: tuple[Language, ...] = get_args(Language)
SIZES: dict[Language, int] = {"cpp": 26, "go": 39, "java": 47, "javascript": 49, "python": 34, "rust": 30}
"""Exercises per language at the pinned commit (225 in all)."""
REPOSITORY = "Aider-AI/polyglot-benchmark"
REVISION = "7e0611e77b54e2dea774cdc0aa00cf9f7ed6144f"
CATCH = "_shared/catch.hpp"
_FENCE = {
    "cpp": "cpp",
    "go": "go",
    "java": "java",
    "javascript": "javascript",
    "python": "python",
    "rust": "rust",
}
_DOCS = ("introduction.md", "instructions.md", "instructions.append.md")
_LEFT_OUT_FOLDERS = (".meta", ".docs", ".approaches", ".articles", ".exercism", "gradle")
_LEFT_OUT_FILES = frozenset(
    {"LICENSE", ".eslintrc", ".npmrc", ".gitignore", "package.json", "babel.config.js", "CMakeLists.txt"}
    | {"build.gradle", "gradlew", "gradlew.bat"}
)
"""Not copied into records: task text, reference solutions and track tooling (npm, gradle, CMake), which
the verifier replaces with its own offline commands. Everything else of an exercise folder is, as the
authors' harness copied the folder: data files (JavaScript grep's `data/`), helpers config.json does not
list (Go's `cases_test.go`, Rust's `src/pre_implemented.rs`, `tests/invalid/`) and unlisted test files."""
_TEST_FILE = {
    "go": r"[^/]+_test\.go",
    "java": r"src/test/java/.+\.java",
    "javascript": r"[^/]+\.(?:spec|test)\.js",
    "rust": r"tests/[^/]+\.rs",
}
"""Files the track's test tool runs besides the listed tests (Go's build tags are the verifier's job)."""

PROMPT_V1 = (
    "Solve this {language_name} exercise.\n\n{instructions}\n\n"
    "Here is the starting file `{answer_file}`:\n\n```{fence}\n{stub}\n```\n\n{note}"
    "Reply with the complete contents of `{answer_file}` in one ```{fence} fenced code block. "
    "It will be tested with the exercise's unit tests."
)
_NOTES = {
    "cpp": "Put the whole solution (declarations and definitions) in this header; the `.cpp` stub below is "
    "not compiled.\n\n",
    "java": "The exercise has more solution files, shown below yours: define their types (not `public`) in "
    "your file too; each replaces the stub file of its name.\n\n",
}
_NAMES = {
    "cpp": "C++",
    "go": "Go",
    "java": "Java",
    "javascript": "JavaScript",
    "python": "Python",
    "rust": "Rust",
}


class PolyglotOptions(BaseModel):
    """Which languages of Aider Polyglot to evaluate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    languages: list[Language] = Field(default_factory=lambda: list(LANGUAGES), min_length=1)
    """Languages to keep; by default all six (225 exercises)."""


def read_local(root: Path) -> Iterator[Record]:
    """Every exercise of the local copy, languages and slugs in sorted order."""
    base = root / "polyglot"
    catch = (base / CATCH).read_text(encoding="utf-8")
    for language in LANGUAGES:
        for folder in sorted((base / language / "exercises" / "practice").iterdir()):
            yield exercise_record(language, folder, catch)


def exercise_record(language: str, folder: Path, catch: str) -> Record:
    """One exercise folder as a record: texts and file contents only, no paths outside it."""
    listed = json.loads((folder / ".meta" / "config.json").read_text(encoding="utf-8"))["files"]

    def read(names: list[str]) -> dict[str, str]:
        return {name: (folder / name).read_text(encoding="utf-8") for name in names}

    docs = [folder / ".docs" / name for name in _DOCS]
    names = sorted(
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.is_file()
        and path.relative_to(folder).parts[0] not in _LEFT_OUT_FOLDERS
        and path.name not in _LEFT_OUT_FILES
    )
    files = read(sorted({*names, *listed["solution"], *listed["test"], *listed.get("editor", [])}))
    if language == "cpp":
        files["test/catch.hpp"] = catch
    pattern = _TEST_FILE.get(language)
    unlisted = [name for name in names if pattern and re.fullmatch(pattern, name)]
    tests = [*listed["test"], *(name for name in unlisted if name not in listed["test"])]
    return {
        "language": language,
        "slug": folder.name,
        "instructions": "\n\n".join(p.read_text(encoding="utf-8").strip() for p in docs if p.exists()),
        "solution_files": list(listed["solution"]),
        "test_files": [name for name in tests if name not in listed["solution"]],
        "files": files,
        "example": read(listed["example"]),
    }


def read_hub(load: HubLoad) -> Iterator[Record]:
    """Polyglot is a GitHub repository, not a Hub dataset: say how to get a local copy."""
    raise RptError(
        f"Aider Polyglot is not on the Hugging Face Hub: clone https://github.com/{REPOSITORY} at "
        f"{REVISION} into <folder>/polyglot (C++: keep one catch.hpp at polyglot/{CATCH}) and set "
        f"RPT_BENCHMARK_DATA=<folder>"
    )


SOURCE = DatasetSource(
    hf_id=REPOSITORY,
    config=None,
    split="test",
    revision=REVISION,
    local_files=("polyglot",),
    read_local=read_local,
    read_hub=read_hub,
    count=sum(SIZES.values()),
    required=("language", "slug", "instructions", "solution_files", "test_files", "files", "example"),
)


def answer_file(record: Mapping[str, Any]) -> str:
    """The file the completion becomes: the header for C++ (see the module docstring), else the first."""
    solutions = record["solution_files"]
    if record["language"] == "cpp":
        return next(name for name in solutions if name.endswith(".h"))
    return solutions[0]


def to_item(record: Mapping[str, Any]) -> Item:
    """Instructions and stub to prompt; every file the tests need to the reference."""
    language, answer = record["language"], answer_file(record)
    stub = record["files"][answer]
    others = [
        name for name in record["solution_files"] if name != answer and name.endswith((".cpp", ".java"))
    ]
    for name in others:  # C++: the source stub, shown for its signatures; Java: the other solution stubs
        label = (
            "not compiled" if language == "cpp" else "a stub, replaced by a type of that name in your file"
        )
        stub += f"\n// --- {name} ({label}) ---\n{record['files'][name]}"
    reference = make_reference(
        language, record["slug"], answer, record["solution_files"], record["test_files"], record["files"]
    )
    return Item(
        id=f"polyglot-{language}-{record['slug']}",
        prompt_vars={
            "language_name": _NAMES[language],
            "instructions": record["instructions"],
            "answer_file": answer,
            "fence": _FENCE[language],
            "stub": stub.rstrip(),
            "note": _NOTES.get(language, "") if language == "cpp" or others else "",
        },
        reference=reference,
        metadata={"language": language, "slug": record["slug"]},
    )


BENCHMARK = BenchmarkSpec(
    name="polyglot",
    version="2",
    domain="code",
    source=SOURCE,
    to_item=to_item,
    prompt=PROMPT_V1,
    scorer="polyglot",
    repeats=1,
    description="Aider Polyglot: 225 Exercism exercises in six languages, run against their unit tests.",
    subset=Subset(
        options=PolyglotOptions,
        keep=lambda record, options: record["language"] in options.languages,
        count=lambda options: sum(SIZES[language] for language in set(options.languages)),
    ),
)

__all__ = ["BENCHMARK", "LANGUAGES", "SIZES"]
