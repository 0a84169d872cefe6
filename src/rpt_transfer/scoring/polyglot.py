"""Aider Polyglot verifier: run an exercise's own test suite on the model's solution file, in the sandbox.

The reference (built by `make_reference`) is JSON that carries everything a run needs, so scoring never
reads the data folder: `language`, `slug`, `answer_file` (the file the completion's code becomes),
`solution_files`, `test_files` and `files` (path -> content of every stub, test and support file, C++'s
`test/catch.hpp` included once). The test command is chosen here from `language`, so it is versioned with
`VERSION` and can fall back (pytest -> unittest) to what the sandbox offers.

Pass means the test command exits 0 AND the test tool's own summary, parsed from its output, reports
exactly the expected number of passing tests (counted statically in the test files) and nothing else.
Every test runs, skipped-by-default ones included, as the authors' harness un-skipped them:

- python: pytest `-q` summary `N passed in ...` (unittest fallback: `Ran N tests` then `OK`);
  N = number of `def test_` in the test files.
- cpp: header-only build (the completion becomes the `.h` file; the `.cpp` stub is not compiled) of the
  test file with `-DEXERCISM_RUN_ALL_TESTS` and Catch's main; summary `All tests passed (... in N test
  cases)`, N = number of `TEST_CASE(` lines outside `#if defined(EXERCISM_INCLUDE_BENCHMARK)`. Boost
  headers (gigasecond, meetup) come from apt.
- go: `go test -v` (the newest Go in /usr/lib/go-1.N, a warm standard-library cache copied in) with the
  build cache in the working directory and no module proxy; N top-level `--- PASS: Test...` lines and an
  `ok` line, N = number of `func Test...` in the test files whose `//go:build` line holds without tags.
- rust: `cargo test --offline --test <each test file> -- --include-ignored` (only the exercise's test
  files: doc tests or unit tests of the solution cannot change the count); the `test result: ok. K
  passed` lines sum to N, N = number of `#[test]` in the test files except those behind
  `#[cfg(feature = ...)]` (default features, as the authors ran them). Crates that Cargo.toml names come
  from an offline directory source (Debian's `/usr/share/cargo/registry`); an exercise that names a crate
  not there is `toolchain_missing`. A rustup toolchain outside the system directories is bind-mounted
  read-only and used directly (not through the rustup proxy, which wants a writable home).
- java: javac plus the JUnit 5 console launcher (jars from `/usr/share/java` or `$RPT_TOOLCHAINS/java`)
  with `@Disabled` switched off (`junit.jupiter.conditions.deactivate`); summary `[ N tests successful ]`
  and `[ 0 tests failed ]`, N = number of `@Test`. A top-level type the answer declares replaces the
  stub file of that name, so one answer file can fill an exercise with several solution files. Tests
  that import RxJava or org.json need those jars (not packaged by Debian: put them in
  `$RPT_TOOLCHAINS/java`), else `toolchain_missing`.
- javascript: Jest (with babel-jest and @babel/preset-env, from `$RPT_TOOLCHAINS/node_modules`) on the
  spec files after turning `xtest(`/`xit(` into `test(`/`it(`; summary `Tests: N passed, N total`
  with nothing failed, N = number of `test(`, `it(`, `xtest(` and `xit(` calls. `test.skip(` stays
  skipped, as upstream (tests that time out on most solutions).

The summary check stops a solution that exits 0 early (e.g. at import or in a static initialiser) or prints
a generic success line. It does not stop one that forges the exact summary with the right count: the
solution runs in the test process, so no output channel is out of its reach.

JVM memory: the JVM sizes its heap (1/4 of RAM), class space (1 GiB) and code cache (240 MiB) from the
machine, and reserving that address space fails under the sandbox's RLIMIT_AS. Rather than lifting the
limit for Java, javac and java get explicit small sizes (`JVM_FLAGS`) and glibc two malloc arenas, so the
4 GiB address-space limit still bounds what a solution can take and a runaway one ends in an
OutOfMemoryError instead of a crash. Java and JavaScript get other limits where a test needs them
(`LANGUAGE_LIMITS`).

Toolchains are found on the host (`.ci/toolchains` installs them; `$RPT_TOOLCHAINS`, default
`~/.cache/rpt-transfer/toolchains`, holds what apt does not provide) and then probed inside the sandbox.
A missing tool (or crate, or jar) gives `Verdict(0.0, None, "toolchain_missing", "<what> not found ...")`,
never a pass, for every sample of the exercise alike (empty answers included): the score job then
fails, or excludes those items where the study accepts missing toolchains.
"""

