"""Run untrusted (model-written) programs with limits, no network, no credentials and full cleanup.

Every command runs through a *launcher*: a small, single-threaded helper process that this module starts
(one per host thread, lazily) with a scrubbed environment. For each run the launcher forks a child that
isolates itself and then executes the command. Forking from the small launcher instead of the scoring
process keeps each start at a few milliseconds, never forks a process that runs threads, and lets Python
programs start *warm*: a command that begins with `PYTHON` runs in the forked child itself, exactly as
`python -I -S -B <script or -c code>` would, without starting a new interpreter (a `.pyc` script runs
as `python file.pyc` runs it).

Isolation of each run, where the kernel allows it (root, or any user with unprivileged user namespaces):

- network: a network namespace with only a loopback, so nothing outside is reachable (one per launcher,
  which runs one command at a time: see `_enter_launcher_namespaces`);
- processes: a fresh PID namespace whose PID 1 is the command; when it ends or is killed, the kernel
  kills every process it started, including double-forked ones that left its session. (As a PID 1 it
  ignores SIGXCPU, so the CPU limit ends it with SIGKILL; the result still says "cpu_limit".)
- files: a minimal root, read-only, that holds only system directories (/usr, /bin, /lib*), a few /etc
  entries (loader cache, passwd, time zone, certificates), this Python and its virtual environment, a
  /dev with null, zero, full, random and urandom, a /proc of its own, and a size-capped tmpfs as the
  working directory, /tmp, /var/tmp and /dev/shm. Home directories, the repository, data sets (with
  their expected outputs) and credentials files are not there at all;
- identity: a fresh unprivileged uid per run (as root) or no capabilities (user namespace), and
  `no_new_privs`; IPC objects live in a fresh IPC namespace and vanish with the run;
- limits: RLIMIT_CPU, RLIMIT_AS, RLIMIT_NPROC (counted for the run's own uid or user namespace, so it
  binds even when the scorer is root), RLIMIT_FSIZE, RLIMIT_NOFILE, RLIMIT_CORE=0, and a wall-clock
  timeout; the environment holds only PATH, locale, HOME/TMPDIR (the working directory) and thread-count
  variables; names that look like credentials are refused even when passed explicitly.

Fallback when namespaces are unavailable (e.g. a container without CAP_SYS_ADMIN, running as root): a
seccomp filter refuses every socket except Unix ones (and io_uring); Landlock, where the kernel has it,
limits reading to the same system paths and Python and writing to the working directory (a host temp
dir), and stops signals to processes outside the run; the run's unique uid bounds processes, lets the
launcher kill every straggler with `kill(-1)` as that uid and reap them (it is their subreaper), and
lets it delete what that uid left in /tmp, /var/tmp and /dev/shm. The fallback needs a Python that
other users can read (not one under /root) and refuses to start otherwise. Without root and without
user namespaces the sandbox refuses to start. `ExecResult.isolation` names what was in force.

Parallel scoring: `SandboxPool` (two workers per core; each worker thread has its own launcher) or
`run_many`, which keeps one such pool per process so its launchers stay warm between calls.
"""

import _thread
import atexit
import contextlib
import ctypes
import fcntl
import functools
import importlib.util
import itertools
import json
import marshal
import math
import os
import resource
import selectors
import signal
import socket
import stat
import struct
import sys
import time
import types
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple, NoReturn, TypeVar

from rpt_transfer.errors import RptError

if TYPE_CHECKING:  # Imported where used, not here: the launcher loads this module too and forks once or
    # twice per run, and every fork pays for what it holds. threading (which subprocess and
    # concurrent.futures import) adds at-fork hooks worth ~0.5 ms a fork; hashlib/secrets map OpenSSL
    # (+5.6 MB), tempfile/shutil (+2.5 MB), pathlib (+2 MB), traceback (+1.6 MB).
    import subprocess

PYTHON: tuple[str, ...] = (sys.executable, "-I", "-S", "-B")
"""Prefix for Python commands; runs with this prefix start warm inside the launcher's fork."""
TRUNCATION_MARKER = "\n[output truncated: more than {limit} bytes]"


class SandboxError(RptError):
    """The sandbox cannot run at all here (no way to deny the network, a launcher that died)."""


class Limits(NamedTuple):
    """Resource limits of one run; each process of the run gets the per-process ones."""

    cpu_seconds: float = 10.0
    """RLIMIT_CPU per process (rounded up); a run's PID 1 ignores SIGXCPU and dies by SIGKILL a second
    later; either way the result says "cpu_limit"."""
    memory_bytes: int = 2 << 30
    """RLIMIT_AS per process: allocations beyond it fail (MemoryError in Python)."""
    processes: int = 64
    """RLIMIT_NPROC: processes and threads of the run together."""
    file_bytes: int = 16 << 20
    """RLIMIT_FSIZE: the largest file the run may write."""
    disk_bytes: int = 64 << 20
    """Size of the private tmpfs that holds the working directory (namespaces only)."""
    open_files: int = 256
    """RLIMIT_NOFILE."""
    output_bytes: int = 4 << 20
    """Kept bytes of stdout, stderr and the channel each; more kills the run (reason "output_limit")."""


class ExecResult(NamedTuple):
    """What one run did, as seen from outside it."""

    success: bool
    """Exit status 0, not killed, no limit hit."""
    returncode: int
    """Exit status, or minus the signal number that ended the command."""
    stdout: str
    """Standard output (UTF-8, invalid bytes replaced), cut at the output limit with a marker."""
    stderr: str
    """Standard error, like stdout."""
    timed_out: bool
    """The wall-clock timeout expired and the run was killed."""
    killed_reason: str | None
    """None, "timeout", "output_limit", "cpu_limit", "file_size_limit" or "signal <NAME>"."""
    isolation: str
    """Which denials were in force, network first: "netns, ..." or "seccomp (...), ..."."""
    channel: bytes = b""
    """Bytes written to file descriptor 3 when the run was started with `channel=True`."""


# ---------------------------------------------------------------------------------------------------------
# Host side: the public API.


