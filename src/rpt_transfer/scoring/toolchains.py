"""What outside our code a scorer's verdicts depend on: libraries, interpreters, compilers, sandbox mode.

Recorded in every score row (the `toolchain` column), never hashed into score job ids: a scorer's own
logic is versioned by its `VERSION` (in the id), while a Go or math-verify patch upgrade should reuse
stored scores. The report warns when the rows of a base and an RPT model were scored by different
toolchains. Each lookup runs once per process; toolchains do not change during a job.
"""

import functools
import json
import platform
import re
from importlib.metadata import PackageNotFoundError, version

from rpt_transfer.scoring import polyglot, sandbox

MISSING = "missing"
"""The value of a tool this machine does not have (its samples score `toolchain_missing`)."""

_MATH_PACKAGES = ("math-verify", "latex2sympy2_extended", "sympy")
"""The parser and algebra behind the math scorer's equivalence check."""
_POLYGLOT_TOOLS = {
    "cpp": ("g++", "g++ -dumpfullversion"),
    "go": ("go", "go version"),
    "rust": ("rustc", "rustc --version"),
    "java": ("javac", "javac -version"),
    "javascript": ("node", "node --version"),
}
"""Language -> (name in the record, shell command that prints its version inside the sandbox)."""


def toolchain_versions(scorer: str) -> dict[str, str]:
    """The versions behind scorer `scorer`'s verdicts on this machine (empty for pure-Python scorers)."""
    if scorer == "math":
        return {name: _package(name) for name in _MATH_PACKAGES}
    if scorer in ("code_function", "code_stdio"):
        return {"python": platform.python_version(), "sandbox": _sandbox_mode()}
    if scorer == "polyglot":
        return dict(_polyglot())
    return {}


def _package(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return MISSING


@functools.cache
def _sandbox_mode() -> str:
    """The isolation the sandbox runs programs with here (namespaces, or the seccomp/Landlock fallback)."""
    try:
        isolation = sandbox.run(["true"], timeout=60).isolation
    except sandbox.SandboxError as err:  # no sandbox on this machine: every run would fail the same way
        return f"unavailable: {err}"
    return re.sub(r", uid \d+$", "", isolation)  # the uid of that one run, not of the mode


@functools.cache
def _polyglot() -> tuple[tuple[str, str], ...]:
    """Python, pytest, sandbox mode and each language's compiler or runtime, as the sandbox sees them."""
    found = {"python": platform.python_version(), "pytest": _package("pytest"), "sandbox": _sandbox_mode()}
    for language, (name, command) in _POLYGLOT_TOOLS.items():
        setup = polyglot._setup(language)  # the same set-up (PATH, bind mounts) the scorer's runs get
        usable = setup.missing is None
        found[name] = _version_in_sandbox(setup.prelude + command, setup.readable) if usable else MISSING
    jest = polyglot.toolchains_dir() / "node_modules" / "jest" / "package.json"
    found["jest"] = json.loads(jest.read_text(encoding="utf-8"))["version"] if jest.is_file() else MISSING
    return tuple(found.items())


def _version_in_sandbox(command: str, readable: tuple[str, ...]) -> str:
    """The first line the command prints (either stream), or MISSING when it fails."""
    try:
        result = sandbox.run(["sh", "-c", f"{command} 2>&1"], timeout=60, readable=readable)
    except sandbox.SandboxError:
        return MISSING
    lines = result.stdout.strip().splitlines() if result.success else []
    return lines[0].strip() if lines else MISSING
