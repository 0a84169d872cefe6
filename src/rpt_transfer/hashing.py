"""Canonical JSON and content hashes: the identity of every job and object rests on these."""

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> str:
    """Serialise with sorted keys and no whitespace, so equal values give equal bytes on every machine."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def sha256_hex(data: bytes) -> str:
    """Full sha256 of bytes, as stored in manifests."""
    return hashlib.sha256(data).hexdigest()


def short_hash(value: Any, length: int = 16) -> str:
    """Short content id (16 hex of sha256 by default) of a JSON-serialisable value."""
    return sha256_hex(canonical_json(value).encode())[:length]
