"""PostgreSQL store: the storage seam's write side (`PgLog`) and read side (`PgSessionReader`).

The runtime hands its storage engine groups of `FileOp`s over the seed's files (state.json,
checkpoints, summary.json, JSONL logs). `PgLog` maps every path under the storage folder to
rows (schema: `SCHEMA`):

    sessions/{id}/state.json                 hive_sessions row (status, entry point, times,
                                             checkpoint_seq, idempotency_key as columns; the
                                             document in ``state``); owner_id and epoch are
                                             the fencing columns, never written from a file
    sessions/{id}/checkpoints/cp_N_kind.json hive_checkpoints (session_id, seq)
    sessions/{id}/logs/*.jsonl (append)      hive_lines (session_id, name, id)
    any other whole file                     hive_files (path)
    any other append                         hive_lines (session_id NULL, name = path)

The actor (`run`) takes every group waiting in its inbox as one batch (up to ``max_batch``)
and commits it in ONE transaction, in a worker thread that owns the connection:

1. lock the batch's session rows (``FOR UPDATE``, in id order);
2. refuse each group that touches a session this log may not write (owned by another worker,
   or its epoch moved past the fence this log holds): that group fails with
   `StaleOwnerError`, nothing of it is applied;
3. write the other groups' rows and COMMIT (synchronous_commit: the WAL is flushed);
4. only then wake the callers.

A failed transaction fails every group of the batch with a `StorageError` naming the
database; nothing of it is applied (the server rolls it back) and the next batch reconnects.
Cancellation: a batch that started committing finishes (the worker thread is not abandoned);
callers wait under a shield; the actor commits what is still queued when cancelled.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import socket
import threading
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import attrs
import trio

from hive_actors.errors import CorruptFileError, RuntimeStateError, StorageError, UnknownSessionError
from hive_actors.status import ExecutionStatus
from hive_actors.storage.checkpoint_store import Checkpoint, decode_checkpoint
from hive_actors.storage.commit import FileOp
from hive_actors.storage.pg_conn import PgConnection, pg_error, redact
from hive_actors.storage.durable_log import BatchStats, SingleFileOps, serve_batches
from hive_actors.storage.owner import OwnerInfo, owner_is_alive
from hive_actors.storage.session_store import DamagedSession, SessionRecord, decode_record

if TYPE_CHECKING:
    import psycopg

__all__ = ["PgLog", "PgLogStats", "PgSessionReader", "StaleOwnerError", "SCHEMA",
           "ensure_schema", "is_store_url", "process_owner_id"]

_CHECKPOINT = re.compile(r"^cp_(\d{6,})_([a-z][a-z0-9_]*)\.json$")
_ENDED = ("completed", "failed", "cancelled", "paused")
_SCHEMA_LOCK = 0x48495645  # advisory lock key: one schema migration at a time

SCHEMA = """
CREATE TABLE IF NOT EXISTS hive_sessions (
    id text PRIMARY KEY,
    agent_name text NOT NULL DEFAULT '',
    entry_point text NOT NULL DEFAULT 'default',
    status text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    checkpoint_seq bigint,
    idempotency_key text,
    owner_id text,
    epoch bigint NOT NULL DEFAULT 0,
    state bytea,
    -- a submitted execution: its input until a worker writes state.json; submit_key is the
    -- idempotency key of `submit` (one session per key)
    input bytea,
    submit_key text UNIQUE
);
CREATE TABLE IF NOT EXISTS hive_checkpoints (
    session_id text NOT NULL,
    seq bigint NOT NULL,
    kind text NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (session_id, seq)
);
CREATE TABLE IF NOT EXISTS hive_lines (
    id bigserial PRIMARY KEY,
    session_id text,
    name text NOT NULL,
    data bytea NOT NULL
);
CREATE INDEX IF NOT EXISTS hive_lines_session ON hive_lines (session_id, name, id);
CREATE INDEX IF NOT EXISTS hive_sessions_queue ON hive_sessions (agent_name, created_at)
    WHERE status IN ('queued', 'running');
