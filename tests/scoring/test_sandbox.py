"""The sandbox's contract: what a run sees, what comes back, limits, fallback mode, the worker pool."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import benchmark_data, fallback_launcher, fallback_python
from rpt_transfer.scoring import code, sandbox
from rpt_transfer.scoring.sandbox import PYTHON, Limits
from rpt_transfer.scoring.sandbox.levels import LEVELS, NEEDS


def _python(code: str, **options: object) -> sandbox.ExecResult:
    return sandbox.run((*PYTHON, "-c", code), timeout=options.pop("timeout", 10), **options)


pytestmark = pytest.mark.usefixtures("sandbox_ready")  # skips with the sandbox's reason where it cannot run


def test_stdout_stdin_exit_status() -> None:
    result = _python("import sys; print(input()[::-1]); sys.exit(3)", input="abc\n")
    assert (result.stdout, result.returncode, result.success, result.killed_reason) == (
        "cba\n",
        3,
        False,
        None,
    )


def test_success_and_stderr() -> None:
    result = _python("import sys; print('out'); print('err', file=sys.stderr)")
    assert result.success and result.stdout == "out\n" and result.stderr == "err\n"


@pytest.mark.parametrize(
    ("code", "status", "stderr_part"),
    [
        ("raise ValueError('boom')", 1, "ValueError: boom"),
        ("import sys; sys.exit('bye')", 1, "bye"),
        ("import sys; sys.exit(None)", 0, ""),
        ("import sys; sys.exit(300)", 300 & 0xFF, ""),
        ("import os; os._exit(7)", 7, ""),
    ],
)
def test_warm_python_exits_like_python(code: str, status: int, stderr_part: str) -> None:
    result = _python(code)
    assert result.returncode == status and stderr_part in result.stderr


def test_warm_python_has_the_builtins_of_a_normal_python() -> None:
    """exit, quit, help, copyright, credits, license: what `site` adds to every `python3 prog.py`."""
    names = "import builtins; print(sorted(dir(builtins)))"
    normal = subprocess.run([sys.executable, "-I", "-c", names], capture_output=True, text=True, check=True)
    assert _python(names).stdout == normal.stdout
    assert _python("print(type(exit).__name__, str(quit), len(str(credits)) > 0)").stdout == (
        "Quitter Use quit() or Ctrl-D (i.e. EOF) to exit True\n"
    )


EXITS = [  # how published programs end (issue 10: 11 of 1,758 LiveCodeBench outputs end with exit())
    ("exit()", 0, 1.0),
    ("quit()", 0, 1.0),
    ("exit(0)", 0, 1.0),
    ("import sys; sys.exit()", 0, 1.0),
    ("quit(None)", 0, 1.0),
    ("exit(3)", 3, 0.0),
    ("exit('bye')", 1, 0.0),
]


@pytest.mark.parametrize(("ending", "status", "score"), EXITS)
def test_programs_that_end_with_exit_or_quit_exit_as_in_python(
    ending: str, status: int, score: float
) -> None:
    result = _python(f"print('Yes'); {ending}")
    assert (result.stdout, result.returncode) == ("Yes\n", status), result.stderr
    verdict = code.verify_stdio(
        f"print('Yes'); {ending}", code.stdio_reference([{"input": "", "output": "Yes"}])
    )
    assert verdict.correct == score, verdict.explanation


CHORD = """S = input()
if S in ("ACE", "BDF", "CEG", "DFA", "EGB", "FAC", "GBD"):
    print("Yes")
    {ending}
print("No")
"""
"""A solution of LiveCodeBench's "Chord" written as published outputs often are: stop early with exit()."""


@pytest.mark.parametrize(("ending", "status", "score"), EXITS)
def test_exit_and_quit_score_like_python_on_a_real_livecodebench_problem(
    ending: str, status: int, score: float
) -> None:
    problems = json.loads(benchmark_data("livecodebench/rllm_livecodebench_test.json").read_text())
    found = next(item for item in problems if item["problem_title"] == "Chord")
    tests = [case for case in json.loads(found["public_test_cases"]) if case["testtype"] == "stdin"]
    assert [case["output"].strip() for case in tests] == ["No", "Yes", "No"]
    verdict = code.verify_stdio(CHORD.format(ending=ending), code.stdio_reference(tests))
    assert verdict.correct == score, verdict.explanation