def run(
    cmd: Sequence[str],
    *,
    input: bytes | str | None = None,  # the conventional name (subprocess, inspect)
    files: Mapping[str, str | bytes] | None = None,
    timeout: float,
    limits: Limits | None = None,
    env: Mapping[str, str] | None = None,
    channel: bool = False,
) -> ExecResult:
    """Run `cmd` in the sandbox of this thread's launcher; see the module docstring for the isolation.

    Args:
        cmd: the program and its arguments; a command starting with `PYTHON` starts warm.
        input: bytes fed to standard input, then end of file.
        files: relative paths and contents placed in the (fresh, empty) working directory.
        timeout: wall-clock seconds before the whole run is killed (`timed_out`, reason "timeout").
        limits: resource limits; `Limits()` when None.
        env: extra environment variables; names that look like credentials are refused.
        channel: give the command a pipe on file descriptor 3 whose contents come back in `channel`.

    Output beyond `limits.output_bytes` on any stream kills the run (reason "output_limit"); what was kept
    ends with a truncation marker. The working directory and everything the run started are gone when
    this returns.
    """
    return _thread_launcher().run(
        cmd, input=input, files=files, timeout=timeout, limits=limits, env=env, channel=channel
    )


T = TypeVar("T")
R = TypeVar("R")


class SandboxPool:
    """Threads sized to the cores, each with its own launcher, so that scoring runs in parallel.

    The default is two workers per core: a run spends much of its time waiting for processes to start
    and end, which another worker's run can use. A hostile run can only end its own process tree, so
    workers and launchers live on after one.
    """

    def __init__(self, workers: int | None = None) -> None:
        from concurrent.futures import ThreadPoolExecutor  # host only; see the TYPE_CHECKING note

        self.workers = workers or 2 * (os.cpu_count() or 1)
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="sandbox")

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """`fn` over `items` in parallel, results in order; an exception in `fn` propagates."""
        return list(self._executor.map(fn, items))

    def close(self) -> None:
        """Wait for running work and stop the workers (their launchers exit with them)."""
        self._executor.shutdown(wait=True)

    def __enter__(self) -> "SandboxPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_many(fn: Callable[[T], R], items: Iterable[T], workers: int | None = None) -> list[R]:
    """`fn` (which calls `run` or a verifier) over `items` in parallel, results in order.

    Uses one process-wide pool, started on first use, so its launchers stay warm from one call to the
    next (starting one costs 0.1-0.2 s); `workers` asks for a temporary pool of that size instead.
    """
    if workers is not None:
        with SandboxPool(workers) as pool:
            return pool.map(fn, items)
    return _shared_pool().map(fn, items)


_shared: dict[int, SandboxPool] = {}
"""The pool behind `run_many`, keyed by the pid that made it (a forked child makes its own)."""
_shared_lock = _thread.allocate_lock()


def _shared_pool() -> SandboxPool:
    with _shared_lock:
        if os.getpid() not in _shared:
            _shared.clear()
            _shared[os.getpid()] = SandboxPool()
        return _shared[os.getpid()]


_local = _thread._local()  # threading.local without importing threading (see the TYPE_CHECKING note)


def _thread_launcher() -> "Launcher":
    """The launcher of this thread, started on first use or after it died or this process forked."""
    launcher = getattr(_local, "launcher", None)
    if launcher is None or not launcher.usable():
        launcher = _local.launcher = Launcher()
    return launcher


_SECRET_WORDS = ("TOKEN", "KEY", "SECRET", "PASSW", "CREDENTIAL", "AUTH")
_SECRET_PREFIXES = ("AWS_", "HF_", "HUGGING", "MLFLOW_", "OPENAI_", "ANTHROPIC_", "AZURE_", "GOOGLE_")


def _sandbox_env(extra: Mapping[str, str] | None) -> dict[str, str]:
    """The whole environment of a run: fixed basics plus `extra`, refusing credential-like names."""
    env = {
        "PATH": f"{os.path.dirname(sys.executable)}:/usr/local/bin:/usr/bin:/bin",  # `python` is this one
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONIOENCODING": "utf-8",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "NUMEXPR_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
    }
    for name, value in (extra or {}).items():
        upper = name.upper()
        if upper.startswith(_SECRET_PREFIXES) or any(word in upper for word in _SECRET_WORDS):
            raise ValueError(f"refusing to pass {name!r} into the sandbox: it looks like a credential")
        env[name] = value
    return env


def _write_files(root: str, files: Mapping[str, str | bytes]) -> None:
    """Place `files` under `root`; paths must be relative and stay inside it."""
    for name, content in files.items():
        parts = [part for part in name.split("/") if part not in ("", ".")]
        if not parts or name.startswith("/") or ".." in parts:
            raise ValueError(f"sandbox file name {name!r} must be a relative path inside the working dir")
        path = os.path.join(root, *parts)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as file:
            file.write(content.encode() if isinstance(content, str) else content)


WARM_MODULES = ("traceback", "linecache", "tokenize", "heapq", "bisect", "string", "copy")
"""Imported by the launcher, so warm runs find them loaded: every failing test formats a traceback (a
cold import of traceback costs more than the rest of the run), and programs and tests often use the
others. Each module also makes every fork a little dearer, so the list stays short."""
_THIS_FILE = os.path.realpath(__file__)
_MAX_REQUEST = 64 << 10
"""Bytes of command line a request may carry (one socket message); programs belong in `files`."""
_BOOT = (
    "import importlib.util, sys\n"
    "path = sys.path[:]\n"
    "sys.path.insert(0, {src!r})\n"
    "spec = importlib.util.spec_from_file_location('_rpt_sandbox', {module!r})\n"
    "module = importlib.util.module_from_spec(spec)\n"
    "sys.modules['_rpt_sandbox'] = module\n"
    "spec.loader.exec_module(module)\n"
    "sys.path[:] = path\n"
    "del path, spec\n"
    "for name in module.WARM_MODULES:\n"
    "    __import__(name)\n"
    "import gc\n"
    "gc.freeze()  # launcher objects stay out of collections in the forks: fewer copied pages\n"
    "module._launcher_main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == '1', sys.argv[4:])\n"
)


