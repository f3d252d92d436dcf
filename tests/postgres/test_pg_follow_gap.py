"""A follower that falls behind the trimming of ``hive_events`` says how many events it lost."""

from __future__ import annotations

import json
import logging

import psycopg
import pytest
import trio

from hive_actors.cluster.relay import EventFollower
from hive_actors.events import AgentEvent, EventType
from hive_actors.serde import converter
from hive_actors.storage.postgres import ensure_schema


async def test_a_follower_reports_events_trimmed_before_it_read_them(
        pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    with psycopg.connect(pg_url) as conn:
        ensure_schema(conn)
    got: list[AgentEvent] = []
    arrived = trio.Event()

    async def publish(event: AgentEvent) -> None:
        got.append(event)
        arrived.set()

    follower = EventFollower(pg_url, "gappy", publish)
    event = AgentEvent(type=EventType.EXECUTION_STARTED, execution_id="s1")
    raw = json.dumps(converter.unstructure(event), default=str).encode()
    with trio.fail_after(60), caplog.at_level(logging.ERROR):  # a hang guard
        async with trio.open_nursery() as nursery:
            await nursery.start(follower.run)
            # three events arrive and the oldest two are trimmed before the follower reads
            with psycopg.connect(pg_url) as conn, conn.transaction():
                for _ in range(3):
                    conn.execute("INSERT INTO hive_events (agent_name, session_id, event) "
                                 "VALUES ('gappy', 's1', %s)", (raw,))
                conn.execute("DELETE FROM hive_events WHERE id < (SELECT max(id) "
                             "FROM hive_events)")
                conn.execute("SELECT pg_notify('hive_events', 'gappy')")
            await arrived.wait()
            nursery.cancel_scope.cancel()
    assert len(got) == 1
    assert follower.lost == 2
    assert any("'gappy'" in r.getMessage() and "2 events lost" in r.getMessage()
               for r in caplog.records)
