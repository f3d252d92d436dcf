"""A client of the store: submit executions durably and wait for whichever worker runs them.

`StoreClient` owns one connection (a `PgConnection`, driven from worker threads). `submit`
returns the session id once its queued row is committed; `wait` returns the session's
record once its status is final (completed, failed, cancelled, paused), woken by the
NOTIFY the log sends with the final state's commit (and re-checking every ``poll`` seconds).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import trio

from hive_actors.errors import InputDataError
from hive_actors.graph.result import ExecutionResult
from hive_actors.storage.pg_conn import PgConnection
from hive_actors.storage.pg_queue import END_CHANNEL, TERMINAL, session_status, submit
from hive_actors.storage.postgres import PgSessionReader, ensure_schema
from hive_actors.storage.session_store import SessionRecord, new_session_id

if TYPE_CHECKING:
    import psycopg

__all__ = ["StoreClient", "queue_input_in_store", "submit_to_store", "wait_in_store"]

T = TypeVar("T")


class StoreClient:
    """Submit to and read from the store at ``url`` for agent ``agent_name``."""

    def __init__(self, url: str, agent_name: str) -> None:
        self.url = url
        self.agent_name = agent_name
        self._conn = PgConnection(url, application_name="hive-actors client")
        self._listen = PgConnection(url, application_name="hive-actors client wait")
        self._schema = False

    async def aclose(self) -> None:
        await self._conn.aclose()
        await self._listen.aclose()

    async def call(self, fn: Callable[[psycopg.Connection[tuple[object, ...]]], T]) -> T:
        """``fn(connection)`` on the client's connection (a worker thread)."""
        return await self._conn.call(fn)

    async def submit(self, entry_point: str, input_data: dict[str, Any], *,
                     key: str | None = None) -> str:
        """Queue one execution durably; return its session id (the first one's for a
        repeated ``key``). Raises InputDataError (not JSON), StorageError."""
        try:
            json.dumps(input_data, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InputDataError(f"submit to {entry_point!r}: input is not plain JSON: "
                                 f"{exc}") from None
        sid = new_session_id()
        agent = self.agent_name

        def call(conn: psycopg.Connection[tuple[object, ...]]) -> str:
            if not self._schema:
                ensure_schema(conn)
                self._schema = True
            return submit(conn, sid, agent, entry_point, input_data, key)

        return await self._conn.call(call)

    async def wait(self, session_ids: Sequence[str], *, poll: float = 1.0) -> dict[str, str]:
        """Wait until every session's status is final; return id -> status."""
        pending = list(session_ids)
        done: dict[str, str] = {}

        def check(conn: psycopg.Connection[tuple[object, ...]]) -> dict[str, str]:
            conn.execute(f"LISTEN {END_CHANNEL}")
            conn.commit()
            statuses = session_status(conn, pending)
            ended = {s: st for s, st in statuses.items() if st in TERMINAL}
            if len(ended) < len(pending):
                for _ in conn.notifies(timeout=poll, stop_after=1):
                    pass
            return ended

        while pending:
            ended = await self._listen.call(check)
            done.update(ended)
            pending = [s for s in pending if s not in done]
        return done

    async def record(self, session_id: str, root: Path) -> SessionRecord:
        """The session's state (as `SessionStore.read_state`). Raises UnknownSessionError."""
        reader = PgSessionReader(self.url, root)
        try:
            return await trio.to_thread.run_sync(reader.read_state, session_id)
        finally:
            reader.close()


async def submit_to_store(url: str, agent_name: str, entry_point: str,
                          input_data: dict[str, Any], key: str | None = None) -> str:
    """Queue one execution (a short-lived client); its session id once durable."""
    client = StoreClient(url, agent_name)
    try:
        return await client.submit(entry_point, input_data, key=key)
    finally:
        with trio.CancelScope(shield=True):
            await client.aclose()


async def wait_in_store(url: str, agent_name: str, session_id: str) -> ExecutionResult:
    """Wait until the session's status is final (whichever worker runs it); its result."""
    client = StoreClient(url, agent_name)
    try:
        status = (await client.wait([session_id]))[session_id]
        record = await client.record(session_id, Path("/"))
    finally:
        with trio.CancelScope(shield=True):
            await client.aclose()
    return ExecutionResult(success=status == "completed", output=dict(record.output),
                           error=record.error, paused_at=record.paused_at,
                           session_id=session_id, status=status)


async def queue_input_in_store(url: str, session_id: str, node_id: str, content: str) -> None:
    """Leave client input for the worker running ``session_id`` (durable on return)."""
    from hive_actors.cluster.relay import queue_input

    conn = PgConnection(url, application_name="hive-actors client input")
    try:
        await conn.call(lambda c: queue_input(c, session_id, node_id, content))
    finally:
        with trio.CancelScope(shield=True):
            await conn.aclose()
