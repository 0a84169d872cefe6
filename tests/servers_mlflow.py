"""A real `mlflow server` for tests, started once per session on a free port of 127.0.0.1.

Import the fixture where it is needed (`from servers_mlflow import mlflow_server`) or re-export it
from conftest.py.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

# MLflow 3 sends usage telemetry; tests reach only 127.0.0.1. Set before any test imports mlflow.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

STARTUP_TIMEOUT_S = 90.0


def free_port() -> int:
    """A port nothing listens on right now (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def new_mlflow_db(tmp_path_factory: pytest.TempPathFactory, folder: Path) -> Path:
    """Put an MLflow SQLite database with its schema in place into `folder`, and return its path.

    Creating and migrating the schema takes MLflow about 6 s, so it is done once per session and
    copied after that.
    """
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "mlflow.db"
    shutil.copyfile(_schema_template(tmp_path_factory.getbasetemp()), db)
    return db


@functools.cache
def _schema_template(base: Path) -> Path:
    from mlflow import MlflowClient  # only sessions that use MLflow pay for the import

    db = base / "mlflow-schema-template" / "mlflow.db"
    db.parent.mkdir()
    MlflowClient(tracking_uri=f"sqlite:///{db}")  # connecting creates the schema
    return db


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:  # not listening yet
        return False


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not _healthy(url):
        if process.poll() is not None:
            pytest.fail(f"mlflow server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"mlflow server not healthy after {STARTUP_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.3)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Yield the URL of a running MLflow server with a SQLite backend and proxied local artifacts."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    mlflow_bin = Path(sys.executable).parent / "mlflow"
    command = [
        str(mlflow_bin), "server",
        "--backend-store-uri", f"sqlite:///{new_mlflow_db(tmp_path_factory, root)}",
        "--artifacts-destination", str(root / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    log = root / "server.log"
    # The server's background job runner (for GenAI features) costs a process and seconds of CPU.
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with log.open("wb") as out:
        # Own session, so teardown can kill the server together with its uvicorn workers.
        process = subprocess.Popen(
            command, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait_healthy(url, process, log)
        yield url
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate the server's process group, then kill whatever of it is left."""
    _signal_group(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):  # it ignored SIGTERM; SIGKILL follows
        process.wait(timeout=10)
    _signal_group(process.pid, signal.SIGKILL)  # workers the leader left behind
    process.wait()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # the whole group has exited already
        os.killpg(pgid, sig)