class Launcher:
    """One launcher process and the socket to it; runs one command at a time (one per host thread)."""

    def __init__(self, namespaces: bool = True, python: str = sys.executable) -> None:
        """Start the launcher; `namespaces=False` forces the fallback, `python` runs the warm commands."""
        host, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        boot = _BOOT.format(
            src=os.path.dirname(os.path.dirname(os.path.dirname(_THIS_FILE))), module=_THIS_FILE
        )
        argv = [python, *PYTHON[1:], "-c", boot, str(child.fileno()), str(os.getpid())]
        argv += ["1" if namespaces else "0", *_interpreter_paths()]
        self._process = _start_launcher(argv, child)
        child.close()
        self._sock = host
        self._owner = os.getpid()
        hello = self._receive(time.monotonic() + 60)[0]
        if "error" in hello:
            self.close()
            raise SandboxError(hello["error"])
        self.isolation: str = hello["isolation"]
        self._finalizer = weakref.finalize(self, _close_launcher, self._sock, self._process)

    def usable(self) -> bool:
        """False after the launcher died or when this object was inherited through fork."""
        return self._owner == os.getpid() and self._process.poll() is None

    def close(self) -> None:
        """Stop the launcher; runs in flight are killed with it."""
        _close_launcher(self._sock, self._process)

    def run(
        self,
        cmd: Sequence[str],
        *,
        input: bytes | str | None = None,  # same signature as `run`
        files: Mapping[str, str | bytes] | None = None,
        timeout: float,
        limits: Limits | None = None,
        env: Mapping[str, str] | None = None,
        channel: bool = False,
    ) -> ExecResult:
        """Run `cmd` in a fresh sandbox; see the module function `run`."""
        if not cmd:
            raise ValueError("empty command")
        if sum(len(part) for part in cmd) > _MAX_REQUEST:
            raise ValueError("command too long for the launcher; pass large programs in `files`")
        limits = limits or Limits()
        environment = _sandbox_env(env)
        data = input.encode() if isinstance(input, str) else (input or b"")
        import shutil  # host only; see the TYPE_CHECKING note
        import tempfile

        staging = tempfile.mkdtemp(prefix="rpt-sandbox-")
        try:
            _write_files(staging, files or {})
            request = {
                "cmd": list(cmd), "warm": list(PYTHON), "env": environment, "staging": staging,
                "limits": limits._asdict(),
            }  # fmt: skip
            return self._execute(request, data, timeout, limits.output_bytes, channel)
        finally:
            shutil.rmtree(staging)

    def _execute(self, request: dict, data: bytes, timeout: float, cap: int, channel: bool) -> ExecResult:
        """Hand the child ends of fresh pipes to the launcher, then feed and read them until the end."""
        pipes = [os.pipe() for _ in range(4 if channel else 3)]
        staged = os.open(request["staging"], os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        child_fds = [staged, pipes[0][0]] + [write for _, write in pipes[1:]]
        socket.send_fds(self._sock, [json.dumps(request).encode()], child_fds)
        for fd in child_fds:
            os.close(fd)
        streams = _Streams(pipes[0][1], [read for read, _ in pipes[1:]], data, cap)
        deadline = time.monotonic() + timeout
        try:
            started, fds = self._receive(deadline + 30)
            if "error" in started:
                raise SandboxError(f"sandbox setup failed: {started['error']}")
            with _Watch(fds[0]) as watch:
                status = self._pump(watch, streams, deadline)
        except BaseException:
            self.close()  # the launcher may still owe us messages: never reuse it out of step
            raise
        finally:
            streams.close_all()
        if status.get("error"):  # the last message came: the launcher is in step and stays
            raise SandboxError(f"sandbox setup failed: {status['error']}")
        reason = watch.reason or _limit_reason(status, request["limits"]["cpu_seconds"])
        return _result(
            status["status"], streams.buffers, cap, reason, f"{self.isolation}, uid {started['uid']}"
        )

    def _pump(self, watch: "_Watch", streams: "_Streams", deadline: float) -> dict:
        """Feed stdin, collect output, enforce deadline and output cap, until exit status and EOF."""
        selector = streams.selector
        selector.register(self._sock, selectors.EVENT_READ)
        status: dict | None = None
        while status is None or selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if status is not None:
                    break  # stragglers hold a pipe open after the exit; stop reading
                if watch.reason is not None:
                    raise SandboxError("the sandbox launcher did not report a killed run's exit")
                watch.kill("timeout")
                deadline = time.monotonic() + 10
                continue
            for key, _ in selector.select(remaining):
                if key.fileobj is self._sock:
                    status = self._status_message(selector)
                    deadline = min(deadline, time.monotonic() + 2)
                elif streams.handle(key.fd):
                    watch.kill("output_limit")
        return status

    def _status_message(self, selector: selectors.BaseSelector) -> dict:
        """The exit status and CPU seconds the launcher reports once it has reaped the run."""
        message = self._sock.recv(65536)
        if not message:
            raise SandboxError("the sandbox launcher died during a run")
        selector.unregister(self._sock)
        return json.loads(message)

    def _receive(self, deadline: float) -> tuple[dict, list[int]]:
        """One message (and passed descriptors) from the launcher, or SandboxError."""
        self._sock.settimeout(max(deadline - time.monotonic(), 0.001))
        try:
            message, fds, _, _ = socket.recv_fds(self._sock, 65536, 4)
        except TimeoutError:
            raise SandboxError("the sandbox launcher did not answer in time") from None
        finally:
            self._sock.settimeout(None)
        if not message:
            raise SandboxError("the sandbox launcher exited; see its stderr")
        return json.loads(message), fds


def _start_launcher(argv: list[str], child: socket.socket) -> "subprocess.Popen[bytes]":
    """Start the launcher process with a scrubbed environment, in its own session."""
    import subprocess  # host only; see the TYPE_CHECKING note

    return subprocess.Popen(
        argv,
        env=_sandbox_env(None),
        pass_fds=[child.fileno()],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        cwd="/",
        start_new_session=True,
    )


def _close_launcher(sock: socket.socket, process: "subprocess.Popen[bytes]") -> None:
    """Close the socket (the launcher exits on end of file) and reap the process."""
    import subprocess  # host only; see the TYPE_CHECKING note

    sock.close()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:  # a stuck launcher must not block shutdown
        process.kill()
        process.wait()


class _Watch:
    """The running child, by pidfd (immune to pid reuse); kills it once, remembering why."""

    def __init__(self, pidfd: int) -> None:
        self.pidfd = pidfd
        self.reason: str | None = None

    def kill(self, reason: str) -> None:
        """SIGKILL the child; the kernel (PID namespace) or the launcher (by uid) kills the rest."""
        if self.reason is None:
            self.reason = reason
        with contextlib.suppress(ProcessLookupError):  # already gone: nothing left to kill
            signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)

    def __enter__(self) -> "_Watch":
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:
            self.kill("error")
        os.close(self.pidfd)


