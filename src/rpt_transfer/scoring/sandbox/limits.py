"""What a run may use and what comes back: its limits, its result, and the sandbox's own error.

Both sides use it: the host builds requests and results with it, the launcher's forks apply the limits.
"""

import math
import os
import resource
import signal
from typing import NamedTuple

from rpt_transfer.errors import RptError


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
    level: str = ""
    """The isolation level (`levels.LEVELS`: "namespaces", "userns", "landlock" or "uid")."""


TRUNCATION_MARKER = "\n[output truncated: more than {limit} bytes]"


_SIGNAL_REASONS = {signal.SIGXCPU: "cpu_limit", signal.SIGXFSZ: "file_size_limit"}


def _limit_reason(status: dict, cpu_seconds: float) -> str | None:
    """Name a kill after the CPU limit (a PID 1 ignores SIGXCPU, so SIGKILL at the hard limit ends it)."""
    code = status["status"]
    killed = os.WIFSIGNALED(code) and os.WTERMSIG(code) in (signal.SIGKILL, signal.SIGXCPU)
    return "cpu_limit" if killed and status["cpu"] >= max(1, math.ceil(cpu_seconds)) - 0.05 else None


def _result(
    status: int, streams: list[bytearray], cap: int, reason: str | None, isolation: str, level: str
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
        level=level,
    )


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
