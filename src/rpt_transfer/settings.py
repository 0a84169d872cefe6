"""Where the store and MLflow are: the spec first, then the environment, then embedded defaults."""

import os
from pathlib import Path
from typing import NamedTuple

DEFAULT_STORE = ".rpt/store"
STORE_ENV = "RPT_STORE"
TRACKING_ENV = "MLFLOW_TRACKING_URI"
NO_TRACKING = "none"


class Settings(NamedTuple):
    """Resolved locations, with where each came from for messages."""

    store_uri: str
    store_from: str
    tracking_uri: str | None
    tracking_from: str


def resolve(spec_store: str | None, spec_tracking: str | None) -> Settings:
    """Apply the layers. Unset tracking is None here; the runner defaults it to SQLite in a local store."""
    if spec_store:
        store_uri, store_from = spec_store, "the study's `store`"
    elif os.environ.get(STORE_ENV):
        store_uri, store_from = os.environ[STORE_ENV], STORE_ENV
    else:
        store_uri, store_from = str(Path(DEFAULT_STORE).resolve()), "the default"
    if spec_tracking:
        tracking, tracking_from = spec_tracking, "the study's `tracking_uri`"
    elif os.environ.get(TRACKING_ENV):
        tracking, tracking_from = os.environ[TRACKING_ENV], TRACKING_ENV
    else:
        tracking, tracking_from = None, "the default"
    if tracking == NO_TRACKING:
        tracking, tracking_from = None, f"{tracking_from} (set to `none`)"
    return Settings(store_uri, store_from, tracking, tracking_from)


def default_tracking_uri(store_root: Path) -> str:
    """MLflow in a SQLite file inside the store root, the embedded default when no server is set."""
    return f"sqlite:///{Path(store_root).resolve() / 'mlflow.db'}"


def default_artifact_root(store_root: Path) -> str:
    """Artifact folder next to the default database; without it MLflow writes `./mlruns` in the cwd."""
    return (Path(store_root).resolve() / "mlflow-artifacts").as_uri()
