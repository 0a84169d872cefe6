"""The store: one root URI (a local folder or an S3 prefix) that every job reads from and writes to.

The store is the source of truth. A job writes its parts first and its ``MANIFEST.json`` last (see
``manifest.py``), so a job is done exactly when its manifest exists, and readers trust only the objects
it lists, verifying each one's size and sha256. Both backends expose the same small set of primitives;
the manifest protocol is written once, on the base class, on top of them.
"""

from __future__ import annotations

import abc
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

from botocore.exceptions import (
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from rpt_transfer.errors import ManifestError, StoreError, WriteConflictError
from rpt_transfer.hashing import sha256_hex
from rpt_transfer.manifest import (
    MANIFEST_NAME,
    HashingReader,
    Manifest,
    ObjectInfo,
    ObjectWriter,
    check_key,
    software_versions,
    verify,
)

__all__ = [
    "MANIFEST_NAME",
    "FileStore",
    "Manifest",
    "ObjectInfo",
    "ObjectWriter",
    "S3Store",
    "Store",
    "software_versions",
]

ACCEPTED_URIS = "file:///abs/path, a plain path, or s3://bucket/prefix"
_TEMP_SUFFIX = ".rpt-tmp"  # files being written; never listed, removed with their job's prefix


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
            return FileStore(Path(uri))
        if scheme.lower() == "file":
            return FileStore(_file_uri_path(uri))
        if scheme.lower() == "s3":
            bucket, _, prefix = rest.partition("/")
            if not bucket:
                raise StoreError(f"store URI {uri!r} names no bucket: expected s3://bucket/prefix")
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
    def list_keys(self, prefix: str) -> list[str]:
        """Sorted full keys under a folder-style prefix ("a/b" and "a/b/" both mean the folder a/b)."""

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
        """Start writing the job at prefix, clearing parts that a killed writer left (they are not trusted).

        Raises WriteConflictError if the job is already done: its output must never change under readers.
        """
        folder = _job_folder(prefix)
        writer = ObjectWriter(self, folder, job_id=job_id, kind=kind, inputs=inputs)
        if self.is_done(folder):
            raise WriteConflictError(
                f"job {job_id} is already done: {self.key_uri(_manifest_key(folder))} exists"
            )
        self.delete_prefix(folder)
        return writer

    def read_object(self, prefix: str, name: str) -> bytes:
        """Read one object the job's manifest lists, verified against its size and sha256."""
        folder = _job_folder(prefix)
        info = self._done_manifest(folder).object(name)
        where = self.key_uri(f"{folder}/{name}")
        with self._reading(f"{folder}/{name}") as source:
            if source is None:
                raise ManifestError(f"object {where} is listed in its manifest but missing")
            data = source.read()
        verify(info, len(data), sha256_hex(data), where)
        return data

    def download(self, prefix: str, dest: Path) -> Path:
        """Copy every object the job's manifest lists into dest (keeping subfolders), each verified."""
        folder = _job_folder(prefix)
        dest = Path(dest)
        for info in self._done_manifest(folder).objects:
            self._download_one(f"{folder}/{info.name}", info, dest / info.name)
        return dest

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


# -- local folder --------------------------------------------------------------------------------------


class FileStore(Store):
    """A store in a local (or mounted) folder; each write goes to a temporary file, then is renamed."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self.uri = self.root.as_uri()

    def local_path(self) -> Path:
        """Return the root folder."""
        return self.root

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    @contextmanager
    def _reading(self, key: str) -> Iterator[BinaryIO | None]:
        path = self._path(key)
        try:
            source = path.open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):  # absent is an answer here
            source = None
        except OSError as err:
            raise StoreError(f"cannot read {self.key_uri(key)}: {err.strerror}") from err
        if source is None:
            yield None
            return
        with source:
            yield source

    def write_bytes(self, key: str, data: bytes) -> None:
        """Write via a temporary file in the same folder and os.replace, so the swap is atomic."""
        self._atomic_write(self._path(key), lambda out: out.write(data), exclusive=False)

    def write_stream(self, key: str, source: HashingReader) -> None:
        """Copy a reader in chunks to a temporary file, then rename it into place."""
        self._atomic_write(self._path(key), lambda out: shutil.copyfileobj(source, out), exclusive=False)

    def create_exclusive(self, key: str, data: bytes) -> bool:
        """Publish a fully written temporary file with os.link, which fails if the name already exists."""
        return self._atomic_write(self._path(key), lambda out: out.write(data), exclusive=True)

    def exists(self, key: str) -> bool:
        """Whether a file exists at key."""
        return self._path(key).is_file()

    def list_keys(self, prefix: str) -> list[str]:
        """Sorted keys of the files under a folder, skipping temporary files of writes in progress."""
        folder = self.root / _list_folder(prefix)
        if not folder.is_dir():
            return []
        files = (p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(_TEMP_SUFFIX))
        return sorted(p.relative_to(self.root).as_posix() for p in files)

    def delete_prefix(self, prefix: str) -> None:
        """Remove the folder at prefix and everything in it (temporary files included)."""
        if not _list_folder(prefix):
            raise StoreError(f"refusing to delete the whole store {self.uri}: give a prefix")
        folder = self.root / _list_folder(prefix)
        if folder.is_dir():
            with _os_errors(f"delete {folder}"):
                shutil.rmtree(folder)

    def check_access(self, write: bool = True) -> None:
        """Create the root if writing, then prove access by listing it and writing a probe file."""
        with _os_errors(f"use store folder {self.root}"):
            if write:
                self.root.mkdir(parents=True, exist_ok=True)
            if not self.root.is_dir():
                raise StoreError(f"store folder {self.root} does not exist or is not a folder")
            os.listdir(self.root)
            if write:  # a real write: os.access says yes to root even where a write would fail
                fd, probe = tempfile.mkstemp(dir=self.root, prefix=".rpt-access-check.", suffix=_TEMP_SUFFIX)
                os.close(fd)
                os.unlink(probe)

    def _atomic_write(self, path: Path, fill: Callable[[BinaryIO], object], *, exclusive: bool) -> bool:
        with _os_errors(f"write to store folder {path.parent}"):
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=_TEMP_SUFFIX)
            temp = Path(name)
            try:
                os.fchmod(fd, 0o644)  # mkstemp makes 0600 files; others sharing the store must read them
                with os.fdopen(fd, "wb") as out:
                    fill(out)
                    out.flush()
                    os.fsync(out.fileno())  # parts must be on disk before the manifest that vouches for them
                return _publish(temp, path, exclusive=exclusive)
            finally:
                temp.unlink(missing_ok=True)


def _publish(temp: Path, path: Path, *, exclusive: bool) -> bool:
    if not exclusive:
        os.replace(temp, path)
        return True
    try:
        os.link(temp, path)
    except FileExistsError:  # another writer published first: the caller reports the conflict
        return False
    return True


@contextmanager
def _os_errors(action: str) -> Iterator[None]:
    """Turn an OSError (no permission, read-only or full disk, a file in the way) into one line."""
    try:
        yield
    except OSError as err:
        where = f" ({err.filename})" if err.filename and str(err.filename) not in action else ""
        raise StoreError(f"cannot {action}: {err.strerror or err}{where}") from err


# -- S3 ------------------------------------------------------------------------------------------------

_CREDENTIAL_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403"}
_CREDENTIAL_CODES |= {"InvalidToken", "ExpiredToken", "InvalidClientTokenId"}
_MISSING_KEY_CODES = {"NoSuchKey", "404"}
_CONFLICT_CODES = {"PreconditionFailed", "ConditionalRequestConflict"}


class S3Store(Store):
    """A store under an S3 prefix; ``AWS_ENDPOINT_URL`` points it at any S3-compatible server."""

    def __init__(self, bucket: str, prefix: str = "") -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.uri = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"

    def local_path(self) -> None:
        """S3 stores have no local folder."""
        return None

    @cached_property
    def _client(self) -> Any:
        """Build a client that gives up on an unreachable endpoint in seconds, not minutes of retries."""
        import boto3  # imported on first use: file stores never pay for it
        from botocore.config import Config

        config = Config(connect_timeout=3, read_timeout=60, retries={"mode": "standard", "max_attempts": 3})
        # A session of its own reads the environment now; boto3's shared default session would keep the
        # first credentials it found. boto3 reads AWS_ENDPOINT_URL (and AWS_ENDPOINT_URL_S3) itself.
        try:
            return boto3.session.Session().client("s3", config=config)
        except ValueError as err:  # botocore's "Invalid endpoint: ..." for a malformed AWS_ENDPOINT_URL
            raise StoreError(
                f"cannot open {self.uri}: {err}; AWS_ENDPOINT_URL must look like http://host:port"
            ) from err

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{check_key(key)}" if self.prefix else check_key(key)

    @contextmanager
    def _errors(self, action: str, key: str | None = None) -> Iterator[None]:
        """Turn botocore's errors into one-line StoreErrors that say what to check."""
        where = self.key_uri(key) if key else self.uri
        endpoint = self._client.meta.endpoint_url
        try:
            yield
        except (BotoConnectionError, HTTPClientError) as err:
            env = os.environ.get("AWS_ENDPOINT_URL", "unset")
            raise StoreError(
                f"cannot reach S3 endpoint {endpoint} to {action} {where} ({type(err).__name__}); "
                f"check AWS_ENDPOINT_URL (now {env})"
            ) from err
        except (NoCredentialsError, PartialCredentialsError) as err:
            raise StoreError(
                f"no usable S3 credentials for bucket {self.bucket!r}: "
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            ) from err
        except ClientError as err:
            raise self._client_error(err, action, where, endpoint) from err

    def _client_error(self, err: ClientError, action: str, where: str, endpoint: str) -> StoreError:
        code = _code(err)
        if code == "NoSuchBucket":
            return StoreError(f"no such S3 bucket {self.bucket!r} at {endpoint} (store {self.uri})")
        if code in _CREDENTIAL_CODES:
            return StoreError(
                f"S3 refused to {action} {where} ({code}): check AWS_ACCESS_KEY_ID and "
                f"AWS_SECRET_ACCESS_KEY for bucket {self.bucket!r}"
            )
        message = " ".join(str(err.response.get("Error", {}).get("Message", "")).split())
        return StoreError(f"S3 failed to {action} {where}: {code or 'error'}: {message}")

    @contextmanager
    def _reading(self, key: str) -> Iterator[BinaryIO | None]:
        with self._errors("read", key):
            try:
                body = self._client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
            except ClientError as err:
                if _code(err) not in _MISSING_KEY_CODES:
                    raise
                body = None  # absent is an answer here
            if body is None:
                yield None
                return
            with body:
                yield body

    def write_bytes(self, key: str, data: bytes) -> None:
        """One PutObject: S3 makes each object visible whole or not at all."""
        with self._errors("write", key):
            self._client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def write_stream(self, key: str, source: HashingReader) -> None:
        """Upload through boto3's transfer manager, which switches to multipart for large objects."""
        with self._errors("write", key):
            self._client.upload_fileobj(source, self.bucket, self._key(key))

    def create_exclusive(self, key: str, data: bytes) -> bool:
        """PutObject with ``If-None-Match: *``: S3 itself refuses (412) if the key already exists.

        AWS S3 honours this since 2024 and MinIO does too; moto answers 412 PreconditionFailed (checked
        against moto 5.2 in the tests). A server that ignored the header would overwrite silently, which
        is why begin() also refuses a prefix whose manifest already exists.
        """
        with self._errors("commit", key):
            try:
                self._client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, IfNoneMatch="*")
            except ClientError as err:
                if _code(err) in _CONFLICT_CODES:
                    return False
                raise
        return True

    def exists(self, key: str) -> bool:
        """HeadObject; a 404 means no object."""
        with self._errors("check", key):
            try:
                self._client.head_object(Bucket=self.bucket, Key=self._key(key))
            except ClientError as err:
                if _code(err) in _MISSING_KEY_CODES:
                    return False
                raise
        return True

    def list_keys(self, prefix: str) -> list[str]:
        """Every key under a folder, across all pages of ListObjectsV2."""
        full = f"{self.prefix}/{_list_folder(prefix)}" if self.prefix else _list_folder(prefix)
        strip = len(self.prefix) + 1 if self.prefix else 0
        keys: list[str] = []
        with self._errors("list", _list_folder(prefix) or None):
            pages = self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full)
            for page in pages:
                keys.extend(obj["Key"][strip:] for obj in page.get("Contents", []))
        return sorted(keys)

    def delete_prefix(self, prefix: str) -> None:
        """DeleteObjects in batches of 1000 (the API's limit); any per-key error is raised."""
        if not _list_folder(prefix):
            raise StoreError(f"refusing to delete the whole store {self.uri}: give a prefix")
        keys = self.list_keys(prefix)
        for start in range(0, len(keys), 1000):
            batch = [{"Key": self._key(key)} for key in keys[start : start + 1000]]
            with self._errors("delete under", prefix):
                response = self._client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                )
            if response.get("Errors"):
                first = response["Errors"][0]
                raise StoreError(f"S3 failed to delete s3://{self.bucket}/{first['Key']}: {first['Code']}")

    def check_access(self, write: bool = True) -> None:
        """List one key (reachability, credentials, bucket), then write and delete a probe object."""
        with self._errors("list"):
            self._client.list_objects_v2(Bucket=self.bucket, Prefix=self.prefix, MaxKeys=1)
        if write:
            probe = self._key(f".rpt-access-check-{uuid.uuid4().hex}")
            with self._errors("write to"):
                self._client.put_object(Bucket=self.bucket, Key=probe, Body=b"")
                self._client.delete_object(Bucket=self.bucket, Key=probe)


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))
