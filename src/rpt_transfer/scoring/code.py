"""Code verifiers: run model-written programs against tests in the sandbox; only our side decides a pass.

Two verifiers, each `(completion, reference, **options) -> Verdict`: `verify_function` (scorer
"code_function": HumanEval, MBPP, BigCodeBench) and `verify_stdio` (scorer "code_stdio": LiveCodeBench,
Codeforces, USACO). The reference says how its tests run, so either verifier scores either kind of
reference below; the two names keep each benchmark's scorer and its version apart.

Function references (made by `function_reference`, or by `solution_reference` for LeetCode-style
problems) are JSON:

    {"entry_point": "f",          # the function under test
     "test": "...",               # test code: asserts, a `check(f)` call, or unittest TestCase classes
     "prompt": "...",             # code put before the completion in the candidate's program
     "suffix": "...",             # code put after it (e.g. a shim that calls a LeetCode-style method)
     "context": "...",            # trusted code the tests need (helpers, imports), run before the tests
     "mode": "call" | "unittest", # see below
     "site": false,               # true: site-packages importable (third-party libraries)
     "timeout": 6.0}              # optional: seconds for all the tests (default: FUNCTION_TIMEOUT[mode])

The program is `prompt + completion + suffix`, except that a completion that itself defines the entry
point at top level (`def f(`) is a whole program and gets a newline after the prompt.

Mode "call" (HumanEval, MBPP, LeetCode-style): a trusted runner process runs `context` and `test`, with
the entry point bound to a proxy; the candidate's program runs in a second process forked *before* the
runner reads the tests or the verdict nonce, and only plain data crosses between them (None, bool, int,
float, complex, str, bytes, list, tuple, dict, set, frozenset, and the standard library's Counter,
OrderedDict, defaultdict, deque, Decimal and Fraction, rebuilt on the runner's side; exact types, copied).
So the candidate cannot see the tests, cannot exit early with success, cannot patch `assert`, `check` or
builtins of the runner, and cannot return an object whose `__eq__` always says True. Arguments and
results that are not plain data fail the test.

`solution_reference` (LeetCode-style problems, e.g. LiveCodeBench's "functional" tests): the completion
defines `class Solution` with the method; the suffix adds a shim that calls `Solution().<method>(*args)`
(a fresh instance per test), and each test compares its result, a top-level tuple read as a list (as
LiveCodeBench does), to the expected JSON value with `==`. The candidate's program starts with
`SOLUTION_PRELUDE` (the imports a LeetCode solution may assume, e.g. `List` and `Counter`).

Mode "unittest" (BigCodeBench): the tests mock modules the candidate uses, so they must run in the
candidate's process, in a module named `__test__`. The runner then only trusts a report that names as
many passing tests as it counted in the test code itself; skips, errors, a replaced `unittest`, and
changed methods of `unittest` classes or builtins all fail. This is hardening, not a boundary: a
program written to reverse-engineer this harness could forge the report (see `code_harness`). Its
limits are BigCodeBench's own defaults: `SITE_MEMORY_BYTES` of address space, 240 s.

Stdin/stdout references (`stdio_reference`) are JSON `{"tests": [{"input": ..., "output": ...}],
"float_tolerance": null}`. Each test is a separate sandboxed run; outputs are compared token by token
after splitting on any whitespace, so line breaks and spacing do not matter. With a float tolerance t,
two tokens that are both decimal numbers also match when |got - expected| <= t * max(1, |expected|)
(absolute or relative error, as Codeforces checkers state it). Expected outputs never enter the sandbox.

Both: the verdict is 1.0 only when every test passes. A timeout is reason "timeout"; a completion that
is empty is "no_answer"; one that is not text, not UTF-8, too long, or does not compile is
"parse_error". Explanations keep the program (cut) and the end of stderr.

Strict and flexible (`code_extract` has the rules): `correct` runs the strict program (the last fenced
block, as the prompts ask); `format_followed` says whether that block was tagged Python. `flexible` is
1.0 when the strict program passes or the flexible program (the last Python block that defines the
entry point, or unfenced code without the prose around it) passes; the second program runs only when
the first failed and the two differ, so most samples run once. `flexible_extracted` is the program that
passed, else the flexible one.
"""

