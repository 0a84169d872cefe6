"""Fallback mode, where namespaces are unavailable: Landlock, cleanup by uid (its socket filter: `seccomp`).

The run keeps the host's file system (its working directory is the host temp dir it was staged in), so
what it may read and write is limited by Landlock where the kernel has it, and what it leaves behind
(processes, files in the world-writable directories) is found by its unique uid.
"""

import contextlib
import ctypes
import os
import signal
import struct
import time

from .kernel import _check, _libc
from .namespaces import _DEVICES

_LANDLOCK_READ, _LANDLOCK_FILE_RIGHTS = 1 | 4 | 8, 1 | 2 | 4 | (1 << 14) | (1 << 15)


def _landlock(abi: int, readable: list[str], workdir: str) -> None:
    """Landlock (fallback mode): read-only system paths and Python, devices, full access to `workdir`.

    Of /proc only the calling process's own entry (the run's first process: /proc/self/fd, status,
    maps): the host's /proc would show every process's command line, and more. Also denies TCP
    bind/connect (ABI 4+) and signals or abstract sockets outside the run (ABI 6+).
    """
    handled = (1 << {1: 13, 2: 14, 3: 15, 4: 15}.get(abi, 16)) - 1
    attr = struct.pack("QQQ", handled, 3, 3)[: 8 if abi < 4 else 16 if abi < 6 else 24]
    ruleset = _libc.syscall(444, ctypes.c_char_p(attr), len(attr), 0)
    _check(ruleset, "landlock_create_ruleset")
    rules = [(path, _LANDLOCK_READ) for path in (*readable, f"/proc/{os.getpid()}")]
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
                    import shutil  # fallback mode only; see the note in `server`

                    shutil.rmtree(entry.path, ignore_errors=True)  # best effort: a race with nothing
                else:
                    os.unlink(entry.path)
