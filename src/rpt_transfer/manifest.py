"""The manifest protocol: a job's record of its outputs, and what readers check against it.

A job writes its parts first and ``MANIFEST.json`` last, with one create-if-absent call, so a job is done
exactly when its manifest exists. Each attempt of a job writes its objects under a folder of its own
(``<prefix>/<attempt>/<name>``) and the manifest names that attempt, so attempts racing on one job never
touch each other's objects. Readers trust only the objects a manifest lists, and check each one's size and
sha256 before use. The storage lives in ``store/``, the writer in ``store/writer.py``; this module holds
what is stored.
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any, BinaryIO, Literal

from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError, field_validator, model_validator

from rpt_transfer.errors import ManifestError, StoreError

MANIFEST_NAME = "MANIFEST.json"
ATTEMPT_PATTERN = re.compile(r"attempt-\d{8}T\d{6}Z-[0-9a-f]{12}")
"""Name of an attempt's folder under its job prefix: when it began (UTC), then 48 random bits."""
CHUNK_SIZE = 8 * 1024 * 1024
_TRACKED_PACKAGES = ("torch", "transformers", "pyarrow", "mlflow", "boto3")


def key_problem(key: str) -> str | None:
    """Say what is wrong with a '/'-separated relative key, or None if it is fine.

    Keys and object names come from code and from manifests on shared storage; rejecting absolute paths
    and '..' keeps every read and write (and every download) inside its root.
    """
    if not key:
        return "is empty"
    if key.startswith("/") or "\\" in key:
        return "must be a relative '/'-separated path"
    if any(part in ("", ".", "..") for part in key.split("/")):
        return "has an empty, '.' or '..' segment"
    return None


def new_attempt() -> str:
    """A fresh attempt name: sortable by start time, and unique without asking anyone."""
    return f"attempt-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(6)}"


def is_attempt(segment: str) -> bool:
    """Whether one '/'-separated segment of a key names an attempt's folder."""
    return ATTEMPT_PATTERN.fullmatch(segment) is not None


def check_key(key: str, what: str = "key") -> str:
    """Return the key unchanged, or raise StoreError naming it and the rule it breaks."""
    problem = key_problem(key)
    if problem:
        raise StoreError(f"bad store {what} {key!r}: it {problem}")
    return key


class ObjectInfo(BaseModel):
    """One object a job wrote, as its manifest lists it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    """Object name relative to the job prefix, e.g. "part-00000.parquet" or "model/config.json"."""
    sha256: str
    """Full sha256 of the object's bytes, in lowercase hex."""
    size: int
    """Size of the object in bytes."""

    @field_validator("name")
    @classmethod
    def _relative_name(cls, name: str) -> str:
        problem = key_problem(name)
        if problem:
            raise ValueError(f"object name {name!r} {problem}")
        return name