import functools
import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from rpt_transfer.scoring import sandbox
from rpt_transfer.scoring.code_extract import extract_code
from rpt_transfer.scoring.verdict import Verdict

VERSION = "3"
"""3: `toolchain_missing` is decided before the answer is read, so an empty answer to an exercise this
machine cannot test is excluded like the others, not scored `no_answer`."""
LANGUAGES = ("cpp", "go", "java", "javascript", "python", "rust")
TOOLCHAINS_ENV = "RPT_TOOLCHAINS"
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
"""Compilers need more than the sandbox defaults (cc1plus on catch.hpp, cargo, the go tool, the JVM)."""
LANGUAGE_LIMITS = {
    "cpp": LIMITS._replace(processes=2048, memory_bytes=12 << 30),
    "java": LIMITS._replace(processes=2048),
    "javascript": LIMITS._replace(memory_bytes=32 << 30),
}
"""C++ and Java: bank-account's test starts 1000 threads at once, and RLIMIT_NPROC counts threads; in C++
each reserves an 8 MiB stack (RLIMIT_AS counts reservations), so 12 GiB of address space there.
JavaScript: each worker thread's V8 isolate reserves about 1-2 GiB of address space up front
(parallel-letter-frequency peaks at 27 GiB reserved, a few hundred MiB used), so node gets 32 GiB and a
bounded main heap (`--max-old-space-size`); `--jitless` would keep 4 GiB but runs CPU-bound tests 2.5x
slower."""
JVM_FLAGS = (
    "-Xmx1g",
    "-XX:ReservedCodeCacheSize=64m",
    "-XX:CompressedClassSpaceSize=64m",
    "-XX:MaxMetaspaceSize=256m",
    "-XX:+UseSerialGC",
    "-XX:ActiveProcessorCount=2",
)
"""About 1.5 GiB of address space in all, well inside `LIMITS.memory_bytes` (see the module docstring)."""
CRATE_REGISTRY = "/usr/share/cargo/registry"
"""Debian's unpacked crate sources (librust-*-dev), usable by cargo as an offline directory source."""
_JAR_DIRS = ("/usr/share/java",)
_TAIL = 2000
_PY = shlex.quote(sys.executable)
_SYSTEM = ("/usr/", "/bin/", "/lib/", "/lib64/")
"""Where the sandbox already shows the host's files, so nothing there needs to be offered as readable."""


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


def verify(completion: str, reference: str, context: Mapping[str, Any] | None = None) -> Verdict:
    """1.0 when the exercise's tests all pass with the completion as its solution file, else 0.0."""
    ref = json.loads(reference)
    language = ref["language"]
    code = extract_code(completion)
    files = dict(ref["files"])
    files[ref["answer_file"]] = code + "\n"
    tests = {name: ref["files"][name] for name in ref["test_files"]}
    missing = _missing_tool(language)
    plan = missing if missing is not None else _RUNNERS[language](ref, tests, files)
    if isinstance(plan, str):  # decided before the answer is looked at: the same for all of an item's samples
        return Verdict(0.0, None, "toolchain_missing", plan)
    if not code.strip():
        return Verdict(0.0, None, "no_answer", "no code in the completion")
    setup = _setup(language)
    script = f"{setup.prelude}{plan.script}"
    result = sandbox.run(
        ["sh", "-c", script],
        files=plan.files,
        timeout=RUN_TIMEOUT,
        limits=LANGUAGE_LIMITS.get(language, LIMITS),
        readable=setup.readable,
    )
    output = result.stdout + "\n" + result.stderr
    tail = f"$ {plan.script}\nexit {result.returncode}\n{output[-_TAIL:]}"
    if result.timed_out:
        return Verdict(0.0, code, "timeout", tail)
    if result.returncode != 0:
        return Verdict(0.0, code, None, tail)
    problem = plan.check(output)
    if problem is not None:
        return Verdict(0.0, code, None, f"exit 0 but {problem}\n{tail}")
    return Verdict(1.0, code, None, tail)


