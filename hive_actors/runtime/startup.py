"""Actor start-up for `AgentRuntime.run`: the infrastructure (event bus, storage writer), then
one `ExecutionStream` per entry point and the trigger actors, each under `supervise`.

Infrastructure actors run in shielded scopes that ``run`` collects in ``infra`` and cancels
last (writer commits, then the bus stops), so they outlive the executions.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from hive_actors.runtime.event_bus import EventBus
from hive_actors.events import AgentEvent, EventType
from hive_actors.runtime.execution_stream import ExecutionStream
from hive_actors.runtime.services import (
    RuntimeServices,
    make_outcome_aggregator,
    make_state_manager,
)
from hive_actors.runtime.supervisor import supervise
from hive_actors.storage.owner import current_owner
from hive_actors.storage.session_store import SessionStore

if TYPE_CHECKING:
    from hive_actors.runtime.agent_runtime import AgentRuntime

__all__ = ["start_actor", "start_infrastructure", "start_streams"]


async def start_infrastructure(
    runtime: AgentRuntime, nursery: trio.Nursery, infra: list[trio.CancelScope],
    context_vars: tuple[tuple[Any, Any], ...], writer_class: Any,
) -> RuntimeServices:
    """Start the event bus and (with a storage path) a ``writer_class`` storage writer, each
    shielded in a scope appended to ``infra``; return the services the streams share.
    Raises what a failed start raised."""
    if runtime._bus.closed or getattr(runtime._bus, "_started", False):
        runtime._bus = EventBus()  # a bus runs once; a restarted runtime gets a new one
        runtime._state_manager = make_state_manager(runtime._bus)
        runtime._outcomes = make_outcome_aggregator(runtime.goal, runtime._bus)
    bus = runtime._bus
    await start_actor(runtime, nursery, "event_bus", lambda: bus.run, infra, restarts=0)
    writer = sessions = None
    if runtime.storage_path is not None:
        # temp files in one folder: far cheaper to create than one per session folder
        writer = writer_class(staging_dir=Path(runtime.storage_path) / ".staging")
        await start_actor(runtime, nursery, "storage_writer", lambda: writer.run, infra,
                          restarts=0)
        sessions = SessionStore(runtime.storage_path, writer)
    return RuntimeServices(
        graph=runtime.graph, goal=runtime.goal, llm=runtime.llm, tools=runtime.tools,
        tool_executor=runtime.tool_executor, checkpoint_config=runtime.checkpoint_config,
        config=runtime.config, bus=bus, state_manager=runtime._state_manager,
        sessions=sessions, writer=writer, agent_name=runtime.agent_name,
        owner=current_owner() if sessions is not None else None,
        executor_class=runtime.executor_class, context_vars=context_vars,
    )


async def start_streams(runtime: AgentRuntime, work: trio.Nursery, svc: RuntimeServices,
                        triggers: dict[str, Any]) -> None:
    """Start one stream per entry point, then its trigger actor (if any), in ``work``."""
    runtime._svc = svc
    for spec in runtime._specs.values():
        stream = ExecutionStream(spec, svc)
        await start_actor(runtime, work, f"stream:{spec.id}", lambda s=stream: s.run)
        runtime._streams[spec.id] = stream
    for spec in runtime._specs.values():
        trigger = triggers[spec.id]
        if trigger is not None:
            await start_actor(runtime, work, f"trigger:{spec.id}", lambda t=trigger: t.run)
            runtime._triggers[spec.id] = trigger


async def start_actor(runtime: AgentRuntime, nursery: trio.Nursery, name: str, make_run: Any,
                      infra: list[trio.CancelScope] | None = None,
                      restarts: int | None = None) -> None:
    """Run ``make_run()`` under `supervise` in ``nursery`` and return once it started; with
    ``infra``, in a new shielded scope appended to it. Crashes go to the runtime's bus."""
    shield = None
    if infra is not None:
        shield = trio.CancelScope(shield=True)
        infra.append(shield)
    await nursery.start(functools.partial(
        supervise, name, make_run, functools.partial(_report_crash, runtime),
        max_restarts=runtime.config.max_actor_restarts if restarts is None else restarts,
        window=runtime.config.restart_window_seconds, shielded_scope=shield,
    ))


def _report_crash(runtime: AgentRuntime, name: str, exc: BaseException, count: int) -> None:
    runtime._bus.publish_nowait(AgentEvent(
        type=EventType.ACTOR_CRASHED, stream_id=name,
        data={"actor": name, "error": f"{type(exc).__name__}: {exc}", "crashes": count},
    ))
