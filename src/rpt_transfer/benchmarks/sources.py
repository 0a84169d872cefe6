"""Where benchmark records come from: a Hugging Face dataset pinned to a commit, or a local copy of it.

On a cluster, records load from the Hub at the pinned revision. A dataset whose commit is not known here
(`UNPINNED`) is resolved to the commit its default branch points at when a study is planned
(`rpt_transfer.revisions`): the plan carries that commit (`pins`) and its jobs load exactly it. Offline
(tests, air-gapped sites), point RPT_BENCHMARK_DATA at a folder holding local copies in the same schema; the
data's identity is then the sha256 of those files, so job ids say which bytes were evaluated and never mix
the two. A dataset that is not on the Hub at all (USACO) always needs its local copy.
"""

import functools
import gzip
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rpt_transfer.errors import RptError

DATA_ENV = "RPT_BENCHMARK_DATA"
UNPINNED = "UNPINNED"
"""Revision of a dataset whose Hub commit is not written here: each plan resolves its default branch."""
Record = Mapping[str, Any]
HubLoad = Callable[[str, str | None, str, str], Iterator[Record]]
"""load(hf_id, config, split, revision): rows of one Hub dataset, as `datasets` returns them."""


class NoData(RptError):
    """A benchmark's records cannot be found: no local copy where one is needed, or no Hub dataset."""


def data_root() -> Path | None:
    """The local benchmark folder from RPT_BENCHMARK_DATA, or None to load from the Hub."""
    value = os.environ.get(DATA_ENV)
    return Path(value).expanduser().resolve() if value else None


@dataclass(frozen=True)
class DatasetSource:
    """A benchmark's data: the Hub coordinates users load on a cluster, and how to read a local copy."""

    hf_id: str
    """Hub dataset id."""
    config: str | None
    """Dataset config (subset) name."""
    split: str
    """Split evaluated."""
    revision: str
    """Hub commit the study is pinned to."""
    local_files: tuple[str, ...]
    """Files under the local data root that hold the same records (their sha256 is the data id offline)."""
    read_local: Callable[[Path], Iterator[Record]]
    """Reads the local copy, given the data root."""
    count: int
    """Number of records, known without loading (plans must stay cheap)."""
    required: tuple[str, ...]
    """Fields every record must have."""
    read_hub: Callable[[HubLoad], Iterator[Record]] | None = None
    """Builds the records from the Hub when one dataset is not enough (one config per task, several
    datasets, fields to add); None loads (hf_id, config, split, revision) as it is."""
    hub_ids: tuple[str, ...] | None = None
    """The Hub datasets the records are read from: None means just `hf_id`; () means none (not on the Hub)."""
    pins: tuple[tuple[str, str], ...] = ()
    """For an `UNPINNED` source: (Hub dataset, commit) pairs resolved when the study was planned."""
    obtain: str = ""
    """How to get the local copy, for messages when it is missing."""

    def hub_datasets(self) -> tuple[str, ...]:
        """The Hub datasets the records come from when there is no local copy; () when not on the Hub."""
        return (self.hf_id,) if self.hub_ids is None else self.hub_ids

    def with_pins(self, commits: Mapping[str, str]) -> "DatasetSource":
        """A copy with its unpinned Hub datasets fixed at `commits` (Hub dataset to commit)."""
        missing = sorted(set(self.hub_datasets()) - set(commits))
        if missing:
            raise RptError(f"{self.hf_id}: no commit given for {', '.join(missing)}")
        return replace(self, pins=tuple(sorted((repo, commits[repo]) for repo in self.hub_datasets())))

    def data_id(self) -> str:
        """Identity of the records: the Hub revision (or planned commits), or the local files' digest."""
        root = data_root()
        if root is not None:
            return "sha256:" + _digest(tuple(str(self._local(root, name)) for name in self.local_files))
        if not self.hub_datasets():
            raise NoData(
                f"{self.hf_id} ({self.config}) is not on the Hugging Face Hub, so it needs a local copy: set "
                f"{DATA_ENV} to a folder holding {' and '.join(self.local_files)}"
                + (f"; {self.obtain}" if self.obtain else "")
            )
        if self.revision != UNPINNED:
            return f"hf:{self.hf_id}@{self.revision}"
        if not self.pins:
            raise RptError(
                f"dataset {self.hf_id} has no pinned revision and was not resolved to a commit: plan the "
                f"study (planning resolves it), or set {DATA_ENV} to a folder with local copies"
            )
        return "hf:" + ",".join(f"{repo}@{commit}" for repo, commit in self.pins)

    def records(self) -> Iterator[Record]:
        """Every record, checked for the required fields."""
        root = data_root()
        if root is None:
            where = self.data_id().removeprefix("hf:")  # refuses a source with no Hub dataset or no commit
            if self.read_hub is None:
                rows = self._load_hub(self.hf_id, self.config, self.split, self.revision)
            else:
                rows = self.read_hub(self._load_hub)
        else:
            rows, where = self.read_local(root), str(self._local(root, self.local_files[0]))
        for index, row in enumerate(rows):
            missing = [name for name in self.required if name not in row]
            if missing:
                raise RptError(
                    f"{where}: record {index} lacks {', '.join(map(repr, missing))}; "
                    f"required fields: {', '.join(self.required)}"
                )
            yield row

    def _load_hub(self, hf_id: str, config: str | None, split: str, revision: str) -> Iterator[Record]:
        """`load_hub`, with an unpinned dataset loaded at the commit its plan resolved."""
        if revision == UNPINNED:
            revision = dict(self.pins).get(hf_id, UNPINNED)
        if revision == UNPINNED:
            raise RptError(f"dataset {hf_id} was not resolved to a commit when its study was planned")
        return load_hub(hf_id, config, split, revision)

    def _local(self, root: Path, name: str) -> Path:
        path = root / name
        if not path.exists():
            hints = [] if self.hub_datasets() else ["it is not on the Hugging Face Hub"]
            hints += [self.obtain] if self.obtain else []
            if self.hub_datasets():
                hints.append(f"or unset {DATA_ENV} to load it from {self.hf_id}")
            raise NoData(
                f"{path}: no local copy of {self.hf_id} ({DATA_ENV}={root}); expected {name} there"
                + "".join(f"; {hint}" for hint in hints)
            )
        return path


