"""Durable storage: atomic files, checkpoints, session folders, the group-commit writer."""

from hive_actors.storage.atomic import atomic_write_bytes, write_atomic
from hive_actors.storage.checkpoint_store import Checkpoint, CheckpointStore
from hive_actors.storage.fs import REAL_FS, Fault, FaultyFileSystem, FileSystem
from hive_actors.storage.owner import OwnerInfo, current_owner, owner_is_alive
from hive_actors.storage.session_store import (
    InvalidSessionIdError,
    SessionRecord,
    SessionStore,
    new_session_id,
)
from hive_actors.storage.writer import FileOp, StorageWriter, commit_files, open_storage_writer

__all__ = [
    "REAL_FS",
    "Checkpoint",
    "CheckpointStore",
    "Fault",
    "FaultyFileSystem",
    "FileOp",
    "FileSystem",
    "InvalidSessionIdError",
    "OwnerInfo",
    "SessionRecord",
    "SessionStore",
    "StorageWriter",
    "atomic_write_bytes",
    "commit_files",
    "current_owner",
    "new_session_id",
    "open_storage_writer",
    "owner_is_alive",
    "write_atomic",
]
