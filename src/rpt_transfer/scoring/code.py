"""Code verifiers: run model-written programs against tests in the sandbox; only our side decides a pass.

Two verifiers, each `(completion, reference, **options) -> Verdict`:

`verify_function` (scorer "code_function"): function-level tests (HumanEval, MBPP, BigCodeBench).
The reference is JSON made by `function_reference`:

    {"entry_point": "f",          # the function under test
     "test": "...",               # test code: asserts, a `check(f)` call, or unittest TestCase classes
     "prompt": "...",             # code put before the completion in the candidate's program
     "suffix": "...",             # code put after it (e.g. a shim that calls a LeetCode-style method)
     "context": "...",            # trusted code the tests need (helpers, imports), run before the tests
     "mode": "call" | "unittest", # see below
     "site": false}               # true: site-packages importable (third-party libraries)

The program is `prompt + completion + suffix`, except that a completion that itself defines the entry
point at top level (`def f(`) is a whole program and gets a newline after the prompt.

Mode "call" (HumanEval, MBPP): a trusted runner process runs `context` and `test`, with the entry point
bound to a proxy; the candidate's program runs in a second process forked *before* the runner reads
the tests or the verdict nonce, and only plain data crosses between them (None, bool, int, float,
complex, str, bytes, list, tuple, dict, set, frozenset; exact types, copied). So the candidate cannot
see the tests, cannot exit early with success, cannot patch `assert`, `check` or builtins of the
runner, and cannot return an object whose `__eq__` always says True. Arguments and results that are
not plain data fail the test.

Mode "unittest" (BigCodeBench): the tests mock modules the candidate uses, so they must run in the
candidate's process, in a module named `__test__`. The runner then only trusts a report that names as
many passing tests as it counted in the test code itself; skips, errors, a replaced `unittest`, and
changed methods of `unittest` classes or builtins all fail. This is hardening, not a boundary: a
program written to reverse-engineer this harness could forge the report (see the module notes).

`verify_stdio` (scorer "code_stdio"): programs that read stdin and write stdout (LiveCodeBench,
Codeforces). The reference is JSON `{"tests": [{"input": ..., "output": ...}], "float_tolerance": null}`.
Each test is a separate sandboxed run; outputs are compared token by token after splitting on any
whitespace, so line breaks and spacing do not matter. With a float tolerance t, two tokens that are
both decimal numbers also match when |got - expected| <= t * max(1, |expected|) (absolute or relative
error, as Codeforces checkers state it). Expected outputs never enter the sandbox.

Both: the verdict is 1.0 only when every test passes. A timeout is reason "timeout"; a completion that
is empty is "no_answer"; one that is not text, not UTF-8, too long, or does not compile is
"parse_error". Explanations keep the program (cut) and the end of stderr.
"""

import ast
import builtins
import ctypes
import functools
import importlib.util
import inspect
import json
import marshal
import os
import re
import secrets
import struct
import sys
import types
from collections.abc import Mapping
from typing import Any

from rpt_transfer.scoring import sandbox
from rpt_transfer.scoring.code_extract import extract_code
from rpt_transfer.scoring.verdict import Verdict

VERSION = "1"
"""Version of `verify_function` (scorer "code_function"); part of score job ids."""
STDIO_VERSION = "1"
"""Version of `verify_stdio` (scorer "code_stdio")."""
MAX_COMPLETION_CHARS = 400_000
"""Longer completions are not run: no real answer needs it, and it bounds the work per sample."""
FUNCTION_TIMEOUT = {"call": 10.0, "unittest": 60.0}
"""Default wall-clock seconds for all the tests of one sample, by mode."""
STDIO_TIMEOUT = 6.0
"""Default wall-clock seconds per stdin/stdout test (LiveCodeBench's default)."""
_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_SHOWN = 2000
"""Characters of program, stderr or output kept in an explanation."""


