"""The writer of one attempt of a job: objects under a folder of its own, then one exclusive commit.

Any number of attempts of one job may run at once (a retried pod while the old one still runs, two studies
sharing a job). Each attempt writes under ``<prefix>/<attempt>/`` only, so no attempt can change or remove
another's objects. The commit first checks that every object this attempt wrote is still there with its
size, then creates ``<prefix>/MANIFEST.json`` only if no manifest exists: exactly one attempt wins, and
the manifest it leaves lists objects that nobody else writes. A losing attempt removes its own folder;
what killed attempts leave behind is removed later by ``rpt-transfer store gc``, never by a writer that
starts.
"""

from __future__ import annotations

from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from rpt_transfer.errors import ManifestError, StoreError, WriteConflictError
from rpt_transfer.hashing import canonical_json, sha256_hex
from rpt_transfer.manifest import (
    MANIFEST_NAME,
    HashingReader,
    Manifest,
    ObjectInfo,
    check_key,
    new_attempt,
    software_versions,
)

if TYPE_CHECKING:
    from rpt_transfer.store.base import Store


class ObjectWriter:
    """Writes one attempt's objects under its own folder, then commits the manifest that makes the job done.

    Use it as a context manager (``with store.begin(...) as writer:``): if the block raises, nothing is
    committed and the attempt's objects are removed; if it ends normally, the writer commits unless the
    block already called ``commit()``.
    """

    def __init__(self, store: Store, prefix: str, *, job_id: str, kind: str, inputs: dict[str, Any]) -> None:
        canonical_json(inputs)  # inputs must be plain JSON; fail here rather than at commit
        self.store = store
        self.prefix = prefix
        self.attempt = new_attempt()
        """This attempt's name; its objects lie under ``<prefix>/<attempt>/``."""
        self.folder = f"{prefix}/{self.attempt}"
        self._job_id = job_id
        self._kind = kind
        self._inputs = inputs
        self._objects: dict[str, ObjectInfo] = {}
        self._runtime: dict[str, str] = {}
        self._manifest: Manifest | None = None
        self._commit_sent = False

    def __enter__(self) -> ObjectWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None and self._manifest is None:
            self.commit()
        elif isinstance(exc, Exception) and self._manifest is None and not self._commit_sent:
            self._discard()

    def put_bytes(self, name: str, data: bytes) -> None:
        """Write one object from memory."""
        key = self._key(name)
        self.store.write_bytes(key, data)
        self._objects[name] = ObjectInfo(name=name, sha256=sha256_hex(data), size=len(data))

    def put_file(self, name: str, path: Path) -> None:
        """Stream one local file into the store, hashing it on the way, so checkpoints never sit in memory."""
        key = self._key(name)
        with Path(path).open("rb") as source:
            reader = HashingReader(source)
            self.store.write_stream(key, reader)
        self._objects[name] = ObjectInfo(name=name, sha256=reader.sha256, size=reader.size)

    def put_dir(self, src: Path, under: str = "") -> None:
        """Write every file under src, named by its path relative to src (prefixed by ``under/``)."""
        src = Path(src)
        if not src.is_dir():
            raise StoreError(f"cannot upload {src}: not a folder")
        for path in sorted(p for p in src.rglob("*") if p.is_file()):
            relative = path.relative_to(src).as_posix()
            self.put_file(f"{under.strip('/')}/{relative}" if under.strip("/") else relative, path)

    def note_runtime(self, key: str, value: str) -> None:
        """Record how the job ran (the manifest's `runtime`), e.g. the sandbox isolation level that ran."""
        if self._manifest is not None:
            raise RuntimeError(f"job {self._job_id} at {self.prefix} is committed; it takes no more notes")
        self._runtime[key] = str(value)

    def commit(self) -> Manifest:
        """Check this attempt's objects, then create MANIFEST.json if none exists.

        Raises ManifestError (and commits nothing) if an object this attempt wrote is gone or changed
        size, and WriteConflictError if another attempt committed first.
        """
        if self._manifest is not None:
            raise RuntimeError(f"job {self._job_id} at {self.prefix} is already committed")
        objects = sorted(self._objects.values(), key=lambda info: info.name)
        self._check_written(objects)
        manifest = Manifest(
            job_id=self._job_id,
            kind=self._kind,
            inputs=self._inputs,
            software=software_versions(),
            objects=objects,
            created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            attempt=self.attempt,
            runtime=dict(self._runtime),
        )
        key = f"{self.prefix}/{MANIFEST_NAME}"
        self._commit_sent = True  # from here an error leaves the outcome unknown: keep the objects
        if not self.store.create_exclusive(key, manifest.to_json()):
            committed = self.store.manifest(self.prefix)
            if committed is not None and committed.attempt == self.attempt:
                self._manifest = committed  # our own commit, answered late and retried by the client
                return committed
            self._discard()
            raise WriteConflictError(
                f"job {self._job_id} was committed by another writer first: {self.store.key_uri(key)} exists"
            )
        manifest._location = self.store.key_uri(key)
        self._manifest = manifest
        return manifest

    def _check_written(self, objects: list[ObjectInfo]) -> None:
        """Every object this attempt wrote must still be there with its size (one listing, no re-hashing)."""
        found = {obj.key: obj.size for obj in self.store.list_objects(self.folder)}
        for info in objects:
            key = f"{self.folder}/{info.name}"
            size = found.get(key)
            if size != info.size:
                state = "is missing" if size is None else f"has {size} bytes"
                raise ManifestError(
                    f"job {self._job_id}: object {self.store.key_uri(key)} {state}, this attempt wrote "
                    f"{info.size}; nothing committed (was it removed by `rpt-transfer store gc`?)"
                )

    def _discard(self) -> None:
        """Remove this attempt's folder: no manifest lists it, and no other attempt writes there."""
        with suppress(StoreError):  # `store gc` removes it later; the error that brought us here matters more
            self.store.delete_prefix(self.folder)

    def _key(self, name: str) -> str:
        if self._manifest is not None:
            raise RuntimeError(f"job {self._job_id} at {self.prefix} is committed; it takes no more objects")
        check_key(name, "object name")
        if name == MANIFEST_NAME:
            raise StoreError(f"object name {MANIFEST_NAME!r} is reserved for the manifest")
        return f"{self.folder}/{name}"
