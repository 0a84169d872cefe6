"""The file backend: a store in a local or mounted folder."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from rpt_transfer.errors import StoreError
from rpt_transfer.manifest import HashingReader, check_key
from rpt_transfer.store.base import _TEMP_SUFFIX, Store, StoredObject, _list_folder

# -- local folder --------------------------------------------------------------------------------------


class FileStore(Store):
    """A store in a local (or mounted) folder; each write goes to a temporary file, then is renamed."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self.uri = self.root.as_uri()

    def local_path(self) -> Path:
        """Return the root folder."""
        return self.root

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    @contextmanager
    def _reading(self, key: str) -> Iterator[BinaryIO | None]:
        path = self._path(key)
        try:
            source = path.open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):  # absent is an answer here
            source = None
        except OSError as err:
            raise StoreError(f"cannot read {self.key_uri(key)}: {err.strerror}") from err
        if source is None:
            yield None
            return
        with source:
            yield source

    def write_bytes(self, key: str, data: bytes) -> None:
        """Write via a temporary file in the same folder and os.replace, so the swap is atomic."""
        self._atomic_write(self._path(key), lambda out: out.write(data), exclusive=False)

    def write_stream(self, key: str, source: HashingReader) -> None:
        """Copy a reader in chunks to a temporary file, then rename it into place."""
        self._atomic_write(self._path(key), lambda out: shutil.copyfileobj(source, out), exclusive=False)

    def create_exclusive(self, key: str, data: bytes) -> bool:
        """Publish a fully written temporary file with os.link, which fails if the name already exists."""
        return self._atomic_write(self._path(key), lambda out: out.write(data), exclusive=True)

    def exists(self, key: str) -> bool:
        """Whether a file exists at key."""
        return self._path(key).is_file()

    def list_objects(self, prefix: str) -> list[StoredObject]:
        """Files under a folder with size and mtime; files that vanish while we look are left out."""
        folder = self.root / _list_folder(prefix)
        found = []
        for parent, _, names in os.walk(folder):  # os.walk skips folders removed under it
            for name in names:
                path = Path(parent, name)
                try:
                    stat = path.stat()
                except FileNotFoundError:  # renamed into place or deleted meanwhile: not there any more
                    continue
                modified = datetime.fromtimestamp(stat.st_mtime, UTC)
                found.append(StoredObject(path.relative_to(self.root).as_posix(), stat.st_size, modified))
        return sorted(found)

    def delete_keys(self, keys: list[str]) -> None:
        """Unlink each file; one already gone is fine."""
        for key in keys:
            path = self._path(key)
            with _os_errors(f"delete {path}"):
                path.unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> None:
        """Remove the folder at prefix and everything in it (temporary files included)."""
        if not _list_folder(prefix):
            raise StoreError(f"refusing to delete the whole store {self.uri}: give a prefix")
        folder = self.root / _list_folder(prefix)
        if folder.is_dir():
            with _os_errors(f"delete {folder}"):
                shutil.rmtree(folder, onerror=_gone_is_fine)

    def check_access(self, write: bool = True) -> None:
        """Create the root if writing, then prove access by listing it and writing a probe file."""
        with _os_errors(f"use store folder {self.root}"):
            if write:
                self.root.mkdir(parents=True, exist_ok=True)
            if not self.root.is_dir():
                raise StoreError(f"store folder {self.root} does not exist or is not a folder")
            os.listdir(self.root)
            if write:  # a real write: os.access says yes to root even where a write would fail
                fd, probe = tempfile.mkstemp(dir=self.root, prefix=".rpt-access-check.", suffix=_TEMP_SUFFIX)
                os.close(fd)
                os.unlink(probe)

    def _atomic_write(self, path: Path, fill: Callable[[BinaryIO], object], *, exclusive: bool) -> bool:
        with _os_errors(f"write to store folder {path.parent}"):
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=_TEMP_SUFFIX)
            temp = Path(name)
            try:
                os.fchmod(fd, 0o644)  # mkstemp makes 0600 files; others sharing the store must read them
                with os.fdopen(fd, "wb") as out:
                    fill(out)
                    out.flush()
                    os.fsync(out.fileno())  # parts must be on disk before the manifest that vouches for them
                return _publish(temp, path, exclusive=exclusive)
            finally:
                temp.unlink(missing_ok=True)


def _publish(temp: Path, path: Path, *, exclusive: bool) -> bool:
    if not exclusive:
        os.replace(temp, path)
        return True
    try:
        os.link(temp, path)
    except FileExistsError:  # another writer published first: the caller reports the conflict
        return False
    return True


def _gone_is_fine(function: Callable[..., object], path: str, exc_info: tuple) -> None:
    """Let rmtree pass over entries that another deleter removed first; raise anything else."""
    if not isinstance(exc_info[1], FileNotFoundError):
        raise exc_info[1]


@contextmanager
def _os_errors(action: str) -> Iterator[None]:
    """Turn an OSError (no permission, read-only or full disk, a file in the way) into one line."""
    try:
        yield
    except OSError as err:
        where = f" ({err.filename})" if err.filename and str(err.filename) not in action else ""
        raise StoreError(f"cannot {action}: {err.strerror or err}{where}") from err
