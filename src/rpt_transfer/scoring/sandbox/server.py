"""The launcher process: decides once what isolation it can give, then forks, isolates and starts each run.

The launcher boots by loading this module and the ones it imports (child, warm, namespaces, fallback,
kernel, limits) from their files, without the package's host side (see `launcher._BOOT`), and forks once
or twice per run, and every fork pays for what it holds. So these modules import only what they use:
never threading (which subprocess and concurrent.futures import; it adds at-fork hooks worth ~0.5 ms a
fork), hashlib/secrets (OpenSSL, +5.6 MB), tempfile/shutil (+2.5 MB), pathlib (+2 MB) or socket (its
enums, +0.3 MB: `_socket` does) at the top; what they need rarely they import where used.
"""

import _socket  # not `socket`: its enums would add 0.3 MB to every fork (see the note above)
import json
import os
import select
import signal
import struct

from .child import _child, _Mode
from .fallback import _kill_and_reap, _landlock_abi, _remove_owned
from .kernel import CLONE_NEWPID, PR_SET_CHILD_SUBREAPER, PR_SET_PDEATHSIG, _check, _libc, _prctl, _unshare
from .levels import NEEDS, level_of
from .limits import Limits, SandboxError
from .namespaces import (
    PRIVATE_TMP,
    _enter_launcher_namespaces,
    _enter_user_namespace,
    _interpreter_paths,
    _visible_paths,
)
from .seccomp import compiled_filter
from .warm import WarmStart

_HOST_UID = os.getuid()
"""This launcher's uid as the host sees it, read before it may enter a user namespace (where it is 0)."""
WARM_MODULES = ("traceback", "linecache", "tokenize", "heapq", "bisect", "string", "copy", "__future__")
"""Imported by the launcher, so warm runs find them loaded: every failing test formats a traceback (a
cold import of traceback costs more than the rest of the run), the scorers' test runner starts with
`from __future__ import annotations` (a cold import: about 100 page faults per run), and programs and tests
often use the others. Each module also makes every fork a little dearer, so the list stays short."""


def _launcher_main(sock_fd: int, parent: int, wanted: str, binds: list[str]) -> None:
    """Serve run requests until the host closes the socket; dies with the host thread that started it.

    `wanted` holds "n" to try namespaces and "l" to use Landlock in the fallback (tests turn them off).
    """
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(0)
    _prctl(PR_SET_CHILD_SUBREAPER, 1)  # orphans of a run come to us to be reaped (fallback mode)
    sock = _socket.socket(fileno=sock_fd)
    own_pid_ns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    binds = sorted({*binds, *_interpreter_paths()})
    try:
        mode, why = _decide_mode("n" in wanted, "l" in wanted, tuple(binds), own_pid_ns)
    except SandboxError as err:
        sock.send(json.dumps({"error": str(err)}).encode())
        return
    level = level_of(mode.namespaces, mode.switch_uid, mode.landlock)
    compiled_filter(deny_network=not mode.namespaces)  # once here, not in every forked run
    mode = mode._replace(warm=WarmStart(PRIVATE_TMP if mode.namespaces else None))
    sock.send(json.dumps({"isolation": mode.description, "level": level, "why": why}).encode())
    while True:
        message, ancillary, _, _ = sock.recvmsg(_MAX_MESSAGE, _socket.CMSG_SPACE(5 * _FD_BYTES))
        if not message:
            return
        request = json.loads(message)
        fds = [fd for _, kind, data in ancillary if kind == _socket.SCM_RIGHTS for fd in _descriptors(data)]
        mode.warm.hold(request)
        _serve(sock, request, fds, mode, own_pid_ns)


_MAX_MESSAGE = 1 << 20
"""Bytes of one request at most (the host keeps commands under 64 KiB); allocated per message, not kept,
so the launcher's resident memory, which every fork copies, stays small."""
_FD_BYTES = 4
"""Bytes of one descriptor number in an SCM_RIGHTS message (a C int)."""


def _descriptors(data: bytes) -> list[int]:
    """The descriptor numbers of one SCM_RIGHTS message."""
    whole = len(data) - len(data) % _FD_BYTES
    return list(struct.unpack(f"{whole // _FD_BYTES}i", data[:whole]))


def _serve(sock: _socket.socket, request: dict, fds: list[int], mode: _Mode, own_pid_ns: int) -> None:
    """Start one run and report its pid (and a pidfd) at once; reap it, clean up, report how it ended.

    Reporting before the child has finished isolating itself lets the host feed its stdin meanwhile;
    a setup failure comes back in the final message instead (the child then exits with 127 before
    running anything).
    """
    uid = _run_uid(mode)
    pid, status_r = _fork_run(request, fds, uid, mode, own_pid_ns, sock)
    pidfd = os.pidfd_open(pid)
    shown = uid if mode.switch_uid else _HOST_UID  # in a user namespace, the uid the host sees
    # The replies are JSON written out by hand: while the run shares this process's pages, every page
    # the launcher touches is copied, and the json module touches many.
    started = b'{"pid": %d, "uid": %d}' % (pid, shown)
    sock.sendmsg([started], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, struct.pack("i", pidfd))])
    os.close(pidfd)
    error = _setup_error(status_r)
    _, status, usage = os.wait4(pid, 0)
    if not mode.namespaces:
        _kill_and_reap(uid)
        _remove_owned(uid, request["staging"])
    cpu = usage.ru_utime + usage.ru_stime
    sock.send(b'{"status": %d, "cpu": %r, "error": %s}' % (status, cpu, json.dumps(error).encode()))