import ast
import functools
import json
import re
import secrets
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from rpt_transfer.scoring import pyast, sandbox
from rpt_transfer.scoring.code_extract import flexible_code, strict_code
from rpt_transfer.scoring.code_harness import harness_command, trusted_payload
from rpt_transfer.scoring.verdict import Verdict

VERSION = "4"
"""Version of `verify_function` (scorer "code_function"); part of score job ids. 3: flexible policy and
format_followed (strict verdicts as in 2). 4: a candidate ended by its CPU-time limit is a timeout (and so
re-run alone to confirm it), where it raced the wall clock and could read as a wrong answer."""
STDIO_VERSION = "4"
"""Version of `verify_stdio` (scorer "code_stdio"); 4: as `VERSION` 4, for references it runs as calls."""
MAX_COMPLETION_CHARS = 400_000
"""Longer completions are not run: no real answer needs it, and it bounds the work per sample."""
FUNCTION_TIMEOUT = {"call": 10.0, "unittest": 240.0}
"""Default wall-clock (and CPU) seconds for all the tests of one sample, by mode. "unittest" is
BigCodeBench's own per-task limit (`TIMEOUT_LIMIT`, 240 s): its task 0's reference needs about a minute on
a busy 2-core machine (3.6 million shuffled permutations), not more memory."""
STDIO_TIMEOUT = 6.0
"""Default wall-clock seconds per stdin/stdout test (LiveCodeBench's default)."""
MEMORY_BYTES = 2 << 30
"""Address-space limit (RLIMIT_AS) of each process of a run without site-packages."""
SITE_MEMORY_BYTES = 30 << 30
"""Address-space limit with site-packages (BigCodeBench): BigCodeBench's own default (`max_as_limit`,
30 GiB). Its libraries (numpy, pandas, torch, tensorflow) map far more address space than they touch, and
RLIMIT_AS is per process, so it never bounded a run's total memory anyway (a run may have 64 processes)."""
SOLUTION_PRELUDE = (
    "import bisect, collections, functools, heapq, itertools, math, operator, re, string, sys\n"
    "from bisect import *\nfrom collections import *\nfrom functools import *\nfrom heapq import *\n"
    "from itertools import *\nfrom math import *\nfrom typing import *\n"
    "from builtins import pow  # math's two-argument pow must not hide pow(base, exp, mod)\n"
    "sys.setrecursionlimit(100_000)\n"
)
"""Start of a LeetCode-style candidate program: what that judge's solutions may use without importing."""
_SOLUTION_SHIM = "_call_solution"
_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_SHOWN = 2000
"""Characters of program, stderr or output kept in an explanation."""
_CACHED_CHARS = 1 << 16
"""Function references up to this size are parsed, and their tests compiled, once per process (the 512
most recent, at most 32 MiB each way); larger ones are parsed per sample and compiled in the run."""


def function_reference(
    entry_point: str,
    test: str,
    *,
    prompt: str = "",
    suffix: str = "",
    context: str = "",
    mode: str = "call",
    site: bool = False,
    timeout: float | None = None,
) -> str:
    """The JSON reference `verify_function` expects; see the module docstring for each field."""
    if mode not in FUNCTION_TIMEOUT:
        raise ValueError(f"mode {mode!r} is not one of {sorted(FUNCTION_TIMEOUT)}")
    fields = {"entry_point": entry_point, "test": test, "prompt": prompt, "suffix": suffix}
    fields |= {"context": context, "mode": mode, "site": site or mode == "unittest"}
    if timeout is not None:  # absent, not null: references made before the field existed stay the same
        fields["timeout"] = timeout
    return json.dumps(fields, sort_keys=True)


