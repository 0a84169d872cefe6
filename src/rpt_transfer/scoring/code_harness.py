"""The test runner of `verify_function`, sandbox side: a runner process and the candidate's process.

Everything above `_CALL_PARTS` is copied (inspect.getsource) into the runner's program, which runs
inside the sandbox as `python -c` with only the standard library: it must not use anything else of this
package. `harness_command` is how `verify_function` starts it there. See `rpt_transfer.scoring.code` for
what each side may see and why a candidate cannot forge a pass.

Cost per sample matters (a job scores tens of thousands), and in a forked run every page touched costs a
fault, so: the program is the same for every sample of a mode, so the sandbox's launcher compiles it
once (`cache_code`); the reference's tests reach the runner compiled (`trusted_payload`, made once per
reference on the host) and marshalled on standard input, with the sample's program and nonce after
them; the runner's messages to the candidate are marshalled too. The candidate's messages to the runner
are JSON, which can only yield plain data: the runner never unmarshals anything the candidate wrote.
"""

import __future__

import ast
import builtins
import ctypes
import functools
import gc
import inspect
import json
import marshal
import os
import struct
import sys
import types
from typing import Any

from rpt_transfer.scoring import pyast


class CandidateError(Exception):
    """The candidate's function failed (raised, returned something that is not plain data, or died)."""


def _harness_main() -> None:
    """Runner process: fork the candidate first, then read the tests and the nonce, run, report on fd 3."""
    os.fstat(3)  # the verdict channel must be there, or a pipe below could take its number
    sys.set_int_max_str_digits(0)
    # PR_SET_DUMPABLE 0: the candidate cannot ptrace or read us. `pythonapi` is the process's own symbol
    # table (libc's prctl included), made when ctypes was imported: no library to load per run.
    ctypes.pythonapi.prctl(4, 0, 0, 0, 0)
    from_runner, to_candidate = os.pipe()
    from_candidate, to_runner = os.pipe()
    gc.freeze()  # the harness's objects: never traversed (so never copied) by the candidate's collections
    pid = os.fork()
    if pid == 0:
        os.close(to_candidate)
        os.close(from_candidate)
        _candidate_main(from_runner, to_runner)
    os.close(from_runner)
    os.close(to_runner)
    payload = _read_payload()
    _send(to_candidate, {key: payload[key] for key in ("program", "mode", "entry_point")}, trusted=True)
    loaded = _receive(from_candidate)
    if not isinstance(loaded, dict) or loaded.get("loaded") is not True:
        outcome = {"passed": False, "stage": "load", "detail": _loading_failure(loaded)}
    elif payload["mode"] == "call":
        outcome = _call_tests(payload, to_candidate, from_candidate)
    else:
        outcome = _unittest_tests(payload, to_candidate, from_candidate)
    if not _ENDED:
        os.kill(pid, 9)
    elif _out_of_cpu(pid):  # reaps (or kills) it; the CPU limit ended it: as much a timeout as the wall clock
        outcome = {**outcome, "limit": "cpu"}
    report = json.dumps({**outcome, "nonce": payload["nonce"]}).encode()
    while report:
        report = report[os.write(3, report) :]
    os._exit(0)


def _read_payload() -> dict:
    """The host's payload on standard input: trusted part (tests, compiled there), then this sample's part.

    Both are marshalled dicts (the trusted one prefixed by its length), merged; marshal, not JSON, because
    its decoding builds few objects, and the tests arrive compiled.
    """
    data = bytearray()
    while chunk := os.read(0, 1 << 16):
        data += chunk
    view = memoryview(data)
    size = struct.unpack(">I", view[:4])[0]
    return {**marshal.loads(view[4 : 4 + size]), **marshal.loads(view[4 + size :])}


def _loading_failure(loaded: object) -> str:
    if isinstance(loaded, dict):
        return "the program failed to load:\n" + str(loaded.get("error", ""))[-4000:]
    return _ended("the candidate's process ended while loading the program")


_ENDED: list[str] = []
"""Set once the candidate's process is seen gone (its pipe closed): only then is it worth waiting for."""


def _ended(message: str) -> str:
    _ENDED.append(message)
    return message


def _out_of_cpu(pid: int) -> bool:
    """Whether the candidate died of its CPU-time limit (SIGXCPU at the soft limit, SIGKILL at the hard).

    Its end of the pipe has closed, so it has exited or is exiting: it is reaped within moments. One that
    closed the pipe and runs on is killed after 0.2 s, as the runner kills it after every run.
    """
    import resource
    import signal
    import time

    give_up = time.monotonic() + 0.2
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > give_up:
            os.kill(pid, 9)
            return False
        time.sleep(0.001)
    if not os.WIFSIGNALED(status) or os.WTERMSIG(status) not in (signal.SIGXCPU, signal.SIGKILL):
        return False
    soft = resource.getrlimit(resource.RLIMIT_CPU)[0]
    return soft != resource.RLIM_INFINITY and usage.ru_utime + usage.ru_stime >= soft - 0.05


