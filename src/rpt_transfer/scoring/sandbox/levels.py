"""Isolation levels: what a launcher can give here, their order, and the refusal below the minimum.

Loaded by the launcher process too (see `launcher._BOOT`), so it imports nothing.

Levels, weakest first (docs/sandbox.md says which machine or pod gives which):

- "uid": the fallback without Landlock: a seccomp socket filter and a fresh uid per run; every host file
  that any user may read is readable, so a world-readable credential is not safe;
- "landlock": the fallback with Landlock: reading limited to the system paths and Python, no /proc but
  the run's own entry, no `connect` and no datagram sockets; it still shares the host's PID, IPC and
  mount namespaces (SysV IPC objects, which paths exist), so it is not the default either;
- "userns": namespaces inside a user namespace (a scorer that is not root): own network, PID, mount and
  IPC namespaces, a minimal read-only root with its own /proc, no capabilities;
- "namespaces": the same namespaces entered as root, each run as a fresh unprivileged uid.

Under the default minimum, "userns", candidate code can read no credential: the environment is
scrubbed, no host file outside the system paths and Python is there at all, /proc shows only the
run's own processes, and the kernel keyrings are refused (`seccomp`).
"""

LEVELS = ("uid", "landlock", "userns", "namespaces")
"""Weakest first; a level meets a minimum at or below it."""
ALIASES = {"none": "uid"}
"""`none`: accept whatever the machine gives (the sandbox never runs without its network filter)."""
DEFAULT_MINIMUM = "userns"

NEEDS = {
    "namespaces": "run the scorer as root with CAP_SYS_ADMIN and a seccomp and AppArmor profile that allow"
    " unshare, mount and pivot_root",
    "userns": "allow user namespaces (seccompProfile Unconfined or a Localhost profile that allows unshare,"
    " mount and pivot_root; AppArmor unconfined; procMount Unmasked where /proc is masked; node sysctl"
    " user.max_user_namespaces > 0) or run as root with CAP_SYS_ADMIN",
    "landlock": "run the scorer as root (the fallback gives each run its own uid) on a kernel with Landlock"
    " enabled (Linux 5.13+, landlock in the lsm= list), or allow namespaces",
    "uid": "run the scorer as root (the fallback gives each run its own uid), or allow namespaces",
}
"""What a machine or pod needs to reach each level, for the refusal (docs/sandbox.md has the details)."""


def level_of(namespaces: bool, switch_uid: bool, landlock: int) -> str:
    """The level a launcher with this mode gives."""
    if namespaces:
        return "namespaces" if switch_uid else "userns"
    return "landlock" if landlock else "uid"


def parse_minimum(value: str, source: str) -> str:
    """The level named by `value` (from `source`, for the message); ValueError naming what is accepted."""
    name = ALIASES.get(value.strip().lower(), value.strip().lower())
    if name not in LEVELS:
        accepted = ", ".join((*reversed(LEVELS), *ALIASES))
        raise ValueError(f"{source}={value!r} is not an isolation level; accepted: {accepted}")
    return name


def meets(level: str, minimum: str) -> bool:
    """Whether `level` is at least `minimum`."""
    return LEVELS.index(level) >= LEVELS.index(minimum)


def refusal(level: str, why: str, minimum: str, source: str) -> str:
    """One line: what runs here, why not more, the minimum and where it came from, what would meet it."""
    weaker = f"set RPT_SANDBOX_MIN={level} to accept it" if level != "uid" else "set RPT_SANDBOX_MIN=none"
    return (
        f"sandbox isolation here is {level!r} ({why}), below the minimum {minimum!r} ({source}): to reach"
        f" it, {NEEDS[minimum]}; or {weaker} (see docs/sandbox.md)"
    )
