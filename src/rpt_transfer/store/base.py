"""The store: one root URI (a local folder or an S3 prefix) that every job reads from and writes to.

The store is the source of truth. Each attempt of a job writes its parts under a folder of its own and
its ``MANIFEST.json`` last (see ``writer.py``), so a job is done exactly when its manifest exists, and
readers trust only the objects it lists, from the attempt it names, verifying each one's size and sha256.
Both backends expose the same small set of primitives; the manifest protocol is written once, on the base
class, on top of them.
"""

from __future__ import annotations

import abc
import uuid
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple
from urllib.parse import unquote, urlsplit

from rpt_transfer.errors import ManifestError, StoreError, WriteConflictError
from rpt_transfer.hashing import sha256_hex
from rpt_transfer.manifest import (
    MANIFEST_NAME,
    HashingReader,
    Manifest,
    ObjectInfo,
    check_key,
    verify,
)
from rpt_transfer.store.writer import ObjectWriter

ACCEPTED_URIS = "file:///abs/path, a plain path, or s3://bucket/prefix"
_TEMP_SUFFIX = ".rpt-tmp"  # files being written; never in list_keys, removed with their attempt's folder


class StoredObject(NamedTuple):
    """One object as a listing shows it."""

    key: str
    """Full key, relative to the store root."""
    size: int
    """Size in bytes."""
    modified: datetime
    """Last modification (timezone-aware): how `store gc` tells a slow attempt from an abandoned one."""


