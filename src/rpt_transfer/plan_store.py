"""Plans and specs in the store: written once under their content hash, found through one small pointer.

A plan never changes once written, so a pod of an older run that holds its URI reads exactly the plan it was
started with while a newer run prepares another one beside it:

    studies/<study>/specs/<sha>.yaml   the spec file as it was prepared (bytes as written, comments kept)
    studies/<study>/plans/<sha>.json   the plan, canonical JSON; names its spec in `spec`
    studies/<study>/latest-plan        one line: the key of the plan prepared last (the only mutable object)

`<sha>` is 16 hex of the sha256 of the object's own bytes, so reading a plan can check it is the one named.
"""

import re
from pathlib import Path

from rpt_transfer.errors import PlanError, StoreError
from rpt_transfer.plan import Plan, content_digest, latest_plan_key, load_plan
from rpt_transfer.store import Store

_CONTENT_NAME = re.compile(r"^[0-9a-f]{16}\.json$")


def put_once(store: Store, key: str, data: bytes) -> bool:
    """Create a content-keyed object; True if written now, False if the same bytes were already there.

    The exclusive create makes concurrent writers of one plan safe: one creates, the others find it.
    """
    if store.create_exclusive(key, data):
        return True
    if store.read_bytes(key) != data:
        raise StoreError(
            f"{store.key_uri(key)} holds other bytes than the content its name promises; content-keyed "
            "objects never change: delete it only if it is corrupt, then prepare again"
        )
    return False


def publish_plan(store: Store, plan: Plan) -> str:
    """Write the plan once under its content key, then point `latest-plan` at it; return the plan's URI."""
    key = plan.key
    put_once(store, key, plan.to_json().encode())
    store.write_bytes(latest_plan_key(plan.study), f"{key}\n".encode())
    return store.key_uri(key)


def current_plan_key(store: Store, study: str) -> str | None:
    """Key of the study's most recently prepared plan, None when it was never prepared in this store."""
    pointer = latest_plan_key(study)
    if not store.exists(pointer):
        return None
    return store.read_bytes(pointer).decode().strip()


def current_plan(store: Store, study: str) -> Plan:
    """The plan that `prepare` (or `run`) wrote last for the study: what `report` and `track sync` read.

    Raises:
        PlanError: the study has no plan in this store, or the stored one is not what its key says.
    """
    key = current_plan_key(store, study)
    if key is None:
        raise PlanError(
            f"study {study!r} has no plan in store {store.uri} (no {latest_plan_key(study)}); "
            "run `rpt-transfer run STUDY.yaml` first (or `rpt-transfer prepare STUDY.yaml` to store its plan)"
        )
    uri = store.key_uri(key)
    return _checked(store.read_bytes(key), uri, study)


def read_plan(uri: str) -> Plan:
    """A plan from a store URI (as `prepare` prints) or a local path; checks its content key and study."""
    if "://" in uri and not uri.startswith("file://"):
        root, _, name = uri.rpartition("/")
        data = Store.from_uri(root).read_bytes(name)
    else:
        path = Path(uri.removeprefix("file://"))
        if not path.is_file():
            raise PlanError(f"{uri}: no such plan file; `rpt-transfer prepare STUDY.yaml` prints plan URIs")
        data = path.read_bytes()
    parts = uri.rstrip("/").split("/")
    study = None
    if len(parts) >= 4 and parts[-4] == "studies" and parts[-2] == "plans":
        study = parts[-3]
    elif len(parts) >= 3 and parts[-3] == "studies":  # studies/<study>/plan.json, as written before plans/
        study = parts[-2]
    return _checked(data, uri, study)


def _checked(data: bytes, uri: str, study: str | None) -> Plan:
    """Parse plan bytes; refuse them if they do not hash to their name or belong to another study."""
    folder, _, name = uri.rstrip("/").rpartition("/")
    keyed = folder.endswith("/plans") and _CONTENT_NAME.match(name)
    if keyed and content_digest(data) != name.removesuffix(".json"):
        raise PlanError(
            f"{uri}: does not match its content key (its bytes hash to {content_digest(data)}); "
            "the plan was changed after it was written: prepare the study again"
        )
    plan = load_plan(data.decode("utf-8", errors="replace"), uri)
    if study is not None and plan.study != study:
        raise PlanError(f"{uri}: holds the plan of study {plan.study!r}, not {study!r}")
    return plan
