"""Run untrusted (model-written) programs with limits, no network, no credentials and full cleanup.

Every command runs through a *launcher*: a small, single-threaded helper process that this package
starts (one per host thread and set of `readable` paths, lazily) with a scrubbed environment. For each
run the launcher forks a child that isolates itself and then executes the command. Forking from the
small launcher instead of the scoring process keeps each start at a few milliseconds, never forks a
process that runs threads, and lets Python programs start *warm*: a command that begins with `PYTHON`
runs in the forked child itself, exactly as `python -I -S -B <script or -c code>` would, without
starting a new interpreter (a `.pyc` script runs as `python file.pyc` runs it), with the builtins a
normal `python3 prog.py` has (`exit`, `quit`, `help`, ...: what `site` adds) but no site-packages.

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
  their expected outputs) and credentials files are not there at all. Extra host paths a run may read
  (`readable`, e.g. a toolchain in /root/.cargo) are bound read-only at the same place, visible even
  where a parent directory is closed to the run. A Python (or readable path) under /tmp is bound again
  on top of each run's private /tmp, so its top folder shows in the working directory;
- identity: a fresh unprivileged uid per run (as root) or no capabilities (user namespace), and
  `no_new_privs`; IPC objects live in a fresh IPC namespace and vanish with the run; a seccomp filter
  refuses the kernel keyring calls (keyrings belong to no namespace: a run would otherwise read the
  keys of the scorer's session keyring);
- limits: RLIMIT_CPU, RLIMIT_AS, RLIMIT_NPROC (counted for the run's own uid or user namespace, so it
  binds even when the scorer is root), RLIMIT_FSIZE, RLIMIT_NOFILE, RLIMIT_CORE=0, and a wall-clock
  timeout; the environment holds only PATH, locale, HOME/TMPDIR (the working directory) and thread-count
  variables; names that look like credentials are refused even when passed explicitly.

Fallback when namespaces are unavailable (e.g. a container without CAP_SYS_ADMIN, running as root): the
seccomp filter also refuses every socket except Unix ones, io_uring, `connect` and datagram sockets (no
host service's socket is reachable); Landlock, where the kernel has it, limits reading to the same
system paths, Python and readable paths (whose parents the run's uid must be able to enter) and the
run's own /proc entry, and writing to the working directory (a host temp dir), and stops signals to
processes outside the run; the run's unique uid bounds processes, lets the
launcher kill every straggler with `kill(-1)` as that uid and reap them (it is their subreaper), and
lets it delete what that uid left in /tmp, /var/tmp and /dev/shm. The fallback needs a Python that
other users can read (not one under /root) and refuses to start otherwise. Without root and without
user namespaces the sandbox refuses to start. `ExecResult.isolation` names what was in force.

Isolation levels (`levels`; docs/sandbox.md says which pod settings give which): "namespaces" (as root),
"userns" (namespaces in a user namespace), "landlock" and "uid" (the fallback with and without
Landlock). A launcher below the minimum, RPT_SANDBOX_MIN (default "userns": no credential readable,
neither from the environment nor from files nor from the scorer's /proc), refuses to start in one line
naming what the machine or pod needs; `isolation()` gives the level that runs in this process, and
`ExecResult.level` the level of each run.

Parallel scoring: `SandboxPool` (two workers per available CPU, see `rpt_transfer.cpus`; each worker
thread has its own launcher) or `run_many`, which keeps one such pool per process so its launchers stay
warm between calls.

The package: this module holds the public API and the worker pool; `launcher` the host side of a
launcher (start it, send requests, feed and read a run's pipes); `server` the launcher process (its
mode, forking each run); `child` what the fork does before the command starts, `warm` how it runs
Python warm; `namespaces` the namespaces and the minimal root; `fallback` Landlock and cleanup by uid;
`seccomp` the filter every run gets; `levels` the isolation levels and the minimum; `kernel` the ctypes
system calls; `limits` the limits, the result and `SandboxError`.
"""

import _thread
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TypeVar

from rpt_transfer.cpus import available_cpus

from .launcher import PYTHON, Launcher, _minimum, _readable_paths
from .launcher import _sandbox_env as _sandbox_env  # re-exported: the tests inspect it
from .levels import DEFAULT_MINIMUM, LEVELS, meets, refusal
from .limits import TRUNCATION_MARKER, ExecResult, Limits, SandboxError
from .namespaces import _interpreter_paths as _interpreter_paths  # re-exported: the tests inspect it
from .server import WARM_MODULES