class _Streams:
    """The host ends of one run's pipes: stdin to feed, outputs to collect; each closed exactly once.

    Closing exactly once matters: other threads open descriptors all the time, and closing a number
    twice could close one of theirs.
    """

    def __init__(self, stdin: int, readers: list[int], data: bytes, cap: int) -> None:
        self.selector = selectors.DefaultSelector()
        self.buffers = [bytearray() for _ in readers]
        self._index = {fd: index for index, fd in enumerate(readers)}
        self._open = {stdin, *readers}
        self._stdin, self._data, self._offset, self._cap = stdin, data, 0, cap
        for fd in readers:
            self.selector.register(fd, selectors.EVENT_READ)
        if data:
            os.set_blocking(stdin, False)
            self.selector.register(stdin, selectors.EVENT_WRITE)
        else:
            self._close(stdin)

    def handle(self, fd: int) -> bool:
        """Write or read what is ready on `fd`; True once an output passed the cap (kill the run)."""
        if fd == self._stdin:
            self._feed()
            return False
        chunk = os.read(fd, 65536)
        if not chunk:
            self._close(fd)
            return False
        buffer = self.buffers[self._index[fd]]
        buffer += chunk
        return len(buffer) > self._cap

    def _feed(self) -> None:
        try:
            self._offset += os.write(self._stdin, self._data[self._offset : self._offset + 65536])
        except BrokenPipeError:  # the program need not read all its input
            self._offset = len(self._data)
        if self._offset >= len(self._data):
            self._close(self._stdin)

    def _close(self, fd: int) -> None:
        if fd in self.selector.get_map():
            self.selector.unregister(fd)
        if fd in self._open:
            self._open.remove(fd)
            os.close(fd)

    def close_all(self) -> None:
        for fd in list(self._open):
            self._close(fd)
        self.selector.close()


_SIGNAL_REASONS = {signal.SIGXCPU: "cpu_limit", signal.SIGXFSZ: "file_size_limit"}


def _limit_reason(status: dict, cpu_seconds: float) -> str | None:
    """Name a kill after the CPU limit (a PID 1 ignores SIGXCPU, so SIGKILL at the hard limit ends it)."""
    code = status["status"]
    killed = os.WIFSIGNALED(code) and os.WTERMSIG(code) in (signal.SIGKILL, signal.SIGXCPU)
    return "cpu_limit" if killed and status["cpu"] >= max(1, math.ceil(cpu_seconds)) - 0.05 else None


def _result(
    status: int, streams: list[bytearray], cap: int, reason: str | None, isolation: str
) -> ExecResult:
    """Assemble the ExecResult: decode and cut the streams, name why the run ended."""
    returncode = os.waitstatus_to_exitcode(status)
    if reason is None and returncode < 0:
        reason = _SIGNAL_REASONS.get(-returncode, f"signal {signal.Signals(-returncode).name}")

    def text(data: bytearray) -> str:
        cut = data[:cap].decode("utf-8", errors="replace")
        return cut + TRUNCATION_MARKER.format(limit=cap) if len(data) > cap else cut

    return ExecResult(
        success=returncode == 0 and reason is None,
        returncode=returncode,
        stdout=text(streams[0]),
        stderr=text(streams[1]),
        timed_out=reason == "timeout",
        killed_reason=reason,
        isolation=isolation,
        channel=bytes(streams[2][:cap]) if len(streams) > 2 else b"",
    )


# ---------------------------------------------------------------------------------------------------------
# Kernel interface (ctypes): namespaces, mounts, prctl, seccomp, capabilities.

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
CLONE_NEWNS, CLONE_NEWIPC = 0x00020000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND, MS_REC, MS_PRIVATE = 2, 4, 8, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_SECCOMP, PR_SET_NO_NEW_PRIVS = 1, 4, 22, 38
PR_SET_CHILD_SUBREAPER = 36
_ARCH = {  # audit arch, socket(), io_uring_setup(), mount_setattr(), pivot_root()
    "x86_64": (0xC000003E, 41, 425, 442, 155),
    "aarch64": (0xC00000B7, 198, 425, 442, 41),
}


def _check(result: int, what: str) -> None:
    """Raise OSError with errno when a libc call failed."""
    if result == -1:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def _unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    def raw(text: str | None) -> bytes | None:
        return text.encode() if text is not None else None

    _check(_libc.mount(raw(source), raw(target), raw(fstype), flags, raw(data)), f"mount {target}")


class _MountAttr(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint64) for name in ("attr_set", "attr_clr", "propagation", "userns_fd")]


def _read_only_tree(path: str) -> None:
    """Make every mount under `path` read-only in one call (mount_setattr, Linux 5.12+)."""
    attr = _MountAttr(1, 0, 0, 0)  # MOUNT_ATTR_RDONLY
    number = _ARCH[os.uname().machine][3]
    _check(_libc.syscall(number, -100, path.encode(), 0x8000, ctypes.byref(attr), 32), "mount_setattr")


def _prctl(option: int, value: int) -> None:
    """prctl(2) with one argument."""
    _check(_libc.prctl(option, ctypes.c_ulong(value), 0, 0, 0), f"prctl {option}")


def _deny_network_seccomp() -> None:
    """Install a seccomp filter: socket() only for AF_UNIX, no io_uring, no foreign syscall ABIs."""
    arch, nr_socket, nr_io_uring, *_ = _ARCH[os.uname().machine]
    allow, deny = 0x7FFF0000, 0x00050000 | 13  # SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO | EACCES
    load, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06
    program = [
        (load, 0, 0, 4),  # arch
        (jeq, 1, 0, arch),
        (ret, 0, 0, deny),
        (load, 0, 0, 0),  # syscall number
        (jge, 5, 0, 0x40000000),  # x32 ABI
        (jeq, 5, 0, nr_io_uring),
        (jeq, 1, 0, nr_socket),
        (ret, 0, 0, allow),
        (load, 0, 0, 16),  # socket(domain, ...)
        (jeq, 1, 0, socket.AF_UNIX),
        (ret, 0, 0, deny),
        (ret, 0, 0, allow),
    ]
    code = b"".join(struct.pack("HBBI", *op) for op in program)
    buffer = ctypes.create_string_buffer(code)
    fprog = struct.pack("HxxxxxxQ", len(program), ctypes.addressof(buffer))
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    _check(_libc.prctl(PR_SET_SECCOMP, 2, ctypes.c_char_p(fprog), 0, 0), "seccomp")


def _drop_capabilities() -> None:
    """Clear all capability sets (user-namespace mode, where the run stays uid 0 inside)."""
    header = struct.pack("Ii", 0x20080522, 0)
    data = ctypes.create_string_buffer(24)
    _check(_libc.capset(ctypes.c_char_p(header), data), "capset")


def _enter_user_namespace() -> None:
    """Become root of a new user namespace mapped to the current user (unprivileged launchers)."""
    uid, gid = os.getuid(), os.getgid()
    _unshare(CLONE_NEWUSER)
    for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
        with open(f"/proc/self/{name}", "w") as file:
            file.write(text)