class Store(abc.ABC):
    """One store root; keys are '/'-separated paths relative to it, e.g. "generations/<job>/part-0.parquet".

    Construct one with ``Store.from_uri``. Backends implement the primitives; the manifest protocol is here.
    """

    uri: str
    """Normalised root URI: "file:///abs/path" or "s3://bucket/prefix"."""

    @staticmethod
    def from_uri(uri: str) -> Store:
        """Open the store at a ``file://`` URI, a plain (relative or absolute) path, or an ``s3://`` URI."""
        scheme, sep, rest = uri.partition("://")
        if not uri.strip():
            raise StoreError(f"empty store URI: expected {ACCEPTED_URIS}")
        if not sep:
            from rpt_transfer.store.file import FileStore

            return FileStore(Path(uri))
        if scheme.lower() == "file":
            from rpt_transfer.store.file import FileStore

            return FileStore(_file_uri_path(uri))
        if scheme.lower() == "s3":
            bucket, _, prefix = rest.partition("/")
            if not bucket:
                raise StoreError(f"store URI {uri!r} names no bucket: expected s3://bucket/prefix")
            from rpt_transfer.store.s3 import S3Store

            return S3Store(bucket, prefix)
        raise StoreError(f"unsupported store URI {uri!r}: expected {ACCEPTED_URIS}")

    # -- backend primitives ---------------------------------------------------------------------------

    @abc.abstractmethod
    def _reading(self, key: str) -> AbstractContextManager[BinaryIO | None]:
        """Open a key for streaming reads; yield None when there is no such object."""

    @abc.abstractmethod
    def write_bytes(self, key: str, data: bytes) -> None:
        """Write one object atomically: readers see the old bytes or the new ones, never a mix."""

    @abc.abstractmethod
    def write_stream(self, key: str, source: HashingReader) -> None:
        """Write one object from a reader, front to back, without holding it all in memory."""

    @abc.abstractmethod
    def create_exclusive(self, key: str, data: bytes) -> bool:
        """Write an object only if none exists, in one atomic step; False if one was already there."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool:
        """Whether an object exists at key."""

    @abc.abstractmethod
    def list_objects(self, prefix: str) -> list[StoredObject]:
        """Objects under a folder-style prefix, sorted by key, with sizes and last-modified times.

        A file store includes the temporary files of writes in progress, so `store gc` sees them change.
        """

    @abc.abstractmethod
    def delete_keys(self, keys: list[str]) -> None:
        """Delete these objects; keys that do not exist are not an error."""

    @abc.abstractmethod
    def delete_prefix(self, prefix: str) -> None:
        """Delete every object under a folder-style prefix (an empty prefix is refused)."""

    @abc.abstractmethod
    def check_access(self, write: bool = True) -> None:
        """Fail fast with one clear StoreError if the store cannot be reached, read or (if write) written."""

    @abc.abstractmethod
    def local_path(self) -> Path | None:
        """Return the root folder of a file store, or None for a remote store."""

    # -- raw objects ----------------------------------------------------------------------------------

    def key_uri(self, key: str) -> str:
        """Full URI of a key, for messages."""
        return f"{self.uri.rstrip('/')}/{key}"

    def list_keys(self, prefix: str) -> list[str]:
        """Sorted full keys under a folder-style prefix ("a/b" and "a/b/" both mean the folder a/b)."""
        return [obj.key for obj in self.list_objects(prefix) if not obj.key.endswith(_TEMP_SUFFIX)]

    def read_bytes(self, key: str) -> bytes:
        """Read one whole object; StoreError naming its URI if it does not exist."""
        with self._reading(key) as source:
            if source is None:
                raise StoreError(f"no object at {self.key_uri(key)}")
            return source.read()

    # -- manifest protocol ----------------------------------------------------------------------------

    def manifest(self, prefix: str) -> Manifest | None:
        """Return the job's manifest, None if it is not done; ManifestError if it is malformed."""
        key = _manifest_key(prefix)
        with self._reading(key) as source:
            data = None if source is None else source.read()
        return None if data is None else Manifest.from_json(data, self.key_uri(key))

    def is_done(self, prefix: str) -> bool:
        """Whether the job at prefix has committed, i.e. its manifest exists."""
        return self.exists(_manifest_key(prefix))

    def begin(self, prefix: str, *, job_id: str, kind: str, inputs: dict[str, Any]) -> ObjectWriter:
        """Start a new attempt of the job at prefix, writing under a folder of its own; it deletes nothing.

        Raises WriteConflictError if the job is already done: its output must never change under readers.
        """
        folder = _job_folder(prefix)
        writer = ObjectWriter(self, folder, job_id=job_id, kind=kind, inputs=inputs)
        if self.is_done(folder):
            raise WriteConflictError(
                f"job {job_id} is already done: {self.key_uri(_manifest_key(folder))} exists"
            )
        return writer

    def object_key(self, prefix: str, name: str) -> str:
        """Key of an object the job's manifest lists (inside the attempt folder the manifest names)."""
        folder = _job_folder(prefix)
        return f"{folder}/{self._done_manifest(folder).stored_name(name)}"

    def object_location(self, prefix: str, name: str) -> str:
        """Where a person finds a listed object: its local path in a file store, else its URI."""
        key = self.object_key(prefix, name)
        root = self.local_path()
        return str(root / key) if root is not None else self.key_uri(key)

    def read_object(self, prefix: str, name: str) -> bytes:
        """Read one object the job's manifest lists, verified against its size and sha256."""
        folder = _job_folder(prefix)
        manifest = self._done_manifest(folder)
        info = manifest.object(name)
        key = f"{folder}/{manifest.stored_name(name)}"
        where = self.key_uri(key)
        with self._reading(key) as source:
            if source is None:
                raise ManifestError(f"object {where} is listed in its manifest but missing")
            data = source.read()
        verify(info, len(data), sha256_hex(data), where)
        return data

    def download(self, prefix: str, dest: Path) -> Path:
        """Copy every object the job's manifest lists into dest (keeping subfolders), each verified."""
        folder = _job_folder(prefix)
        dest = Path(dest)
        manifest = self._done_manifest(folder)
        for info in manifest.objects:
            self._download_one(f"{folder}/{manifest.stored_name(info.name)}", info, dest / info.name)
        return dest

    def delete_job(self, prefix: str) -> None:
        """Un-commit a job: first its manifest, so it is never done with objects missing, then its objects.

        Only the objects the manifest lists go; other attempts' leftovers stay for `store gc`. A job without
        a manifest is left as it is.
        """
        folder = _job_folder(prefix)
        manifest = self.manifest(folder)
        if manifest is None:
            return
        self.delete_keys([_manifest_key(folder)])
        if manifest.attempt is not None:
            self.delete_prefix(f"{folder}/{manifest.attempt}")
        else:
            self.delete_keys([f"{folder}/{info.name}" for info in manifest.objects])

    def _done_manifest(self, folder: str) -> Manifest:
        manifest = self.manifest(folder)
        if manifest is None:
            raise StoreError(f"job not done: no manifest at {self.key_uri(_manifest_key(folder))}")
        return manifest

    def _download_one(self, key: str, info: ObjectInfo, target: Path) -> None:
        """Stream one object to a temporary file beside target, and move it into place only if it verifies."""
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}{_TEMP_SUFFIX}")
        try:
            with self._reading(key) as source, partial.open("wb") as out:
                if source is None:
                    raise ManifestError(f"object {self.key_uri(key)} is listed in its manifest but missing")
                reader = HashingReader(source)
                for chunk in reader.chunks():
                    out.write(chunk)
            verify(info, reader.size, reader.sha256, self.key_uri(key))
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)


def _job_folder(prefix: str) -> str:
    return check_key(prefix.rstrip("/"), "job prefix")


def _manifest_key(prefix: str) -> str:
    return f"{_job_folder(prefix)}/{MANIFEST_NAME}"


def _list_folder(prefix: str) -> str:
    """Return "" for the whole store, else the checked folder with a trailing '/'."""
    return "" if not prefix.strip("/") else check_key(prefix.rstrip("/"), "prefix") + "/"


def _file_uri_path(uri: str) -> Path:
    parts = urlsplit(uri)
    if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
        raise StoreError(f"file URI {uri!r} is not absolute: expected file:///abs/path (three slashes)")
    return Path(unquote(parts.path))
