"""The ``store`` fixture of the store tests: the same test on a file:// folder and an s3:// prefix on moto.

Import it where it is used: ``from store_backends import any_store  # noqa: F401``; tests then ask for ``store``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import boto3
import pytest

from rpt_transfer.store import FileStore, Manifest, ObjectInfo, S3Store, Store


@pytest.fixture(name="store", params=["file", "s3"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """A fresh, empty store on each backend (S3 through the moto server of tests/servers_s3.py)."""
    uri = (
        (tmp_path / "store").as_uri() if request.param == "file" else request.getfixturevalue("s3_store_uri")
    )
    store = Store.from_uri(uri)
    store.check_access()
    return store


def overwrite_raw(store: Store, key: str, data: bytes) -> None:
    """Change an object behind the store's back, straight through the backend (a folder or boto3)."""
    if isinstance(store, FileStore):
        (store.root / key).write_bytes(data)
    else:
        assert isinstance(store, S3Store)
        boto3.client("s3").put_object(Bucket=store.bucket, Key=f"{store.prefix}/{key}", Body=data)


def remove_raw(store: Store, key: str) -> None:
    """Delete an object behind the store's back."""
    if isinstance(store, FileStore):
        (store.root / key).unlink()
    else:
        assert isinstance(store, S3Store)
        boto3.client("s3").delete_object(Bucket=store.bucket, Key=f"{store.prefix}/{key}")


def format_1_manifest(data: bytes) -> Manifest:
    """A manifest as format 1 wrote it: one part, named beside the manifest (no attempt folder)."""
    return Manifest(
        format_version=1,
        job_id="j",
        kind="generate",
        inputs={},
        software={},
        objects=[
            ObjectInfo(name="part-00000.parquet", sha256=hashlib.sha256(data).hexdigest(), size=len(data))
        ],
        created_at="2025-01-01T00:00:00Z",
    )