CREATE TABLE IF NOT EXISTS hive_workers (
    id text PRIMARY KEY,
    agent_name text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    lease_until timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS hive_events (
    id bigserial PRIMARY KEY,
    agent_name text NOT NULL,
    session_id text NOT NULL,
    event bytea NOT NULL
);
CREATE INDEX IF NOT EXISTS hive_events_agent ON hive_events (agent_name, id);
CREATE TABLE IF NOT EXISTS hive_followers (
    id text PRIMARY KEY,
    agent_name text NOT NULL,
    lease_until timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS hive_inputs (
    id bigserial PRIMARY KEY,
    session_id text NOT NULL,
    node_id text NOT NULL,
    content text NOT NULL
);
CREATE INDEX IF NOT EXISTS hive_inputs_session ON hive_inputs (session_id);
CREATE TABLE IF NOT EXISTS hive_files (
    path text PRIMARY KEY,
    data bytea NOT NULL
);
"""


def process_owner_id() -> str:
    """A name for this process as a session owner, unique across restarts and hosts."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def is_store_url(store: str) -> bool:
    return store.startswith(("postgresql://", "postgres://"))


def ensure_schema(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """Create the tables if missing (one process at a time: an advisory lock)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
        conn.execute(SCHEMA)


class StaleOwnerError(StorageError):
    """A write for a session this process no longer owns (another worker took it over, its
    epoch moved on): refused, nothing of the group applied."""


@attrs.define
class PgLogStats(BatchStats):
    """Counters for tests and benchmarks."""
    bytes: int = 0
    refused: int = 0


@attrs.define(eq=False)
class _Group:
    ops: list[FileOp]
    done: trio.Event = attrs.Factory(trio.Event)
    error: StorageError | None = None


@attrs.frozen
class _Target:
    """Where one op goes: ``table`` is state | checkpoint | line | file."""

    table: str
    session_id: str | None
    name: str
    seq: int = 0
    kind: str = ""


def _target(root: Path, op: FileOp) -> _Target:
    """The rows ``op`` maps to. Raises StorageError for a path outside the storage folder."""
    try:
        rel = op.path.relative_to(root)
    except ValueError:
        err = StorageError(f"{op.path} is outside the store's folder {root}")
        err.path = str(op.path)
        raise err from None
    parts = rel.parts
    if len(parts) >= 3 and parts[0] == "sessions":
        sid, rest = parts[1], parts[2:]
        if op.kind == "write" and rest == ("state.json",):
            return _Target("state", sid, "state.json")
        if op.kind == "write" and len(rest) == 2 and rest[0] == "checkpoints":
            m = _CHECKPOINT.match(rest[1])
            if m:
                return _Target("checkpoint", sid, rest[1], int(m.group(1)), m.group(2))
        if op.kind == "append" and len(rest) == 2 and rest[0] == "logs":
            return _Target("line", sid, rest[1])
        return _Target("file" if op.kind == "write" else "line", sid, str(rel))
    return _Target("file" if op.kind == "write" else "line", None, str(rel))


def _state_columns(sid: str, data: bytes) -> tuple[Any, ...]:
    """The hive_sessions columns of a state.json document. Raises StorageError."""
    try:
        doc = json.loads(data)
        return (sid, str(doc.get("agent_name", "")), str(doc.get("entry_point", "default")),
                str(doc["status"]), dt.datetime.fromisoformat(doc["created_at"]),
                dt.datetime.fromisoformat(doc["updated_at"]), doc.get("checkpoint_seq"),
                doc.get("idempotency_key"), data)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StorageError(f"state.json of session {sid!r} is not a session record: "
                           f"{exc!r}") from None


class PgLog(SingleFileOps):
    """The PostgreSQL storage engine's write side, an actor: ``await nursery.start(log.run)``.

    ``root`` is the storage folder whose paths the runtime writes (they are mapped to rows,
    see the module docstring). ``owner_id`` names this process in ``hive_sessions.owner_id``:
    a session another owner holds is never written. ``fence(session_id, epoch)`` pins the
    epoch this process was granted for a session (a claim or a takeover); a write after the
    epoch moved on is refused with `StaleOwnerError`.
    """

    def __init__(self, url: str, root: Path, *, owner_id: str, max_batch: int = 1024,
                 inbox_size: int = 8192) -> None:
        self.url = url
        self.root = Path(root)
        self.owner_id = owner_id
        self._conn = PgConnection(url, application_name=f"hive-actors log {owner_id}")
        self._max_batch = max_batch
        self._send, self._recv = trio.open_memory_channel[_Group](inbox_size)
        self._running = False
        self._started = False
        self._fences: dict[str, int] = {}
        self.stats = PgLogStats()

    @property
    def running(self) -> bool:
        return self._running

    def fence(self, session_id: str, epoch: int) -> None:
        """Write ``session_id`` only while its epoch is ``epoch`` and this log owns it."""
        self._fences[session_id] = epoch

    def release(self, session_id: str) -> None:
        self._fences.pop(session_id, None)

    # ---- caller side -------------------------------------------------------------------

    async def commit(self, ops: Sequence[FileOp]) -> None:
        """Make ``ops`` durable as one group (all or none): returns once its transaction
        committed. Raises `StaleOwnerError` (refused), `StorageError`."""
        if not ops:
            return
        group = _Group(list(ops))
        if not self._running:
            await self._conn.call(lambda c: self._commit_sync(c, [group]), cancellable=False)
        else:
            try:
                try:
                    self._send.send_nowait(group)
                except trio.WouldBlock:
                    await self._send.send(group)  # not queued yet: cancellable
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                raise RuntimeStateError("the PostgreSQL log has stopped") from None
            with trio.CancelScope(shield=True):
                await group.done.wait()
        if group.error is not None:
            raise group.error

    async def settle(self) -> None:
        """Committed rows are what readers see: nothing to wait for."""

    def stopping(self) -> None:
        """Nothing to do: queued groups are committed when the actor is cancelled."""

    # ---- actor side ----------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[PgLog] = trio.TASK_STATUS_IGNORED) -> None:
        """Create the schema if missing, then commit batches until cancelled (after
        committing every queued group). Raises StorageError if the database cannot be
        reached at start."""
        if self._started:
            raise RuntimeStateError("this PgLog has already been started")
        self._started = True
        try:
            await self._conn.call(_ensure_schema_or_raise(self.url))
            self._running = True
            task_status.started(self)
            await serve_batches(self._recv, self._max_batch, self._commit_batch)
        finally:
            self._running = False
            with trio.CancelScope(shield=True):
                await self._conn.aclose()

    async def _commit_batch(self, batch: list[_Group]) -> None:
        try:
            await self._conn.call(lambda c: self._commit_sync(c, batch), cancellable=False)
        finally:
            for group in batch:
                group.done.set()

    def _commit_sync(self, conn: psycopg.Connection[tuple[object, ...]],
                     batch: list[_Group]) -> None:
        """One transaction for ``batch`` (worker thread). Sets each group's error."""
        import psycopg

        plans: list[tuple[_Group, list[tuple[_Target, FileOp]]]] = []
        for group in batch:
            try:
                plans.append((group, [(_target(self.root, op), op) for op in group.ops]))
            except StorageError as exc:
                group.error = exc
        sids = sorted({t.session_id for _, ts in plans for t, _ in ts if t.session_id})
        try:
            with conn.transaction():
                locked = conn.execute(
                    "SELECT id, owner_id, epoch FROM hive_sessions WHERE id = ANY(%s) "
                    "ORDER BY id FOR UPDATE", (sids,)).fetchall()
                owners = {str(r[0]): (r[1], int(cast(int, r[2]))) for r in locked}
                rows = _Rows()
                for group, targets in plans:
                    refused = self._refusal(targets, owners)
                    if refused is not None:
                        group.error = refused
                        self.stats.refused += 1
                        continue
                    for target, op in targets:
                        self._add(rows, target, op, owners)
                        self.stats.bytes += len(op.data)
                rows.write(conn)
        except psycopg.Error as exc:
            err = pg_error(f"commit to {redact(self.url)}", exc)
            for group, _ in plans:
                group.error = err
            if conn.broken:
                conn.close()
            return
        self.stats.record_batch(len(batch))

    def _refusal(self, targets: list[tuple[_Target, FileOp]],
                 owners: dict[str, tuple[Any, int]]) -> StaleOwnerError | None:
        for target, _ in targets:
            sid = target.session_id
            if sid is None or sid not in owners:
                continue
            owner, epoch = owners[sid]
            fence = self._fences.get(sid)
            if owner not in (None, self.owner_id) or (fence is not None and epoch != fence):
                err = StaleOwnerError(
                    f"session {sid!r} is owned by {owner!r} at epoch {epoch}; this process "
                    f"({self.owner_id!r}, epoch {fence}) may no longer write it")
                err.path = str(self.root / "sessions" / sid)
                return err
        return None

    def _add(self, rows: _Rows, target: _Target, op: FileOp,
             owners: dict[str, tuple[Any, int]]) -> None:
        sid = target.session_id
        if target.table == "state":
            assert sid is not None
            cols = _state_columns(sid, op.data)
            epoch = self._fences.get(sid, 1)
            rows.states[sid] = (*cols, self.owner_id, epoch)  # the batch's last one wins
            owners.setdefault(sid, (self.owner_id, epoch))
            if cols[3] in _ENDED:  # wakes `submit --wait` and other waiters, at commit
                rows.ended.append(sid)
        elif target.table == "checkpoint":
            rows.checkpoints[(sid, target.seq)] = (sid, target.seq, target.kind, op.data)
        elif target.table == "line":
            rows.lines.append((sid, target.name, op.data))
        else:
            rows.files[target.name] = (target.name, op.data)


_UPSERT_STATE = (
    "INSERT INTO hive_sessions (id, agent_name, entry_point, status, created_at, updated_at, "
    "checkpoint_seq, idempotency_key, state, owner_id, epoch) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (id) DO UPDATE SET agent_name = excluded.agent_name, "
    "entry_point = excluded.entry_point, status = excluded.status, "
    "created_at = excluded.created_at, updated_at = excluded.updated_at, "
    "checkpoint_seq = excluded.checkpoint_seq, idempotency_key = excluded.idempotency_key, "
    "state = excluded.state, owner_id = COALESCE(hive_sessions.owner_id, excluded.owner_id)")
_UPSERT_CHECKPOINT = (
    "INSERT INTO hive_checkpoints (session_id, seq, kind, data) VALUES (%s, %s, %s, %s) "
    "ON CONFLICT (session_id, seq) DO UPDATE SET kind = excluded.kind, data = excluded.data")
_INSERT_LINE = "INSERT INTO hive_lines (session_id, name, data) VALUES (%s, %s, %s)"
_UPSERT_FILE = ("INSERT INTO hive_files (path, data) VALUES (%s, %s) "
                "ON CONFLICT (path) DO UPDATE SET data = excluded.data")


@attrs.define
class _Rows:
    """A batch's rows by table: whole documents keyed (the last write wins), lines in order."""

    states: dict[str, tuple[Any, ...]] = attrs.Factory(dict)
    checkpoints: dict[tuple[str | None, int], tuple[Any, ...]] = attrs.Factory(dict)
    lines: list[tuple[Any, ...]] = attrs.Factory(list)
    files: dict[str, tuple[Any, ...]] = attrs.Factory(dict)
    ended: list[str] = attrs.Factory(list)

    def write(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        """One executemany per table (psycopg pipelines it: one round trip each)."""
        with conn.cursor() as cur:
            for sql, params in ((_UPSERT_STATE, list(self.states.values())),
                                (_UPSERT_CHECKPOINT, list(self.checkpoints.values())),
                                (_INSERT_LINE, self.lines),
                                (_UPSERT_FILE, list(self.files.values()))):
                if params:
                    cur.executemany(sql, params)
            if self.ended:
                cur.execute("SELECT pg_notify('hive_session_end', id) FROM unnest(%s::text[]) "
                            "AS t(id)", (self.ended,))


def _ensure_schema_or_raise(url: str) -> Any:
    def call(conn: psycopg.Connection[tuple[object, ...]]) -> None:
        import psycopg

        try:
            ensure_schema(conn)
        except psycopg.Error as exc:
            raise pg_error(f"schema of {redact(url)}", exc) from None
    return call


class PgSessionReader:
    """The read side over the same rows, with `SessionStore`'s / `CheckpointStore`'s read
    method names. Blocking (call from a worker thread); one connection, one call at a time.
    ``root`` only names places in error messages (the paths the files engine would use)."""

    def __init__(self, url: str, root: Path) -> None:
        from hive_actors.storage.pg_conn import import_psycopg

        import_psycopg()
        self.url = url
        self.root = Path(root)
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:  # callers are worker threads; one statement at a time
            return self._rows_locked(sql, args)

    def _rows_locked(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        import psycopg

        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
                ensure_schema(self._conn)
            return self._conn.execute(sql, args).fetchall()
        except psycopg.Error as exc:
            if self._conn is not None and self._conn.broken:
                self._conn.close()
                self._conn = None
            raise pg_error(f"read from {redact(self.url)}", exc) from None

    def _state_path(self, sid: str) -> Path:
        return self.root / "sessions" / sid / "state.json"

    def read_state(self, session_id: str) -> SessionRecord:
        """The session's record. Raises UnknownSessionError, CorruptFileError."""
        rows = self._rows("SELECT state FROM hive_sessions WHERE id = %s AND state IS NOT NULL",
                          (session_id,))
        if not rows:
            raise UnknownSessionError(f"no session {session_id!r} in {redact(self.url)}")
        record = decode_record(self._state_path(session_id), bytes(rows[0][0]))
        if record.session_id != session_id:
            raise CorruptFileError(str(self._state_path(session_id)),
                                   f"holds session id {record.session_id!r}")
        return record

    def scan(self, *, status: ExecutionStatus | str | None = None
             ) -> tuple[list[SessionRecord], list[DamagedSession]]:
        """(readable sessions oldest first, damaged ones with the reason)."""
        sql = "SELECT id, state FROM hive_sessions WHERE state IS NOT NULL"
        args: tuple[Any, ...] = ()
        if status is not None:
            sql += " AND status = %s"
            args = (str(ExecutionStatus(status)),)
        records, damaged = [], []
        for sid, raw in self._rows(sql + " ORDER BY created_at, id", args):
            try:
                records.append(decode_record(self._state_path(sid), bytes(raw)))
            except CorruptFileError as exc:
                damaged.append(DamagedSession(sid, exc))
        records.sort(key=lambda r: (r.created_at, r.session_id))
        return records, damaged

    def list_sessions(self, *, status: ExecutionStatus | str | None = None,
                      skip_damaged: bool = True) -> list[SessionRecord]:
        records, damaged = self.scan(status=status)
        if damaged and not skip_damaged:
            raise damaged[0].error
        return records

    def find_orphaned(self, is_alive: Callable[[OwnerInfo], bool] = owner_is_alive
                      ) -> list[SessionRecord]:
        """Sessions left ``running`` whose owner has no live lease in ``hive_workers``
        (the lease decides here: ``is_alive`` is for the files' process owners and unused)."""
        rows = self._rows(
            "SELECT s.id FROM hive_sessions s LEFT JOIN hive_workers w ON w.id = s.owner_id "
            "WHERE s.status = 'running' AND s.state IS NOT NULL "
            "AND (w.id IS NULL OR w.lease_until < now())")
        dead = {str(r[0]) for r in rows}
        return [r for r in self.list_sessions(status=ExecutionStatus.RUNNING)
                if r.session_id in dead]

    def owner_of(self, session_id: str) -> str | None:
        rows = self._rows("SELECT owner_id FROM hive_sessions WHERE id = %s", (session_id,))
        return cast("str | None", rows[0][0]) if rows else None

    def _checkpoint_rows(self, session_id: str, newest_first: bool = False
                         ) -> list[tuple[Any, ...]]:
        order = "DESC" if newest_first else "ASC"
        return self._rows("SELECT seq, kind, data FROM hive_checkpoints WHERE session_id = %s "
                          f"ORDER BY seq {order}", (session_id,))

    def checkpoints(self, session_id: str, *, skip_damaged: bool = False) -> list[Checkpoint]:
        """Every checkpoint in sequence order. Raises CorruptFileError for a damaged one
        unless ``skip_damaged``."""
        out = []
        for row in self._checkpoint_rows(session_id):
            try:
                out.append(self._checkpoint(session_id, *row))
            except CorruptFileError:
                if not skip_damaged:
                    raise
        return out

    def latest_checkpoint(self, session_id: str, *,
                          skip_damaged: bool = False) -> Checkpoint | None:
        """The newest checkpoint, None if none; a damaged one raises CorruptFileError unless
        ``skip_damaged`` (then the newest intact one)."""
        for row in self._checkpoint_rows(session_id, newest_first=True):
            try:
                return self._checkpoint(session_id, *row)
            except CorruptFileError:
                if not skip_damaged:
                    raise
        return None

    def damaged_checkpoints(self, session_id: str) -> list[str]:
        """Where the unreadable checkpoints are (named as the files view would name them)."""
        bad = []
        for row in self._checkpoint_rows(session_id):
            try:
                self._checkpoint(session_id, *row)
            except CorruptFileError as exc:
                bad.append(exc.path or session_id)
        return bad

    def _checkpoint(self, sid: str, seq: int, kind: str, data: bytes) -> Checkpoint:
        path = self.root / "sessions" / sid / "checkpoints" / f"cp_{seq:06d}_{kind}.json"
        cp = decode_checkpoint(path, bytes(data))
        if cp.seq != seq:
            raise CorruptFileError(str(path), f"holds seq {cp.seq}, its row says {seq}")
        return cp

    def _lines(self, session_id: str, name: str) -> list[dict[str, Any]]:
        rows = self._rows("SELECT data FROM hive_lines WHERE session_id = %s AND name = %s "
                          "ORDER BY id", (session_id, name))
        out = []
        path = self.root / "sessions" / session_id / "logs" / name
        for i, (raw,) in enumerate(rows, 1):
            try:
                value = json.loads(bytes(raw))
            except ValueError as exc:
                raise CorruptFileError(f"{path}:{i}", f"not valid JSON ({exc})") from None
            if not isinstance(value, dict):
                raise CorruptFileError(f"{path}:{i}", "not a JSON object")
            out.append(value)
        return out

    def read_details(self, session_id: str) -> list[dict[str, Any]]:
        return self._lines(session_id, "details.jsonl")

    def read_tool_logs(self, session_id: str) -> list[dict[str, Any]]:
        return self._lines(session_id, "tool_logs.jsonl")

    def read_summary(self, session_id: str) -> dict[str, Any] | None:
        rel = str(Path("sessions") / session_id / "logs" / "summary.json")
        rows = self._rows("SELECT data FROM hive_files WHERE path = %s", (rel,))
        if not rows:
            return None
        try:
            value = json.loads(bytes(rows[0][0]))
        except ValueError as exc:
            raise CorruptFileError(str(self.root / rel), f"not valid JSON ({exc})") from None
        return cast("dict[str, Any]", value)