def function_reference(
    entry_point: str,
    test: str,
    *,
    prompt: str = "",
    suffix: str = "",
    context: str = "",
    mode: str = "call",
    site: bool = False,
) -> str:
    """The JSON reference `verify_function` expects; see the module docstring for each field."""
    if mode not in FUNCTION_TIMEOUT:
        raise ValueError(f"mode {mode!r} is not one of {sorted(FUNCTION_TIMEOUT)}")
    fields = {"entry_point": entry_point, "test": test, "prompt": prompt, "suffix": suffix}
    fields |= {"context": context, "mode": mode, "site": site or mode == "unittest"}
    return json.dumps(fields, sort_keys=True)


def stdio_reference(tests: list[Mapping[str, str]], float_tolerance: float | None = None) -> str:
    """The JSON reference `verify_stdio` expects: the tests (input, output) and an optional tolerance."""
    cases = [{"input": case["input"], "output": case["output"]} for case in tests]
    return json.dumps({"tests": cases, "float_tolerance": float_tolerance}, sort_keys=True)


def verify_function(
    completion: str,
    reference: str,
    *,
    timeout: float | None = None,
    limits: sandbox.Limits | None = None,
) -> Verdict:
    """Score a completion by running function-level tests in the sandbox (see the module docstring)."""
    code, rejected = _prepare(completion)
    if rejected is not None:
        return rejected
    spec = json.loads(reference)
    program = _assemble(spec, code)
    nonce = secrets.token_hex(16)
    mode = spec["mode"]
    payload = {key: spec[key] for key in ("entry_point", "test", "context", "mode")}
    payload |= {"program": program, "nonce": nonce}
    if mode == "unittest":
        payload["classes"] = _test_classes(spec["test"])
    memory = 4 << 30 if spec["site"] else 2 << 30
    python = (sys.executable, "-I", "-B") if spec["site"] else sandbox.PYTHON
    result = sandbox.run(
        (*python, "harness.pyc"),
        input=json.dumps(payload),
        files={"harness.pyc": harness_bytecode()},
        timeout=timeout or FUNCTION_TIMEOUT[mode],
        limits=limits or sandbox.Limits(cpu_seconds=timeout or FUNCTION_TIMEOUT[mode], memory_bytes=memory),
        channel=True,
    )
    return _function_verdict(result, nonce, program, code)


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
        if result.timed_out:
            return Verdict(0.0, code, "timeout", _explain("timed out", program, result))
        headline = f"no verdict from the test runner (exit {result.returncode}, {result.killed_reason})"
        return Verdict(0.0, code, None, _explain(headline, program, result))
    if report.get("passed") is True:
        return Verdict(1.0, code)
    detail = str(report.get("detail", ""))
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


def verify_stdio(
    completion: str,
    reference: str,
    *,
    timeout: float | None = None,
    limits: sandbox.Limits | None = None,
) -> Verdict:
    """Score a stdin/stdout program: every test's output must match (see the module docstring)."""
    code, rejected = _prepare(completion)
    if rejected is not None:
        return rejected
    spec = json.loads(reference)
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


def _prepare(completion: object) -> tuple[str, Verdict | None]:
    """The program to run, or a Verdict that rejects the completion without running anything."""
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
    code = extract_code(completion)
    if not code.strip():
        return "", Verdict(0.0, None, "no_answer", "no code in the completion")
    if "\x00" in code:
        return "", Verdict(0.0, code[:_SHOWN], "parse_error", "code contains NUL characters")
    return code, None


def _test_classes(test: str) -> dict[str, list[str]]:
    """{class name: test method names} of the top-level classes of the test code (counted here, trusted)."""
    classes = {}
    for node in ast.parse(test).body:
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


# ---------------------------------------------------------------------------------------------------------
# Test runner, sandbox side. These functions are copied (inspect.getsource) into `harness.py` and run
# inside the sandbox with only the standard library; they must not use anything else of this module.


class CandidateError(Exception):
    """The candidate's function failed (raised, returned something that is not plain data, or died)."""