# ---------------------------------------------------------------------------------------------------------
# Toolchains: found on the host, then probed as the sandbox sees them (its PATH and visible paths differ).


def toolchains_dir() -> Path:
    """Where `.ci/toolchains` puts what apt does not provide (Jest): $RPT_TOOLCHAINS, else a user cache."""
    return Path(os.environ.get(TOOLCHAINS_ENV) or Path.home() / ".cache" / "rpt-transfer" / "toolchains")


class _Setup(NamedTuple):
    """How one language runs in the sandbox: shell exports, host paths to show read-only, or why not."""

    prelude: str = ""
    readable: tuple[str, ...] = ()
    missing: str | None = None
    paths: Mapping[str, str] = {}
    """Host paths the runner needs by role (a jar, the Jest folder, the crate registry)."""


def _outside_system(*paths: str) -> tuple[str, ...]:
    """The paths the sandbox does not show by itself (those outside /usr, /bin and /lib)."""
    return tuple(sorted({p for p in paths if not any((p + "/").startswith(top) for top in _SYSTEM)}))


def _setup(language: str) -> _Setup:
    """The sandbox set-up of `language` (cached per toolchains folder: installs do not change mid-run)."""
    return _setup_for(language, str(toolchains_dir()))


@functools.cache
def _setup_for(language: str, toolchains: str) -> _Setup:
    if language == "rust":
        return _rust_setup()
    if language == "java":
        return _java_setup(Path(toolchains))
    if language == "javascript":
        modules = Path(toolchains) / "node_modules"
        if not (modules / "jest" / "bin" / "jest.js").is_file():
            return _Setup(missing=f"jest not found in {modules} (.ci/toolchains installs it)")
        if not (modules / "@babel" / "preset-env").is_dir() or not (modules / "babel-jest").is_dir():
            return _Setup(missing=f"babel-jest or @babel/preset-env not found in {modules}")
        return _Setup(readable=_outside_system(str(modules.resolve())), paths={"modules": str(modules)})
    if language == "go":
        return _go_setup(Path(toolchains))
    return _Setup()


GO_ENV = (
    "GOCACHE=$HOME/.cache/go-build GOPATH=$HOME/.cache/go GOFLAGS=-mod=mod GOPROXY=off GOTOOLCHAIN=local "
    "GOTELEMETRY=off GO111MODULE=on CGO_ENABLED=0"
)
"""Go's environment in a run (`.ci/toolchains` warms its build cache with the same settings)."""


def _go_setup(toolchains: Path) -> _Setup:
    """The newest Go of Debian's versioned packages (/usr/lib/go-1.N), else `go` on the PATH.

    Go 1.20 and later ship no compiled standard library: a cold build cache costs about 50 s of CPU per
    run, so the cache `.ci/toolchains` warms in $RPT_TOOLCHAINS/go/cache (about 50 MB) is copied in first.
    """
    versions = {int(m.group(1)): p for p in glob.glob("/usr/lib/go-1.*/bin/go") if (m := _GO_DIR.search(p))}
    go = versions[max(versions)] if versions else shutil.which("go")
    if go is None:
        return _Setup(missing="go not found on the host (.ci/toolchains installs it)")
    prelude = f"export PATH={shlex.quote(os.path.dirname(go))}:$PATH {GO_ENV}; "
    cache = toolchains / "go" / "cache"
    if not cache.is_dir():
        return _Setup(prelude=prelude)
    prelude += f"mkdir -p $HOME/.cache && cp -r {shlex.quote(str(cache))} $HOME/.cache/go-build; "
    return _Setup(prelude=prelude, readable=_outside_system(os.path.realpath(cache)))


