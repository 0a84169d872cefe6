"""The store's promise, as a check tests can run on any store: every committed job reads back verified.

Shared by the store's race tests and the end-to-end kill test. A job is committed when its
``MANIFEST.json`` exists; then every object it lists must read back with the listed size and sha256.
"""

from __future__ import annotations

from rpt_transfer.store import MANIFEST_NAME, Store

JOB_ROOTS = ("checkpoints", "generations", "scores", "reports", "training")


def manifest_prefixes(store: Store, root: str) -> list[str]:
    """Every job prefix under root that holds a manifest."""
    return [
        key.removesuffix(f"/{MANIFEST_NAME}")
        for key in store.list_keys(root)
        if key.endswith(f"/{MANIFEST_NAME}")
    ]


def check_job(store: Store, prefix: str) -> bool:
    """Whether the job at prefix is committed; if it is, read every listed object back, verified.

    Raises (ManifestError or AssertionError) when a manifest lists an object that is missing or
    different, or when more than one manifest sits under the prefix.
    """
    manifests = [key for key in store.list_keys(prefix) if key.endswith(f"/{MANIFEST_NAME}")]
    if not store.is_done(prefix):
        assert manifests == [], f"{prefix}: manifests {manifests} but the job is not done"
        return False
    assert manifests == [f"{prefix}/{MANIFEST_NAME}"], f"{prefix}: expected one manifest, got {manifests}"
    manifest = store.manifest(prefix)
    assert manifest is not None
    for info in manifest.objects:
        store.read_object(prefix, info.name)  # verifies size and sha256, raises ManifestError if not
    return True


def check_store(store: Store) -> int:
    """Check every committed job under the job roots; return how many there are."""
    prefixes = [prefix for root in JOB_ROOTS for prefix in manifest_prefixes(store, root)]
    for prefix in prefixes:
        manifest = store.manifest(prefix)
        assert manifest is not None
        for info in manifest.objects:
            store.read_object(prefix, info.name)
    return len(prefixes)