def _call_tests(payload: dict, requests: int, replies: int) -> dict:
    """Run context and tests here, with the entry point calling into the candidate's process."""
    namespace: dict = {"__name__": "__test__"}
    entry = payload["entry_point"]
    _SOURCES.update({"<context>": payload["context"], "<test>": payload["test"]})  # for tracebacks
    compiled = payload.get("compiled") or {}
    try:
        exec(compiled.get("context") or _compiled(payload["context"], "<context>"), namespace)
        namespace[entry] = _remote(entry, requests, replies)
        exec(compiled.get("test") or _compiled(payload["test"], "<test>"), namespace)
    except BaseException as err:  # any failure of a test (assertion, candidate error, SystemExit) fails
        return {"passed": False, "stage": "test", "detail": _describe(err)}
    return {"passed": True, "stage": "test", "detail": ""}


def _remote(name: str, requests: int, replies: int) -> Any:
    """A stand-in for the candidate's function: sends plain arguments, returns a plain copy of the result."""

    def call(*args: Any, **kwargs: Any) -> Any:
        _send(requests, {"name": name, "args": _encode(list(args)), "kwargs": _encode(kwargs)}, trusted=True)
        reply = _receive(replies)
        if not isinstance(reply, dict):
            raise CandidateError(_ended("the candidate's process ended"))
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
    _send(requests, {"test": payload["test"], "classes": classes}, trusted=True)
    report = _receive(replies)
    if not isinstance(report, dict):
        return {
            "passed": False,
            "stage": "test",
            "detail": _ended("the candidate's process ended during the tests"),
        }
    passed = report.get("ran") == expected and report.get("passed") == expected and not report.get("tampered")
    detail = f"{report.get('passed')}/{expected} tests passed\n" + str(report.get("detail", ""))[-4000:]
    return {"passed": passed, "stage": "test", "detail": detail}


def _candidate_main(requests: int, replies: int) -> None:
    """Candidate process: load the program, then serve calls or run the unittest tests; never returns."""
    os.closerange(3, 4)  # the verdict channel: never ours
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)  # the tests and the nonce come on the runner's stdin: not for us
    os.close(null)
    job = _receive(requests, trusted=True)
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
        _send(replies, _run_unittests(module, _receive(requests, trusted=True), baseline))
    os._exit(0)


def _serve_calls(namespace: dict, requests: int, replies: int) -> None:
    """Answer calls until the runner closes the pipe; results go back as plain data."""
    while True:
        call = _receive(requests, trusted=True)
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
    """The end of a traceback: enough to see which assertion or line failed.

    Formatted here rather than by `traceback.format_exception`, whose column markers parse each line
    with `ast`: importing it would cost a failing sample more than the rest of its run.
    """
    import linecache  # only on failure: most samples never need it

    for filename, source in _SOURCES.items():  # the runner's own, and the tests' (see `_call_tests`)
        linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    frames, tb = [], err.__traceback__
    while tb is not None:
        frames.append((tb.tb_frame.f_code, tb.tb_lineno))
        tb = tb.tb_next
    if len(frames) > 40:  # deep recursion: the first frames and the last ones tell the story
        frames = [*frames[:10], (None, len(frames) - 30), *frames[-20:]]
    lines, own = ["Traceback (most recent call last):\n"], _own_code()
    for frame_code, number in frames:
        if frame_code is None:
            lines.append(f"  [... {number} more frames ...]\n")
            continue
        filename = "<harness>" if frame_code in own else frame_code.co_filename
        lines.append(f'  File "{filename}", line {number}, in {frame_code.co_name}\n')
        text = linecache.getline(frame_code.co_filename, number or 0).strip()
        if text:
            lines.append(f"    {text}\n")
    lines.append(_exception_line(err))
    return "".join(lines)[-4000:]


def _own_code() -> set:
    """The runner's code objects, nested ones included: its frames show as "<harness>" in a traceback.

    The runner runs as `python -c`, so its frames would otherwise show as "<string>", the name code a
    test or program compiles from a string gets too.
    """
    found: set = set()
    pending = [value.__code__ for value in globals().values() if isinstance(value, types.FunctionType)]
    while pending:
        code = pending.pop()
        found.add(code)
        pending += [const for const in code.co_consts if isinstance(const, types.CodeType)]
    return found


def _exception_line(err: BaseException) -> str:
    """The last line of a traceback, as `traceback.format_exception_only` writes it.

    Written out here for the common case: the first use of `traceback`'s machinery in a run costs more
    than the rest of a failing test. Syntax errors (a caret line) and exceptions with notes go to it.
    """
    if isinstance(err, SyntaxError) or getattr(err, "__notes__", None):
        import traceback

        return "".join(traceback.format_exception_only(type(err), err))
    kind = type(err)
    name, module = kind.__qualname__, kind.__module__
    if module not in ("__main__", "builtins"):
        name = f"{module if isinstance(module, str) else '<unknown>'}.{name}"
    try:
        text = str(err)
    except Exception:  # as traceback does: a broken __str__ must not hide the exception
        text = "<exception str() failed>"
    return f"{name}: {text}\n" if text else f"{name}\n"


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