_GO_DIR = re.compile(r"/usr/lib/go-1\.(\d+)/bin/go$")


def _rust_setup() -> _Setup:
    """A rustup toolchain's own bin folder (bind-mounted when outside /usr), else cargo from the PATH."""
    search = os.pathsep.join([os.environ.get("PATH", ""), str(Path.home() / ".cargo" / "bin")])
    rustc = shutil.which("rustc", path=search)
    if rustc is None:
        return _Setup(missing="rustc not found on the host (no ~/.cargo/bin, none on the PATH)")
    try:
        sysroot = subprocess.run(
            [rustc, "--print", "sysroot"], capture_output=True, text=True, timeout=60, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError) as err:
        return _Setup(missing=f"{rustc} --print sysroot failed: {err}")
    if not os.path.isfile(os.path.join(sysroot, "bin", "cargo")):
        return _Setup(missing=f"cargo not found in the rust toolchain {sysroot}")
    prelude = (
        f"export PATH={shlex.quote(sysroot)}/bin:$PATH CARGO_HOME=$HOME/.cargo "
        "CARGO_TARGET_DIR=$HOME/target CARGO_BUILD_JOBS=2 CARGO_TERM_COLOR=never; "
    )
    return _Setup(prelude=prelude, readable=_outside_system(os.path.realpath(sysroot)))


_JARS = {
    "launcher": "junit-platform-console-standalone",
    "jupiter": "junit-jupiter-api",
    "commons": "junit-platform-commons",
    "opentest4j": "opentest4j",
    "apiguardian": "apiguardian-api",
    "assertj": "assertj-core",
}
"""Jars every Java exercise needs: the test launcher, JUnit's API (and what it references), AssertJ."""
_OPTIONAL_JARS = {
    "bytebuddy": "byte-buddy",  # AssertJ's soft assertions and proxies
    "json": "json",  # org.json (Maven's; Debian's Android rewrite throws checked exceptions: unusable)
    "rxjava": "rxjava",
    "reactive-streams": "reactive-streams",
}


def _find_jar(folders: list[Path], name: str) -> str | None:
    """`name.jar`, else the highest `name-<version>.jar`, in the first folder that has one."""
    for folder in folders:
        plain = folder / f"{name}.jar"
        if plain.is_file():
            return str(plain)
        versioned = sorted(folder.glob(f"{name}-[0-9]*.jar"))
        if versioned:
            return str(versioned[-1])
    return None


def _java_setup(toolchains: Path) -> _Setup:
    """JUnit 5, AssertJ and optional library jars from $RPT_TOOLCHAINS/java, then /usr/share/java."""
    folders = [toolchains / "java", *(Path(folder) for folder in _JAR_DIRS)]
    found = {role: _find_jar(folders, name) for role, name in {**_JARS, **_OPTIONAL_JARS}.items()}
    absent = [_JARS[role] for role in _JARS if found[role] is None]
    if absent:
        where = " or ".join(str(folder) for folder in folders)
        return _Setup(missing=f"{', '.join(absent)} jar not found in {where} (.ci/toolchains installs them)")
    jars = {role: jar for role, jar in found.items() if jar is not None}
    javac = shutil.which("javac")
    linked = _linked_outside(Path(os.path.realpath(javac)).parents[1]) if javac else ()
    readable = _outside_system(*linked, *(os.path.realpath(jar) for jar in jars.values()))
    return _Setup(prelude="export MALLOC_ARENA_MAX=2; ", readable=readable, paths=jars)


