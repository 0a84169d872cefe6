"""Model weights on local disk for a generate or pretrain job: from the store (verified) or the Hub."""

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from rpt_transfer.errors import RptError
from rpt_transfer.hashing import short_hash
from rpt_transfer.plan import Plan
from rpt_transfer.store import Store

CACHE_ENV = "RPT_CACHE"


def cache_root() -> Path:
    """Local cache for downloaded checkpoints: RPT_CACHE, else ~/.cache/rpt-transfer."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "rpt-transfer")


def local_model_dir(ref: dict[str, Any], plan: Plan, store: Store) -> Path:
    """A folder with HF-format weights and tokenizer for a model reference of the plan."""
    if "job" in ref:
        return fetch_checkpoint(store, plan.job(ref["job"]).key)
    if "store_path" in ref:
        return fetch_checkpoint(*checkpoint_at(ref["store_path"], store))
    return _hub_snapshot(ref["hub"], ref["revision"])


def checkpoint_at(path: str, store: Store | str) -> tuple[Store, str]:
    """The store and key a model's `path:` names: a full store URI, else a key in the study's `store`."""
    if "://" in path:
        root, _, key = path.rstrip("/").rpartition("/")
        return Store.from_uri(root), key
    return (Store.from_uri(store) if isinstance(store, str) else store), path.strip("/")


def model_source(ref: dict[str, Any], plan: Plan) -> dict[str, str]:
    """Where a model's weights come from, as MLflow params: a source and the revision that pins it."""
    if "hub" in ref:
        return {"model_source": ref["hub"], "revision": ref["revision"]}
    if "store_path" in ref:
        return {"model_source": ref["store_path"], "revision": "(store checkpoint)"}
    job = plan.job(ref["job"])
    return {"model_source": f"{job.kind} job", "revision": job.id}


def fetch_checkpoint(store: Store, key: str) -> Path:
    """Download a checkpoint once per manifest into the cache; every object is checked against it."""
    manifest = store.manifest(key)
    if manifest is None:
        raise RptError(
            f"{store.key_uri(key)}: no checkpoint there (no MANIFEST.json); accepted: a finished job"
        )
    target = cache_root() / "checkpoints" / short_hash([store.uri, key, manifest.model_dump(mode="json")])
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".partial-"))
    try:
        store.download(key, staging)
        staging.rename(target)
    except OSError:
        if not target.is_dir():  # a concurrent job may have placed the same files first
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _hub_snapshot(repo_id: str, revision: str) -> Path:
    """Snapshot of a Hub model at a revision (cached by huggingface_hub); one clear line when it fails."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RevisionNotFoundError

    try:
        return Path(snapshot_download(repo_id, revision=revision))
    except RevisionNotFoundError:
        raise RptError(f"model {repo_id}: revision {revision!r} does not exist on the Hub") from None
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as err:
        raise RptError(
            f"model {repo_id}@{revision}: cannot download it ({type(err).__name__}: {err})"
        ) from None