def _loopback_up() -> None:
    """Bring up `lo` in the launcher's network namespace, so local servers inside a run work."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        fcntl.ioctl(probe, 0x8914, struct.pack("16sH22x", b"lo", 0x1 | 0x8 | 0x40))  # SIOCSIFFLAGS


# ---------------------------------------------------------------------------------------------------------
# Launcher side: one process per host launcher; forks, isolates and starts each run.


class _Mode(NamedTuple):
    """What the launcher found it can do here, decided once at start."""

    namespaces: bool
    switch_uid: bool
    landlock: int
    binds: tuple[str, ...]
    description: str


def _launcher_main(sock_fd: int, parent: int, want_namespaces: bool, binds: list[str]) -> None:
    """Serve run requests until the host closes the socket; dies with the host thread that started it."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(0)
    _prctl(PR_SET_CHILD_SUBREAPER, 1)  # orphans of a run come to us to be reaped (fallback mode)
    sock = socket.socket(fileno=sock_fd)
    own_pid_ns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    binds = sorted({*binds, *_interpreter_paths()})
    try:
        mode = _decide_mode(want_namespaces, tuple(binds), own_pid_ns)
    except SandboxError as err:
        sock.send(json.dumps({"error": str(err)}).encode())
        return
    sock.send(json.dumps({"isolation": mode.description}).encode())
    while True:
        message, fds, _, _ = socket.recv_fds(sock, 1 << 20, 5)
        if not message:
            return
        _serve(sock, json.loads(message), fds, mode, own_pid_ns)


def _serve(sock: socket.socket, request: dict, fds: list[int], mode: _Mode, own_pid_ns: int) -> None:
    """Start one run and report its pid (and a pidfd) at once; reap it, clean up, report how it ended.

    Reporting before the child has finished isolating itself lets the host feed its stdin meanwhile;
    a setup failure comes back in the final message instead (the child then exits with 127 before
    running anything).
    """
    uid = _run_uid(mode)
    pid, status_r = _fork_run(request, fds, uid, mode, own_pid_ns, sock)
    pidfd = os.pidfd_open(pid)
    socket.send_fds(sock, [json.dumps({"pid": pid, "uid": uid}).encode()], [pidfd])
    os.close(pidfd)
    error = _setup_error(status_r)
    _, status, usage = os.wait4(pid, 0)
    if not mode.namespaces:
        _kill_and_reap(uid)
        _remove_owned(uid, request["staging"])
    ending = {"status": status, "cpu": usage.ru_utime + usage.ru_stime, "error": error}
    sock.send(json.dumps(ending).encode())


def _run_uid(mode: _Mode) -> int:
    """A fresh unprivileged uid for one run (as root), else this process's uid."""
    return 1_000_000_000 + int.from_bytes(os.urandom(4)) % (1 << 30) if mode.switch_uid else os.getuid()


def _fork_run(
    request: dict, fds: list[int], uid: int, mode: _Mode, own_pid_ns: int, sock: socket.socket | None
) -> tuple[int, int]:
    """Fork the run (as PID 1 of a new PID namespace when possible); its pid and its status pipe."""
    status_r, status_w = os.pipe2(os.O_CLOEXEC)
    if mode.namespaces and not mode.switch_uid:
        pid = _fork_via_helper(request, fds, uid, mode, status_w)
    else:
        if mode.namespaces:
            _unshare(CLONE_NEWPID)  # the next fork becomes PID 1 of a fresh PID namespace
        pid = os.fork()
        if pid == 0:
            _child(request, fds, uid, mode, status_w, sock)
        if mode.namespaces:
            _check(_libc.setns(own_pid_ns, CLONE_NEWPID), "setns")  # back, for the next run
    for fd in (*fds, status_w):
        os.close(fd)
    return pid, status_r


def _fork_via_helper(request: dict, fds: list[int], uid: int, mode: _Mode, status_w: int) -> int:
    """User-namespace mode: a helper makes the PID namespace and forks the run, then exits at once.

    The launcher cannot reset its own namespace for the next child there (setns back to a PID namespace
    of the initial user namespace needs privileges it lacks). The run is re-parented to the launcher,
    its subreaper, so it can still be waited for.
    """
    pid_r, pid_w = os.pipe2(os.O_CLOEXEC)
    helper = os.fork()
    if helper == 0:
        os.close(pid_r)
        _unshare(CLONE_NEWPID)
        run = os.fork()
        if run == 0:
            os.close(pid_w)
            _child(request, fds, uid, mode, status_w, None)
        os.write(pid_w, str(run).encode())
        os._exit(0)
    os.close(pid_w)
    with os.fdopen(pid_r, "rb") as pipe:
        pid = int(pipe.read())
    os.waitpid(helper, 0)
    return pid


def _setup_error(status_r: int) -> str:
    """What the child wrote to its status pipe before it closed (exec or warm start): "" when all is well."""
    with os.fdopen(status_r, "rb") as status_pipe:
        return status_pipe.read().decode(errors="replace")


def _decide_mode(want_namespaces: bool, binds: tuple[str, ...], own_pid_ns: int) -> _Mode:
    """Probe namespaces (entering a user namespace first when not root), else the uid/seccomp fallback.

    With namespaces, the launcher then moves itself into the minimal read-only root, once; each run
    only adds its private /tmp and /proc to a copy of it.
    """
    root = os.geteuid() == 0
    problem = "namespaces turned off"
    if want_namespaces:
        try:
            if not root:
                _enter_user_namespace()
            mode = _Mode(True, root, 0, binds, _describe(True, root, 0, ""))
            _probe(mode, own_pid_ns)
            _enter_launcher_namespaces(binds, root)
            return mode
        except OSError as err:  # the kernel or container refuses namespaces: fall back below
            problem = f"namespaces unavailable: {err}"
    if not root:
        raise SandboxError(
            f"cannot sandbox code here ({problem}); run as root or enable unprivileged user namespaces"
        )
    abi = _landlock_abi()
    mode = _Mode(False, True, abi, binds, _describe(False, True, abi, problem))
    try:
        _probe(mode, own_pid_ns)
    except OSError as err:
        raise SandboxError(f"cannot sandbox code here ({problem}; the fallback failed: {err})") from None
    return mode