def _harness_main() -> None:
    """Runner process: fork the candidate first, then read the tests and the nonce, run, report on fd 3."""
    os.fstat(3)  # the verdict channel must be there, or a pipe below could take its number
    sys.set_int_max_str_digits(0)
    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0: the candidate cannot ptrace or read us
    from_runner, to_candidate = os.pipe()
    from_candidate, to_runner = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(to_candidate)
        os.close(from_candidate)
        _candidate_main(from_runner, to_runner)
    os.close(from_runner)
    os.close(to_runner)
    payload = json.loads(sys.stdin.buffer.read())
    _send(to_candidate, {key: payload[key] for key in ("program", "mode", "entry_point")})
    loaded = _receive(from_candidate)
    if not isinstance(loaded, dict) or loaded.get("loaded") is not True:
        outcome = {"passed": False, "stage": "load", "detail": _loading_failure(loaded)}
    elif payload["mode"] == "call":
        outcome = _call_tests(payload, to_candidate, from_candidate)
    else:
        outcome = _unittest_tests(payload, to_candidate, from_candidate)
    os.kill(pid, 9)
    report = json.dumps({**outcome, "nonce": payload["nonce"]}).encode()
    while report:
        report = report[os.write(3, report) :]
    os._exit(0)


def _loading_failure(loaded: object) -> str:
    if isinstance(loaded, dict):
        return "the program failed to load:\n" + str(loaded.get("error", ""))[-4000:]
    return "the candidate's process ended while loading the program"


def _call_tests(payload: dict, requests: int, replies: int) -> dict:
    """Run context and tests here, with the entry point calling into the candidate's process."""
    namespace: dict = {"__name__": "__test__"}
    entry = payload["entry_point"]
    try:
        exec(_compiled(payload["context"], "<context>"), namespace)
        namespace[entry] = _remote(entry, requests, replies)
        exec(_compiled(payload["test"], "<test>"), namespace)
    except BaseException as err:  # any failure of a test (assertion, candidate error, SystemExit) fails
        return {"passed": False, "stage": "test", "detail": _describe(err)}
    return {"passed": True, "stage": "test", "detail": ""}


def _remote(name: str, requests: int, replies: int) -> Any:
    """A stand-in for the candidate's function: sends plain arguments, returns a plain copy of the result."""

    def call(*args: Any, **kwargs: Any) -> Any:
        _send(requests, {"name": name, "args": _encode(list(args)), "kwargs": _encode(kwargs)})
        reply = _receive(replies)
        if not isinstance(reply, dict):
            raise CandidateError("the candidate's process ended")
        if "raised" in reply:
            kind, message = str(reply["raised"][0]), str(reply["raised"][1])
            raise _as_exception(kind, message)
        return _decode(reply.get("value"))

    call.__name__ = call.__qualname__ = name
    return call


def _as_exception(kind: str, message: str) -> Exception:
    """A builtin exception of the same type when there is one (tests may expect it), else CandidateError."""
    builtin = getattr(builtins, kind, None)
    if isinstance(builtin, type) and issubclass(builtin, Exception):
        try:
            return builtin(message)
        except TypeError:  # a builtin exception that takes other arguments (UnicodeDecodeError)
            pass
    return CandidateError(f"{kind}: {message}")


def _unittest_tests(payload: dict, requests: int, replies: int) -> dict:
    """Accept the candidate side's report only if every test the host counted in the test code passed."""
    classes = payload["classes"]
    expected = sum(len(methods) for methods in classes.values())
    if expected == 0:
        return {"passed": False, "stage": "test", "detail": "no test methods found in the test code"}
    _send(requests, {"test": payload["test"], "classes": classes})
    report = _receive(replies)
    if not isinstance(report, dict):
        return {"passed": False, "stage": "test", "detail": "the candidate's process ended during the tests"}
    passed = report.get("ran") == expected and report.get("passed") == expected and not report.get("tampered")
    detail = f"{report.get('passed')}/{expected} tests passed\n" + str(report.get("detail", ""))[-4000:]
    return {"passed": passed, "stage": "test", "detail": detail}


