"""`rpt-transfer store gc`: remove job objects that no manifest lists, once they are old enough.

Writers never delete each other's objects (see ``writer.py``), so attempts that were killed, failed or
lost a race leave their folders behind. This module finds them under the job roots and removes those
whose newest object is older than a minimum age. The age is what keeps a slow attempt that is still
writing safe: it writes its objects shortly before its commit, and a commit whose objects were removed
anyway finds them missing and commits nothing.

What counts as garbage, under ``checkpoints/``, ``generations/``, ``scores/``, ``reports/``,
``training/``, ``leaderboard/`` and ``discovery/`` (its ``runs/<run>/`` folders):

- an attempt folder (``<prefix>/attempt-.../``) that the manifest at ``<prefix>`` does not name, or that
  has no manifest at all; its age is that of its newest object;
- under a committed job, any other object its manifest does not list (e.g. parts that a writer of the
  format 1 layout left before the job committed); each by its own age.

Objects outside any job folder (a re-rendered ``reports/<study>/rendered/``) and jobs whose manifest
cannot be read are left alone.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from rpt_transfer.errors import ManifestError, RptError
from rpt_transfer.manifest import MANIFEST_NAME, Manifest, is_attempt
from rpt_transfer.store.base import Store, StoredObject

JOB_ROOTS = ("checkpoints", "generations", "scores", "reports", "training", "leaderboard", "discovery")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd]?)")


def parse_duration(text: str) -> timedelta:
    """Parse "24h", "30m", "7d", "90s" or "0"; RptError naming what is accepted otherwise."""
    match = _DURATION.fullmatch(text.strip())
    if match is None or (not match.group(2) and float(match.group(1)) != 0):
        raise RptError(f"--min-age {text!r}: accepted: a number with a unit s, m, h or d (24h, 7d), or 0")
    return timedelta(seconds=float(match.group(1)) * _UNITS.get(match.group(2), 1))


def format_duration(age: timedelta) -> str:
    """Write an age the way --min-age takes it: "24h", "7d", "90s", "0"."""
    seconds = age.total_seconds()
    for unit in ("d", "h", "m"):
        if seconds and seconds % _UNITS[unit] == 0:
            return f"{int(seconds // _UNITS[unit])}{unit}"
    return f"{seconds:g}s" if seconds else "0"


@dataclass(frozen=True)
class Removal:
    """One attempt folder, or one loose object, that gc removed (or would remove)."""

    where: str
    """Key of the attempt folder or of the object."""
    objects: int
    """How many objects went."""
    size: int
    """Their bytes, together."""


@dataclass
class GcReport:
    """What one gc pass found and did."""

    store: str
    """URI of the store."""
    dry_run: bool
    """Whether nothing was removed, only reported."""
    min_age: timedelta
    """Unlisted objects younger than this stay."""
    removed: list[Removal] = field(default_factory=list)
    young: int = 0
    """Unlisted objects left because their attempt wrote something within the minimum age."""
    unreadable: list[str] = field(default_factory=list)
    """Job prefixes left alone because their manifest could not be read."""

    def lines(self) -> list[str]:
        """One line per removal, then a summary (count and bytes), for the CLI to print."""
        verb = "would remove" if self.dry_run else "removed"
        out = [f"{verb} {r.where} ({r.objects} objects, {r.size} bytes)" for r in self.removed]
        out += [f"left alone: cannot read the manifest of {prefix}" for prefix in self.unreadable]
        objects, size = sum(r.objects for r in self.removed), sum(r.size for r in self.removed)
        out.append(
            f"store gc {self.store}: {verb} {objects} objects, {size} bytes; kept {self.young} unlisted "
            f"objects younger than {format_duration(self.min_age)}"
        )
        return out


def collect_garbage(
    store: Store, *, min_age: timedelta, now: datetime | None = None, dry_run: bool = False
) -> GcReport:
    """Remove (or with dry_run only report) unlisted objects under the job roots older than min_age."""
    report = GcReport(store.uri, dry_run, min_age)
    cutoff = (now or datetime.now(UTC)) - min_age
    for root in JOB_ROOTS:
        _Pass(store, report, cutoff).run(store.list_objects(root))
    return report


class _Pass:
    """One root's objects, sorted into attempts, manifests and loose objects, then judged."""

    def __init__(self, store: Store, report: GcReport, cutoff: datetime) -> None:
        self.store, self.report, self.cutoff = store, report, cutoff
        self._manifests: dict[str, Manifest | None] = {}

    def run(self, objects: list[StoredObject]) -> None:
        """Judge every attempt folder, then every loose object under a committed job."""
        committed = {o.key.removesuffix(f"/{MANIFEST_NAME}") for o in objects if _is_manifest(o.key)}
        attempts: dict[tuple[str, str], list[StoredObject]] = defaultdict(list)
        loose: list[tuple[str, StoredObject]] = []
        for obj in objects:
            parts = obj.key.split("/")
            at = next((i for i, part in enumerate(parts) if i > 0 and is_attempt(part)), None)
            if at is not None:
                attempts[("/".join(parts[:at]), parts[at])].append(obj)
            elif not _is_manifest(obj.key) and (owner := _owner(parts, committed)) is not None:
                loose.append((owner, obj))
        for (prefix, attempt), members in attempts.items():
            self._judge_attempt(prefix, attempt, members)
        for prefix, obj in loose:
            self._judge_loose(prefix, obj)

    def _judge_attempt(self, prefix: str, attempt: str, members: list[StoredObject]) -> None:
        if self._keeps(prefix, attempt):
            return
        if max(obj.modified for obj in members) > self.cutoff:
            self.report.young += len(members)
            return
        if not self.report.dry_run:
            if self._keeps(prefix, attempt, fresh=True):
                return  # it committed after the listing
            self.store.delete_prefix(f"{prefix}/{attempt}")
        size = sum(obj.size for obj in members)
        self.report.removed.append(Removal(f"{prefix}/{attempt}/", len(members), size))

    def _judge_loose(self, prefix: str, obj: StoredObject) -> None:
        manifest = self._manifest(prefix)
        name = obj.key.removeprefix(f"{prefix}/")
        if manifest is None:
            return  # unreadable
        if manifest.attempt is None and name in {info.name for info in manifest.objects}:
            return  # listed by a format 1 manifest
        if obj.modified > self.cutoff:
            self.report.young += 1
            return
        if not self.report.dry_run:
            self.store.delete_keys([obj.key])
        self.report.removed.append(Removal(obj.key, 1, obj.size))

    def _keeps(self, prefix: str, attempt: str, fresh: bool = False) -> bool:
        """Whether the attempt must stay: its job's manifest names it, or cannot be read."""
        manifest = self._manifest(prefix, fresh)
        return prefix in self.report.unreadable or (manifest is not None and manifest.attempt == attempt)

    def _manifest(self, prefix: str, fresh: bool = False) -> Manifest | None:
        """The job's manifest (cached unless fresh); None if it has none or it cannot be read."""
        if fresh or prefix not in self._manifests:
            try:
                self._manifests[prefix] = self.store.manifest(prefix)
            except ManifestError:  # malformed, or a format this version does not know: leave the job alone
                self._manifests[prefix] = None
                if prefix not in self.report.unreadable:
                    self.report.unreadable.append(prefix)
        return self._manifests[prefix]


def _is_manifest(key: str) -> bool:
    parts = key.split("/")
    return parts[-1] == MANIFEST_NAME and not any(is_attempt(part) for part in parts)


def _owner(parts: list[str], committed: set[str]) -> str | None:
    """The nearest folder above an object that holds a manifest, or None."""
    for end in range(len(parts) - 1, 0, -1):
        if (prefix := "/".join(parts[:end])) in committed:
            return prefix
    return None