def solution_reference(method: str, cases: Sequence[tuple[Sequence[Any], Any]], timeout: float) -> str:
    """A function reference for a LeetCode-style problem: `Solution().method(*args) == expected` per case.

    `cases` are (arguments, expected result) as JSON values; `timeout` is for all the cases together.
    """
    if not method.isidentifier():
        raise ValueError(f"method {method!r} is not a Python name")
    plain = json.dumps([[list(args), expected] for args, expected in cases])
    test = (
        "import json\n"
        f"for number, (args, expected) in enumerate(json.loads({plain!r}), start=1):\n"
        f"    got = {_SOLUTION_SHIM}(*args)\n"
        "    got = list(got) if type(got) is tuple else got\n"
        "    assert got == expected, (\n"
        f"        f'test {{number}}: {method}(...) returned {{got!r:.300}}, expected {{expected!r:.300}}'\n"
        "    )\n"
    )
    shim = f"def {_SOLUTION_SHIM}(*args):\n    return Solution().{method}(*args)\n"
    return function_reference(_SOLUTION_SHIM, test, prompt=SOLUTION_PRELUDE, suffix=shim, timeout=timeout)


def stdio_reference(tests: list[Mapping[str, str]], float_tolerance: float | None = None) -> str:
    """The JSON reference `verify_stdio` expects: the tests (input, output) and an optional tolerance."""
    cases = [{"input": case["input"], "output": case["output"]} for case in tests]
    return json.dumps({"tests": cases, "float_tolerance": float_tolerance}, sort_keys=True)


def verify_function(
    completion: str,
    reference: str,
    context: Mapping[str, Any] | None = None,
    *,
    timeout: float | None = None,
    limits: sandbox.Limits | None = None,
) -> Verdict:
    """Score a completion by running function-level tests in the sandbox (see the module docstring)."""
    return _verify(completion, reference, timeout, limits)


def verify_stdio(
    completion: str,
    reference: str,
    context: Mapping[str, Any] | None = None,
    *,
    timeout: float | None = None,
    limits: sandbox.Limits | None = None,
) -> Verdict:
    """Score a stdin/stdout program: every test's output must match (see the module docstring)."""
    return _verify(completion, reference, timeout, limits)


def _verify(completion: str, reference: str, timeout: float | None, limits: sandbox.Limits | None) -> Verdict:
    """Score the strict program and, only where it fails and the flexible program differs, that one too."""
    text, rejected = _as_text(completion)
    if rejected is not None:
        return rejected._replace(flexible=0.0, format_followed=False)
    spec = _spec(reference)
    strict = strict_code(text)
    verdict = _score(strict.program, spec, timeout, limits)._replace(format_followed=strict.format_followed)
    program = flexible_code(text, _must_define(spec)) if verdict.correct != 1.0 else strict.program
    if program == strict.program:
        return verdict._replace(flexible=verdict.correct, flexible_extracted=verdict.extracted)
    other = _score(program, spec, timeout, limits)
    return verdict._replace(flexible=max(verdict.correct, other.correct), flexible_extracted=other.extracted)


def _score(code: str, spec: dict, timeout: float | None, limits: sandbox.Limits | None) -> Verdict:
    """Run the tests the reference describes on one extracted program (strict fields only)."""
    if not code.strip():
        return Verdict(0.0, None, "no_answer", "no code in the completion")
    if "\x00" in code:
        return Verdict(0.0, code[:_SHOWN], "parse_error", "code contains NUL characters")
    if "entry_point" in spec:
        return _run_function(code, spec, timeout, limits)
    return _run_stdio(code, spec, timeout, limits)


def _spec(reference: str) -> dict:
    """The parsed reference; function references are parsed once (an item's samples share them)."""
    if '"entry_point":' in reference and len(reference) <= _CACHED_CHARS:
        return _function_spec(reference)
    return json.loads(reference)


@functools.lru_cache(maxsize=512)
def _function_spec(reference: str) -> dict:
    return json.loads(reference)


def _must_define(spec: Mapping[str, Any]) -> str:
    """The regex for what the flexible policy looks for in a block.

    The entry point's definition (or the Solution class), or for a stdin/stdout program a read of
    standard input.
    """
    entry = spec.get("entry_point")
    if entry is None:  # a stdin/stdout program reads standard input
        return r"\binput[ \t]*\(|\bsys\.stdin\b|\bopen[ \t]*\([ \t]*0\b"
    if entry == _SOLUTION_SHIM:
        return r"^class[ \t]+Solution\b"
    return rf"^(?:async[ \t]+)?def[ \t]+{re.escape(entry)}[ \t]*\("