def _linked_outside(home: Path) -> tuple[str, ...]:
    """Folders outside the system directories that the JDK's files link to, to show them too.

    Debian's JDK links its configuration to /etc/java-17-openjdk; the JVM must read java.security there.
    """
    targets = set()
    for folder, _, names in os.walk(home):
        for name in names:
            path = os.path.join(folder, name)
            if os.path.islink(path) and os.path.exists(path):
                real = os.path.realpath(path)
                if not any(real.startswith(top) for top in _SYSTEM):
                    targets.add("/".join(real.split("/")[:3]))  # e.g. /etc/java-17-openjdk
    return tuple(sorted(targets))


_NEEDS = {
    "cpp": ("g++",),
    "go": ("go",),
    "rust": ("cargo", "rustc", "cc"),
    "java": ("javac", "java"),
    "javascript": ("node",),
    "python": (),
}


@functools.cache
def _in_sandbox(command: str, readable: tuple[str, ...] = ()) -> bool:
    """Whether `sh -c command` exits 0 in the sandbox (cached: toolchains do not change during a run)."""
    try:
        return sandbox.run(["sh", "-c", command], timeout=60, readable=readable).success
    except sandbox.SandboxError:  # a readable path that vanished: the toolchain is not usable
        return False


def _missing_tool(language: str) -> str | None:
    """Why `language` cannot be tested in this sandbox, or None when it can."""
    setup = _setup(language)
    if setup.missing is not None:
        return setup.missing
    for tool in _NEEDS[language]:
        if not _in_sandbox(f"{setup.prelude}command -v {tool}", setup.readable):
            return f"{tool} not found on the sandbox PATH"
    return None


# ---------------------------------------------------------------------------------------------------------
# Per language: the shell script to run, the files to run it on, and the check of the tool's summary
# against the expected count; or, as a string, why this exercise cannot run here.

Check = Callable[[str], str | None]


class _Plan(NamedTuple):
    script: str
    check: Check
    files: Mapping[str, str]


Runner = Callable[[Mapping[str, Any], Mapping[str, str], dict[str, str]], "_Plan | str"]


def _count(pattern: str, texts: Mapping[str, str]) -> int:
    return sum(len(re.findall(pattern, text, re.MULTILINE)) for text in texts.values())


def _python(ref: Mapping[str, Any], tests: Mapping[str, str], files: dict[str, str]) -> _Plan:
    expected = _count(r"^\s*def test_", tests)
    names = " ".join(sorted(tests))
    if _in_sandbox(f"{_PY} -I -c 'import pytest'"):
        script = f"timeout {TEST_TIMEOUT} {_PY} -I -m pytest -q -p no:cacheprovider -o addopts= {names}"
        return _Plan(script, _summary(r"^=*\s*(\d+) passed in [\d.]+s", expected, "pytest"), files)
    script = f"timeout {TEST_TIMEOUT} {_PY} -I -m unittest -v {names.replace('.py', '')}"
    return _Plan(script, _unittest_check(expected), files)


def _unittest_check(expected: int) -> Check:
    ran = _summary(r"^Ran (\d+) tests? in", expected, "unittest")

    def check(output: str) -> str | None:
        problem = ran(output)
        if problem is None and not re.search(r"^OK$", output, re.MULTILINE):
            return "no unittest OK line in the output"
        return problem

    return check


_CPP_BENCHMARK = re.compile(r"^#if defined\(EXERCISM_INCLUDE_BENCHMARK\).*?^#endif", re.MULTILINE | re.DOTALL)
"""Benchmark test cases, not compiled by default (parallel-letter-frequency)."""


def _cpp(ref: Mapping[str, Any], tests: Mapping[str, str], files: dict[str, str]) -> _Plan:
    built = {name: _CPP_BENCHMARK.sub("", text) for name, text in tests.items()}
    expected = _count(r"^\s*(?:TEST_CASE|TEST_CASE_METHOD|SCENARIO)\s*\(", built)
    (test,) = tests
    flags = "-std=c++17 -DEXERCISM_RUN_ALL_TESTS -I. -Itest"
    script = (
        f"set -e; g++ {flags} -c {test} -o test.o; g++ -std=c++17 -c test/tests-main.cpp -o main.o; "
        f"g++ test.o main.o -o tests; timeout {TEST_TIMEOUT} ./tests"
    )
    check = _summary(r"^All tests passed \(\d+ assertions? in (\d+) test cases?\)", expected, "Catch")
    return _Plan(script, check, files)