def _candidate_main(requests: int, replies: int) -> None:
    """Candidate process: load the program, then serve calls or run the unittest tests; never returns."""
    os.closerange(3, 4)  # the verdict channel: never ours
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)  # the tests and the nonce come on the runner's stdin: not for us
    os.close(null)
    job = _receive(requests)
    if not isinstance(job, dict):
        os._exit(0)
    baseline = _unittest_state() if job["mode"] == "unittest" else {}
    module = types.ModuleType("__test__")
    if baseline:  # BigCodeBench's runner gives the module these names; some of its tests rely on them
        module.__dict__.update(sys=sys, os=os, environ=os.environ)
    sys.modules["__test__"] = module
    try:
        exec(_compiled(job["program"], "<candidate>"), module.__dict__)
    except BaseException as err:  # any failure while loading (SyntaxError, SystemExit, ...) is reported
        _send(replies, {"loaded": False, "error": _describe(err)})
        os._exit(0)
    _send(replies, {"loaded": True})
    if baseline:
        _guard(module.__dict__, job["entry_point"])
    if job["mode"] == "call":
        _serve_calls(module.__dict__, requests, replies)
    else:
        _send(replies, _run_unittests(module, _receive(requests), baseline))
    os._exit(0)


def _serve_calls(namespace: dict, requests: int, replies: int) -> None:
    """Answer calls until the runner closes the pipe; results go back as plain data."""
    while True:
        call = _receive(requests)
        if not isinstance(call, dict):
            os._exit(0)
        try:
            result = namespace[call["name"]](*_decode(call["args"]), **_decode(call["kwargs"]))
            reply = {"value": _encode(result)}
        except BaseException as err:  # the runner turns it into an exception in the test
            reply = {"raised": [type(err).__name__, str(err)[:1000]]}
        _send(replies, reply)


