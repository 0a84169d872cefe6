"""Namespaces and the minimal read-only root: what a run can see of the host's files and network.

The launcher enters its network namespace and minimal root once (`_enter_launcher_namespaces`); each
run adds its private /tmp and /proc in a mount namespace of its own (`_private_tmp`).
"""

import _socket
import fcntl
import functools
import os
import stat
import struct
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple

from .kernel import (
    _ARCH,
    CLONE_NEWNET,
    CLONE_NEWNS,
    CLONE_NEWUSER,
    MS_BIND,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_PRIVATE,
    MS_REC,
    _check,
    _libc,
    _mount,
    _read_only_tree,
    _unshare,
)
from .limits import Limits

_SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_ETC_ENTRIES = (
    "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "passwd", "group", "nsswitch.conf", "localtime",
    "timezone", "hosts", "host.conf", "gai.conf", "ssl", "ca-certificates", "alternatives", "mime.types",
    "fonts", "locale.alias",
)  # fmt: skip
"""What of /etc a run sees: the loader cache, names, time zone, certificates; never the rest of /etc."""
_DEVICES = ("null", "zero", "full", "random", "urandom")
PRIVATE_TMP = "/tmp"
"""The working directory of every run with namespaces: a tmpfs of its own (`_private_tmp`)."""


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
    environment = os.path.dirname(os.path.dirname(sys.executable))
    if os.path.exists(os.path.join(environment, "pyvenv.cfg")):  # sys.prefix misses it under -S
        paths.append(environment)
    return sorted({os.path.realpath(path) for path in paths})


def _visible_paths(binds: Sequence[str]) -> list[str]:
    """System paths, chosen /etc entries and `binds`, without any path inside another one."""
    chosen: list[str] = []
    for path in sorted({*_SYSTEM_PATHS, *(f"/etc/{name}" for name in _ETC_ENTRIES), *binds}):
        real = path if os.path.islink(path) else os.path.realpath(path)
        if os.path.lexists(path) and not any(real == c or real.startswith(c + "/") for c in chosen):
            chosen.append(path)
    return chosen


def _enter_user_namespace() -> None:
    """Become root of a new user namespace mapped to the current user (unprivileged launchers)."""
    uid, gid = os.getuid(), os.getgid()
    _unshare(CLONE_NEWUSER)
    for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
        with open(f"/proc/self/{name}", "w") as file:
            file.write(text)


