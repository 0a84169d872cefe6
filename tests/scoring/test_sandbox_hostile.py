"""Hostile programs: each is contained, scored wrong for the right reason, and the pool keeps working.

Every attack runs through the same two-worker pool, and a normal sample runs after it. The attacks run in
every mode this machine can give and the minimum isolation level can accept: the namespaces (as root, each
run its own uid; as any other user, inside a user namespace: test_sandbox_nonroot.py runs this file so, as
a restricted pod would) and the Landlock fallback (seccomp, own uid, Landlock), which the tests force with
a launcher of their own, accepting its level as RPT_SANDBOX_MIN=landlock would.
"""

import ctypes
import json
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import REPO, closed_folder, fallback_launcher, fallback_python
from rpt_transfer.scoring import code, sandbox
from rpt_transfer.scoring.sandbox import PYTHON, Limits
from rpt_transfer.scoring.sandbox.levels import NEEDS

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


@pytest.fixture(scope="module", params=["namespaces", "landlock"])
def mode(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "landlock" and os.geteuid() != 0:
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
        launchers.append(fallback_launcher(minimum="landlock"))
        return launchers[-1].run(command, **options)

    yield execute
    for launcher in launchers:
        launcher.close()
    assert pool.map(lambda _: code.verify_stdio(NORMAL_PROGRAM, NORMAL).correct, range(2)) == [1.0, 1.0]


def _run_uid(result: sandbox.ExecResult) -> int:
    return int(re.search(r"uid (\d+)$", result.isolation).group(1))


def _left_over(result: sandbox.ExecResult) -> list[int]:
    """Processes of the run still alive: those of its own uid, or in user-namespace mode (where runs keep
    the scorer's uid) those of ours in another PID namespace below this process."""
    uid = _run_uid(result)
    if uid != os.getuid():
        return _processes_of(uid)
    own = os.readlink("/proc/self/ns/pid")
    left = []
    for pid in _processes_of(uid):
        try:
            if os.readlink(f"/proc/{pid}/ns/pid") != own and _descends_from_us(pid):
                left.append(pid)
        except OSError:  # it ended while we looked
            continue
    return left


def _descends_from_us(pid: int) -> bool:
    while pid > 1:
        if pid == os.getpid():
            return True
        status = Path(f"/proc/{pid}/status").read_text()
        pid = int(re.search(r"^PPid:\s+(\d+)", status, re.MULTILINE).group(1))
    return False


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
    assert _left_over(result) == []
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
    assert _left_over(result) == []


def test_no_way_back_to_privileges(run: Runner) -> None:
    """No capabilities, and no way to gain them: as its own uid, or as uid 0 of a user namespace."""
    program = (
        "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\nresults = []\n"
        "become_root = (lambda: os.setuid(0)) if os.getuid() else (lambda: os.setuid(1))\n"
        "for attempt in (become_root, lambda: os.chroot('/'), lambda: os.setgroups([0])):\n"
        "    try:\n        attempt(); results.append('ok')\n    except OSError:\n        results.append('denied')\n"
        "results.append(libc.mount(b'none', b'/tmp', b'tmpfs', 0, None))\n"
        "status = dict(line.split(':', 1) for line in open('/proc/self/status'))\n"
        "results += [int(status[name], 16) for name in ('CapEff', 'CapPrm', 'CapAmb')]\n"
        "print(results, status['NoNewPrivs'].strip())\n"
    )
    assert run(program).stdout == "['denied', 'denied', 'denied', -1, 0, 0, 0] 1\n"


def test_flooding_stdout_and_stderr_is_cut(run: Runner) -> None:
    program = "import sys\nwhile True:\n    sys.stdout.write('y' * 4096); sys.stderr.write('z' * 4096)"
    result = run(program, limits=Limits(output_bytes=1 << 20))
    assert result.killed_reason == "output_limit" and len(result.stdout) < (1 << 20) + 100


# --- credentials: none can be read, whatever the mode ---------------------------------------------------

READER = """
import sys
for path in sys.argv[1:]:
    try:
        with open(path, 'rb') as file:
            print(path, file.read())
    except OSError as err:
        print(path, 'errno', err.errno)
"""


@pytest.fixture
def secret_files() -> Iterator[tuple[str, list[Path]]]:
    """World-readable (0644) credential files laid out as a Kubernetes secret volume mounts them.

    In the system temp folder, and under /run (where /var/run/secrets lives) where this user may write;
    the token file is a symlink into a `..data` folder, as the kubelet makes it.
    """
    value = f"secret-{uuid.uuid4().hex}"
    roots = [Path(tempfile.mkdtemp(prefix="rpt-secret-"))]
    if os.access("/run", os.W_OK):
        roots.append(Path(tempfile.mkdtemp(prefix="rpt-secret-", dir="/run")))
    paths = []
    try:
        for root in roots:
            root.chmod(0o755)
            data = root / "..2026_12_06_00_00_00.000000001"
            data.mkdir()
            data.chmod(0o755)
            (data / "token").write_text(value)
            (data / "token").chmod(0o644)
            (root / "..data").symlink_to(data.name)
            (root / "token").symlink_to("..data/token")
            paths += [root / "token", data / "token"]
        yield value, paths
    finally:
        for root in roots:
            shutil.rmtree(root)


def test_world_readable_credential_files_outside_the_system_paths_are_unreadable(
    run: Runner, secret_files: tuple[str, list[Path]]
) -> None:
    value, paths = secret_files
    readable_here = [  # by any user: open folders, a 0644 file
        path for path in paths if closed_folder(path.resolve().parent) is None and path.stat().st_mode & 0o004
    ]
    assert readable_here and all(path.read_text() == value for path in readable_here)  # any user could
    result = run(READER, *map(str, [*paths, Path(__file__), REPO / "pyproject.toml"]))
    assert value not in result.stdout + result.stderr
    assert result.stdout.count(" errno ") == len(paths) + 2, result.stdout


PROC_READER = """
import os, sys
pids = {1, os.getppid(), int(sys.argv[1])}
try:
    pids.update(int(name) for name in os.listdir('/proc') if name.isdigit())
except OSError as err:
    print('/proc', 'errno', err.errno)
for pid in sorted(pids):
    for name in ('cmdline', 'environ', 'root/proc/self/environ'):
        try:
            with open(f'/proc/{pid}/{name}', 'rb') as file:
                print(pid, name, file.read())
        except OSError as err:
            print(pid, name, 'errno', err.errno)
"""

SCORER = """
import json, os, sys
from rpt_transfer.scoring import sandbox
mode, program, python, token = sys.argv[1:]
own = open('/proc/self/cmdline', 'rb').read() + open('/proc/self/environ', 'rb').read()
assert token.encode() in own and os.environ['RPT_TEST_TOKEN'].encode() in own  # there to be stolen
if mode == 'landlock':
    launcher = sandbox.Launcher(namespaces=False, python=python, minimum='landlock')
else:
    launcher = sandbox.Launcher()
result = launcher.run((*sandbox.PYTHON, '-c', program, str(os.getpid())), timeout=10)
launcher.close()
print(json.dumps([launcher.level, result.stdout, result.stderr]))
"""


def test_the_scorers_proc_entries_and_everyone_elses_are_unreadable(mode: str) -> None:
    """A scorer started with a token in its command line and its environment: /proc gives neither away."""
    token, env_token = f"--token=cli-{uuid.uuid4().hex}", f"env-{uuid.uuid4().hex}"
    python = fallback_python() if mode == "landlock" else sys.executable
    env = {"PATH": os.environ["PATH"], "RPT_TEST_TOKEN": env_token, "AWS_SECRET_ACCESS_KEY": env_token}
    env["PYTHONPATH"] = str(REPO / "src")
    scorer = [sys.executable, "-c", SCORER, mode, PROC_READER, python, token]
    done = subprocess.run(scorer, capture_output=True, text=True, env=env, timeout=60, cwd="/", check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    level, stdout, stderr = json.loads(done.stdout.splitlines()[-1])
    assert level in (("namespaces", "userns") if mode == "namespaces" else ("landlock",))
    assert " cmdline " in stdout and not stderr  # it looked
    for secret in (token, env_token, token.encode().hex()):
        assert secret not in stdout, stdout


def test_a_mode_that_cannot_start_or_is_below_the_minimum_refuses_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Namespaces forced off: as root the fallback runs below the default minimum; otherwise none can run."""
    monkeypatch.delenv("RPT_SANDBOX_MIN", raising=False)
    root = os.geteuid() == 0
    python = fallback_python() if root else sys.executable
    with pytest.raises(sandbox.SandboxError) as refused:
        sandbox.Launcher(namespaces=False, python=python)
    message = str(refused.value)
    assert "\n" not in message and "namespaces turned off" in message and NEEDS["userns"] in message
    assert ("below the minimum 'userns'" if root else "the fallback needs root") in message


KEY_READER = """
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
keyctl = {'x86_64': 250, 'aarch64': 219}[__import__('os').uname().machine]
found = libc.syscall(keyctl, 10, ctypes.c_long(-3), b'user', sys.argv[1].encode(), 0)  # KEYCTL_SEARCH @s
for key in {found, int(sys.argv[2])}:
    buffer = ctypes.create_string_buffer(256)
    size = libc.syscall(keyctl, 11, ctypes.c_long(key), buffer, 256)  # KEYCTL_READ
    print(key, size, buffer.raw[: max(size, 0)], ctypes.get_errno())
"""


def test_keys_in_the_scorers_session_keyring_are_unreadable(run: Runner) -> None:
    """Kernel keyrings (Kerberos tickets, file-system keys) belong to no namespace: a run must not read them."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    add_key, keyctl = {"x86_64": (248, 250), "aarch64": (217, 219)}[os.uname().machine]
    name, value = f"rpt-test-{uuid.uuid4().hex}", f"key-{uuid.uuid4().hex}".encode()
    key = libc.syscall(add_key, b"user", name.encode(), value, len(value), ctypes.c_long(-3))  # @s
    if key < 0:
        pytest.skip(f"no kernel keyrings here (add_key: {os.strerror(ctypes.get_errno())})")
    try:
        result = run(KEY_READER, name, str(key))
    finally:
        libc.syscall(keyctl, 21, ctypes.c_long(key))  # KEYCTL_INVALIDATE: leave the session keyring as it was
    assert result.success and result.stdout.count("\n") >= 1, result.stderr
    assert value.decode() not in result.stdout


SOCKET_CALLER = """
import socket, sys
stream, datagram = sys.argv[1:]
attempts = {
    'connect': lambda: socket.socket(socket.AF_UNIX).connect(stream),
    'datagram': lambda: socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b'hello', datagram),
    'pair': lambda: socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)[0].sendto(b'hello', datagram),
}
for name, attempt in attempts.items():
    try:
        attempt()
        print(name, 'reached')
    except OSError as err:
        print(name, 'refused', err.errno)
a, b = socket.socketpair()
a.sendall(b'ok')
print('pair', b.recv(2).decode())
"""


def test_host_unix_sockets_are_unreachable_even_when_open_to_everyone(run: Runner) -> None:
    """An agent's socket (a SPIFFE workload socket hands credentials to whoever connects) stays out of reach."""
    folder = Path(tempfile.mkdtemp(prefix="rpt-agent-"))
    folder.chmod(0o755)
    listener = socket.socket(socket.AF_UNIX)
    datagram = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        listener.bind(str(folder / "agent.sock"))
        listener.listen()
        datagram.bind(str(folder / "log.sock"))
        for path in folder.iterdir():
            path.chmod(0o777)
        result = run(SOCKET_CALLER, str(folder / "agent.sock"), str(folder / "log.sock"))
        assert select.select([listener, datagram], [], [], 0.2)[0] == []  # nobody knocked
    finally:
        listener.close()
        datagram.close()
        shutil.rmtree(folder)
    lines = result.stdout.splitlines()
    assert [line.split()[:2] for line in lines[:3]] == [
        [name, "refused"] for name in ("connect", "datagram", "pair")
    ]
    assert lines[3:] == ["pair ok"], result.stderr  # socket pairs within the run still work
