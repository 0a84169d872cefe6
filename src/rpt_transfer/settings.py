"""Where the store and MLflow are: the spec first, then the environment, then embedded defaults.

Also the sandbox's minimum isolation level: the environment, then the sandbox's default.
"""

import os
from pathlib import Path
from typing import NamedTuple

DEFAULT_STORE = ".rpt/store"
STORE_ENV = "RPT_STORE"
TRACKING_ENV = "MLFLOW_TRACKING_URI"
NO_TRACKING = "none"
SANDBOX_MIN_ENV = "RPT_SANDBOX_MIN"
"""The weakest sandbox isolation level candidate code may run under (docs/sandbox.md); unset: the default,
under which no credential can be read (`rpt_transfer.scoring.sandbox.levels.DEFAULT_MINIMUM`)."""
REWARD_URL_ENV = "RPT_REWARD_URL"
"""The reward service OpenRLHF's rollouts are scored by (`rpt-transfer reward-server`, path /get_reward);
code rewards need it, since model-written code may not run next to GPUs or credentials."""
TRAIN_WORKDIR_ENV = "RPT_TRAIN_WORKDIR"
"""Where train jobs keep their working folders; a multi-node run needs a volume shared by its nodes."""


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


def in_job(store_uri: str, tracking_uri: str | None, store: str | None = None) -> tuple[str, str | None]:
    """The store and MLflow a running job uses: the job's environment first, then what the plan recorded.

    A plan records the addresses of the machine that planned it (a laptop's port-forward, a local path); a
    pod reaches the same store and server by other names, so `RPT_STORE` and `MLFLOW_TRACKING_URI` win here.
    Tracking the plan turned off stays off (`none` in the environment turns it off too), and the default
    SQLite file inside a local store moves with the store. The local executor clears both variables for its
    jobs, so there the plan's own addresses hold. An empty variable counts as unset (an Argo parameter left
    at ""). `store`, when given, is the store this process found otherwise (`prepare` of a spec URI: the
    store the URI lies in) and stands where `RPT_STORE` would.
    """
    env_store = store or os.environ.get(STORE_ENV)
    store = env_store or store_uri
    if tracking_uri is None:
        return store, None
    env_tracking = os.environ.get(TRACKING_ENV)
    if env_tracking:
        return store, None if env_tracking == NO_TRACKING else env_tracking
    if env_store:
        from rpt_transfer.store import Store

        old_root, new_root = Store.from_uri(store_uri).local_path(), Store.from_uri(store).local_path()
        if old_root is not None and tracking_uri == default_tracking_uri(old_root):
            return store, None if new_root is None else default_tracking_uri(new_root)
    return store, tracking_uri


def resolve_in_pod(store_uri: str, spec_tracking: str | None) -> Settings:
    """The settings `prepare` plans with when given a spec URI (in a pod): the environment first.

    `store_uri` is already the pod's store (`RPT_STORE`, else the store the URI lies in, else the spec's).
    MLflow: a spec that turns tracking off keeps it off (as `in_job` does); else `MLFLOW_TRACKING_URI` when
    set and not empty, else the spec's `tracking_uri`, else none (the runner's SQLite default for a local
    store).
    """
    env = os.environ.get(TRACKING_ENV)
    if spec_tracking == NO_TRACKING:
        return Settings(store_uri, "the spec's location", None, "the study's `tracking_uri` (set to `none`)")
    if env:
        off = env == NO_TRACKING
        source = f"{TRACKING_ENV} (set to `none`)" if off else TRACKING_ENV
        return Settings(store_uri, "the spec's location", None if off else env, source)
    source = "the study's `tracking_uri`" if spec_tracking else "the default"
    return Settings(store_uri, "the spec's location", spec_tracking or None, source)


def sandbox_minimum() -> tuple[str | None, str]:
    """The minimum isolation level asked for (None: the sandbox's default) and where it came from.

    Read on every call (cheap), so a job that sets the variable after import still gets it.
    """
    value = os.environ.get(SANDBOX_MIN_ENV, "").strip()
    return (value, SANDBOX_MIN_ENV) if value else (None, "the default")
