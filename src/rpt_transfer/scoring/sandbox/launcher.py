"""Host side of a launcher: start the launcher process, send it requests, feed and read each run's pipes.

Never loaded by the launcher process itself (see `_BOOT`), so it may import what the host side needs.
"""

import contextlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence

from rpt_transfer.settings import SANDBOX_MIN_ENV, sandbox_minimum

from .levels import DEFAULT_MINIMUM, meets, parse_minimum, refusal
from .limits import ExecResult, Limits, SandboxError, _limit_reason, _result
from .namespaces import _interpreter_paths

PYTHON: tuple[str, ...] = (sys.executable, "-I", "-S", "-B")
"""Prefix for Python commands; runs with this prefix start warm inside the launcher's fork, with the
builtins `site` adds (exit, quit, help, ...) but without site-packages."""

PROGRAMS_KEPT = 8
"""Programs (`cache_code`) a launcher keeps compiled; later ones compile in each run. A scorer has two."""
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


_UNREADABLE = ("/proc", "/dev", "/sys")
"""Kernel interfaces: never bound into the sandbox as extra readable paths (each run has its own /proc
and /dev)."""


def _readable_paths(readable: Iterable[str]) -> frozenset[str]:
    """The extra readable paths, normalised; ValueError for one that cannot be offered read-only."""
    if isinstance(readable, str):
        raise ValueError(f"readable must be a sequence of paths, not the string {readable!r}")
    paths = set()
    for path in readable:
        if not path.startswith("/"):
            raise ValueError(f"readable path {path!r} must be absolute")
        normal = "/" + os.path.normpath(path).lstrip("/")
        kernel = any(normal == top or normal.startswith(top + "/") for top in _UNREADABLE)
        if kernel or normal in ("/", "/tmp"):
            raise ValueError(
                f"readable path {path!r} cannot be offered to the sandbox: the root, /tmp (the working"
                " directory) and kernel interfaces (/proc, /dev, /sys) are refused"
            )
        paths.add(normal)
    return frozenset(paths)


_OWN_TMP = ("userns", "namespaces")
"""Levels whose runs get their own /tmp (a tmpfs the staged files are copied into)."""
_PACKAGE = os.path.dirname(os.path.realpath(__file__))
_MAX_REQUEST = 64 << 10
"""Bytes of command line a request may carry (one socket message); programs belong in `files`."""
_BOOT = (
    "import importlib, importlib.util, sys\n"
    "path = sys.path[:]\n"
    "sys.path.insert(0, {src!r})\n"
    "spec = importlib.util.spec_from_file_location(\n"
    "    '_rpt_sandbox', {init!r}, submodule_search_locations=[{package!r}]\n"
    ")\n"
    "sys.modules['_rpt_sandbox'] = importlib.util.module_from_spec(spec)  # __init__ (host side) not run\n"
    "module = importlib.import_module('_rpt_sandbox.server')\n"
    "sys.path[:] = path\n"
    "del path, spec\n"
    "for name in module.WARM_MODULES:\n"
    "    __import__(name)\n"
    "import gc\n"
    "gc.freeze()  # launcher objects stay out of collections in the forks: fewer copied pages\n"
    "module._launcher_main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4:])\n"
)
"""The launcher's program: load the launcher side of this package (`server` and what it imports) from
its files under a private name, without the package's host side and without importing the rest of
rpt_transfer; warm up; serve."""


