"""The store: one root URI (a local folder or an S3 prefix) that every job reads from and writes to.

`Store.from_uri` picks the backend; the manifest protocol lives once, on the base class; each attempt of
a job writes through its own `ObjectWriter`; `rpt-transfer store gc` (`store/gc.py`) removes what no
manifest lists.
"""

from rpt_transfer.manifest import MANIFEST_NAME, Manifest, ObjectInfo, software_versions
from rpt_transfer.store.base import ACCEPTED_URIS, Store, StoredObject
from rpt_transfer.store.file import FileStore
from rpt_transfer.store.s3 import S3Store
from rpt_transfer.store.writer import ObjectWriter

__all__ = [
    "ACCEPTED_URIS",
    "MANIFEST_NAME",
    "FileStore",
    "Manifest",
    "ObjectInfo",
    "ObjectWriter",
    "S3Store",
    "Store",
    "StoredObject",
    "software_versions",
]