def pins_of(data_id: str) -> dict[str, str]:
    """The (Hub dataset, commit) pairs of a data identity `hf:a@sha,b@sha` (the inverse of `data_id`)."""
    return dict(part.rpartition("@")[::2] for part in data_id.removeprefix("hf:").split(",") if part)


@functools.lru_cache(maxsize=64)
def _digest(paths: tuple[str, ...]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        files = (
            sorted(p for p in Path(path).rglob("*") if p.is_file()) if Path(path).is_dir() else [Path(path)]
        )
        for file in files:
            digest.update(file.name.encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def load_hub(hf_id: str, config: str | None, split: str, revision: str) -> Iterator[Record]:
    """Rows of one Hub dataset at a revision; one line when it fails."""
    try:
        import datasets
    except ImportError:
        raise RptError(
            f"loading {hf_id} from the Hub needs the `datasets` package "
            f"(pip install 'rpt-transfer[hub]'), or set {DATA_ENV} to a folder with local copies"
        ) from None
    try:
        table = datasets.load_dataset(
            hf_id, config, split=split, revision=None if revision == UNPINNED else revision
        )
    except Exception as err:  # the Hub client raises many types; one line naming the dataset is what helps
        raise RptError(
            f"cannot load {hf_id} (config {config}, split {split}) at revision {revision}: "
            f"{type(err).__name__}: {err}"
        ) from None
    return iter(table)


def read_jsonl(path: Path) -> Iterator[Record]:
    """Rows of a JSON Lines file, gzipped or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as err:
                    raise RptError(f"{path}: line {number} is not JSON ({err.msg})") from None


def read_json(path: Path) -> Any:
    """A whole JSON file; one line naming the file when it is not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise RptError(f"{path}: not JSON ({err.msg} at line {err.lineno})") from None
