"""Aider Polyglot verifier: run an exercise's own test suite on the model's solution file, in the sandbox.

The reference (built by `make_reference`) is JSON that carries everything a run needs, so scoring never
reads the data folder: `language`, `slug`, `answer_file` (the file the completion's code becomes),
`solution_files`, `test_files` and `files` (path -> content of every stub, test and support file, C++'s
`test/catch.hpp` included once). The test command is chosen here from `language`, so it is versioned with
`VERSION` and can fall back (pytest -> unittest) to what the sandbox offers.

Pass means the test command exits 0 AND the test tool's own summary, parsed from its output, reports
exactly the expected number of passing tests (counted statically in the test files) and nothing else:

- python: pytest `-q` summary `N passed in ...` (unittest fallback: `Ran N tests` then `OK`);
  N = number of `def test_` in the test files.
- cpp: header-only build (the completion becomes the `.h` file; the `.cpp` stub is not compiled) of the
  test file with `-DEXERCISM_RUN_ALL_TESTS` and Catch's main; summary `All tests passed (... in N test
  cases)`, N = number of `TEST_CASE(` lines.
- go: `go test -v`; N top-level `--- PASS: Test...` lines, N = number of `func Test...`, an `ok` line.
- rust: `cargo test --offline -- --include-ignored`; the `test result: ok. K passed` lines sum to N, N =
  number of `#[test]` in `tests/`.
- java: the tests need JUnit 5 and AssertJ, which gradle fetches from the network; no such jars are in
  the sandbox, so java is always `toolchain_missing`.
- javascript: the tests are Jest specs and Jest is not installed offline, so `toolchain_missing`.

The summary check stops a solution that exits 0 early (e.g. at import or in a static initialiser) or prints
a generic success line. It does not stop one that forges the exact summary with the right count: the
solution runs in the test process, so no output channel is out of its reach.

A missing tool gives `Verdict(0.0, None, "toolchain_missing", "<tool> not found ...")`, never a pass.
"""

import functools
import json
import re
import shlex
import sys
from collections.abc import Callable, Mapping
from typing import Any

from rpt_transfer.scoring import sandbox
from rpt_transfer.scoring.code_extract import extract_code
from rpt_transfer.scoring.verdict import Verdict

VERSION = "1"
LANGUAGES = ("cpp", "go", "java", "javascript", "python", "rust")
TEST_TIMEOUT = 60
"""Seconds the test binary or runner may take (the authors' harness used 60 s)."""
RUN_TIMEOUT = 300.0
"""Wall-clock seconds for build plus tests: compiling Catch's main alone takes about 15 s of CPU."""
LIMITS = sandbox.Limits(
    cpu_seconds=120,
    memory_bytes=4 << 30,
    processes=256,
    file_bytes=256 << 20,
    disk_bytes=1 << 30,
    open_files=1024,
)
"""Compilers need more than the sandbox defaults (cc1plus on catch.hpp, cargo, the go tool)."""
_TAIL = 2000
_PY = shlex.quote(sys.executable)


def make_reference(
    language: str,
    slug: str,
    answer_file: str,
    solution_files: list[str],
    test_files: list[str],
    files: Mapping[str, str],
) -> str:
    """The reference JSON of one exercise (see the module docstring), with sorted keys."""
    if language not in LANGUAGES:
        raise ValueError(f"language {language!r} is not one of {', '.join(LANGUAGES)}")
    payload = {
        "language": language,
        "slug": slug,
        "answer_file": answer_file,
        "solution_files": list(solution_files),
        "test_files": list(test_files),
        "files": dict(files),
    }
    return json.dumps(payload, sort_keys=True)


def verify(completion: str, reference: str) -> Verdict:
    """1.0 when the exercise's tests all pass with the completion as its solution file, else 0.0."""
    ref = json.loads(reference)
    language = ref["language"]
    code = extract_code(completion)
    if not code.strip():
        return Verdict(0.0, None, "no_answer", "no code in the completion")
    missing = _missing_tool(language)
    if missing is not None:
        return Verdict(0.0, None, "toolchain_missing", missing)
    files = dict(ref["files"])
    files[ref["answer_file"]] = code + "\n"
    tests = {name: ref["files"][name] for name in ref["test_files"]}
    script, check = _RUNNERS[language](ref, tests)
    result = sandbox.run(["sh", "-c", script], files=files, timeout=RUN_TIMEOUT, limits=LIMITS)
    output = result.stdout + "\n" + result.stderr
    tail = f"$ {script}\nexit {result.returncode}\n{output[-_TAIL:]}"
    if result.timed_out:
        return Verdict(0.0, code, "timeout", tail)
    if result.returncode != 0:
        return Verdict(0.0, code, None, tail)
    problem = check(output)
    if problem is not None:
        return Verdict(0.0, code, None, f"exit 0 but {problem}\n{tail}")
    return Verdict(1.0, code, None, tail)


# ---------------------------------------------------------------------------------------------------------
# Toolchains, as the sandbox sees them (its PATH and visible paths differ from the host's).