def test_warm_python_sees_argv_main_and_joins_threads_and_runs_atexit() -> None:
    code = (
        "import atexit, sys, threading, time\n"
        "atexit.register(lambda: print('atexit'))\n"
        "threading.Thread(target=lambda: (time.sleep(0.2), print('thread'))).start()\n"
        "print(__name__, sys.argv)\n"
    )
    result = sandbox.run((*PYTHON, "-c", code, "a", "b"), timeout=10)
    assert result.stdout.splitlines() == ["__main__ ['-c', 'a', 'b']", "thread", "atexit"]


def test_script_file_and_files_in_a_fresh_working_directory() -> None:
    files = {
        "main.py": "import os\nprint(sorted(os.listdir('.')), open('data/x.txt').read())",
        "data/x.txt": "hi",
    }
    result = sandbox.run((*PYTHON, "main.py"), files=files, timeout=10)
    tmp = {path.split("/")[2] for path in sandbox._interpreter_paths() if path.startswith("/tmp/")}
    if result.isolation.startswith("seccomp"):
        tmp = set()  # the fallback's working directory is a fresh host temp dir
    assert result.stdout == f"{sorted({'data', 'main.py', *tmp})} hi\n"  # a Python under /tmp shows there


def test_other_programs_run_too() -> None:
    result = sandbox.run(["/bin/sh", "-c", "echo $HOME; cat"], input=b"bytes in", timeout=10)
    assert result.success and result.stdout.splitlines()[1] == "bytes in"


def test_environment_is_scrubbed_and_extra_variables_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fake-secret")
    result = _python("import os; print(sorted(os.environ))", env={"MY_SETTING": "1"})
    names = eval(result.stdout)
    assert "AWS_SECRET_ACCESS_KEY" not in names and "MY_SETTING" in names
    assert set(names) <= set(sandbox._sandbox_env({"MY_SETTING": "1"})) | {"HOME", "TMPDIR"}


@pytest.mark.parametrize(
    "name", ["AWS_ACCESS_KEY_ID", "HF_TOKEN", "MLFLOW_TRACKING_PASSWORD", "API_KEY", "X_SECRET"]
)
def test_credential_like_variables_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="credential"):
        _python("pass", env={name: "x"})


@pytest.mark.parametrize("name", ["/etc/passwd", "../up.txt", "a/../../b", ""])
def test_file_names_must_stay_inside(name: str) -> None:
    with pytest.raises(ValueError, match="relative path"):
        _python("pass", files={name: "x"})


def test_timeout_kills_and_says_so() -> None:
    started = time.monotonic()
    result = _python("while True: pass", timeout=1)
    assert result.timed_out and result.killed_reason == "timeout" and not result.success
    assert time.monotonic() - started < 5


def test_output_beyond_the_cap_is_cut_with_a_marker_and_the_run_killed() -> None:
    result = _python(
        "import sys\nwhile True: sys.stdout.write('x' * 65536)", limits=Limits(output_bytes=100_000)
    )
    assert result.killed_reason == "output_limit" and not result.timed_out
    assert result.stdout.startswith("x" * 100_000)
    assert result.stdout.endswith(sandbox.TRUNCATION_MARKER.format(limit=100_000))


def test_channel_is_file_descriptor_3() -> None:
    result = _python("import os; os.write(3, b'verdict')", channel=True)
    assert result.channel == b"verdict" and result.success


def test_memory_limit() -> None:
    result = _python("x = bytearray(600 << 20)", limits=Limits(memory_bytes=256 << 20))
    assert result.returncode == 1 and "MemoryError" in result.stderr


def test_cpu_limit() -> None:
    result = _python("while True: pass", timeout=20, limits=Limits(cpu_seconds=1))
    assert result.killed_reason == "cpu_limit" and result.returncode in (-signal.SIGXCPU, -signal.SIGKILL)


def test_file_size_limit() -> None:
    code = "open('big', 'wb').write(b'x' * (2 << 20))"
    result = _python(code, limits=Limits(file_bytes=1 << 20))
    assert result.returncode == 1 and "File too large" in result.stderr


