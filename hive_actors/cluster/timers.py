"""Timer entry points fired once per slot across all workers.

Every worker runs a `ClusterTimer` per timer entry point. Slots are on the wall clock, the
same for every worker: an interval timer's slot k starts at ``k * interval`` seconds after the
Unix epoch; a cron timer's slots are its croniter times (UTC). At each slot every worker
queues an execution with the submit key ``timer:{agent}:{entry point}:{slot}``; the key is a
unique column, so the store keeps exactly one and any worker claims and runs it. A slot is
fired while at least one worker is alive at its time; a slot no worker saw is skipped (as a
single runtime skips slots it slept through). ``run_immediately`` does not apply here.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from typing import Any

import trio

from hive_actors.errors import StorageError
from hive_actors.graph.spec import EntryPointSpec
from hive_actors.runtime.triggers import TimerTrigger
from hive_actors.storage.pg_conn import PgConnection
from hive_actors.storage.pg_queue import submit
from hive_actors.storage.session_store import new_session_id

__all__ = ["ClusterTimer", "next_slot", "slot_key"]

log = logging.getLogger(__name__)


def next_slot(timer: TimerTrigger, now: float) -> float:
    """The wall-clock time (Unix seconds) of the first slot strictly after ``now``."""
    if timer.cron is not None:
        from croniter import croniter

        start = dt.datetime.fromtimestamp(now, dt.timezone.utc)
        return float(croniter(timer.cron, start).get_next(dt.datetime).timestamp())
    return (math.floor(now / timer.interval) + 1) * timer.interval


def slot_key(agent: str, entry_point: str, slot: float) -> str:
    return f"timer:{agent}:{entry_point}:{slot:.3f}"


class ClusterTimer:
    """Queues ``spec``'s execution at each slot (once cluster-wide, by the slot's key)."""

    def __init__(self, spec: EntryPointSpec, agent_name: str, url: str) -> None:
        self.spec = spec
        self.agent_name = agent_name
        # parses and checks trigger_config (interval_seconds / interval_minutes / cron)
        self.timer = TimerTrigger(spec, _never_fired)
        self._conn = PgConnection(url, application_name=f"hive-actors timer {spec.id}")
        self.queued = 0

    async def run(self) -> None:
        try:
            while True:
                slot = next_slot(self.timer, time.time())
                await trio.sleep(max(0.0, slot - time.time()))
                await self._queue(slot)
        finally:
            with trio.CancelScope(shield=True):
                await self._conn.aclose()

    async def _queue(self, slot: float) -> None:
        agent, ep = self.agent_name, self.spec.id
        key = slot_key(agent, ep, slot)
        data = {"event": {"source": "timer", "entry_point": ep,
                          "slot": dt.datetime.fromtimestamp(slot, dt.timezone.utc).isoformat()}}
        try:
            await self._conn.call(
                lambda conn: submit(conn, new_session_id(), agent, ep, data, key))
            self.queued += 1
        except StorageError as exc:  # another worker may still queue this slot
            log.warning("timer %s: could not queue slot %s: %s", ep, key, exc)


async def _never_fired(_entry_point: str, _data: dict[str, Any]) -> str:
    raise AssertionError("a ClusterTimer's TimerTrigger only parses the config")