def _run_function(code: str, spec: dict, timeout: float | None, limits: sandbox.Limits | None) -> Verdict:
    """One sandbox run of the harness: a runner process and the candidate's process (see code_harness)."""
    program = _assemble(spec, code)
    nonce = secrets.token_hex(16)
    mode = spec["mode"]
    seconds = timeout or spec.get("timeout") or FUNCTION_TIMEOUT[mode]
    memory = SITE_MEMORY_BYTES if spec["site"] else MEMORY_BYTES
    python = (sys.executable, "-I", "-B") if spec["site"] else sandbox.PYTHON
    fields = (spec["entry_point"], spec["test"], spec["context"], mode)
    if len(spec["test"]) + len(spec["context"]) <= _CACHED_CHARS:
        trusted = _trusted(*fields)
    else:  # not kept: compiled in the run, where it does not hold up the other workers
        trusted = _trusted.__wrapped__(*fields, compile_here=False)
    harness, stdin = harness_command(mode, trusted, {"program": program, "nonce": nonce})
    result = sandbox.run(
        (*python, "-c", harness),
        input=stdin,
        timeout=seconds,
        limits=limits or sandbox.Limits(cpu_seconds=seconds, memory_bytes=memory),
        channel=True,
        cache_code=True,
    )
    return _function_verdict(result, nonce, program, code)


@functools.lru_cache(maxsize=512)
def _trusted(entry_point: str, test: str, context: str, mode: str, compile_here: bool = True) -> bytes:
    """The runner's payload for one reference (tests compiled), made once: items have many samples."""
    fields = {"entry_point": entry_point, "test": test, "context": context, "mode": mode}
    if mode == "unittest":
        fields["classes"] = _test_classes(test)
    return trusted_payload(fields, compile_here)


def _assemble(spec: Mapping[str, Any], code: str) -> str:
    """The candidate's program: prompt, completion (a whole program or a body), suffix."""
    defines = f"def {spec['entry_point']}("
    whole = any(line.startswith((defines, f"async {defines}")) for line in code.splitlines())
    joint = "\n" if whole and spec["prompt"] and not spec["prompt"].endswith("\n") else ""
    return spec["prompt"] + joint + code + ("\n" + spec["suffix"] if spec["suffix"] else "")


def _function_verdict(result: sandbox.ExecResult, nonce: str, program: str, code: str) -> Verdict:
    """Pass only on the runner's report that carries this run's nonce and says every test passed."""
    report = _authentic_report(result.channel, nonce)
    if report is None:
        if result.timed_out or result.killed_reason == "cpu_limit":
            return Verdict(0.0, code, "timeout", _explain("timed out", program, result))
        headline = f"no verdict from the test runner (exit {result.returncode}, {result.killed_reason})"
        return Verdict(0.0, code, None, _explain(headline, program, result))
    if report.get("passed") is True:
        return Verdict(1.0, code)
    detail = str(report.get("detail", ""))
    if report.get("limit") == "cpu":  # the CPU-time limit can end the candidate just before the wall clock
        return Verdict(0.0, code, "timeout", _explain(f"timed out (CPU time)\n{detail}", program, result))
    reason = "parse_error" if report.get("stage") == "load" and "SyntaxError" in detail else None
    return Verdict(0.0, code, reason, _explain(detail, program, result))


def _authentic_report(channel: bytes, nonce: str) -> dict | None:
    """The runner's report if it is well-formed JSON carrying `nonce`, else None."""
    try:
        report = json.loads(channel.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):  # nothing, or garbage: no verdict
        return None
    if not isinstance(report, dict) or not isinstance(report.get("nonce"), str):
        return None
    return report if secrets.compare_digest(report["nonce"], nonce) else None