def _describe(namespaces: bool, switch_uid: bool, landlock: int, problem: str) -> str:
    """The isolation string of ExecResult, network denial first."""
    identity = "own uid per run" if switch_uid else "no capabilities (user namespace)"
    if namespaces:
        return (
            "netns (loopback only, the launcher's own), pidns, mntns (minimal read-only root, private tmpfs "
            f"/tmp, own /proc), ipcns, {identity}"
        )
    files = (
        f"landlock ABI {landlock} (system files read-only, other host files hidden)"
        if landlock
        else "no landlock: world-readable host files are readable"
    )
    return (
        f"seccomp socket filter ({problem}), no pidns (stragglers killed by uid), "
        f"host temp dir, {files}, {identity}"
    )


def _probe(mode: _Mode, own_pid_ns: int) -> None:
    """Set up a throw-away run exactly as a real one, in a child; raise OSError with its complaint."""
    staging = f"/tmp/rpt-sandbox-probe-{os.urandom(8).hex()}"
    os.mkdir(staging, 0o700)
    request = {
        "cmd": ["/bin/true"],
        "warm": [],
        "env": {},
        "staging": staging,
        "limits": Limits()._asdict(),
        "probe": True,
    }
    null = os.open(os.devnull, os.O_RDWR)
    fds = [os.open(staging, os.O_RDONLY | os.O_DIRECTORY), null, os.dup(null), os.dup(null)]
    try:
        pid, status_r = _fork_run(request, fds, _run_uid(mode), mode, own_pid_ns, None)
        error = _setup_error(status_r)
        status = os.waitpid(pid, 0)[1]
        if not error and status != 0:  # died before it could report (a bug): never count that as fine
            error = f"the probe ended with wait status {status}"
    finally:
        os.rmdir(staging)  # empty: the probe's files live in its own tmpfs, or there are none
    if error:
        raise OSError(error)


def _kill_and_reap(uid: int) -> None:
    """Fallback mode: kill everything the run's uid still runs and reap the orphans that come to us."""
    for _ in range(200):
        _kill_uid(uid)
        with contextlib.suppress(ChildProcessError):  # no children (left): nothing to reap
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        if not _runs_processes(uid):
            return
        time.sleep(0.005)


def _runs_processes(uid: int) -> bool:
    """Whether any process (zombies included) still belongs to `uid`."""
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(FileNotFoundError):  # it ended while we looked
                if os.stat(entry.path).st_uid == uid:
                    return True
    return False


def _kill_uid(uid: int) -> None:
    """Kill every process of `uid` at once: a helper becomes `uid` and calls kill(-1, SIGKILL)."""
    pid = os.fork()
    if pid == 0:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
        with contextlib.suppress(ProcessLookupError):  # nothing left of the run
            os.kill(-1, signal.SIGKILL)
        os._exit(0)
    os.waitpid(pid, 0)


def _remove_owned(uid: int, staging: str) -> None:
    """Delete what `uid` left in the world-writable directories (fallback mode has no private /tmp)."""
    for directory in ("/tmp", "/var/tmp", "/dev/shm"):
        with contextlib.suppress(FileNotFoundError), os.scandir(directory) as entries:
            for entry in entries:
                if entry.path == staging or entry.stat(follow_symlinks=False).st_uid != uid:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    import shutil  # fallback mode only; see the TYPE_CHECKING note

                    shutil.rmtree(entry.path, ignore_errors=True)  # best effort: a race with nothing
                else:
                    os.unlink(entry.path)


_SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_ETC_ENTRIES = (
    "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "passwd", "group", "nsswitch.conf", "localtime",
    "timezone", "hosts", "host.conf", "gai.conf", "ssl", "ca-certificates", "alternatives", "mime.types",
    "fonts", "locale.alias",
)  # fmt: skip
"""What of /etc a run sees: the loader cache, names, time zone, certificates; never the rest of /etc."""
_DEVICES = ("null", "zero", "full", "random", "urandom")


@functools.cache
def _interpreter_paths() -> list[str]:
    """Where this Python lives (installation, virtual environment), so sandboxed runs can start it."""
    paths = [
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        sys.base_exec_prefix,
        os.path.dirname(sys.executable),
    ]
    paths.append(os.path.dirname(os.path.realpath(sys.executable)))
    return sorted({os.path.realpath(path) for path in paths})


def _visible_paths(binds: Sequence[str]) -> list[str]:
    """System paths, chosen /etc entries and `binds`, without any path inside another one."""
    chosen: list[str] = []
    for path in sorted({*_SYSTEM_PATHS, *(f"/etc/{name}" for name in _ETC_ENTRIES), *binds}):
        real = path if os.path.islink(path) else os.path.realpath(path)
        if os.path.lexists(path) and not any(real == c or real.startswith(c + "/") for c in chosen):
            chosen.append(path)
    return chosen


def _enter_launcher_namespaces(binds: Sequence[str], root: bool) -> None:
    """Once per launcher: a network namespace with only loopback, and the minimal read-only root.

    Every run inherits both. A network namespace per run would cost about 1 ms each (every protocol
    initialises its per-namespace state); sharing the launcher's is as closed, because runs of one
    launcher never overlap, all processes of a run die with it, and a run cannot reconfigure the
    namespace (no CAP_NET_ADMIN). Mount and IPC namespaces stay per run: they hold the run's files and
    SysV objects, which would outlive it.
    """
    _unshare(CLONE_NEWNET)
    _loopback_up()
    _enter_minimal_root(binds, host_proc=not root)


def _enter_minimal_root(binds: Sequence[str], host_proc: bool) -> None:
    """Move the launcher into a new root holding only system files and Python, read-only.

    The root is a small tmpfs with read-only bind mounts of the system directories and Python (symlinks
    such as /bin -> usr/bin are copied as symlinks), copies of the chosen /etc entries, a /dev with only
    harmless devices, empty /tmp and /proc for each run to fill, and /var/tmp and /dev/shm pointing to
    /tmp. Home directories, the repository and data sets are simply not there. Few mounts keep each
    run's copy of this namespace cheap. The tmpfs is mounted over /tmp of this (private) namespace.
    `host_proc` (user-namespace mode) binds the host's /proc at /proc, because the kernel lets a user
    namespace mount a new proc only where one is already fully visible; each run covers it with its own.
    """
    _unshare(CLONE_NEWNS)
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    paths = _visible_paths(binds)
    mounted = [path for path in paths if not path.startswith("/etc/") and not os.path.islink(path)]
    sources = {path: os.open(path, os.O_PATH | os.O_CLOEXEC) for path in mounted}
    devices = {name: os.stat(f"/dev/{name}").st_rdev for name in _DEVICES}
    _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID, "size=16m,mode=0755")
    for name in ("tmp", "proc", "var", "etc", "dev"):
        os.mkdir(f"/tmp/{name}", 0o755)
    for link, target in (("var/tmp", "/tmp"), ("dev/shm", "/tmp")):
        os.symlink(target, f"/tmp/{link}")
    for path in paths:
        _mirror("/tmp", path, sources.get(path))
    _make_devices("/tmp/dev", devices)
    if host_proc:
        _mount("/proc", "/tmp/proc", None, MS_BIND | MS_REC)
    _read_only_tree("/tmp")
    for fd in sources.values():
        os.close(fd)
    os.chdir("/tmp")
    _check(_libc.syscall(_ARCH[os.uname().machine][4], b".", b"."), "pivot_root")
    _check(_libc.umount2(b".", 2), "umount old root")  # MNT_DETACH
    os.chdir("/")


