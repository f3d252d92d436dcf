"""Trigger actors: timer and event entry points.

A trigger is a child actor of the runtime that calls ``fire(entry point, input)`` (the runtime
passes its ``trigger`` method).
It never cancels anything: a firing while executions run simply queues another execution (or is
skipped and logged when the queue is full).

- ``timer``: ``trigger_config = {"interval_seconds": 60}`` (or ``interval_minutes``), optional
  ``run_immediately: true``. Fires on a fixed schedule (missed ticks are skipped, not bunched).
  Or ``{"cron": "*/5 * * * *"}`` (UTC, parsed by croniter): fires at each matching wall-clock
  minute; slots missed while the process was busy are skipped.
- ``event``: ``trigger_config = {"event_types": ["execution_completed", ...]}`` plus optional
  filters ``stream_id``, ``node_id``, ``execution_id`` (``filter_stream``... accepted too).
  The actor reads its own bus subscription in its own task, so a firing never runs inside
  ``publish()`` and never blocks the execution that published. Events of its own entry point
  are ignored unless ``include_own_stream: true`` (that would loop). Input of a firing:
  ``{"event": <the event as JSON data>}``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Any, cast

import trio

from hive_actors.errors import ConfigurationError, HiveActorsError
from hive_actors.graph.spec import EntryPointSpec
from hive_actors.runtime.event_bus import EventBus, normalize_event_types
from hive_actors.events import AgentEvent, EventType
from hive_actors.serde import converter

log = logging.getLogger(__name__)

# Starts an execution of an entry point with this input; returns its id (AgentRuntime.trigger).
Fire = Callable[[str, dict[str, Any]], Awaitable[str]]


def make_trigger(spec: EntryPointSpec, fire: Fire,
                 bus: EventBus) -> TimerTrigger | EventTrigger | None:
    """The trigger actor of an entry point (None for ``manual``); an event trigger listens on
    ``bus``. Raises ConfigurationError for a bad trigger_config."""
    if spec.trigger_type == "timer":
        return TimerTrigger(spec, fire)
    if spec.trigger_type == "event":
        return EventTrigger(spec, fire, bus)
    return None


class _Firing:
    def __init__(self, spec: EntryPointSpec, fire: Fire) -> None:
        self.spec = spec
        self._fire = fire
        self.fired = 0
        self.skipped = 0

    async def fire(self, input_data: dict[str, Any]) -> None:
        try:
            await self._fire(self.spec.id, input_data)
            self.fired += 1
        except HiveActorsError as exc:  # queue full, stopping, storage trouble
            self.skipped += 1
            log.warning("entry point %s: firing skipped: %s", self.spec.id, exc)


class TimerTrigger(_Firing):
    """Fires every ``interval_seconds``; ``next_fire`` is the trio time of the next firing."""

    def __init__(self, spec: EntryPointSpec, fire: Fire) -> None:
        super().__init__(spec, fire)
        cfg = spec.trigger_config
        self.cron: str | None = None
        self.run_immediately = bool(cfg.get("run_immediately", False))
        self.next_fire: float | None = None
        if "cron" in cfg:
            from croniter import croniter

            if not isinstance(cfg["cron"], str) or not croniter.is_valid(cfg["cron"]):
                raise ConfigurationError(
                    f"entry point {spec.id!r}: trigger_config 'cron' is not a valid cron "
                    f"expression: {cfg['cron']!r}"
                )
            self.cron = cfg["cron"]
            return
        interval = cfg.get("interval_seconds")
        if interval is None and cfg.get("interval_minutes") is not None:
            interval = float(cfg["interval_minutes"]) * 60.0
        if not isinstance(interval, (int, float)) or isinstance(interval, bool) or interval <= 0:
            raise ConfigurationError(
                f"entry point {spec.id!r}: timer needs trigger_config 'interval_seconds' > 0 "
                f"(got {cfg!r})"
            )
        self.interval = float(interval)

    async def run(
        self, *, task_status: trio.TaskStatus[TimerTrigger] = trio.TASK_STATUS_IGNORED
    ) -> None:
        if self.cron is not None:
            return await self._run_cron(self.cron, task_status)
        now = trio.current_time()
        self.next_fire = now if self.run_immediately else now + self.interval
        task_status.started(self)
        try:
            while True:
                await trio.sleep_until(self.next_fire)
                await self._fire_timer()
                # next slot on the fixed grid, skipping slots already past
                now = trio.current_time()
                self.next_fire += self.interval
                if self.next_fire <= now:
                    missed = int((now - self.next_fire) // self.interval) + 1
                    self.next_fire += missed * self.interval
        finally:
            self.next_fire = None

    async def _fire_timer(self) -> None:
        await self.fire({"event": {
            "source": "timer",
            "entry_point": self.spec.id,
            "fired_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        }})

    async def _run_cron(self, cron: str, task_status: trio.TaskStatus[TimerTrigger]) -> None:
        from croniter import croniter

        # Wall-clock slots are mapped onto trio's clock through one anchor, so sleeping is
        # trio.sleep_until (a test clock jumps slot to slot). When the wall clock runs ahead of
        # that mapping (suspend, clock step), re-anchor; slots already past are skipped.
        def utc_now() -> dt.datetime:
            return dt.datetime.now(dt.timezone.utc)

        anchor_wall, anchor_trio = utc_now(), trio.current_time()
        slot = anchor_wall
        if self.run_immediately:
            self.next_fire = anchor_trio
            task_status.started(self)
            task_status = trio.TASK_STATUS_IGNORED
            await self._fire_timer()
        try:
            while True:
                now = anchor_wall + dt.timedelta(seconds=trio.current_time() - anchor_trio)
                real = utc_now()
                if (real - now).total_seconds() > 1.0:
                    anchor_wall, anchor_trio, now = real, trio.current_time(), real
                slot = croniter(cron, max(slot, now)).get_next(dt.datetime)
                self.next_fire = anchor_trio + (slot - anchor_wall).total_seconds()
                task_status.started(self)
                task_status = trio.TASK_STATUS_IGNORED
                await trio.sleep_until(self.next_fire)
                await self._fire_timer()
        finally:
            self.next_fire = None


class EventTrigger(_Firing):
    """Fires once per bus event matching the entry point's filter."""

    def __init__(self, spec: EntryPointSpec, fire: Fire, bus: EventBus) -> None:
        super().__init__(spec, fire)
        self.bus = bus
        cfg = dict(spec.trigger_config)
        types = cfg.get("event_types")
        if not types or not isinstance(types, (list, tuple)):
            raise ConfigurationError(
                f"entry point {spec.id!r}: event trigger needs trigger_config 'event_types' "
                f"(a list of event type names), got {cfg!r}"
            )
        self.event_types = normalize_event_types(list(types))  # unknown names fail here
        # filter values come from the JSON trigger_config as written
        self.filters: dict[str, Any] = {
            key: cfg.get(key, cfg.get(alias))
            for key, alias in (("stream_id", "filter_stream"), ("node_id", "filter_node"),
                               ("execution_id", "filter_execution"))
        }
        self.include_own = bool(cfg.get("include_own_stream", False))

    async def run(
        self, *, task_status: trio.TaskStatus[EventTrigger] = trio.TASK_STATUS_IGNORED
    ) -> None:
        filters = self.filters
        async with self.bus.open_subscription(
            self.event_types, stream_id=filters["stream_id"], node_id=filters["node_id"],
            execution_id=filters["execution_id"],
        ) as sub:
            task_status.started(self)
            async for event in sub:
                if event.type is EventType.EVENTS_DROPPED:
                    log.warning("entry point %s missed %s events (subscriber too slow)",
                                self.spec.id, event.data.get("count"))
                    continue
                if event.stream_id == self.spec.id and not self.include_own:
                    continue
                await self.fire({"event": event_data(event)})


def event_data(event: AgentEvent) -> dict[str, Any]:
    """An event as plain JSON-able data."""
    # cattrs' unstructure is typed Any; an attrs record unstructures to a dict
    return cast("dict[str, Any]", converter.unstructure(event))