def _run_stdio(code: str, spec: dict, timeout: float | None, limits: sandbox.Limits | None) -> Verdict:
    """One sandbox run per test; stop at the first that fails."""
    tests, tolerance = spec["tests"], spec.get("float_tolerance")
    limits = limits or sandbox.Limits()
    for number, case in enumerate(tests, start=1):
        expected = case["output"]
        result = sandbox.run(
            (*sandbox.PYTHON, "main.py"),
            input=case["input"],
            files={"main.py": code},
            timeout=timeout or STDIO_TIMEOUT,
            limits=limits._replace(output_bytes=max(limits.output_bytes, 2 * len(expected) + 4096)),
        )
        where = f"test {number}/{len(tests)}"
        if result.timed_out:
            return Verdict(0.0, code, "timeout", _explain(f"{where} timed out", code, result))
        if not result.success:
            error = "parse_error" if "SyntaxError" in result.stderr[-_SHOWN:] else None
            headline = f"{where}: exit {result.returncode} ({result.killed_reason or 'error'})"
            return Verdict(0.0, code, error, _explain(headline, code, result))
        if not outputs_match(result.stdout, expected, tolerance):
            shown = (
                f"{name}:\n{text[:_SHOWN]}"
                for name, text in (("input", case["input"]), ("expected", expected))
            )
            headline = f"{where}: wrong answer\n" + "\n".join(shown) + f"\ngot:\n{result.stdout[:_SHOWN]}"
            return Verdict(0.0, code, None, headline)
    return Verdict(1.0, code)


def outputs_match(got: str, expected: str, float_tolerance: float | None = None) -> bool:
    """Token-wise equality after splitting on whitespace; numbers within the tolerance when one is given."""
    got_tokens, expected_tokens = got.split(), expected.split()
    if len(got_tokens) != len(expected_tokens):
        return False
    return all(
        a == b or _close(a, b, float_tolerance) for a, b in zip(got_tokens, expected_tokens, strict=True)
    )


def _close(got: str, expected: str, tolerance: float | None) -> bool:
    """Both tokens decimal numbers within the absolute-or-relative tolerance."""
    if tolerance is None or not (_is_decimal(got) and _is_decimal(expected)):
        return False
    return abs(float(got) - float(expected)) <= tolerance * max(1.0, abs(float(expected)))


def _is_decimal(token: str) -> bool:
    """A plain decimal number (not "nan", "inf" or "1_000", which float() would also take)."""
    return _DECIMAL.fullmatch(token) is not None


def _as_text(completion: object) -> tuple[str, Verdict | None]:
    """The completion as text, or a Verdict that rejects it without running anything."""
    if isinstance(completion, bytes):
        try:
            completion = completion.decode("utf-8")
        except UnicodeDecodeError:  # binary output: not a program
            return "", Verdict(0.0, None, "parse_error", "completion is not valid UTF-8")
    if not isinstance(completion, str):
        return "", Verdict(0.0, None, "parse_error", f"completion is a {type(completion).__name__}")
    if len(completion) > MAX_COMPLETION_CHARS:
        explanation = f"completion has {len(completion)} characters; the limit is {MAX_COMPLETION_CHARS}"
        return "", Verdict(0.0, None, "parse_error", explanation)
    if not completion.isascii() and not _encodable(completion):
        return "", Verdict(0.0, None, "parse_error", "completion has unpaired surrogates (not UTF-8)")
    return completion, None


def _test_classes(test: str) -> dict[str, list[str]]:
    """{class name: test method names} of the top-level classes of the test code (counted here, trusted)."""
    classes = {}
    for node in pyast.parse(test).body:
        if isinstance(node, ast.ClassDef):
            methods = [
                item.name
                for item in node.body
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and item.name.startswith("test")
            ]
            if methods:
                classes[node.name] = methods
    return classes


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from a lossy decode
        return False
    return True


def _explain(headline: str, program: str, result: sandbox.ExecResult) -> str:
    """Headline, the program (first characters) and the end of stderr."""
    cut = "" if len(program) <= _SHOWN else f"\n[... {len(program) - _SHOWN} more characters]"
    return (
        f"{headline}\n--- program ---\n{program[:_SHOWN]}{cut}\n"
        f"--- stderr (end) ---\n{result.stderr[-_SHOWN:]}"
    )
