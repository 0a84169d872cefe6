"""Hostile programs: each is contained, scored wrong for the right reason, and the pool keeps working.

Every attack runs through the same two-worker pool, and a normal sample runs after it. The main attacks
run in both modes: namespaces (the default here) and the fallback (seccomp, own uid, Landlock), which
the tests force with a launcher of their own.
"""

import os
import re
import select
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import fallback_launcher
from rpt_transfer.scoring import code, sandbox
from rpt_transfer.scoring.sandbox import PYTHON, Limits

NORMAL = code.stdio_reference([{"input": "2 3\n", "output": "5\n"}])
NORMAL_PROGRAM = "a, b = map(int, input().split())\nprint(a + b)"
ANSWER_42 = code.stdio_reference([{"input": "", "output": "42"}])
Runner = Callable[..., sandbox.ExecResult]


@pytest.fixture(scope="module")
def pool() -> Iterator[sandbox.SandboxPool]:
    try:
        sandbox.run(["/bin/true"], timeout=10)
    except sandbox.SandboxError as err:
        pytest.skip(f"no sandbox on this machine: {err}")
    with sandbox.SandboxPool(2) as workers:
        yield workers


@pytest.fixture(scope="module", params=["namespaces", "fallback"])
def mode(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "fallback" and os.geteuid() != 0:
        pytest.skip("the fallback mode needs root")
    yield request.param


@pytest.fixture
def run(pool: sandbox.SandboxPool, mode: str) -> Iterator[Runner]:
    """Run a Python program in the chosen mode on a pool worker, then check that a normal one still works."""
    launchers: list[sandbox.Launcher] = []

    def execute(program: str, *args: str, **options: object) -> sandbox.ExecResult:
        options.setdefault("timeout", 3)
        command = (*PYTHON, "-c", program, *args)
        if mode == "namespaces":
            return pool.map(lambda _: sandbox.run(command, **options), [0])[0]
        launchers.append(fallback_launcher())
        return launchers[-1].run(command, **options)

    yield execute
    for launcher in launchers:
        launcher.close()
    assert pool.map(lambda _: code.verify_stdio(NORMAL_PROGRAM, NORMAL).correct, range(2)) == [1.0, 1.0]


def _run_uid(result: sandbox.ExecResult) -> int:
    return int(re.search(r"uid (\d+)$", result.isolation).group(1))


def _processes_of(uid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
            except OSError:  # the process ended while we looked
                continue
            if re.search(rf"^Uid:\s+{uid}\s", status, re.MULTILINE):
                found.append(int(entry.name))
    return found


FORK_BOMB = """
import os
while True:
    try:
        if os.fork() == 0:
            os.setsid()
    except OSError:
        pass
"""


def test_fork_bomb_is_bounded_and_leaves_nothing(run: Runner) -> None:
    started = time.monotonic()
    result = run(FORK_BOMB, timeout=2, limits=Limits(processes=32))
    assert result.timed_out and time.monotonic() - started < 10
    time.sleep(0.2)
    assert _processes_of(_run_uid(result)) == []
    assert code.verify_stdio(FORK_BOMB, ANSWER_42, timeout=1).reason == "timeout"


def test_memory_bomb_fails_with_memory_error(run: Runner) -> None:
    program = "x = []\nwhile True:\n    x.append(bytearray(64 << 20))"
    result = run(program, limits=Limits(memory_bytes=512 << 20))
    assert result.returncode == 1 and "MemoryError" in result.stderr
    verdict = code.verify_stdio(program, ANSWER_42, limits=Limits(memory_bytes=512 << 20))
    assert verdict.correct == 0 and "MemoryError" in verdict.explanation


@pytest.mark.usefixtures("sandbox_ready")
def test_infinite_loop_times_out() -> None:
    verdict = code.verify_stdio("while True:\n    pass", ANSWER_42, timeout=1)
    assert (verdict.correct, verdict.reason) == (0.0, "timeout")
    assert "while True" in verdict.explanation


def test_cannot_reach_a_listener_on_the_host_loopback(run: Runner) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        port = listener.getsockname()[1]
        program = (
            "import socket, sys\n"
            "try:\n    socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=1)\n    print('connected')\n"
            "except OSError as err:\n    print('refused', err.errno)\n"
        )
        result = run(program, str(port))
        assert result.stdout.startswith("refused"), result
        assert select.select([listener], [], [], 0.2)[0] == []  # nobody knocked


def test_credentials_in_the_scorer_environment_are_invisible(
    run: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    fakes = {
        "AWS_ACCESS_KEY_ID": "AKIAFAKEFAKEFAKE",
        "AWS_SECRET_ACCESS_KEY": "fake-secret-" + uuid.uuid4().hex,
        "HF_TOKEN": "hf_fake" + uuid.uuid4().hex,
        "MLFLOW_TRACKING_PASSWORD": "mlflow-fake",
    }
    for name, value in fakes.items():
        monkeypatch.setenv(name, value)
    program = (
        "import os, sys\nprint(dict(os.environ))\n"
        "for path in ('/proc/self/environ', '/proc/1/environ', f'/proc/{sys.argv[1]}/environ'):\n"
        "    try:\n        print(open(path, 'rb').read())\n    except OSError as err:\n        print(path, err.errno)\n"
    )
    result = run(program, str(os.getpid()))
    leaked = result.stdout + result.stderr
    assert not any(value in leaked for value in fakes.values())
    assert "AWS_" not in leaked and "HF_TOKEN" not in leaked


def test_writes_outside_the_working_directory_never_reach_the_host(run: Runner, tmp_path: Path) -> None:
    marker = uuid.uuid4().hex
    targets = [
        Path(__file__).parent / f"evil-{marker}",
        Path("/tmp") / f"evil-{marker}",
        Path("/var/tmp") / f"evil-{marker}",
        Path("/dev/shm") / f"evil-{marker}",
        Path("/root") / f"evil-{marker}",
        Path("/etc") / f"evil-{marker}",
        tmp_path / f"evil-{marker}",
    ]
    program = (
        "import sys\nfor path in sys.argv[1:]:\n"
        "    try:\n        open(path, 'w').write('owned')\n    except OSError:\n        pass\n"
    )
    run(program, *map(str, targets))
    assert [target for target in targets if target.exists()] == []


def test_signalling_the_scorer_or_everyone_hurts_only_the_sample(run: Runner) -> None:
    program = (
        "import os, signal, sys\n"
        "for target in (os.getppid(), int(sys.argv[1]), 1):\n"
        "    try:\n        os.kill(target, signal.SIGKILL)\n    except OSError:\n        pass\n"
        "try:\n    os.kill(-1, signal.SIGKILL)\nexcept OSError:\n    pass\n"
        "print(42)\n"
    )
    run(program, str(os.getpid()))
    assert code.verify_stdio(program.replace("sys.argv[1]", str(os.getpid())), ANSWER_42).correct in (
        0.0,
        1.0,
    )
    os.kill(os.getpid(), 0)  # still here


def test_background_processes_die_with_the_sample(run: Runner, tmp_path: Path) -> None:
    marker = uuid.uuid4().hex
    late = [tmp_path / f"late-{marker}", Path("/tmp") / f"late-{marker}", Path("late.txt")]
    program = (
        "import os, sys, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        time.sleep(1.0)\n"
        "        for path in sys.argv[1:]:\n"
        "            try:\n                open(path, 'w').write('late')\n            except OSError:\n                pass\n"
        "        os.write(3, b'late')\n"
        "        print('late', flush=True)\n"
        "    os._exit(0)\n"
        "print('parent done')\n"
    )
    started = time.monotonic()
    result = run(program, *map(str, late), channel=True, timeout=10)
    assert time.monotonic() - started < 3, "the sample lived on through its double-forked child"
    assert result.stdout == "parent done\n" and result.channel == b""
    time.sleep(1.5)
    assert [path for path in late[:2] if path.exists()] == []
    assert _processes_of(_run_uid(result)) == []


def test_no_way_back_to_privileges(run: Runner) -> None:
    program = (
        "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\nresults = []\n"
        "for attempt in (lambda: os.setuid(0), lambda: os.chroot('/'), lambda: os.setgroups([0])):\n"
        "    try:\n        attempt(); results.append('ok')\n    except OSError:\n        results.append('denied')\n"
        "results.append(libc.mount(b'none', b'/tmp', b'tmpfs', 0, None))\n"
        "print(results)\n"
    )
    assert run(program).stdout == "['denied', 'denied', 'denied', -1]\n"


def test_flooding_stdout_and_stderr_is_cut(run: Runner) -> None:
    program = "import sys\nwhile True:\n    sys.stdout.write('y' * 4096); sys.stderr.write('z' * 4096)"
    result = run(program, limits=Limits(output_bytes=1 << 20))
    assert result.killed_reason == "output_limit" and len(result.stdout) < (1 << 20) + 100
