"""How many CPUs this process may keep busy: the one number every worker pool sizes itself from.

`os.cpu_count()` is the node's CPU count. In a pod with a CPU limit of 2 on a 64-core node, a pool of
64 (or 128) workers gets throttled by the kernel's CPU bandwidth control: every worker runs a fraction
of the time, and programs that are slow but correct hit their wall-clock limits. So the count is

1. `RPT_CPUS`, when set (a whole number, at least 1): an explicit override, e.g. for a shared machine;
2. otherwise the CPUs in this process's affinity mask (`sched_getaffinity`: taskset, cgroup cpusets),
   capped by the tightest CPU bandwidth limit of its cgroup and the cgroup's ancestors: cgroup v2
   `cpu.max` ("150000 100000" is 1.5 CPUs, "max 100000" none), cgroup v1 `cpu.cfs_quota_us` /
   `cpu.cfs_period_us` (a quota of -1 is none).

A fractional limit rounds down, never below 1: a 1.5-CPU pod gets 1. Rounding up would ask for more
CPU time than the limit allows, so the whole pod is throttled and every run slows down by a third;
rounding down costs throughput only, never a correct answer. Set `RPT_CPUS` to choose otherwise.
"""

import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from rpt_transfer.errors import SettingError

CPUS_ENV = "RPT_CPUS"
"""Environment variable that overrides the detected count (the local executor sets it for each job)."""
CGROUP_ROOT = Path("/sys/fs/cgroup")
"""Where cgroup file systems are mounted: the v2 hierarchy itself, or one folder per v1 controller."""
PROC_CGROUP = Path("/proc/self/cgroup")
"""This process's cgroup in each hierarchy: `ID:controllers:path` lines (v2: `0::path`)."""
_V1_CPU_DIRS = ("cpu,cpuacct", "cpu", "cpuacct,cpu")
"""Folders under the cgroup root where distributions mount the v1 `cpu` controller."""


def available_cpus(
    *,
    environ: Mapping[str, str] | None = None,
    cgroup_root: Path = CGROUP_ROOT,
    proc_cgroup: Path = PROC_CGROUP,
) -> int:
    """The CPUs this process may use (see the module docstring); raises SettingError for a bad RPT_CPUS."""
    override = (os.environ if environ is None else environ).get(CPUS_ENV, "").strip()
    if override:
        return _parse_override(override)
    cpus = affinity_cpus()
    limit = cgroup_cpu_limit(cgroup_root, proc_cgroup)
    if limit is not None:
        cpus = min(cpus, max(1, math.floor(limit)))
    return cpus


def affinity_cpus() -> int:
    """CPUs this process may be scheduled on (all of the machine's where affinity is unknown)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def cgroup_cpu_limit(cgroup_root: Path, proc_cgroup: Path = PROC_CGROUP) -> float | None:
    """CPUs allowed by the tightest bandwidth limit on this process's cgroup or an ancestor; None if none.

    The `cpu` controller is looked up in the v1 hierarchies first (on a hybrid system it is bound there),
    then in the v2 unified hierarchy. Missing or unreadable files mean "no limit known": the count then
    falls back to the affinity mask rather than failing a job.
    """
    memberships = _memberships(proc_cgroup)
    v1 = next(((names, path) for _, names, path in memberships if "cpu" in names.split(",")), None)
    if v1 is not None:
        names, path = v1
        folders = (cgroup_root / name for name in (names, *_V1_CPU_DIRS))
        mount = next((folder for folder in folders if folder.is_dir()), None)
        return None if mount is None else _tightest(mount, path, _v1_limit)
    v2 = next((path for hierarchy, _, path in memberships if hierarchy == "0"), None)
    return None if v2 is None else _tightest(cgroup_root, v2, _v2_limit)


def _parse_override(value: str) -> int:
    try:
        cpus = int(value)
    except ValueError:
        cpus = 0
    if cpus < 1:
        raise SettingError(f"{CPUS_ENV}={value!r}: accepted is a whole number of CPUs, at least 1 (e.g. 4)")
    return cpus


def _memberships(proc_cgroup: Path) -> list[tuple[str, str, str]]:
    """(hierarchy id, controllers as written, path) per line of /proc/self/cgroup; empty if unreadable."""
    try:
        text = proc_cgroup.read_text(encoding="utf-8")
    except OSError:
        return []
    found = []
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            found.append((parts[0], parts[1], parts[2]))
    return found


def _tightest(mount: Path, path: str, read: Callable[[Path], float | None]) -> float | None:
    """The smallest limit from the cgroup's folder up to the mount point (an ancestor's limit binds too).

    Where the folder is not under the mount (a container that sees only its own cgroup, mounted at the
    root, while /proc/self/cgroup shows the host's path), the ancestors that do exist are read: at least
    the mount point itself, which then is the container's cgroup.
    """
    parts = [part for part in path.split("/") if part and part not in (".", "..")]
    folders = [mount.joinpath(*parts[:depth]) for depth in range(len(parts), -1, -1)]
    limits = [limit for folder in folders if (limit := read(folder)) is not None]
    return min(limits, default=None)


def _v2_limit(folder: Path) -> float | None:
    """`cpu.max` of a v2 cgroup as CPUs: "QUOTA PERIOD" in microseconds, QUOTA "max" for none."""
    fields = _read(folder / "cpu.max").split()
    if not fields or fields[0] == "max":
        return None
    period = fields[1] if len(fields) > 1 else "100000"  # the kernel's default period
    return _ratio(fields[0], period)


def _v1_limit(folder: Path) -> float | None:
    """`cpu.cfs_quota_us` / `cpu.cfs_period_us` of a v1 cgroup as CPUs; a quota of -1 is none."""
    quota = _read(folder / "cpu.cfs_quota_us")
    if not quota or quota.startswith("-"):
        return None
    return _ratio(quota, _read(folder / "cpu.cfs_period_us") or "100000")


def _ratio(quota: str, period: str) -> float | None:
    try:
        value, per = int(quota), int(period)
    except ValueError:
        return None
    return value / per if value > 0 and per > 0 else None


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return ""