__all__ = [
    "DEFAULT_MINIMUM",
    "LEVELS",
    "PYTHON",
    "TRUNCATION_MARKER",
    "WARM_MODULES",
    "ExecResult",
    "Launcher",
    "Limits",
    "SandboxError",
    "SandboxPool",
    "isolation",
    "run",
    "run_many",
]


def run(
    cmd: Sequence[str],
    *,
    input: bytes | str | None = None,  # the conventional name (subprocess, inspect)
    files: Mapping[str, str | bytes] | None = None,
    timeout: float,
    limits: Limits | None = None,
    env: Mapping[str, str] | None = None,
    channel: bool = False,
    readable: Sequence[str] = (),
    cache_code: bool = False,
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
        readable: extra absolute host paths (files or directories) the run may read, at the same place,
            read-only, e.g. a toolchain outside the system directories (/root/.cargo); with namespaces
            they are visible even where a parent directory is closed to other users (/root is 0700).
            Each set of paths has its own launcher per thread. A path that does not exist raises
            SandboxError; "/", "/tmp" and paths under /proc, /dev or /sys raise ValueError.
        cache_code: the code of a warm `(*PYTHON, "-c", code)` command is the caller's own, never
            model-written: the launcher compiles it once, outside the sandbox, and each run starts from
            that (a launcher keeps the first 8 such programs; later ones compile in each run). Code
            that does not compile is compiled in the run, which reports the error as `python -c`
            would. Ignored for other commands.

    Output beyond `limits.output_bytes` on any stream kills the run (reason "output_limit"); what was kept
    ends with a truncation marker. The working directory and everything the run started are gone when
    this returns.
    """
    return _thread_launcher(_readable_paths(readable)).run(
        cmd,
        input=input,
        files=files,
        timeout=timeout,
        limits=limits,
        env=env,
        channel=channel,
        cache_code=cache_code,
    )


_found: dict[int, tuple[str, str]] = {}
"""This process's isolation level and why nothing stronger runs, keyed by the pid that found it."""


def isolation() -> str:
    """The isolation level runs get in this process ("namespaces", "userns", "landlock" or "uid").

    Raises SandboxError, one line naming what the machine or pod needs, where that level is below the
    minimum (RPT_SANDBOX_MIN, else the default "userns", under which no credential can be read) or no
    sandbox can start. The first call starts this thread's launcher (0.1-0.2 s); later calls only
    compare the level found with the minimum, read anew each time.
    """
    minimum, source = _minimum(None)
    found = _found.get(os.getpid())
    if found is None:
        launcher = _thread_launcher()  # SandboxError when it cannot start or is below the minimum
        found = (launcher.level, launcher.why)
        _found.clear()
        _found[os.getpid()] = found
    if not meets(found[0], minimum):
        raise SandboxError(refusal(found[0], found[1], minimum, source))
    return found[0]


T = TypeVar("T")
R = TypeVar("R")


class SandboxPool:
    """Threads sized to the cores, each with its own launcher, so that scoring runs in parallel.

    The default is two workers per CPU this process may use (`rpt_transfer.cpus`: the cgroup CPU limit,
    the affinity mask, or RPT_CPUS), never the node's CPU count: a pod limited to 2 CPUs on a 64-core
    node would otherwise run 128 programs at once and turn slow ones into timeouts. Two per CPU, because
    a run spends much of its time waiting for processes to start and end, which another worker's run can
    use. A hostile run can only end its own process tree, so workers and launchers live on after one.
    """

    def __init__(self, workers: int | None = None) -> None:
        from concurrent.futures import ThreadPoolExecutor  # on first use: importing the package stays cheap

        self.workers = workers or 2 * available_cpus()
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


_local = _thread._local()  # threading.local, without importing threading for it
_LAUNCHERS_PER_THREAD = 4
"""Launchers a thread keeps, one per set of extra readable paths; the least recently used goes first."""


def _thread_launcher(readable: frozenset[str] = frozenset()) -> "Launcher":
    """The thread's launcher for `readable`, started on first use or after it died or this process forked."""
    launchers: dict[frozenset[str], Launcher] | None = getattr(_local, "launchers", None)
    if launchers is None:
        launchers = _local.launchers = {}
    launcher = launchers.pop(readable, None)
    if launcher is None or not launcher.usable():
        launcher = Launcher(readable=readable)
    launchers[readable] = launcher  # the most recently used last
    while len(launchers) > _LAUNCHERS_PER_THREAD:
        oldest = launchers.pop(next(iter(launchers)))
        if oldest.usable():
            oldest.close()
    return launcher
