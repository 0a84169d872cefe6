"""The store: one root URI (a local folder or an S3 prefix) that every job reads from and writes to.

`Store.from_uri` picks the backend; the manifest protocol lives once, on the base class.
"""

from rpt_transfer.manifest import MANIFEST_NAME, Manifest, ObjectInfo, ObjectWriter, software_versions
from rpt_transfer.store.base import ACCEPTED_URIS, Store
from rpt_transfer.store.file import FileStore
from rpt_transfer.store.s3 import S3Store

__all__ = [
    "ACCEPTED_URIS",
    "MANIFEST_NAME",
    "FileStore",
    "Manifest",
    "ObjectInfo",
    "ObjectWriter",
    "S3Store",
    "Store",
    "software_versions",
]