@functools.cache
def _in_sandbox(command: str) -> bool:
    """Whether `sh -c command` exits 0 in the sandbox (cached: toolchains do not change during a run)."""
    return sandbox.run(["sh", "-c", command], timeout=60).success


def _missing_tool(language: str) -> str | None:
    """Why `language` cannot be tested in this sandbox, or None when it can."""
    needs = {
        "cpp": ("g++",),
        "go": ("go",),
        "rust": ("cargo", "rustc"),
        "java": ("javac", "java"),
        "javascript": ("node",),
        "python": (),
    }[language]
    for tool in needs:
        if not _in_sandbox(f"command -v {tool}"):
            return f"{tool} not found on the sandbox PATH"
    if language == "java":
        return "JUnit 5 and AssertJ jars not found in the sandbox (gradle would download them)"
    if language == "javascript":
        return "jest not found in the sandbox (the specs need Jest; npm cannot install it offline)"
    return None


# ---------------------------------------------------------------------------------------------------------
# Per language: the shell script to run, and the check of the tool's summary against the expected count.

Check = Callable[[str], str | None]


def _count(pattern: str, texts: Mapping[str, str]) -> int:
    return sum(len(re.findall(pattern, text, re.MULTILINE)) for text in texts.values())


def _python(ref: Mapping[str, Any], tests: Mapping[str, str]) -> tuple[str, Check]:
    expected = _count(r"^\s*def test_", tests)
    names = " ".join(sorted(tests))
    if _in_sandbox(f"{_PY} -I -c 'import pytest'"):
        script = f"timeout {TEST_TIMEOUT} {_PY} -I -m pytest -q -p no:cacheprovider -o addopts= {names}"
        return script, _summary(r"^=*\s*(\d+) passed in [\d.]+s", expected, "pytest")
    script = f"timeout {TEST_TIMEOUT} {_PY} -I -m unittest -v {names.replace('.py', '')}"
    return script, _unittest_check(expected)


def _unittest_check(expected: int) -> Check:
    ran = _summary(r"^Ran (\d+) tests? in", expected, "unittest")

    def check(output: str) -> str | None:
        problem = ran(output)
        if problem is None and not re.search(r"^OK$", output, re.MULTILINE):
            return "no unittest OK line in the output"
        return problem

    return check


def _cpp(ref: Mapping[str, Any], tests: Mapping[str, str]) -> tuple[str, Check]:
    expected = _count(r"^\s*(?:TEST_CASE|TEST_CASE_METHOD|SCENARIO)\s*\(", tests)
    (test,) = tests
    flags = "-std=c++17 -DEXERCISM_RUN_ALL_TESTS -I. -Itest"
    script = (
        f"set -e; g++ {flags} -c {test} -o test.o; g++ -std=c++17 -c test/tests-main.cpp -o main.o; "
        f"g++ test.o main.o -o tests; timeout {TEST_TIMEOUT} ./tests"
    )
    return script, _summary(r"^All tests passed \(\d+ assertions? in (\d+) test cases?\)", expected, "Catch")


def _go(ref: Mapping[str, Any], tests: Mapping[str, str]) -> tuple[str, Check]:
    expected = _count(r"^func Test\w*\(", tests)
    script = (
        f"export GOCACHE=$HOME/.gocache GOFLAGS=-mod=mod GOPROXY=off; timeout {TEST_TIMEOUT} go test -v ."
    )

    def check(output: str) -> str | None:
        passed = len(re.findall(r"^--- PASS: Test", output, re.MULTILINE))
        if not re.search(r"^ok\s", output, re.MULTILINE) or passed != expected:
            return f"go test reported {passed} passing tests and no ok line; expected {expected}"
        return None

    return script, check


def _rust(ref: Mapping[str, Any], tests: Mapping[str, str]) -> tuple[str, Check]:
    expected = _count(r"^\s*#\[test\]", tests)
    script = (
        f"export CARGO_HOME=$HOME/.cargo CARGO_TARGET_DIR=$HOME/target; "
        f"timeout {TEST_TIMEOUT * 3} cargo test --offline -- --include-ignored"
    )

    def check(output: str) -> str | None:
        results = re.findall(r"^test result: ok\. (\d+) passed; 0 failed", output, re.MULTILINE)
        passed = sum(int(n) for n in results)
        return None if passed == expected else f"cargo reported {passed} passing tests; expected {expected}"

    return script, check


def _summary(pattern: str, expected: int, tool: str) -> Check:
    """Check that the LAST summary line matching `pattern` reports exactly `expected` tests."""

    def check(output: str) -> str | None:
        found = re.findall(pattern, output, re.MULTILINE)
        if not found:
            return f"no {tool} summary line in the output"
        if int(found[-1]) != expected or expected == 0:
            return f"{tool} reported {found[-1]} passing tests; expected {expected}"
        return None

    return check


_RUNNERS: dict[str, Callable[[Mapping[str, Any], Mapping[str, str]], tuple[str, Check]]] = {
    "python": _python,
    "cpp": _cpp,
    "go": _go,
    "rust": _rust,
}

__all__ = ["LANGUAGES", "VERSION", "make_reference", "verify"]
