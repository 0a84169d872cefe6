"""Real moto S3 servers, started as subprocesses on 127.0.0.1, for tests of code that talks to S3.

Import the fixtures where they are used: ``from servers_s3 import s3_server, s3_store_uri  # noqa: F401``.
Nothing here leaves 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import boto3
import pytest

REGION = "us-east-1"
TEST_KEY = "testing"
"""Access key id and secret used against the open (no-auth) server; moto accepts any."""
_AWS_VARIABLES_TO_CLEAR = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_ROLE_ARN")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_answering(proc: subprocess.Popen[bytes], endpoint: str, log: Path) -> None:
    """Poll moto's own API until it answers, failing early if our process died (e.g. the port was taken)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto server exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=1) as response:
                json.load(response)
                return
        except OSError:  # not listening yet
            time.sleep(0.1)
    raise RuntimeError(f"moto server at {endpoint} did not answer within 30 s: {log.read_text()[-2000:]}")


def start_moto(log_dir: Path, extra_env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``python -m moto.server`` on a free port of 127.0.0.1; return the process and its endpoint."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = log_dir / f"moto-{port}.log"
    env = {**os.environ, **(extra_env or {})}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        _wait_until_answering(proc, endpoint, log)
    except BaseException:
        stop_moto(proc)
        raise
    return proc, endpoint


def stop_moto(proc: subprocess.Popen[bytes]) -> None:
    """Terminate the server we started, killing it if it does not stop in a few seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def set_s3_env(monkeypatch: pytest.MonkeyPatch, endpoint: str, key: str, secret: str) -> None:
    """Point boto3 at endpoint with the given credentials, and nothing else from the host's AWS set-up."""
    for name in _AWS_VARIABLES_TO_CLEAR:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def new_bucket_name() -> str:
    """A fresh, valid bucket name, so tests never see each other's objects."""
    return f"rpt-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto S3 server for the whole session (no authentication); yields its endpoint URL."""
    proc, endpoint = start_moto(tmp_path_factory.mktemp("moto"))
    yield endpoint
    stop_moto(proc)


@pytest.fixture
def s3_store_uri(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on the session's moto server, with the AWS environment pointing at it.

    Returns an ``s3://bucket/prefix`` URI (the prefix makes sure code does not assume a bucket root).
    """
    set_s3_env(monkeypatch, s3_server, TEST_KEY, TEST_KEY)
    bucket = new_bucket_name()
    boto3.client("s3", endpoint_url=s3_server, region_name=REGION).create_bucket(Bucket=bucket)
    return f"s3://{bucket}/store-root"


class AuthS3(NamedTuple):
    """A moto server that checks credentials, with one bucket and one user allowed to use it."""

    endpoint: str
    bucket: str
    access_key: str
    secret_key: str


_ALLOW_S3 = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
_SETUP_CALLS = 4
"""Requests the set-up below makes before moto starts checking credentials (INITIAL_NO_AUTH_ACTION_COUNT)."""


@pytest.fixture(scope="session")
def s3_auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthS3]:
    """A moto server with IAM authentication on, after exactly four unauthenticated set-up calls."""
    proc, endpoint = start_moto(
        tmp_path_factory.mktemp("moto-auth"), {"INITIAL_NO_AUTH_ACTION_COUNT": str(_SETUP_CALLS)}
    )
    setup = {"endpoint_url": endpoint, "region_name": REGION}
    setup |= {"aws_access_key_id": TEST_KEY, "aws_secret_access_key": TEST_KEY}
    iam = boto3.client("iam", **setup)
    iam.create_user(UserName="rpt")  # 1
    iam.put_user_policy(UserName="rpt", PolicyName="s3", PolicyDocument=json.dumps(_ALLOW_S3))  # 2
    key = iam.create_access_key(UserName="rpt")["AccessKey"]  # 3
    bucket = new_bucket_name()
    boto3.client("s3", **setup).create_bucket(Bucket=bucket)  # 4
    yield AuthS3(endpoint, bucket, key["AccessKeyId"], key["SecretAccessKey"])
    stop_moto(proc)