class Launcher:
    """One launcher process and the socket to it; runs one command at a time (one per host thread)."""

    def __init__(
        self,
        namespaces: bool = True,
        python: str = sys.executable,
        readable: Iterable[str] = (),
        *,
        minimum: str | None = None,
        landlock: bool = True,
    ) -> None:
        """Start the launcher; `namespaces=False` forces the fallback, `python` runs the warm commands.

        `readable`: extra host paths its runs may read (see `run`); SandboxError names one that is missing.
        `minimum`: the weakest isolation level accepted (`levels.LEVELS`); None: RPT_SANDBOX_MIN, else the
        default. A launcher below it is stopped and SandboxError says, in one line, what would meet it.
        `landlock=False` turns Landlock off in the fallback (to test the weakest level).
        """
        minimum, source = _minimum(minimum)
        self.readable = _readable_paths(readable)
        extra = set(self.readable)
        for path in self.readable:
            if not os.path.exists(path):
                raise SandboxError(f"readable path {path} does not exist (or is a broken symlink)")
            real = os.path.realpath(path)  # a symlink's target must be there too
            if real != path:
                extra.add(*_readable_paths([real]))
        host, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        src = os.path.dirname(os.path.dirname(os.path.dirname(_PACKAGE)))  # for rpt_transfer.errors
        boot = _BOOT.format(src=src, init=os.path.join(_PACKAGE, "__init__.py"), package=_PACKAGE)
        argv = [python, *PYTHON[1:], "-c", boot, str(child.fileno()), str(os.getpid())]
        argv += [("n" if namespaces else "") + ("l" if landlock else "") or "-", *_interpreter_paths()]
        argv += sorted(extra)
        self._process = _start_launcher(argv, child)
        child.close()
        self._sock = host
        self._owner = os.getpid()
        self._programs: dict[str, int] = {}
        """The `cache_code` programs this launcher holds, by text: their ids."""
        hello = self._receive(time.monotonic() + 60)[0]
        if "error" in hello:
            self.close()
            raise SandboxError(hello["error"])
        self.isolation: str = hello["isolation"]
        """What is in force, network first ("netns, ..." or "seccomp socket filter (...), ...")."""
        self.level: str = hello["level"]
        """The isolation level (`levels.LEVELS`), at least the minimum."""
        self.why: str = hello["why"]
        """Why nothing stronger runs here ("" with namespaces)."""
        self._empty = tempfile.mkdtemp(prefix="rpt-sandbox-empty-") if self.level in _OWN_TMP else None
        """Staged files of every run without files: each copies them into its own /tmp, so one empty
        folder serves them all (in the fallback a run works in its staging folder: one each)."""
        self._finalizer = weakref.finalize(
            self, _close_launcher, self._sock, self._process, self._empty, self._owner
        )
        if not meets(self.level, minimum):
            self.close()
            raise SandboxError(refusal(self.level, self.why, minimum, source))

    def usable(self) -> bool:
        """False after the launcher died or when this object was inherited through fork."""
        return self._owner == os.getpid() and self._process.poll() is None

    def close(self) -> None:
        """Stop the launcher; runs in flight are killed with it."""
        _close_launcher(self._sock, self._process, getattr(self, "_empty", None), self._owner)

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
        cache_code: bool = False,
    ) -> ExecResult:
        """Run `cmd` in a fresh sandbox; see `run` of the package."""
        if not cmd:
            raise ValueError("empty command")
        if sum(len(part) for part in cmd) > _MAX_REQUEST:
            raise ValueError("command too long for the launcher; pass large programs in `files`")
        limits = limits or Limits()
        environment = _sandbox_env(env)
        data = input.encode() if isinstance(input, str) else (input or b"")
        staging = self._empty if not files and self._empty else tempfile.mkdtemp(prefix="rpt-sandbox-")
        try:
            _write_files(staging, files or {})
            request = {
                "cmd": list(cmd), "warm": list(PYTHON), "env": environment, "staging": staging,
                "limits": limits._asdict(),
            }  # fmt: skip
            new = self._program(request) if cache_code else None
            return self._execute(request, data, timeout, limits.output_bytes, channel, new)
        finally:
            if staging != self._empty:
                shutil.rmtree(staging)

    def _program(self, request: dict) -> str | None:
        """Mark a warm `-c` command's program for the launcher's cache (`cache_code`), text sent once.

        The first time, the request carries the text and a new id, and the text is returned: it counts
        as held once the request is sent (`_execute`). Afterwards only the id goes (the text in the
        command is emptied: the run gets its arguments, never the code, in sys.argv).
        """
        cmd, start = request["cmd"], len(PYTHON)
        if cmd[:start] != list(PYTHON) or len(cmd) < start + 2 or cmd[start] != "-c":
            return None
        known = self._programs.get(cmd[start + 1])
        if known is not None:
            request["program"] = {"id": known}
            cmd[start + 1] = ""
        elif len(self._programs) < PROGRAMS_KEPT:
            request["program"] = {"id": len(self._programs), "new": True}
            return cmd[start + 1]
        return None

    def _execute(
        self, request: dict, data: bytes, timeout: float, cap: int, channel: bool, new: str | None
    ) -> ExecResult:
        """Hand the child ends of fresh pipes to the launcher, then feed and read them until the end.

        `new`: the text of a program this request hands the launcher's cache (see `_program`).
        """
        pipes: list[tuple[int, int]] = []
        try:
            for _ in range(4 if channel else 3):
                pipes.append(os.pipe())
            staged = os.open(request["staging"], os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except BaseException:  # nothing went to the launcher: it stays in step; no descriptor leaks
            for fd in (fd for pipe in pipes for fd in pipe):
                os.close(fd)
            raise
        child_fds = [staged, pipes[0][0]] + [write for _, write in pipes[1:]]
        try:
            socket.send_fds(self._sock, [json.dumps(request).encode()], child_fds)
        except BaseException:
            for fd in (*child_fds, pipes[0][1], *(read for read, _ in pipes[1:])):
                os.close(fd)
            self.close()  # the launcher may have read part of it: never reuse it out of step
            raise
        if new is not None:  # the launcher holds it from now on
            self._programs[new] = request["program"]["id"]
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
        isolation = f"{self.isolation}, uid {started['uid']}"
        return _result(status["status"], streams.buffers, cap, reason, isolation, self.level)

    def _pump(self, watch: "_Watch", streams: "_Streams", deadline: float) -> dict:
        """Feed stdin, collect output, enforce deadline and output cap, until exit status and EOF."""
        launcher = self._sock.fileno()
        streams.watch(launcher)
        status: dict | None = None
        while status is None or streams.watched:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if status is not None:
                    break  # stragglers hold a pipe open after the exit; stop reading
                if watch.reason is not None:
                    raise SandboxError("the sandbox launcher did not report a killed run's exit")
                watch.kill("timeout")
                deadline = time.monotonic() + 10
                continue
            for fd, _ in streams.poll(remaining):
                if fd == launcher:
                    status = self._status_message()
                    streams.unwatch(launcher)
                    deadline = min(deadline, time.monotonic() + 2)
                elif streams.handle(fd):
                    watch.kill("output_limit")
        return status

    def _status_message(self) -> dict:
        """The exit status and CPU seconds the launcher reports once it has reaped the run."""
        message = self._sock.recv(65536)
        if not message:
            raise SandboxError("the sandbox launcher died during a run")
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


def _minimum(asked: str | None) -> tuple[str, str]:
    """The minimum level and where it came from: `asked`, else RPT_SANDBOX_MIN, else the default."""
    if asked is not None:
        return parse_minimum(asked, "minimum"), f"minimum={asked!r}"
    value, source = sandbox_minimum()
    if value is None:
        return DEFAULT_MINIMUM, f"the default; {SANDBOX_MIN_ENV} unset"
    try:
        return parse_minimum(value, source), f"{source}={value}"
    except ValueError as err:
        raise SandboxError(str(err)) from None


def _start_launcher(argv: list[str], child: socket.socket) -> subprocess.Popen[bytes]:
    """Start the launcher process with a scrubbed environment, in its own session."""
    return subprocess.Popen(
        argv,
        env=_sandbox_env(None),
        pass_fds=[child.fileno()],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        cwd="/",
        start_new_session=True,
    )


def _close_launcher(
    sock: socket.socket, process: subprocess.Popen[bytes], empty: str | None, owner: int
) -> None:
    """Close the socket (the launcher exits on end of file), reap the process, remove its empty folder.

    In a process forked from the owner (multiprocessing, a test harness) only the inherited socket is
    closed: the launcher and its folder belong to the owner, which goes on using them.
    """
    sock.close()
    if os.getpid() != owner:
        return
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:  # a stuck launcher must not block shutdown
        process.kill()
        process.wait()
    if empty is not None:
        with contextlib.suppress(FileNotFoundError):  # closed before
            os.rmdir(empty)


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
    twice could close one of theirs. A plain poll set (no epoll instance per run): a run has at most
    five descriptors to watch, and most of its input fits the pipe at once.
    """

    def __init__(self, stdin: int, readers: list[int], data: bytes, cap: int) -> None:
        self._poll = select.poll()
        self.watched: set[int] = set()
        """Descriptors still polled: the open pipes and, while the run lasts, the launcher's socket."""
        self.buffers = [bytearray() for _ in readers]
        self._index = {fd: index for index, fd in enumerate(readers)}
        self._open = {stdin, *readers}
        self._stdin, self._data, self._offset, self._cap = stdin, data, 0, cap
        for fd in readers:
            self.watch(fd)
        os.set_blocking(stdin, False)
        self._feed()  # what fits the pipe now; the rest when it drains
        if stdin in self._open:
            self.watch(stdin, select.POLLOUT)

    def watch(self, fd: int, events: int = select.POLLIN) -> None:
        self._poll.register(fd, events)
        self.watched.add(fd)

    def unwatch(self, fd: int) -> None:
        if fd in self.watched:
            self._poll.unregister(fd)
            self.watched.remove(fd)

    def poll(self, seconds: float) -> list[tuple[int, int]]:
        """Ready descriptors, waiting at most `seconds` (end of file and errors count as ready)."""
        return self._poll.poll(seconds * 1000)

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
            while self._offset < len(self._data):
                self._offset += os.write(self._stdin, self._data[self._offset : self._offset + 65536])
        except BlockingIOError:  # the pipe is full: go on when the program has read some
            return
        except BrokenPipeError:  # the program need not read all its input
            self._offset = len(self._data)
        self._close(self._stdin)

    def _close(self, fd: int) -> None:
        self.unwatch(fd)
        if fd in self._open:
            self._open.remove(fd)
            os.close(fd)

    def close_all(self) -> None:
        for fd in list(self._open):
            self._close(fd)