def test_process_limit_binds_even_though_the_scorer_is_root() -> None:
    code = (
        "import os, time\nn = 0\n"
        "try:\n    while True:\n        if os.fork() == 0:\n            time.sleep(5); os._exit(0)\n        n += 1\n"
        "except OSError as err:\n    print(n, err.errno)\n"
    )
    result = _python(code, limits=Limits(processes=8))
    forked, errno = map(int, result.stdout.split())
    assert forked < 8 and errno == 11  # EAGAIN


def test_disk_is_capped_by_the_private_tmpfs() -> None:
    result = _python(
        "import os\ntry:\n    for i in range(100): open(f'f{i}', 'wb').write(b'x' * (1 << 20))\n"
        "except OSError as err:\n    print(i, err.errno)",
        limits=Limits(disk_bytes=8 << 20),
    )
    if not result.isolation.startswith("netns"):
        pytest.skip("the private tmpfs needs namespaces")
    written, errno = map(int, result.stdout.split())
    assert written <= 8 and errno == 28  # ENOSPC


def test_isolation_is_reported() -> None:
    result = _python("pass")
    assert result.isolation.startswith(("netns", "seccomp"))
    assert "uid" in result.isolation
    assert result.level == sandbox.isolation() and result.level in LEVELS


def test_isolation_level_is_cheap_after_the_first_call() -> None:
    level = sandbox.isolation()
    started = time.perf_counter()
    for _ in range(100):
        assert sandbox.isolation() == level
    assert time.perf_counter() - started < 0.05  # no launcher, no run: a dictionary and an env lookup