def _guard(namespace: dict, name: str) -> None:
    """Make the entry point refuse to return objects whose comparisons the program itself wrote."""
    original = namespace.get(name)
    if not callable(original):
        return

    def guarded(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        namespace[name] = guarded  # re-binding the name inside a call does not shed the guard
        _refuse_own_specials(result, 0)
        return result

    namespace[name] = guarded


_SOURCES: dict[str, str] = {}
"""Sources compiled by the runner, by file name, for tracebacks (the runner's own copy is in the script)."""
_HARMLESS_SPECIALS = frozenset({
    "__init__", "__new__", "__repr__", "__str__", "__doc__", "__module__", "__qualname__", "__dict__",
    "__weakref__", "__slots__", "__annotations__", "__init_subclass__", "__firstlineno__",
    "__static_attributes__", "__match_args__",
})  # fmt: skip
"""Special names a class may define without changing how tests compare, test or measure its objects."""


def _refuse_own_specials(value: Any, depth: int) -> None:
    """Raise CandidateError for a result of a class with special methods the program wrote.

    Such a class's `__eq__`, `__sub__` or `__bool__` could make any assertion pass; values inside builtin
    containers are checked too.
    """
    harmless = _HARMLESS_SPECIALS
    kind = type(value)
    for cls in kind.__mro__:
        own = cls.__module__ == "__test__" or any(
            getattr(getattr(item, "__code__", None), "co_filename", "") == "<candidate>"
            for item in vars(cls).values()
        )
        if own and any(key.startswith("__") and key not in harmless for key in vars(cls)):
            raise CandidateError(
                f"the result is a {kind.__qualname__}, whose special methods the program wrote"
            )
    if depth < 4 and kind in (list, tuple, set, frozenset):
        for item in value:
            _refuse_own_specials(item, depth + 1)
    if depth < 4 and kind is dict:
        for item in (*value.keys(), *value.values()):
            _refuse_own_specials(item, depth + 1)


def _unittest_state() -> dict:
    """What tests rely on, captured before the candidate runs: unittest classes and builtins."""
    import unittest

    state = {"unittest": unittest, "builtins": dict(builtins.__dict__)}
    for cls in (unittest.TestCase, unittest.TestResult, unittest.TestSuite, unittest.TestLoader):
        state[cls.__qualname__] = dict(cls.__dict__)
    return state


def _run_unittests(module: types.ModuleType, job: object, baseline: dict) -> dict:
    """Run the named TestCase classes with the unittest captured before the candidate ran."""
    unittest = baseline["unittest"]
    if not isinstance(job, dict):
        return {"ran": 0, "passed": 0, "detail": "no tests received"}
    result, loader, broken = unittest.TestResult(), unittest.TestLoader(), []
    try:
        exec(_compiled(job["test"], "<test>"), module.__dict__)
        for name in job["classes"]:
            cls = module.__dict__.get(name)
            if not (isinstance(cls, type) and issubclass(cls, unittest.TestCase)):
                broken.append(f"{name} is not a unittest.TestCase")
                continue
            loader.loadTestsFromTestCase(cls).run(result)
    except BaseException as err:  # a failure outside any test method fails them all
        broken.append(_describe(err))
    bad = [*result.failures, *result.errors, *result.skipped, *result.expectedFailures]
    bad += [(test, "unexpected success") for test in result.unexpectedSuccesses]
    detail = "\n".join([*broken, *(f"{test}: {text}" for test, text in bad)])[-4000:]
    passed = 0 if broken else result.testsRun - len(bad)
    return {"ran": result.testsRun, "passed": passed, "detail": detail, "tampered": _changed(baseline)}


def _changed(baseline: dict) -> list:
    """Names of unittest methods or builtins replaced or removed since `baseline`."""
    unittest = baseline["unittest"]
    current = {"builtins": builtins.__dict__}
    for cls in (unittest.TestCase, unittest.TestResult, unittest.TestSuite, unittest.TestLoader):
        current[cls.__qualname__] = cls.__dict__
    changed, missing = [], object()
    for where, before in baseline.items():
        if where == "unittest":
            continue
        now = current[where]
        changed += [f"{where}.{name}" for name in before if now.get(name, missing) is not before[name]]
        if where != "builtins":  # new builtins are harmless; new methods on unittest classes are not
            changed += [f"{where}.{name}" for name in now if name not in before]
    return changed


def _compiled(source: str, filename: str) -> types.CodeType:
    """Compile, keeping the source so that a traceback can show the failing line."""
    _SOURCES[filename] = source
    return compile(source, filename, "exec")


def _describe(err: BaseException) -> str:
    """The end of a traceback: enough to see which assertion or line failed."""
    import linecache  # only on failure: most samples never need them
    import traceback

    for filename, source in _SOURCES.items():
        linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    text = "".join(traceback.format_exception(type(err), err, err.__traceback__))
    return text[-4000:]


def _encode(value: Any, depth: int = 0) -> Any:
    """Plain data as JSON, types tagged: lists as arrays, everything else as {tag: ...}.

    Besides builtins, a few standard-library value types cross as themselves (the receiver rebuilds real
    ones from the data, so their comparisons stay the standard library's).
    """
    if depth > 100:
        raise TypeError("value nested too deeply")
    kind = type(value)
    if value is None or kind in (bool, int, float, str):
        return value
    if kind is list:
        return [_encode(item, depth + 1) for item in value]
    mappings = {
        dict: "d",
        "collections.Counter": "C",
        "collections.OrderedDict": "O",
        "collections.defaultdict": "D",
    }
    tag = mappings.get(kind) or mappings.get(f"{kind.__module__}.{kind.__qualname__}")
    if tag is not None:
        return {tag: [[_encode(k, depth + 1), _encode(v, depth + 1)] for k, v in value.items()]}
    sequences = {tuple: "t", set: "s", frozenset: "f", "collections.deque": "q"}
    tag = sequences.get(kind) or sequences.get(f"{kind.__module__}.{kind.__qualname__}")
    if tag is not None:
        return {tag: [_encode(item, depth + 1) for item in value]}
    if kind is bytes:
        return {"b": value.hex()}
    if kind is complex:
        return {"c": [value.real, value.imag]}
    if f"{kind.__module__}.{kind.__qualname__}" == "decimal.Decimal":
        return {"n": str(value)}
    if f"{kind.__module__}.{kind.__qualname__}" == "fractions.Fraction":
        return {"r": [int(value.numerator), int(value.denominator)]}
    raise TypeError(f"{kind.__name__} is not plain data (allowed: None, bool, int, float, str, containers)")


def _decode(value: Any) -> Any:
    """The inverse of `_encode`, building only builtin and standard-library types; else TypeError."""
    import collections  # here, not in the header: most samples never need them

    if value is None or type(value) in (bool, int, float, str):
        return value
    if type(value) is list:
        return [_decode(item) for item in value]
    if type(value) is not dict or len(value) != 1:
        raise TypeError("malformed value")
    ((tag, body),) = value.items()
    if tag == "b" and type(body) is str:
        return bytes.fromhex(body)
    if tag == "n" and type(body) is str:
        from decimal import Decimal

        return Decimal(body)
    if type(body) is not list:
        raise TypeError("malformed value")
    if tag == "r":
        from fractions import Fraction

        return Fraction(int(body[0]), int(body[1]))
    if tag == "c":
        return complex(float(body[0]), float(body[1]))
    if tag in ("d", "C", "O", "D"):
        pairs = [(_decode(key), _decode(item)) for key, item in body]
        kinds = {"d": dict, "O": collections.OrderedDict, "C": lambda items: collections.Counter(dict(items))}
        return kinds[tag](pairs) if tag in kinds else collections.defaultdict(None, pairs)
    containers = {"t": tuple, "s": set, "f": frozenset, "q": collections.deque}
    if tag not in containers:
        raise TypeError(f"unknown tag {tag!r}")
    return containers[tag](_decode(item) for item in body)


def _send(fd: int, message: Any) -> None:
    """One length-prefixed JSON message."""
    data = json.dumps(message).encode()
    data = struct.pack(">I", len(data)) + data
    while data:
        data = data[os.write(fd, data) :]


def _receive(fd: int) -> Any:
    """One message, or None at end of file or when it is malformed or larger than 64 MiB."""
    header = _read_exact(fd, 4)
    if header is None:
        return None
    size = struct.unpack(">I", header)[0]
    body = _read_exact(fd, size) if size <= 64 << 20 else None
    if body is None:
        return None
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError):  # garbage from the other side counts as no message
        return None


