"""Opening a storage folder's read side without a runtime (the CLI, the feed, a user's tools)."""

from __future__ import annotations

from pathlib import Path

from hive_actors.storage.fs import REAL_FS, FileSystem
from hive_actors.storage.journal import recover_if_idle
from hive_actors.storage.seam import SessionReader
from hive_actors.storage.session_store import SessionStore

__all__ = ["open_reader"]


def open_reader(storage_path: Path, fs: FileSystem = REAL_FS) -> SessionReader:
    """A `SessionReader` of the sessions under ``storage_path``, made current: the journal
    tail a dead runtime left is replayed into the files first (a live runtime keeps its own
    view current). Raises `StorageError` (`JournalCorruptError` for a damaged record)."""
    recover_if_idle(Path(storage_path), fs)
    return SessionStore(storage_path)
