"""Events and client input across processes, through the store.

- `EventRelay` (in each worker): takes every event of its runtime's bus (one lossy
  subscription: a slow relay never slows executions) and writes what is waiting as one batch:
  one transaction inserting the batch's rows into ``hive_events`` and one
  ``NOTIFY hive_events`` for the whole batch (not one per event), only while some follower
  of its agent holds a live row in ``hive_followers`` (checked in that transaction; with
  none, nothing is written). Every 100th batch trims the table to its newest 100,000 rows
  (followers only read rows newer than when they started).
- `EventFollower` (in a client runtime, e.g. ``serve --store``): registers in
  ``hive_followers`` (renewed every 5 s, lapsing after 30 s), listens for that NOTIFY,
  reads the new rows of its agent in order and publishes them on its own bus, so a feed client
  of this process follows executions running on any worker.
- Client input: a client runtime's ``inject_input`` inserts a ``hive_inputs`` row (and
  NOTIFY); the worker running that session delivers it to its execution and deletes the row
  (`deliver_inputs`).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import trio

from hive_actors.errors import StorageError
from hive_actors.events import AgentEvent
from hive_actors.serde import converter
from hive_actors.storage.pg_conn import PgConnection, pg_error
from hive_actors.storage.seam import drain

if TYPE_CHECKING:
    import psycopg

__all__ = ["EventFollower", "EventRelay", "queue_input", "take_inputs"]

log = logging.getLogger(__name__)

# Every TRIM_EVERY batches a relay deletes all but the newest KEEP_EVENTS rows of hive_events.
TRIM_EVERY = 100
KEEP_EVENTS = 100_000
# A follower's row lives this long without renewal (it renews every FOLLOW_RENEW seconds).
FOLLOW_LEASE = 30.0
FOLLOW_RENEW = 5.0
_FOLLOWED = ("SELECT EXISTS (SELECT 1 FROM hive_followers WHERE agent_name = %s "
             "AND lease_until > now())")


def _guarded(fn: Callable[[psycopg.Connection[tuple[object, ...]]], Any], where: str
             ) -> Callable[[psycopg.Connection[tuple[object, ...]]], Any]:
    def call(conn: psycopg.Connection[tuple[object, ...]]) -> Any:
        import psycopg

        try:
            return fn(conn)
        except psycopg.Error as exc:
            raise pg_error(where, exc) from None
    return call


class EventRelay:
    """Writes a runtime's events to the store in batches (see the module docstring)."""

    def __init__(self, url: str, agent_name: str, *, max_batch: int = 1000) -> None:
        self.agent_name = agent_name
        self._conn = PgConnection(url, application_name="hive-actors relay")
        self._send, self._recv = trio.open_memory_channel[AgentEvent](10_000)
        self._max_batch = max_batch
        self.relayed = 0
        self.batches = 0

    def handler(self, event: AgentEvent) -> None:
        """The bus subscription's handler: queue the event (dropped if the relay is 10,000
        behind; the bus drops the oldest before that)."""
        try:
            self._send.send_nowait(event)
        except (trio.WouldBlock, trio.ClosedResourceError):
            pass

    async def run(self) -> None:
        try:
            while True:
                batch = [await self._recv.receive(), *drain(self._recv, self._max_batch - 1)]
                rows = [(self.agent_name, e.execution_id,
                         json.dumps(converter.unstructure(e), default=str).encode())
                        for e in batch]

                trim = self.batches % TRIM_EVERY == 0

                def write(conn: psycopg.Connection[tuple[object, ...]]) -> None:
                    with conn.transaction():
                        row = conn.execute(_FOLLOWED, (self.agent_name,)).fetchone()
                        if not (row and row[0]):
                            return  # nobody follows this agent: nothing is written
                        with conn.cursor() as cur:
                            cur.executemany("INSERT INTO hive_events (agent_name, session_id, "
                                            "event) VALUES (%s, %s, %s)", rows)
                        conn.execute("SELECT pg_notify('hive_events', %s)", (self.agent_name,))
                        if trim:  # followers read new rows only: keep the newest KEEP_EVENTS
                            conn.execute("DELETE FROM hive_events WHERE id < "
                                         "(SELECT max(id) FROM hive_events) - %s",
                                         (KEEP_EVENTS,))

                try:
                    await self._conn.call(_guarded(write, "relay events"))
                    self.relayed += len(rows)
                    self.batches += 1
                except StorageError as exc:  # events are best effort; state is durable
                    log.warning("relay: %d events not relayed: %s", len(rows), exc)
        finally:
            with trio.CancelScope(shield=True):
                await self._conn.aclose()


