"""The S3 backend: a store under a bucket prefix on AWS or any S3-compatible server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import Any, BinaryIO

from botocore.exceptions import (
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from rpt_transfer.errors import StoreError, TransientStoreError
from rpt_transfer.manifest import HashingReader, check_key
from rpt_transfer.store.base import Store, StoredObject, _list_folder

# -- S3 ------------------------------------------------------------------------------------------------

_CREDENTIAL_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403"}
_CREDENTIAL_CODES |= {"InvalidToken", "ExpiredToken", "InvalidClientTokenId"}
_MISSING_KEY_CODES = {"NoSuchKey", "404"}
_CONFLICT_CODES = {"PreconditionFailed", "ConditionalRequestConflict"}
_TRANSIENT_CODES = {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout"}
_TRANSIENT_CODES |= {"InternalError", "ServiceUnavailable", "503", "500", "502", "504"}
"""Answers that may pass (throttling, a server's own failure): still there after boto's retries, they end
the command with exit 75 so that Argo tries the pod again."""


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
            raise TransientStoreError(
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
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        transient = code in _TRANSIENT_CODES or (isinstance(status, int) and status >= 500)
        return (TransientStoreError if transient else StoreError)(
            f"S3 failed to {action} {where}: {code or 'error'}: {message}"
        )

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
        against moto 5.2 in the tests). A server that ignored the header would overwrite silently; begin()
        also refuses a prefix whose manifest already exists, and since each manifest lists only its own
        attempt's objects (see ``writer.py``), even an overwritten manifest still reads back verified.
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

    def list_objects(self, prefix: str) -> list[StoredObject]:
        """Every object under a folder, across all pages of ListObjectsV2, with size and LastModified."""
        full = f"{self.prefix}/{_list_folder(prefix)}" if self.prefix else _list_folder(prefix)
        strip = len(self.prefix) + 1 if self.prefix else 0
        found: list[StoredObject] = []
        with self._errors("list", _list_folder(prefix) or None):
            pages = self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full)
            for page in pages:
                found += [
                    StoredObject(obj["Key"][strip:], obj["Size"], obj["LastModified"])
                    for obj in page.get("Contents", [])
                ]
        return sorted(found)

    def delete_keys(self, keys: list[str]) -> None:
        """DeleteObjects in batches of 1000 (the API's limit); any per-key error is raised."""
        for start in range(0, len(keys), 1000):
            batch = [{"Key": self._key(key)} for key in keys[start : start + 1000]]
            with self._errors("delete", keys[start]):
                response = self._client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                )
            if response.get("Errors"):
                first = response["Errors"][0]
                raise StoreError(f"S3 failed to delete s3://{self.bucket}/{first['Key']}: {first['Code']}")

    def delete_prefix(self, prefix: str) -> None:
        """Delete every key listed under the folder."""
        if not _list_folder(prefix):
            raise StoreError(f"refusing to delete the whole store {self.uri}: give a prefix")
        self.delete_keys(self.list_keys(prefix))

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