def _mirror(root: str, path: str, source: int | None) -> None:
    """Mirror `path` at the same place under `root`: a bind mount of `source`, else a copy.

    Copies (symlinks stay symlinks) bring in the small /etc entries without a mount each.
    """
    target = root + path
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if source is None:
        _copy_entry(path, target)
        return
    if os.path.isdir(path):
        os.makedirs(target, exist_ok=True)
    else:
        os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o644))
    _mount(f"/proc/self/fd/{source}", target, None, MS_BIND | MS_REC)


def _copy_entry(path: str, target: str) -> None:
    """Copy a file, a symlink (as a symlink) or a directory tree, keeping permission bits.

    Only what any user may read is copied: /etc/ssl/private and the like stay out of the sandbox.
    """
    if os.path.islink(path):
        os.symlink(os.readlink(path), target)
        return
    mode = os.stat(path).st_mode
    if not mode & stat.S_IROTH or (stat.S_ISDIR(mode) and not mode & stat.S_IXOTH):
        return
    if stat.S_ISDIR(mode):
        os.mkdir(target, mode & 0o7777)
        for name in os.listdir(path):
            _copy_entry(os.path.join(path, name), os.path.join(target, name))
    elif stat.S_ISREG(mode):
        with open(path, "rb") as source, open(target, "wb") as copy:
            copy.write(source.read())
        os.chmod(target, mode & 0o7777)


def _make_devices(dev: str, devices: dict[str, int]) -> None:
    """Device nodes for null, zero, full, random and urandom, and the /dev/fd and /dev/std* links.

    Where mknod is not allowed (a user namespace) the host's nodes are bind-mounted instead.
    """
    for name, number in devices.items():
        try:
            os.mknod(f"{dev}/{name}", 0o666 | stat.S_IFCHR, number)
            os.chmod(f"{dev}/{name}", 0o666)  # mknod applies the umask
        except PermissionError:  # no CAP_MKNOD (user namespace): borrow the host's node instead
            os.close(os.open(f"{dev}/{name}", os.O_CREAT | os.O_WRONLY, 0o666))
            _mount(f"/dev/{name}", f"{dev}/{name}", None, MS_BIND)
    for name, target in (("fd", ""), ("stdin", "/0"), ("stdout", "/1"), ("stderr", "/2")):
        os.symlink(f"/proc/self/fd{target}", f"{dev}/{name}")


# ---------------------------------------------------------------------------------------------------------
# Child side: runs in the fork, isolates itself, then executes the command.


def _child(
    request: dict, fds: list[int], uid: int, mode: _Mode, status_w: int, sock: socket.socket | None
) -> NoReturn:
    """Isolate this process, then exec the command or run Python warm; setup errors go to status_w."""
    if sock is not None:
        sock.detach()  # its descriptor is closed below; the object must not close a reused number
    cmd, prefix = request["cmd"], request["warm"]
    warm = cmd[: len(prefix)] == prefix and len(cmd) > len(prefix)
    staging_fd, status_w = _arrange_fds(fds[1:], [fds[0], status_w])  # first: errors need status_w
    try:
        if request.get("probe") and mode.namespaces:
            _enter_launcher_namespaces(mode.binds, mode.switch_uid)  # a real run's launcher is already there
        _isolate(request, staging_fd, uid, mode)
        if request.get("probe"):
            os.listdir(os.path.dirname(os.__file__))  # the standard library must be readable by the run
            os._exit(0)
        if not warm:
            _exec(cmd, request["env"])
    except BaseException as err:  # any setup failure must be reported, never run unconfined
        os.write(status_w, f"{type(err).__name__}: {err}".encode())
        os._exit(127)
    os.close(status_w)
    _run_python_warm(cmd[len(prefix) :], request["env"])


def _isolate(request: dict, staging_fd: int, uid: int, mode: _Mode) -> None:
    """Namespaces, files, limits, identity, no_new_privs, network filter (streams already on 0-3)."""
    os.setsid()
    limits = Limits(**request["limits"])
    if mode.namespaces:
        _unshare(CLONE_NEWNS | CLONE_NEWIPC)
        workdir = _private_tmp(staging_fd, uid if mode.switch_uid else 0, limits)
    else:
        workdir = request["staging"]
        for folder, names, files in os.walk(workdir):
            for path in (folder, *(os.path.join(folder, name) for name in (*names, *files))):
                os.chown(path, uid, uid, follow_symlinks=False)
    os.close(staging_fd)
    _set_limits(limits)
    if mode.switch_uid:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    else:
        _drop_capabilities()
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # after the uid change, which clears it
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    if not mode.namespaces:
        _deny_network_seccomp()
        if mode.landlock:
            _landlock(mode.landlock, _visible_paths(mode.binds), workdir)
    os.chdir(workdir)
    request["env"].update(HOME=workdir, TMPDIR=workdir)


def _arrange_fds(streams: list[int], keep: list[int]) -> list[int]:
    """Put the streams on 0, 1, 2 (3); move `keep` above them (returned); close everything else.

    The streams are stdin, stdout, stderr and, if asked for, the channel; `keep` holds the staged
    files' directory and the status pipe.
    """
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 64) for fd in (*streams, *keep)]
    for target, fd in enumerate(high[: len(streams)]):
        os.dup2(fd, target, inheritable=True)
    kept = high[len(streams) :]
    edges = [len(streams) - 1, *sorted(kept), max(os.sysconf("SC_OPEN_MAX"), *kept) + 1]
    for low, up in itertools.pairwise(edges):
        os.closerange(low + 1, up)
    return kept


def _private_tmp(staging_fd: int, owner: int, limits: Limits) -> str:
    """In the run's mount namespace: a size-capped tmpfs on /tmp (also /var/tmp, /dev/shm); its /proc."""
    options = f"size={limits.disk_bytes},mode=0700,uid={owner},gid={owner}"
    _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, options)
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    _copy_tree(staging_fd, "/tmp", owner)
    return "/tmp"