class EventFollower:
    """Publishes on ``bus`` the store's events of ``agent_name`` written after it started."""

    def __init__(self, url: str, agent_name: str, publish: Callable[[AgentEvent], Any]) -> None:
        self.agent_name = agent_name
        self._publish = publish
        self._conn = PgConnection(url, application_name="hive-actors follow")
        self.last_id: int | None = None
        self.followed = 0
        self.lost = 0  # events trimmed before this follower read them (an upper bound)
        self.follower_id = f"{agent_name}:{uuid.uuid4().hex}"
        self._renewed = 0.0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        agent = self.agent_name

        def renew(conn: psycopg.Connection[tuple[object, ...]]) -> None:
            conn.execute("INSERT INTO hive_followers (id, agent_name, lease_until) VALUES "
                         "(%s, %s, now() + make_interval(secs => %s)) ON CONFLICT (id) DO "
                         "UPDATE SET lease_until = excluded.lease_until",
                         (self.follower_id, agent, FOLLOW_LEASE))
            conn.commit()
            self._renewed = time.monotonic()

        def start(conn: psycopg.Connection[tuple[object, ...]]) -> int:
            renew(conn)  # from now on relays write this agent's events
            conn.execute("LISTEN hive_events")
            conn.commit()
            # the newest id handed out (not 0 on an empty table: a gap check needs it)
            row = conn.execute("SELECT coalesce((SELECT max(id) FROM hive_events), (SELECT "
                               "CASE WHEN is_called THEN last_value ELSE last_value - 1 END "
                               "FROM hive_events_id_seq))").fetchone()
            conn.commit()
            return int(cast(int, row[0])) if row else 0

        def fetch(conn: psycopg.Connection[tuple[object, ...]]) -> list[tuple[Any, ...]]:
            if time.monotonic() - self._renewed > FOLLOW_RENEW:
                renew(conn)
            oldest = conn.execute("SELECT min(id) FROM hive_events").fetchone()
            first = cast(int | None, oldest[0]) if oldest else None
            if first is not None and first > cast(int, self.last_id) + 1:
                self._gap(first)
            rows = conn.execute("SELECT id, event FROM hive_events WHERE id > %s AND "
                                "agent_name = %s ORDER BY id LIMIT 5000",
                                (self.last_id, agent)).fetchall()
            conn.commit()
            if not rows:
                for _ in conn.notifies(timeout=0.25, stop_after=1):
                    pass
            return rows

        try:
            self.last_id = await self._conn.call(_guarded(start, "follow events"))
            task_status.started()
            while True:
                try:
                    rows = await self._conn.call(_guarded(fetch, "follow events"))
                except StorageError as exc:
                    log.warning("follow: %s", exc)
                    await trio.sleep(1.0)
                    continue
                for row_id, raw in rows:
                    self.last_id = int(row_id)
                    try:
                        event = converter.structure(json.loads(bytes(raw)), AgentEvent)
                    except Exception as exc:  # one bad row costs only itself
                        log.warning("follow: event %s unreadable: %r", row_id, exc)
                        continue
                    await self._publish(event)
                    self.followed += 1
        finally:
            with trio.CancelScope(shield=True):
                try:
                    await self._conn.call(_guarded(self._leave, "unfollow"),
                                          cancellable=False)
                except StorageError as exc:  # its row lapses by itself
                    log.warning("follow: %s", exc)
                await self._conn.aclose()

    def _gap(self, oldest: int) -> None:
        """Rows after ``last_id`` were trimmed before being read: say so, never silently."""
        missed = oldest - 1 - cast(int, self.last_id)
        self.lost += missed
        log.error("follow: agent %r: up to %d events lost (ids %d..%d trimmed from hive_events "
                  "before this follower read them)", self.agent_name, missed,
                  cast(int, self.last_id) + 1, oldest - 1)
        self.last_id = oldest - 1

    def _leave(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        conn.rollback()
        conn.execute("DELETE FROM hive_followers WHERE id = %s", (self.follower_id,))
        conn.commit()


def queue_input(conn: psycopg.Connection[tuple[object, ...]], session_id: str, node_id: str,
                content: str) -> None:
    """Leave client input for the worker that runs ``session_id`` (durable on return)."""
    with conn.transaction():
        conn.execute("INSERT INTO hive_inputs (session_id, node_id, content) "
                     "VALUES (%s, %s, %s)", (session_id, node_id, content))
        conn.execute("SELECT pg_notify('hive_inputs', %s)", (session_id,))


def take_inputs(conn: psycopg.Connection[tuple[object, ...]], session_ids: list[str]
                ) -> list[tuple[str, str, str]]:
    """Remove and return (session, node, content) of the inputs left for ``session_ids``."""
    if not session_ids:
        return []
    with conn.transaction():
        rows = conn.execute("DELETE FROM hive_inputs WHERE session_id = ANY(%s) "
                            "RETURNING id, session_id, node_id, content",
                            (session_ids,)).fetchall()
    return [(str(r[1]), str(r[2]), str(r[3])) for r in sorted(rows, key=lambda r: int(cast(int, r[0])))]

