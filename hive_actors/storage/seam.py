"""The storage seam: what the runtime asks of a storage engine.

Writes go through a `DurableLog` (commit a group of file changes; durable on return). Reads
(a session's state and checkpoints, the list of sessions, sessions a dead owner left
running) go through a `SessionReader`. The runtime holds one reader (``runtime.sessions``)
and makes it current with ``DurableLog.settle()`` before it reads; a reader of a folder whose
runtime died is made current when it is opened (`hive_actors.storage.engines.open_reader`).

A backend that knows only whole-file ``write`` and ``append`` (e.g. one that maps paths to
rows) can implement `DurableLog`: every op a caller commits is one of those two kinds.
`SessionStore` (session_store.py) is the reader over the seed's files.

Two engines implement `DurableLog` (defined in durable_log.py, below the session modules):

- `Journal` (journal.py, the default): one append-only log per runtime, group-committed with
  one write and one fdatasync per batch; the session files are its view (view.py).
- `StorageWriter` (writer.py): every file written and synced in place, group-committed
  (``RuntimeConfig(storage_engine="files")``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from hive_actors.status import ExecutionStatus
from hive_actors.storage.checkpoint_store import Checkpoint
from hive_actors.storage.durable_log import DurableLog, SingleFileOps, drain, serve_batches
from hive_actors.storage.owner import OwnerInfo, owner_is_alive
from hive_actors.storage.session_store import DamagedSession, SessionRecord

__all__ = ["DurableLog", "SessionReader", "SingleFileOps", "drain", "serve_batches"]


class SessionReader(Protocol):
    """A storage engine's read side. Blocking calls (async callers use a worker thread);
    they see what was durable when the reader was last made current (see above). Bad ids
    raise `InvalidSessionIdError`; damage raises `CorruptFileError` naming where it is."""

    def read_state(self, session_id: str) -> SessionRecord:
        """The session's record. Raises `UnknownSessionError` if there is none."""
        ...

    def scan(self, *, status: ExecutionStatus | str | None = None
             ) -> tuple[list[SessionRecord], list[DamagedSession]]:
        """(readable sessions, oldest first; sessions whose record is damaged)."""
        ...

    def list_sessions(self, *, status: ExecutionStatus | str | None = None,
                      skip_damaged: bool = True) -> list[SessionRecord]: ...

    def find_orphaned(self, is_alive: Callable[[OwnerInfo], bool] = owner_is_alive
                      ) -> list[SessionRecord]:
        """Sessions recorded ``running`` whose owner ``is_alive`` says is gone."""
        ...

    def checkpoints(self, session_id: str, *, skip_damaged: bool = False) -> list[Checkpoint]:
        """Every checkpoint of the session in sequence order."""
        ...

    def latest_checkpoint(self, session_id: str, *,
                          skip_damaged: bool = False) -> Checkpoint | None:
        """The newest checkpoint (``skip_damaged``: the newest intact one), None if none."""
        ...

    def damaged_checkpoints(self, session_id: str) -> list[str]:
        """Where the session's unreadable checkpoints are (file paths for the files view)."""
        ...

    def read_details(self, session_id: str) -> list[dict[str, Any]]: ...

    def read_tool_logs(self, session_id: str) -> list[dict[str, Any]]: ...

    def read_summary(self, session_id: str) -> dict[str, Any] | None: ...
