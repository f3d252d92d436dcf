"""The durable queue, session ownership and takeover on PostgreSQL (the store of postgres.py).

Blocking functions of one psycopg connection (run them through a `PgConnection`).

- `submit`: one ``hive_sessions`` row, status ``queued``, its input kept in ``input``;
  committed before the session id is returned. ``key`` (idempotency) is a unique column: the
  same key returns the session of the first submit.
- Workers: each has a ``hive_workers`` row whose ``lease_until`` it renews (`heartbeat`,
  by the database's clock). A worker whose lease lapsed (killed, stopped, cut off) is dead to
  the others.
- `claim`: a worker takes up to ``limit`` sessions that are ``queued`` with no owner, or
  ``queued``/``running`` with a dead owner, with ``FOR UPDATE SKIP LOCKED`` (claimers never
  wait on each other), setting ``owner_id`` to itself and raising ``epoch`` by one: the epoch
  is the fencing token `PgLog` checks under a row lock at every write, so the old owner's
  late writes are refused.
- `load_session`: what a worker needs to run a claimed session: its state.json (if it ever
  ran) and latest checkpoint, or its queued input.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import attrs

from hive_actors.errors import UnknownSessionError

if TYPE_CHECKING:
    import psycopg

__all__ = ["Claim", "SessionLoad", "claim", "heartbeat", "leave", "load_session", "lost",
           "requeue", "session_status", "submit", "END_CHANNEL", "TERMINAL"]

END_CHANNEL = "hive_session_end"  # NOTIFY payload: a session id whose state became terminal
TERMINAL = ("completed", "failed", "cancelled", "paused")


@attrs.frozen
class Claim:
    session_id: str
    epoch: int
    status: str  # queued: never ran; running: taken over from a dead owner


@attrs.frozen
class SessionLoad:
    session_id: str
    status: str
    entry_point: str
    created_at: dt.datetime
    state: bytes | None
    input: dict[str, Any]
    checkpoint: tuple[int, str, bytes] | None  # (seq, kind, data) of the latest


def submit(conn: psycopg.Connection[tuple[object, ...]], session_id: str, agent_name: str,
           entry_point: str, input_data: dict[str, Any], key: str | None = None) -> str:
    """Queue a new execution; return its session id (the first one's, for a repeated key)."""
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO hive_sessions (id, agent_name, entry_point, status, input, submit_key) "
            "VALUES (%s, %s, %s, 'queued', %s, %s) ON CONFLICT (submit_key) DO NOTHING "
            "RETURNING id", (session_id, agent_name, entry_point,
                             json.dumps(input_data).encode(), key)).fetchone()
        if row is None:
            row = conn.execute("SELECT id FROM hive_sessions WHERE submit_key = %s",
                               (key,)).fetchone()
            assert row is not None
        conn.execute("SELECT pg_notify('hive_queue', %s)", (agent_name,))
    return str(row[0])


def heartbeat(conn: psycopg.Connection[tuple[object, ...]], worker_id: str, agent_name: str,
              lease_seconds: float) -> None:
    """Renew (or create) this worker's lease."""
    with conn.transaction():
        conn.execute(
            "INSERT INTO hive_workers (id, agent_name, lease_until) "
            "VALUES (%s, %s, now() + make_interval(secs => %s)) ON CONFLICT (id) DO UPDATE "
            "SET lease_until = excluded.lease_until", (worker_id, agent_name, lease_seconds))


def leave(conn: psycopg.Connection[tuple[object, ...]], worker_id: str) -> None:
    """A clean stop: this worker's row goes; what it still owned is free for the others."""
    with conn.transaction():
        conn.execute("DELETE FROM hive_workers WHERE id = %s", (worker_id,))