def _read_exact(fd: int, size: int) -> bytes | None:
    chunks, missing = [], size
    while missing:
        chunk = os.read(fd, min(missing, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


_HARNESS_PARTS = (
    CandidateError, _harness_main, _loading_failure, _call_tests, _remote, _as_exception, _unittest_tests,
    _candidate_main, _serve_calls, _guard, _refuse_own_specials, _unittest_state, _run_unittests, _changed,
    _compiled, _describe, _encode, _decode, _send, _receive, _read_exact,
)  # fmt: skip
_HARNESS_HEADER = (
    '"""Test runner generated from rpt_transfer.scoring.code; runs inside the sandbox."""\n\n'
    "from __future__ import annotations\n\n"  # annotations stay text: no typing import per run
    "import builtins\nimport ctypes\nimport json\nimport os\nimport struct\nimport sys\nimport types\n\n"
    "_SOURCES = {}\n"
)


@functools.cache
def harness_source() -> str:
    """The runner script placed in the sandbox: the functions of the section above, then a call."""
    parts = "\n\n".join(inspect.getsource(part) for part in _HARNESS_PARTS)
    constants = f"_HARMLESS_SPECIALS = frozenset({sorted(_HARMLESS_SPECIALS)!r})\n"
    return f"{_HARNESS_HEADER}{constants}\n\n{parts}\n\n_harness_main()\n"


@functools.cache
def harness_bytecode() -> bytes:
    """`harness_source` compiled once, as a .pyc file: compiling it per sample would cost more than a run."""
    code = compile(harness_source(), "harness.py", "exec")
    return importlib.util.MAGIC_NUMBER + bytes(12) + marshal.dumps(code)