@pytest.mark.parametrize("minimum", [*LEVELS, "none", " Landlock "])
def test_a_minimum_above_this_machine_is_refused_in_one_line(
    minimum: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = sandbox.run(["/bin/true"], timeout=10).level
    monkeypatch.setenv("RPT_SANDBOX_MIN", minimum)
    wanted = {"none": "uid"}.get(minimum.strip().lower(), minimum.strip().lower())
    if LEVELS.index(here) >= LEVELS.index(wanted):
        assert sandbox.isolation() == here
        return
    with pytest.raises(sandbox.SandboxError) as refused:
        sandbox.isolation()
    message = str(refused.value)
    assert "\n" not in message and f"below the minimum {wanted!r}" in message and NEEDS[wanted] in message
    assert f"RPT_SANDBOX_MIN={here}" in message


def test_an_unknown_minimum_names_the_variable_and_the_levels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RPT_SANDBOX_MIN", "strong")
    with pytest.raises(sandbox.SandboxError, match=r"^RPT_SANDBOX_MIN='strong' is not an isolation level; "
                       r"accepted: namespaces, userns, landlock, uid, none$"):  # fmt: skip
        sandbox.isolation()


@pytest.mark.parametrize(
    ("minimum", "landlock", "level"),
    [(None, True, None), ("landlock", True, "landlock"), ("landlock", False, None), ("none", False, "uid")],
)
def test_the_fallback_runs_only_when_its_level_is_accepted(
    minimum: str | None, landlock: bool, level: str | None
) -> None:
    """Root without namespaces falls back; below the default minimum that is refused, naming what is needed."""
    python = fallback_python()  # skips where there is no fallback (not root)
    if level == "landlock" and not _landlock_here():
        pytest.skip("this kernel has no Landlock")
    try:
        launcher = sandbox.Launcher(namespaces=False, python=python, minimum=minimum, landlock=landlock)
    except sandbox.SandboxError as err:
        message = str(err)
        assert level is None and "\n" not in message and "namespaces turned off" in message
        assert "below the minimum" in message and NEEDS[minimum or "userns"] in message
        return
    launcher.close()
    assert launcher.level == level


def _landlock_here() -> bool:
    from rpt_transfer.scoring.sandbox.fallback import _landlock_abi

    return _landlock_abi() > 0


def test_pool_runs_in_parallel_and_keeps_order() -> None:
    with sandbox.SandboxPool(3) as pool:
        pool.map(lambda _: sandbox.run(["/bin/true"], timeout=10), range(6))  # start the launchers
        started = time.monotonic()
        results = pool.map(lambda i: _python(f"import time; time.sleep(0.5); print({i})"), range(6))
    assert [r.stdout for r in results] == [f"{i}\n" for i in range(6)]
    assert time.monotonic() - started < 2.5  # 6 x 0.5 s: 1 s on 3 workers, 3 s one after another


def test_run_many() -> None:
    assert sandbox.run_many(lambda i: _python(f"print({i} * 2)").stdout, [1, 2, 3]) == ["2\n", "4\n", "6\n"]


def test_a_dead_launcher_is_replaced() -> None:
    launcher = sandbox._thread_launcher()
    launcher._process.kill()
    launcher._process.wait()
    assert _python("print('still here')").stdout == "still here\n"


def test_fallback_mode_denies_network_and_hides_host_files() -> None:
    launcher = fallback_launcher()
    try:
        code = (
            "import socket\n"
            "try:\n    socket.socket(socket.AF_INET, socket.SOCK_STREAM)\nexcept OSError as err:\n    print(err.errno)\n"
            f"try:\n    open({__file__!r}).read()\nexcept OSError as err:\n    print(err.errno)\n"
        )
        result = launcher.run((*PYTHON, "-c", code), timeout=10)
    finally:
        launcher.close()
    assert result.isolation.startswith("seccomp")
    assert result.stdout.split()[0] == "13"  # EACCES from the seccomp filter
    if "landlock ABI" in result.isolation:
        assert result.stdout.split()[1] == "13"


def test_interpreter_paths_include_this_python() -> None:
    assert any(
        sys.prefix.startswith(path) or path == os.path.realpath(sys.prefix)
        for path in sandbox._interpreter_paths()
    )


USERNS_CHECK = """
import importlib.util, json, os, sys
sys.path.insert(0, {src!r})
spec = importlib.util.spec_from_file_location(  # the package alone: this Python lacks our dependencies
    "sandbox_package", {module!r}, submodule_search_locations=[os.path.dirname({module!r})]
)
sandbox = importlib.util.module_from_spec(spec)
sys.modules["sandbox_package"] = sandbox
spec.loader.exec_module(sandbox)
assert sandbox.PYTHON[0] == sys.executable
launcher = sandbox.Launcher()
program = (
    "import os, socket\\n"
    "try:\\n    socket.create_connection(('127.0.0.1', 9), timeout=1)\\nexcept OSError as err:\\n    print(err.errno)\\n"
    "try:\\n    open('/etc/owned', 'w')\\nexcept OSError as err:\\n    print(err.errno)\\n"
    "print(sorted(os.listdir('/proc'))[-1])\\n"
)
result = launcher.run(sandbox.PYTHON + ("-c", program), timeout=10)
print(json.dumps([launcher.isolation, result.stdout.split(), result.returncode, result.stderr[-300:]]))
"""


def test_unprivileged_user_namespace_mode(open_dir: Path) -> None:
    """A scorer that is not root gets the same namespaces through a user namespace of its own."""
    python = "/usr/bin/python3"  # readable by other users, unlike a Python in a home directory
    if os.geteuid() != 0 or not os.path.exists(python) or not os.path.exists("/usr/bin/setpriv"):
        pytest.skip("needs root (to become an unprivileged user), setpriv and a system Python")
    # The package as a scorer's install has it, where `nobody` may read it: the clone may be in a 0700 home.
    package = Path(os.path.realpath(sandbox.__file__)).parents[2]  # .../src/rpt_transfer
    shutil.copytree(package, open_dir / "src" / "rpt_transfer", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(["chmod", "-R", "a+rX", str(open_dir)], check=True)  # whatever the umask
    module = open_dir / "src" / "rpt_transfer" / "scoring" / "sandbox" / "__init__.py"
    check = USERNS_CHECK.format(src=str(open_dir / "src"), module=str(module))
    command = ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", python, "-c", check]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd="/")
    if "allow user namespaces" in result.stderr:
        pytest.skip("unprivileged user namespaces are disabled here")
    isolation, output, status, stderr = json.loads(result.stdout.strip().splitlines()[-1])
    assert isolation.startswith("netns") and "user namespace" in isolation
    assert output[:2] == ["111", "30"] and status == 0, stderr  # refused by its own loopback; read-only root
    assert output[2] in ("sys", "uptime", "version", "zoneinfo", "vmstat")  # a /proc with only its own pids