def claim(conn: psycopg.Connection[tuple[object, ...]], worker_id: str, agent_name: str,
          limit: int) -> list[Claim]:
    """Take up to ``limit`` sessions (queued, or left by a dead owner), oldest first."""
    if limit <= 0:
        return []
    with conn.transaction():
        rows = conn.execute(
            "WITH picked AS ("
            " SELECT s.id FROM hive_sessions s LEFT JOIN hive_workers w ON w.id = s.owner_id"
            " WHERE s.agent_name = %(agent)s AND s.status IN ('queued', 'running')"
            " AND (s.owner_id IS NULL OR w.id IS NULL OR w.lease_until < now())"
            " ORDER BY s.created_at, s.id LIMIT %(n)s FOR UPDATE OF s SKIP LOCKED)"
            " UPDATE hive_sessions s SET owner_id = %(me)s, epoch = s.epoch + 1"
            " FROM picked WHERE s.id = picked.id RETURNING s.id, s.epoch, s.status",
            {"agent": agent_name, "n": limit, "me": worker_id}).fetchall()
    return [Claim(str(r[0]), int(cast(int, r[1])), str(r[2])) for r in rows]


def lost(conn: psycopg.Connection[tuple[object, ...]], worker_id: str,
         session_ids: Sequence[str]) -> list[str]:
    """Those of ``session_ids`` this worker no longer owns (taken over)."""
    if not session_ids:
        return []
    with conn.transaction():
        rows = conn.execute(
            "SELECT id FROM hive_sessions WHERE id = ANY(%s) "
            "AND owner_id IS DISTINCT FROM %s", (list(session_ids), worker_id)).fetchall()
    return [str(r[0]) for r in rows]


def load_session(conn: psycopg.Connection[tuple[object, ...]], session_id: str) -> SessionLoad:
    """The session's row and latest checkpoint. Raises UnknownSessionError."""
    with conn.transaction():
        row = conn.execute(
            "SELECT status, entry_point, created_at, state, input FROM hive_sessions "
            "WHERE id = %s", (session_id,)).fetchone()
        if row is None:
            raise UnknownSessionError(f"no session {session_id!r} in the store")
        cp = conn.execute(
            "SELECT seq, kind, data FROM hive_checkpoints WHERE session_id = %s "
            "ORDER BY seq DESC LIMIT 1", (session_id,)).fetchone()
    status, entry_point, created_at, state, raw_input = row
    return SessionLoad(
        session_id, str(status), str(entry_point), cast(dt.datetime, created_at),
        bytes(cast(bytes, state)) if state is not None else None,
        json.loads(bytes(cast(bytes, raw_input))) if raw_input is not None else {},
        (int(cast(int, cp[0])), str(cp[1]), bytes(cast(bytes, cp[2]))) if cp else None)


def session_status(conn: psycopg.Connection[tuple[object, ...]],
                   session_ids: Sequence[str]) -> dict[str, str]:
    """id -> status of those of ``session_ids`` that exist."""
    with conn.transaction():
        rows = conn.execute("SELECT id, status FROM hive_sessions WHERE id = ANY(%s)",
                            (list(session_ids),)).fetchall()
    return {str(r[0]): str(r[1]) for r in rows}


def requeue(conn: psycopg.Connection[tuple[object, ...]], session_id: str) -> str:
    """Queue a failed, cancelled or paused session again, to be resumed from its latest
    checkpoint by whichever worker claims it; returns the status it had. Raises
    UnknownSessionError, SessionStateError (running, queued or completed)."""
    from hive_actors.errors import SessionStateError

    with conn.transaction():
        row = conn.execute("SELECT status FROM hive_sessions WHERE id = %s FOR UPDATE",
                           (session_id,)).fetchone()
        if row is None:
            raise UnknownSessionError(f"no session {session_id!r} in the store")
        status = str(row[0])
        if status not in ("failed", "cancelled", "paused"):
            raise SessionStateError(f"session {session_id!r} is {status}: only a failed, "
                                    "cancelled or paused session can be resumed")
        conn.execute("UPDATE hive_sessions SET status = 'queued', owner_id = NULL "
                     "WHERE id = %s", (session_id,))
        conn.execute("SELECT pg_notify('hive_queue', agent_name) FROM hive_sessions "
                     "WHERE id = %s", (session_id,))
    return status
