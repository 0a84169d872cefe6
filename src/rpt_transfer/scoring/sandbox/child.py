"""Child side: runs in the fork, isolates itself, then executes the command or runs Python warm."""

import _socket
import fcntl
import itertools
import os
import signal
from typing import NamedTuple, NoReturn

from .fallback import _landlock
from .kernel import (
    CLONE_NEWIPC,
    CLONE_NEWNS,
    PR_SET_NO_NEW_PRIVS,
    PR_SET_PDEATHSIG,
    _drop_capabilities,
    _prctl,
    _unshare,
)
from .limits import Limits, _set_limits
from .namespaces import _enter_launcher_namespaces, _private_tmp, _visible_paths
from .seccomp import _install_seccomp
from .warm import WarmStart, _run_python_warm


class _Mode(NamedTuple):
    """What the launcher found it can do here, decided once at start."""

    namespaces: bool
    switch_uid: bool
    landlock: int
    binds: tuple[str, ...]
    description: str
    hidden: tuple[str, ...] = ()
    """Visible paths under /tmp, which each run's private /tmp covers: every run mirrors them again."""
    warm: WarmStart | None = None
    """What warm runs start from, made once the mode is known (None while probing)."""


def _child(
    request: dict,
    fds: list[int],
    uid: int,
    mode: _Mode,
    status_w: int,
    sock: _socket.socket | None,
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
            _check_stdlib_readable()
            os._exit(0)
        if not warm:
            _exec(cmd, request["env"])
        if mode.warm is None:
            raise RuntimeError("a warm run needs the launcher's WarmStart")
    except BaseException as err:  # any setup failure must be reported, never run unconfined
        os.write(status_w, f"{type(err).__name__}: {err}".encode())
        os._exit(127)
    os.close(status_w)
    _run_python_warm(cmd[len(prefix) :], request["env"], mode.warm, mode.warm.compiled(request))


def _check_stdlib_readable() -> None:
    """The probe's last step: the run's uid must be able to read this Python's standard library."""
    stdlib = os.path.dirname(os.__file__)
    try:
        os.listdir(stdlib)
    except PermissionError:
        raise PermissionError(
            f"the sandboxed uid cannot read this Python's standard library ({stdlib}): this mode needs a "
            "Python that other users can read (not one under /root or in a private temp directory)"
        ) from None


def _isolate(request: dict, staging_fd: int, uid: int, mode: _Mode) -> None:
    """Namespaces, files, limits, identity, no_new_privs, network filter (streams already on 0-3)."""
    os.setsid()
    limits = Limits(**request["limits"])
    if mode.namespaces:
        _unshare(CLONE_NEWNS | CLONE_NEWIPC)
        workdir = _private_tmp(staging_fd, uid if mode.switch_uid else 0, limits, mode.hidden)
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
    _install_seccomp(deny_network=not mode.namespaces)
    if not mode.namespaces and mode.landlock:
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