_GO_TAGS = frozenset({"linux", "amd64", "arm64", "unix", "gc"})
"""Build tags that hold in the sandbox (and `go1.N`); cgo is off, custom tags such as `bonus` are not set."""


def _go_builds(text: str) -> bool:
    """Whether the file's `//go:build` constraint, if any, holds without extra tags.

    two-bucket's `bonus` tests do not build by default; robot-simulator's three steps all do.
    """
    found = re.search(r"^//go:build (.+)$", text.split("\npackage ", 1)[0], re.MULTILINE)
    if not found:
        return True
    tokens = re.findall(r"\|\||&&|[!()]|[\w.]+", found.group(1))
    value, _ = _go_or(tokens, 0)
    return value


def _go_or(tokens: list[str], at: int) -> tuple[bool, int]:
    """A `||` chain of `&&` chains of (negated) tags or parenthesised expressions, from `tokens[at]`."""
    value, at = _go_and(tokens, at)
    while at < len(tokens) and tokens[at] == "||":
        right, at = _go_and(tokens, at + 1)
        value = value or right
    return value, at


def _go_and(tokens: list[str], at: int) -> tuple[bool, int]:
    value, at = _go_not(tokens, at)
    while at < len(tokens) and tokens[at] == "&&":
        right, at = _go_not(tokens, at + 1)
        value = value and right
    return value, at


def _go_not(tokens: list[str], at: int) -> tuple[bool, int]:
    if at >= len(tokens):
        return True, at
    if tokens[at] == "!":
        value, at = _go_not(tokens, at + 1)
        return not value, at
    if tokens[at] == "(":
        value, at = _go_or(tokens, at + 1)
        return value, at + 1  # the closing parenthesis
    return tokens[at] in _GO_TAGS or bool(re.fullmatch(r"go1\.\d+", tokens[at])), at + 1


def _go(ref: Mapping[str, Any], tests: Mapping[str, str], files: dict[str, str]) -> _Plan:
    expected = _count(r"^func Test\w*\(", {name: text for name, text in tests.items() if _go_builds(text)})
    # Go ignores a go.mod in the temp directory's root, which the sandbox's working directory is.
    files = {f"exercise/{name}": text for name, text in files.items()}
    script = f"cd exercise && timeout {TEST_TIMEOUT * 2} go test -v -count=1 -timeout {TEST_TIMEOUT}s ."

    def check(output: str) -> str | None:
        passed = len(re.findall(r"^--- PASS: Test", output, re.MULTILINE))
        failed = re.search(r"^(?:--- FAIL|FAIL)", output, re.MULTILINE)
        if not re.search(r"^ok\s", output, re.MULTILINE) or failed or passed != expected or not expected:
            return f"go test reported {passed} passing tests (ok line, no FAIL needed); expected {expected}"
        return None

    return _Plan(script, check, files)


_RUST_NOISE = re.compile(
    r"""//[^\n]*|/\*.*?\*/|(?<!\w)b?r(\#*)".*?"\1|b?"(?:\\.|[^"\\])*"|b?'(?:\\.|[^'\\\n])'""", re.DOTALL
)
_RUST_ATTRS = re.compile(r"(?:#\[[^\]]*\]\s*)+")
_FEATURE_GATE = re.compile(r"#\[cfg\(\s*(?:all\(\s*)?feature\b")


