"""Reaching MLflow: fail in seconds when a server is down; one process at a time on a SQLite file."""

from __future__ import annotations

import contextlib
import fcntl
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from mlflow.environment_variables import MLFLOW_TRACKING_INSECURE_TLS, MLFLOW_TRACKING_SERVER_CERT_PATH

from rpt_transfer.errors import RptError

HEALTH_TIMEOUT_S = 5.0


@contextlib.contextmanager
def exclusive(lock_path: Path | None) -> Iterator[None]:
    """Hold a SQLite file's lock (all processes on this machine); no-op for a server (None)."""
    if lock_path is None:
        yield
        return
    with lock_path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield


def sqlite_lock_path(uri: str) -> Path | None:
    """Name a lock file next to a SQLite database; None for other backends."""
    if not uri.startswith("sqlite:///"):
        return None
    db_path = Path(uri.removeprefix("sqlite:///").split("?", 1)[0])
    db_path.parent.mkdir(parents=True, exist_ok=True)
    return db_path.with_name(f"{db_path.name}.lock")


def check_reachable(uri: str) -> None:
    """Probe `<uri>/health` once, because MLflow's own client retries for minutes before failing."""
    url = f"{uri.rstrip('/')}/health"
    try:
        with urllib.request.urlopen(url, timeout=HEALTH_TIMEOUT_S, context=_ssl_context()):
            return
    except urllib.error.HTTPError as err:
        # Any answer below 500 means a server is there (it may want auth); 5xx is a proxy without MLflow.
        if err.code < 500:
            return
        reason = f"HTTP {err.code}"
    except OSError as err:  # refused, timed out, unknown host, TLS failure
        reason = str(getattr(err, "reason", err)) or type(err).__name__
    raise RptError(
        f"MLflow tracking server {uri} is unreachable ({reason}); start it, or set MLFLOW_TRACKING_URI "
        "to a reachable http(s):// server or a sqlite:/// file"
    )


def _ssl_context() -> ssl.SSLContext:
    """Honour MLflow's own TLS settings, so the probe agrees with the client that follows it."""
    context = ssl.create_default_context(cafile=MLFLOW_TRACKING_SERVER_CERT_PATH.get())
    if MLFLOW_TRACKING_INSECURE_TLS.get():
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