def _send(fd: int, message: Any, trusted: bool = False) -> None:
    """One length-prefixed message: marshal from the runner to the candidate (`trusted`), else JSON.

    Marshal builds and reads plain values with less work, but must never decode what the candidate
    wrote: its replies are JSON, which can only yield plain data.
    """
    data = marshal.dumps(message) if trusted else json.dumps(message).encode()
    data = struct.pack(">I", len(data)) + data
    while data:
        data = data[os.write(fd, data) :]


def _receive(fd: int, trusted: bool = False) -> Any:
    """One message, or None at end of file or when it is malformed or larger than 64 MiB.

    `trusted`: the runner sent it (marshal; see `_send`).
    """
    header = _read_exact(fd, 4)
    if header is None:
        return None
    size = struct.unpack(">I", header)[0]
    body = _read_exact(fd, size) if size <= 64 << 20 else None
    if body is None:
        return None
    try:
        return marshal.loads(body) if trusted else json.loads(body)
    except (UnicodeDecodeError, ValueError, EOFError, TypeError):  # garbage from the other side: no message
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


_CALL_PARTS = (
    CandidateError, _harness_main, _read_payload, _loading_failure, _ended, _out_of_cpu, _call_tests, _remote,
    _as_exception,
    _candidate_main, _serve_calls, _compiled, _describe, _own_code, _exception_line, _encode, _decode, _send,
    _receive, _read_exact,
)  # fmt: skip
"""What mode "call" runs; mode "unittest" adds `_UNITTEST_PARTS` (never reached in a "call" script)."""
_UNITTEST_PARTS = (_unittest_tests, _guard, _refuse_own_specials, _unittest_state, _run_unittests, _changed)
_HARNESS_HEADER = (
    '"""Test runner generated from rpt_transfer.scoring.code_harness; runs inside the sandbox."""\n\n'
    "from __future__ import annotations\n\n"  # annotations stay text: no typing import per run
    "import builtins\nimport ctypes\nimport gc\nimport json\nimport marshal\nimport os\nimport struct\n"
    "import sys\nimport types\n\n"
    "_SOURCES = {}\n_ENDED = []\n"
)


@functools.cache
def harness_source(mode: str = "unittest") -> str:
    """The runner script placed in the sandbox for `mode`: the functions above, then a call."""
    parts = _CALL_PARTS + (_UNITTEST_PARTS if mode == "unittest" else ())
    source = "\n\n".join(inspect.getsource(part) for part in parts)
    constants = (
        f"_HARMLESS_SPECIALS = frozenset({sorted(_HARMLESS_SPECIALS)!r})\n" if mode == "unittest" else ""
    )
    return f"{_HARNESS_HEADER}{constants}\n\n{source}\n\n_harness_main()\n"


@functools.cache
def harness_program(mode: str) -> str:
    """`harness_source(mode)` without docstrings and annotations: the code `python -c` runs.

    The launcher compiles it once (`cache_code`), but a cold run (site-packages) compiles it each time,
    and each run executes its definitions, so the program carries only what its mode runs.
    """
    with pyast.LOCK:  # inspect.getsource parses the module, racing other threads' parses (see pyast)
        tree = pyast.parse(harness_source(mode))
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                body = node.body
                if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                    node.body = body[1:] or [ast.Pass()]
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                node.returns = None
                arguments = node.args
                for argument in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs):
                    argument.annotation = None
                for argument in (arguments.vararg, arguments.kwarg):
                    if argument is not None:
                        argument.annotation = None
        return ast.unparse(tree) + "\n"


_ANNOTATIONS = __future__.annotations.compiler_flag
"""The future the harness script starts with (`_HARNESS_HEADER`), which code it compiles inherits."""


def trusted_payload(fields: dict, compile_here: bool = True) -> bytes:
    """The part of the runner's payload shared by every sample of one reference, marshalled.

    `fields` are the reference's entry point, test, context and mode (and, for "unittest", the classes).
    In mode "call" the runner runs the context and the tests: with `compile_here` they are compiled here
    (assertions kept), for a payload made once per reference, so no run pays for parsing them; a test
    that does not compile goes as source, and fails in the run as before.
    """
    payload = dict(fields)
    if fields["mode"] == "call" and compile_here:
        try:
            with pyast.LOCK:
                payload[
                    "compiled"
                ] = {  # as the runner compiles: the harness's `annotations` future, asserts kept
                    name: compile(
                        fields[name], f"<{name}>", "exec", _ANNOTATIONS, dont_inherit=True, optimize=0
                    )
                    for name in ("context", "test")
                }
        except (SyntaxError, ValueError):  # the run reports it, in the test's own words
            pass
    data = marshal.dumps(payload)
    return struct.pack(">I", len(data)) + data


def harness_command(mode: str, trusted: bytes, sample: dict) -> tuple[str, bytes]:
    """Code for `python -c` and the standard input that run the harness (tests, program, nonce).

    `trusted` is `trusted_payload` of the reference; `sample` holds the program and the nonce. All of
    the payload is still in the pipe, not in memory, when the harness forks the candidate; shipping it
    this way rather than as a file spares each run the staging and copying of a file.
    """
    return harness_program(mode), trusted + marshal.dumps(sample)