def _rust_tests(text: str) -> int:
    """`#[test]` functions compiled with default features: none behind `#[cfg(feature = ...)]`.

    Attributes are read from the code with comments and literals blanked out; a gated `mod` hides every
    test inside its braces.
    """
    code = _RUST_NOISE.sub(lambda m: re.sub(r"[^\n]", " ", m.group()), text)
    hidden: list[tuple[int, int]] = []
    count = 0
    for group in _RUST_ATTRS.finditer(code):
        gated = bool(_FEATURE_GATE.search(group.group()))
        module = re.match(r"\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+\w+\s*\{", code[group.end() :])
        if gated and module:
            start = group.end() + module.end() - 1
            hidden.append((start, _matching_brace(code, start)))
        tests = len(re.findall(r"#\[test\]", group.group()))
        if tests and not gated and not any(a < group.start() < b for a, b in hidden):
            count += tests
    return count


def _matching_brace(code: str, start: int) -> int:
    """Index of the `}` that closes the `{` at `start` (end of text when unbalanced)."""
    depth = 0
    for index in range(start, len(code)):
        depth += {"{": 1, "}": -1}.get(code[index], 0)
        if depth == 0:
            return index
    return len(code)


def _rust(ref: Mapping[str, Any], tests: Mapping[str, str], files: dict[str, str]) -> _Plan | str:
    expected = sum(_rust_tests(text) for text in tests.values())
    manifest = tomllib.loads(files.get("Cargo.toml", ""))
    crates = sorted(manifest.get("dependencies", {}))
    offline = ""
    if crates:
        have = (
            {entry.rsplit("-", 1)[0] for entry in os.listdir(CRATE_REGISTRY)}
            if os.path.isdir(CRATE_REGISTRY)
            else set()
        )
        absent = [crate for crate in crates if crate not in have]
        if absent:
            return f"crate {', '.join(absent)} not available offline (no {CRATE_REGISTRY}/<crate>-<version>)"
        offline = (
            """ --config 'source.crates-io.replace-with="offline"'"""
            f""" --config 'source.offline.directory="{CRATE_REGISTRY}"'"""
        )
    targets = " ".join(f"--test {shlex.quote(Path(name).stem)}" for name in sorted(tests))
    script = (
        f"timeout {TEST_TIMEOUT * 3} cargo test --offline --quiet{offline} {targets} -- --include-ignored"
    )

    def check(output: str) -> str | None:
        results = re.findall(r"^test result: ok\. (\d+) passed; 0 failed", output, re.MULTILINE)
        passed = sum(int(n) for n in results)
        failed = re.search(r"^test result: FAILED", output, re.MULTILINE)
        if failed or passed != expected or not expected:
            return f"cargo reported {passed} passing tests; expected {expected}"
        return None

    return _Plan(script, check, files)


_JAVA_TYPE = re.compile(
    r"^(?:(?:public|protected|private|abstract|final|static|sealed|non-sealed|strictfp)\s+)*"
    r"(?:class|interface|enum|record|@interface)\s+(\w+)",
    re.MULTILINE,
)