def _run_uid(mode: _Mode) -> int:
    """A fresh unprivileged uid for one run (as root), else this process's uid."""
    return 1_000_000_000 + int.from_bytes(os.urandom(4)) % (1 << 30) if mode.switch_uid else os.getuid()


def _fork_run(
    request: dict,
    fds: list[int],
    uid: int,
    mode: _Mode,
    own_pid_ns: int,
    sock: _socket.socket | None,
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


def _fork_via_helper(
    request: dict,
    fds: list[int],
    uid: int,
    mode: _Mode,
    status_w: int,
) -> int:
    """User-namespace mode: a helper makes the PID namespace and forks the run, then exits at once.

    The launcher cannot reset its own namespace for the next child there (setns back to a PID namespace
    of the initial user namespace needs privileges it lacks). The run is re-parented to the launcher,
    its subreaper, so it can still be waited for. It waits for that before it sets up anything: its
    parent-death signal (SIGKILL) must follow the launcher, never the helper's exit.
    """
    pid_r, pid_w = os.pipe2(os.O_CLOEXEC)
    helper = os.fork()
    if helper == 0:
        os.close(pid_r)
        itself = os.pidfd_open(os.getpid())  # readable once it has exited and its child was re-parented
        _unshare(CLONE_NEWPID)
        run = os.fork()
        if run == 0:
            os.close(pid_w)
            select.select([itself], [], [])
            os.close(itself)
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
    chunks = []  # plain reads: no file object to build while the run shares this process's pages
    while chunk := os.read(status_r, 65536):
        chunks.append(chunk)
    os.close(status_r)
    return b"".join(chunks).decode(errors="replace")


def _decide_mode(
    want_namespaces: bool, want_landlock: bool, binds: tuple[str, ...], own_pid_ns: int
) -> tuple[_Mode, str]:
    """Probe namespaces (entering a user namespace first when not root), else the uid/seccomp fallback.

    With namespaces, the launcher then moves itself into the minimal read-only root, once; each run
    only adds its private /tmp and /proc to a copy of it. Returns the mode and, for a fallback, why
    nothing stronger runs (the host refuses a level below its minimum with it).
    """
    root = os.geteuid() == 0
    problem = "namespaces turned off"
    if want_namespaces:
        try:
            if not root:
                _enter_user_namespace()
            hidden = tuple(path for path in _visible_paths(binds) if path.startswith("/tmp/"))
            mode = _Mode(True, root, 0, binds, _describe(True, root, 0, ""), hidden)
            _probe(mode, own_pid_ns)
            _enter_launcher_namespaces(binds, root)
            return mode, ""
        except OSError as err:  # the kernel or container refuses namespaces: fall back below
            problem = f"namespaces unavailable: {_one_line(err)}"
    if not root:
        raise SandboxError(
            f"cannot sandbox code here ({problem}; the fallback needs root): to run, {NEEDS['userns']}"
            " (see docs/sandbox.md)"
        )
    abi = _landlock_abi() if want_landlock else 0
    why = problem if abi else f"{problem}; Landlock {'unavailable' if want_landlock else 'turned off'}"
    mode = _Mode(False, True, abi, binds, _describe(False, True, abi, problem))
    try:
        _probe(mode, own_pid_ns)
    except OSError as err:
        raise SandboxError(
            f"cannot sandbox code here ({problem}; the fallback failed: {_one_line(err)}): to run,"
            f" {NEEDS['userns']} (see docs/sandbox.md)"
        ) from None
    return mode, why


def _one_line(err: BaseException) -> str:
    """An error's message on one line (refusals are one line)."""
    return " ".join(str(err).split())


def _describe(namespaces: bool, switch_uid: bool, landlock: int, problem: str) -> str:
    """The isolation string of ExecResult, network denial first."""
    identity = "own uid per run" if switch_uid else "no capabilities (user namespace)"
    if namespaces:
        return (
            "netns (loopback only, the launcher's own), pidns, mntns (minimal read-only root, private tmpfs "
            f"/tmp, own /proc), ipcns, {identity}, no keyrings"
        )
    files = (
        f"landlock ABI {landlock} (system files read-only, other host files and /proc hidden)"
        if landlock
        else "no landlock: world-readable host files are readable"
    )
    return (
        f"seccomp socket filter ({problem}), no pidns (stragglers killed by uid), "
        f"host temp dir, {files}, {identity}, no keyrings"
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