_LANDLOCK_READ, _LANDLOCK_FILE_RIGHTS = 1 | 4 | 8, 1 | 2 | 4 | (1 << 14) | (1 << 15)


def _landlock(abi: int, readable: list[str], workdir: str) -> None:
    """Landlock (fallback mode): read-only system paths and Python, devices, full access to `workdir`.

    Also denies TCP bind/connect (ABI 4+) and signals or abstract sockets outside the run (ABI 6+).
    """
    handled = (1 << {1: 13, 2: 14, 3: 15, 4: 15}.get(abi, 16)) - 1
    attr = struct.pack("QQQ", handled, 3, 3)[: 8 if abi < 4 else 16 if abi < 6 else 24]
    ruleset = _libc.syscall(444, ctypes.c_char_p(attr), len(attr), 0)
    _check(ruleset, "landlock_create_ruleset")
    rules = [(path, _LANDLOCK_READ) for path in (*readable, "/proc")]
    rules += [(f"/dev/{name}", 2 | 4) for name in _DEVICES] + [(workdir, handled)]
    for path, access in rules:
        target = os.path.realpath(path)
        if not os.path.exists(target):
            continue
        allowed = access & handled & (handled if os.path.isdir(target) else _LANDLOCK_FILE_RIGHTS)
        fd = os.open(target, os.O_PATH | os.O_CLOEXEC)
        rule = struct.pack("=Qi", allowed, fd)
        _check(_libc.syscall(445, ruleset, 1, ctypes.c_char_p(rule), 0), f"landlock rule {path}")
        os.close(fd)
    _check(_libc.syscall(446, ruleset, 0), "landlock_restrict_self")
    os.close(ruleset)


def _landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 when Landlock is missing or disabled."""
    return max(0, _libc.syscall(444, None, 0, 1))  # LANDLOCK_CREATE_RULESET_VERSION


def _copy_tree(source: int, target: str, owner: int) -> None:
    """Copy the staged files (directory fd `source`) into `target`, owned by the run."""
    for entry in os.scandir(source):
        path = os.path.join(target, entry.name)
        if entry.is_dir(follow_symlinks=False):
            os.mkdir(path, 0o755)
            child = os.open(entry.name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=source)
            _copy_tree(child, path, owner)
            os.close(child)
        else:
            with open(os.open(entry.name, os.O_RDONLY, dir_fd=source), "rb") as src, open(path, "wb") as dst:
                dst.write(src.read())
        os.chown(path, owner, owner)


def _set_limits(limits: Limits) -> None:
    cpu = max(1, math.ceil(limits.cpu_seconds))
    for which, value in (
        (resource.RLIMIT_CPU, (cpu, cpu + 1)),
        (resource.RLIMIT_AS, (limits.memory_bytes,) * 2),
        (resource.RLIMIT_NPROC, (limits.processes,) * 2),
        (resource.RLIMIT_FSIZE, (limits.file_bytes,) * 2),
        (resource.RLIMIT_NOFILE, (limits.open_files,) * 2),
        (resource.RLIMIT_CORE, (0, 0)),
    ):
        resource.setrlimit(which, value)


def _exec(cmd: list[str], env: dict[str, str]) -> NoReturn:
    """Replace this process with the command (PATH lookup in the sandbox environment)."""
    program = cmd[0]
    if "/" not in program:
        found = [os.path.join(folder, program) for folder in env["PATH"].split(":")]
        program = next((path for path in found if os.access(path, os.X_OK)), "")
    if not program:
        raise FileNotFoundError(f"{cmd[0]!r} not found on the sandbox PATH")
    for number in (signal.SIGPIPE, signal.SIGXFSZ):  # Python ignores these; the program should not
        signal.signal(number, signal.SIG_DFL)
    os.execve(program, cmd, env)


def _run_python_warm(args: list[str], env: dict[str, str]) -> NoReturn:
    """Run `python -I -S -B <args>` inside this already-started interpreter, then exit as Python would.

    Ending with os._exit after the shutdown steps a program can observe (thread joins, atexit, flushing)
    skips tearing down the launcher's modules, which would cost more than the whole run.
    """
    for name in [name for name in os.environ if name not in env]:
        del os.environ[name]
    os.environ.update((name, value) for name, value in env.items() if os.environ.get(name) != value)
    if args[0] == "-c":
        code, filename, sys.argv = compile(args[1], "<string>", "exec"), "<string>", ["-c", *args[2:]]
    else:
        filename, sys.argv = args[0], list(args)
        code = _load_script(filename)
    main = types.ModuleType("__main__")
    if filename != "<string>":
        main.__file__ = filename
    sys.modules["__main__"] = main
    sys.stdin = sys.__stdin__ = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115 - lives until exit
    sys.stdout = sys.__stdout__ = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.stderr = sys.__stderr__ = open(  # noqa: SIM115
        2, "w", encoding="utf-8", errors="backslashreplace", closefd=False, buffering=1
    )
    try:
        exec(code, main.__dict__)  # this is the sandboxed program
        status = 0
    except SystemExit as exit_:
        status = _exit_status(exit_)
    except BaseException as err:  # report like the interpreter: traceback, exit status 1
        import traceback  # only now; see the TYPE_CHECKING note

        traceback.print_exception(type(err), err, err.__traceback__.tb_next if err.__traceback__ else None)
        status = 1
    _shut_down(status)


def _load_script(filename: str) -> types.CodeType:
    """The script's code: compiled source, or for a .pyc file (as `python file.pyc` runs) its bytecode."""
    with open(filename, "rb") as script:
        data = script.read()
    if filename.endswith(".pyc") and data[:4] == importlib.util.MAGIC_NUMBER:
        return marshal.loads(data[16:])
    return compile(data, filename, "exec")


def _exit_status(exit_: SystemExit) -> int:
    """The status `python` exits with for this SystemExit (a non-integer is printed, status 1)."""
    if exit_.code is None:
        return 0
    if isinstance(exit_.code, int):
        return exit_.code & 0xFF
    print(exit_.code, file=sys.stderr)
    return 1


def _shut_down(code: int) -> NoReturn:
    """Join non-daemon threads, run atexit handlers, flush the streams, then leave at once."""
    threads = sys.modules.get("threading")
    if threads is not None:
        threads._shutdown()  # what interpreter exit does: wait for non-daemon threads
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed or broken pipe: Python then exits with 120
            code = code or 120
    os._exit(code)