def _java(ref: Mapping[str, Any], tests: Mapping[str, str], files: dict[str, str]) -> _Plan | str:
    jars = _setup("java").paths
    sources = "\n".join(tests.values())
    needs = {"io.reactivex": ("rxjava", "RxJava 2"), "org.json": ("json", "org.json")}
    extra = []
    for package, (role, name) in needs.items():
        if re.search(rf"^import\s+(?:static\s+)?{re.escape(package)}\.", sources, re.MULTILINE):
            jar = jars.get(role)
            if jar is None:
                return f"{name} jar not found (the tests import {package}; not packaged offline here)"
            extra.append(jar)
            if role == "rxjava" and "reactive-streams" in jars:
                extra.append(jars["reactive-streams"])
    # A type the answer declares at top level replaces the stub file of that name (several solution files).
    answer = ref["answer_file"]
    declared = set(_JAVA_TYPE.findall(files[answer]))
    files = {
        name: text
        for name, text in files.items()
        if name == answer or name in tests or not (name.endswith(".java") and Path(name).stem in declared)
    }
    expected = _count(r"^\s*@Test\b", tests)
    compile_path = ":".join([*(jars[role] for role in _JARS if role != "launcher"), *extra])
    run_path = ":".join(["build", compile_path, *([jars["bytebuddy"]] if "bytebuddy" in jars else [])])
    classes = " ".join(f"--select-class {shlex.quote(Path(name).stem)}" for name in sorted(tests))
    javac_flags = " ".join(f"-J{flag}" for flag in (*JVM_FLAGS, "-XX:TieredStopAtLevel=1"))
    java = [name for name in sorted(files) if name.endswith(".java")]
    script = (
        f"set -e; javac {javac_flags} -encoding UTF-8 -nowarn -d build -cp {compile_path} "
        f"{' '.join(map(shlex.quote, java))}; timeout {TEST_TIMEOUT} java {' '.join(JVM_FLAGS)} "
        f"-jar {jars['launcher']} --class-path {run_path} --disable-banner --disable-ansi-colors "
        f"--details=summary --config=junit.jupiter.conditions.deactivate='org.junit.*DisabledCondition' "
        f"{classes}"
    )

    def check(output: str) -> str | None:
        passed = re.findall(r"^\[\s*(\d+) tests successful\s*\]", output, re.MULTILINE)
        failed = re.findall(r"^\[\s*(\d+) tests failed\s*\]", output, re.MULTILINE)
        if not passed or not failed:
            return "no JUnit summary in the output"
        if int(passed[-1]) != expected or int(failed[-1]) != 0 or not expected:
            return f"JUnit reported {passed[-1]} successful, {failed[-1]} failed tests; expected {expected}"
        return None

    return _Plan(script, check, files)


_JS_SKIPPED = re.compile(r"^(\s*)x(test|it)(\s*\()", re.MULTILINE)


def _javascript(ref: Mapping[str, Any], tests: Mapping[str, str], files: dict[str, str]) -> _Plan:
    modules = _setup("javascript").paths["modules"]
    expected = _count(r"^\s*x?(?:test|it)\s*\(", tests)
    files = {**files, **{name: _JS_SKIPPED.sub(r"\1\2\3", text) for name, text in tests.items()}}
    babel = {
        "presets": [[f"{modules}/@babel/preset-env", {"targets": {"node": "current"}}]],
        "babelrc": False,
        "configFile": False,
    }
    config = {
        "rootDir": ".",
        "transform": {r"\.[cm]?js$": [f"{modules}/babel-jest", babel]},
        "cacheDirectory": "<rootDir>/.jest-cache",
        "testTimeout": TEST_TIMEOUT * 1000,  # Jest's 5 s per test is flaky when scoring runs in parallel
        "watchman": False,
    }
    files["rpt-jest.config.json"] = json.dumps(config)
    specs = " ".join(shlex.quote(name) for name in sorted(tests))
    script = (
        f"timeout {TEST_TIMEOUT} node --max-old-space-size=2048 {modules}/jest/bin/jest.js --ci --runInBand "
        f"--config rpt-jest.config.json --runTestsByPath {specs}"
    )

    def check(output: str) -> str | None:
        summaries = re.findall(r"^Tests:\s+(.*)$", re.sub(r"\x1b\[[0-9;]*m", "", output), re.MULTILINE)
        if not summaries:
            return "no Jest summary in the output"
        counts = {kind: int(n) for n, kind in re.findall(r"(\d+) (\w+)", summaries[-1])}
        if counts.get("passed") != expected or counts.get("failed", 0) or not expected:
            return f"Jest reported {summaries[-1].strip()!r}; expected {expected} passed"
        return None

    return _Plan(script, check, files)


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


_RUNNERS: dict[str, Runner] = {
    "python": _python,
    "cpp": _cpp,
    "go": _go,
    "rust": _rust,
    "java": _java,
    "javascript": _javascript,
}

__all__ = [
    "JVM_FLAGS",
    "LANGUAGES",
    "TOOLCHAINS_ENV",
    "VERSION",
    "make_reference",
    "toolchains_dir",
    "verify",
]