class Manifest(BaseModel):
    """The record that makes a job done: what it was asked, what it wrote, and with which software."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format_version: Literal[1, 2] = 2
    """Version of this record's layout; readers reject versions they do not know.

    1: objects lie directly under the job prefix. 2: under the folder of the attempt that committed.
    """
    status: Literal["complete"] = "complete"
    """Always "complete": an unfinished job has no manifest at all."""
    job_id: str
    """The job's content-addressed id."""
    kind: str
    """Job kind: "pretrain", "generate", "score", "aggregate", "train", ..."""
    inputs: dict[str, Any]
    """Everything that determined the output (the job's canonical inputs)."""
    software: dict[str, str]
    """Versions of rpt_transfer, Python and the installed heavy libraries that produced the output."""
    objects: list[ObjectInfo]
    """Every object the job wrote, sorted by name; readers trust nothing else under the prefix."""
    created_at: str
    """When the job committed, ISO-8601 UTC."""
    attempt: str | None = None
    """The attempt that wrote the objects (format 2): they lie under ``<prefix>/<attempt>/``."""
    runtime: dict[str, str] = {}
    """How the job ran, where that matters for its outputs but is not one of its inputs: e.g. a score
    job's ``sandbox_isolation`` (the sandbox level its candidate programs ran under). Recorded, never in
    the job's id; manifests written before this field read back with it empty (any format version)."""

    _location: str = PrivateAttr(default="")
    """Where the manifest lies in its store, for messages; not stored."""

    @model_validator(mode="after")
    def _attempt_matches_format(self) -> Manifest:
        if self.format_version == 1 and self.attempt is not None:
            raise ValueError("a format 1 manifest names no attempt")
        if self.format_version == 2 and not (self.attempt and is_attempt(self.attempt)):
            raise ValueError(f"attempt {self.attempt!r} is not an attempt name like {new_attempt()!r}")
        return self

    def stored_name(self, name: str) -> str:
        """Where a listed object lies relative to the job prefix (its attempt folder, in format 2)."""
        info = self.object(name)
        return f"{self.attempt}/{info.name}" if self.attempt else info.name

    def object(self, name: str) -> ObjectInfo:
        """Return the listed object called name; raise ManifestError if the job did not write it."""
        for info in self.objects:
            if info.name == name:
                return info
        listed = ", ".join(info.name for info in self.objects[:5]) or "nothing"
        where = self._location or f"of job {self.job_id}"
        raise ManifestError(
            f"manifest {where} lists no object {name!r}; it lists {len(self.objects)}: {listed}"
        )

    def to_json(self) -> bytes:
        """Serialise with sorted keys and indentation: stable bytes that people can still read."""
        return (json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes, where: str) -> Manifest:
        """Parse a stored manifest; raise ManifestError naming where it lies and its first problem."""
        try:
            manifest = cls.model_validate_json(data)
        except ValidationError as err:
            first = err.errors()[0]
            loc = ".".join(str(part) for part in first["loc"]) or "(top level)"
            more = f" (and {err.error_count() - 1} more problems)" if err.error_count() > 1 else ""
            raise ManifestError(f"malformed manifest {where}: {loc}: {first['msg']}{more}") from None
        manifest._location = where
        return manifest


def software_versions() -> dict[str, str]:
    """Versions of what produced an output, read from package metadata so nothing heavy is imported."""
    return dict(_software_versions())


@cache
def _software_versions() -> dict[str, str]:
    versions = {"rpt_transfer": _package_version("rpt-transfer"), "python": platform.python_version()}
    for package in _TRACKED_PACKAGES:
        found = _package_version(package)
        if found != "not installed":
            versions[package] = found
    return versions


def _package_version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:  # a library this environment lacks: record that, do not fail
        return "not installed"


class HashingReader:
    """A non-seekable reader that hashes and counts every byte read through it.

    Being non-seekable makes boto3's upload read the source once, front to back, so the hash covers
    exactly the bytes that were sent and a large checkpoint is read only once.
    """

    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        self._hash = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        """Read up to size bytes (all that is left if negative), updating the hash and size."""
        data = self._source.read(size)
        self._hash.update(data)
        self.size += len(data)
        return data

    def seekable(self) -> bool:
        """Never seekable: see the class docstring."""
        return False

    def readable(self) -> bool:
        """Say yes: this is a reader."""
        return True

    @property
    def sha256(self) -> str:
        """Hex sha256 of the bytes read so far."""
        return self._hash.hexdigest()

    def chunks(self) -> Iterator[bytes]:
        """Yield the rest of the source in CHUNK_SIZE pieces."""
        while data := self.read(CHUNK_SIZE):
            yield data


def verify(info: ObjectInfo, size: int, sha256: str, where: str) -> None:
    """Raise ManifestError naming the object if its size or sha256 differ from what the manifest lists."""
    if size != info.size:
        raise ManifestError(f"object {where} has {size} bytes, its manifest lists {info.size}")
    if sha256 != info.sha256:
        raise ManifestError(f"object {where} has sha256 {sha256}, its manifest lists {info.sha256}")