def _loopback_up() -> None:
    """Bring up `lo` in the launcher's network namespace, so local servers inside a run work."""
    probe = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    try:
        fcntl.ioctl(probe.fileno(), 0x8914, struct.pack("16sH22x", b"lo", 0x1 | 0x8 | 0x40))  # SIOCSIFFLAGS
    finally:
        probe.close()


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

    The root is a small tmpfs with read-only bind mounts of the system directories, Python and the
    extra readable paths (symlinks such as /bin -> usr/bin are copied as symlinks), copies of the chosen
    /etc entries, a /dev with only harmless devices, empty /tmp and /proc for each run to fill, and
    /var/tmp and /dev/shm pointing to /tmp. Home directories, the repository and data sets are simply
    not there. Few mounts keep each run's copy of this namespace cheap. The tmpfs is mounted over /tmp of
    this (private) namespace, so everything it needs from the host, /tmp included (a virtual environment
    in a fresh clone there), is read first (`_snapshot`). `host_proc` (user-namespace mode) binds the
    host's /proc at /proc, because the kernel lets a user namespace mount a new proc only where one is
    already fully visible; each run covers it with its own.
    """
    _unshare(CLONE_NEWNS)
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    plan = [entry for path in _visible_paths(binds) for entry in _snapshot(path)]
    devices = {name: os.stat(f"/dev/{name}").st_rdev for name in _DEVICES}
    _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID, "size=16m,mode=0755")
    for name in ("tmp", "proc", "var", "etc", "dev"):
        _make_dirs(f"/tmp/{name}")
    _build("/tmp", plan)
    for link, target in (("var/tmp", "/tmp"), ("dev/shm", "/tmp")):
        if not os.path.lexists(f"/tmp/{link}"):  # a Python under /var/tmp keeps its real directory
            os.symlink(target, f"/tmp/{link}")
    _make_devices("/tmp/dev", devices)
    if host_proc:
        _mount("/proc", "/tmp/proc", None, MS_BIND | MS_REC)
    _read_only_tree("/tmp")
    os.chdir("/tmp")
    _check(_libc.syscall(_ARCH[os.uname().machine][4], b".", b"."), "pivot_root")
    _check(_libc.umount2(b".", 2), "umount old root")  # MNT_DETACH
    os.chdir("/")


class _Entry(NamedTuple):
    """One thing to mirror, read from the host before anything is mounted over it.

    A bind mount of `source` (an O_PATH descriptor), a symlink, a directory or a file copy.
    """

    path: str
    kind: str  # "bind", "link", "dir" or "file"
    mode: int  # permission bits of a copy; for "bind", whether the source is a directory
    source: int | str | bytes  # descriptor, link target, file contents ("dir": unused)


def _snapshot(path: str) -> list[_Entry]:
    """What mirroring `path` needs, read now: a bind-mount source, or the entries to copy.

    /etc entries and symlinks are copied (symlinks stay symlinks), which brings them in without a
    mount each; everything else is bind-mounted.
    """
    if path.startswith("/etc/") or os.path.islink(path):
        return list(_copies(path))
    source = os.open(path, os.O_PATH | os.O_CLOEXEC)
    return [_Entry(path, "bind", stat.S_ISDIR(os.fstat(source).st_mode), source)]


def _copies(path: str) -> Iterator[_Entry]:
    """A file, a symlink (as a symlink) or a directory tree, with permission bits, as entries.

    Only what any user may read is copied: /etc/ssl/private and the like stay out of the sandbox.
    """
    if os.path.islink(path):
        yield _Entry(path, "link", 0, os.readlink(path))
        return
    mode = os.stat(path).st_mode
    if not mode & stat.S_IROTH or (stat.S_ISDIR(mode) and not mode & stat.S_IXOTH):
        return
    if stat.S_ISDIR(mode):
        yield _Entry(path, "dir", mode & 0o7777, b"")
        for name in sorted(os.listdir(path)):
            yield from _copies(os.path.join(path, name))
    elif stat.S_ISREG(mode):
        with open(path, "rb") as source:
            yield _Entry(path, "file", mode & 0o7777, source.read())


def _build(root: str, plan: Iterable[_Entry]) -> None:
    """Mirror each entry at the same place under `root`, parents included; closes the sources.

    Parents get mode 0755: a parent that the run could not traverse on the host, such as /root, must not
    hide a path it may read.
    """
    for entry in plan:
        target = root + entry.path
        _make_dirs(os.path.dirname(target))
        if entry.kind == "bind":
            assert isinstance(entry.source, int)
            if entry.mode:
                _make_dirs(target)
            else:
                os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o644))
            _mount(f"/proc/self/fd/{entry.source}", target, None, MS_BIND | MS_REC)
            os.close(entry.source)
        elif entry.kind == "link":
            assert isinstance(entry.source, str)
            os.symlink(entry.source, target)
        elif entry.kind == "dir":
            os.mkdir(target)
            os.chmod(target, entry.mode)
        else:
            assert isinstance(entry.source, bytes)
            with open(target, "wb") as copy:
                copy.write(entry.source)
            os.chmod(target, entry.mode)


def _make_dirs(path: str) -> None:
    """Create `path` and its missing parents, each with mode 0755 whatever the umask."""
    if os.path.lexists(path):
        return
    _make_dirs(os.path.dirname(path))
    os.mkdir(path)
    os.chmod(path, 0o755)


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


def _private_tmp(staging_fd: int, owner: int, limits: Limits, hidden: Sequence[str]) -> str:
    """In the run's mount namespace: a size-capped tmpfs on /tmp (also /var/tmp, /dev/shm); its /proc.

    Visible paths under /tmp (`hidden`: a Python or readable path there) are mirrored again on top of
    the new /tmp, read-only as in the launcher's root, after the staged files.
    """
    plan = [entry for path in hidden for entry in _snapshot(path)]  # before the tmpfs covers them
    options = f"size={limits.disk_bytes},mode=0700,uid={owner},gid={owner}"
    _mount("tmpfs", PRIVATE_TMP, "tmpfs", MS_NOSUID | MS_NODEV, options)
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    _copy_tree(staging_fd, PRIVATE_TMP, owner)
    if plan:
        _build("", plan)
    return PRIVATE_TMP


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
