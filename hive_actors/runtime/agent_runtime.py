"""AgentRuntime: the supervisor of one agent's actors (event bus, storage writer, streams, triggers).

Lifecycle. ``run(task_status=...)`` is the runtime: it opens one nursery and starts, in order,
the event bus and the storage writer (infrastructure, shielded so they outlive the executions),
one `ExecutionStream` per entry point and the timer/event trigger actors; it then serves until
``stop()`` or until its caller cancels it. Shutdown is structured: streams and triggers are
cancelled first (every execution ends ``cancelled``, its final ``state.json`` written under a
shield), then the writer commits what is queued, then the bus stops. When ``run`` returns no task
of the runtime is left and every file is durable. Three ways to use it:

- ``async with runtime:`` (or ``open_agent_runtime(...)``): the caller's task owns the nursery;
- ``await nursery.start(runtime.run)`` in an app that owns a nursery;
- ``await runtime.start()`` / ``await runtime.stop()`` (the seed's style). Without a nursery
  argument, ``start()`` hosts ``run`` in a trio *system task*: it must be called inside
  ``trio.run``, the runtime lives at most as long as that ``trio.run`` (if ``stop()`` is never
  called, trio cancels it at the end of the main task, with the same structured shutdown), and
  a runtime failure is re-raised by ``stop()`` and by every later call.

A start that fails midway (bad trigger config, unwritable storage) unwinds everything it
started and leaves the runtime stopped; ``start()`` may be retried.

The runtime owns its actors and their bookkeeping; what it hands down is explicit. Each
`ExecutionStream` gets the `RuntimeServices` (in `execution_stream.py`) the runtime builds at
each start; the trigger actors (`triggers.py`) get ``self.trigger`` and the bus; idempotency
keys (`idempotency.py`) get a submit callable. Supervision of the actors is in `supervisor.py`.
Methods by concern, in this one module because they share the runtime's state: start-up
(``_start_infrastructure``, ``_start_streams``, ``_start_actor``), admission of executions
(``_submit``), session resume and crash recovery (``_resume_session``,
``_recover_interrupted``).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import math
import tempfile
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any

import attrs
import trio

from hive_actors.errors import (
    ConfigurationError,
    CorruptFileError,
    HiveActorsError,
    InputDataError,
    RuntimeStateError,
    SessionStateError,
    UnknownEntryPointError,
    UnknownNodeError,
    UnknownSessionError,
)
from hive_actors.events import AgentEvent, EventType
from hive_actors.graph.checkpoint_config import CheckpointConfig
from hive_actors.graph.executor import GraphExecutor
from hive_actors.graph.executor_config import ExecutorConfig
from hive_actors.graph.services import as_registry
from hive_actors.graph.loader import AgentDefinition, function_resolver
from hive_actors.graph.result import ExecutionResult, SessionState
from hive_actors.graph.spec import EntryPointSpec, Goal, GraphSpec
from hive_actors.jsonsafe import InputCheck
from hive_actors.llm.provider import LLMProvider
from hive_actors.runtime.config import RuntimeConfig
from hive_actors.runtime.event_bus import LIFECYCLE_EVENTS, EventBus, Handler, TypeSpec
from hive_actors.runtime.execution_stream import (
    ContextValues,
    Execution,
    ExecutionStream,
    RuntimeServices,
)
from hive_actors.runtime.idempotency import IdempotencyClaims
from hive_actors.runtime.outcome_aggregator import OutcomeAggregator
from hive_actors.runtime.replay import (OfflineLLM, ReplayReport, StepsUsed, compare_traces,
                                        offline_tools, prepare_replay, session_trace)
from hive_actors.runtime.shared_state import SharedBufferManager
from hive_actors.runtime.supervisor import single_errors, start_in_system_task, supervise
from hive_actors.runtime.triggers import EventTrigger, TimerTrigger, make_trigger
from hive_actors.cluster.client import queue_input_in_store, submit_to_store, wait_in_store
from hive_actors.cluster.relay import EventFollower
from hive_actors.cluster.worker import Worker
from hive_actors.status import ExecutionStatus
from hive_actors.storage.postgres import PgLog, PgSessionReader, process_owner_id
from hive_actors.storage.recovery import ResumePoint, choose_checkpoint, damaged_checkpoints
from hive_actors.storage.owner import current_owner
from hive_actors.storage.journal import Journal, recover_if_idle  # seams: tests patch them
from hive_actors.storage.runtime_log import RuntimeLog
from hive_actors.storage.seam import SessionReader
from hive_actors.storage.session_store import SessionRecord, SessionStore
from hive_actors.storage.writer import StorageWriter
from hive_actors.tools.mcp_config import MCPServerConfig, servers_for_agent
from hive_actors.tools.registry import ToolRegistry
from hive_actors.tracing import Tracing

__all__ = [
    "AgentRuntime",
    "RuntimeConfig",
    "RuntimeServices",
    "create_agent_runtime",
    "open_agent_runtime",
    "provider_lifespan",
]

# What a session_state argument may be: a paused result's state, or its JSON data.
SessionStateInput = SessionState | dict[str, Any] | str | bytes | None

log = logging.getLogger(__name__)


class AgentRuntime:
    """Runs one agent graph: routes triggers to entry-point streams, owns events and storage."""

    # The executor class (None = GraphExecutor); a seam for tests. One instance per entry
    # point; its start(events=, storage_path=, checkpoint_store=, scope=) makes each execution.
    executor_class: Callable[..., GraphExecutor] | None = None

    def __init__(
        self,
        graph: GraphSpec,
        goal: Goal,
        storage_path: str | Path | None = None,
        *,
        llm: LLMProvider | None = None,
        tools: Any = None,
        tool_executor: Callable[..., Any] | None = None,
        checkpoint_config: CheckpointConfig | None = None,
        config: RuntimeConfig | None = None,
        agent_name: str | None = None,
        mcp_servers: Iterable[MCPServerConfig] = (),
    ) -> None:
        self.graph = graph
        self.goal = goal
        self.storage_path = Path(storage_path).expanduser() if storage_path is not None else None
        self.llm = llm
        self.tools = tools
        self.tool_executor = tool_executor
        self.checkpoint_config = checkpoint_config
        self.config = config or RuntimeConfig()
        self.agent_name = agent_name or graph.id
        self.mcp_servers = list(mcp_servers)  # started with the runtime, in this order
        self._sessions: SessionReader | None = None
        self._specs: dict[str, EntryPointSpec] = {}
        # set while running: what the streams share, the streams and the trigger actors
        self._svc: RuntimeServices | None = None
        self._streams: dict[str, ExecutionStream] = {}
        self._triggers: dict[str, TimerTrigger | EventTrigger] = {}
        # a bus runs once: each start after the first gets a new one (and new listeners)
        self._bus, self._state_manager, self._outcomes = self._new_bus()
        self._state = "stopped"  # stopped | starting | running | stopping
        self._work_scope: trio.CancelScope | None = None
        self._stopped = trio.Event()
        self._stopped.set()
        self._host_done: trio.Event | None = None
        self._started_at: float | None = None
        self._failure: BaseException | None = None
        self._claims: IdempotencyClaims[Execution] = IdempotencyClaims()
        self._resuming: set[str] = set()
        self._exit_stack: contextlib.AsyncExitStack | None = None
        self.interrupted_sessions: list[str] = []
        # the storage engine of the current (or last) run, for stats; None without storage
        self.storage_engine: Journal | StorageWriter | PgLog | None = None
        self._runtime_log = RuntimeLog(self.storage_path) if self.storage_path is not None else None
        self._tracing_sink: Tracing | None = None

    # ---- entry points --------------------------------------------------------------------

    def register_entry_point(self, spec: EntryPointSpec) -> None:
        """Add an entry point. Raises RuntimeStateError while running, ValueError for a
        duplicate id or an entry node the graph does not have."""
        if self._state != "stopped":
            raise RuntimeStateError(f"cannot register entry point {spec.id!r} while running")
        if spec.id in self._specs:
            raise ValueError(f"entry point {spec.id!r} already registered")
        if self.graph.get_node(spec.entry_node) is None:
            raise ValueError(
                f"entry point {spec.id!r}: entry node {spec.entry_node!r} not found in graph "
                f"{self.graph.id!r}"
            )
        self._specs[spec.id] = spec

    def get_entry_points(self) -> list[EntryPointSpec]:
        return list(self._specs.values())

    # ---- inspection ----------------------------------------------------------------------

    @property
    def is_running(self) -> bool:
        return self._state == "running"

    @property
    def event_bus(self) -> EventBus:
        return self._bus

    @property
    def state_manager(self) -> SharedBufferManager:
        return self._state_manager

    @property
    def outcome_aggregator(self) -> OutcomeAggregator:
        return self._outcomes

    def get_stats(self) -> dict[str, Any]:
        """Per stream: running, queued, completed, failed, paused, cancelled; events
        published and dropped; uptime in seconds (0 when stopped)."""
        bus = self._bus.stats()
        uptime = 0.0
        if self._started_at is not None and self._state != "stopped":
            uptime = trio.current_time() - self._started_at
        return {
            "running": self.is_running,
            "uptime_seconds": uptime,
            "streams": {sid: s.get_stats() for sid, s in self._streams.items()},
            "events": {"published": bus.published, "dropped": bus.dropped},
            "idempotency_keys": len(self._claims),
        }

    def subscribe_to_events(self, event_types: TypeSpec, handler: Handler, **filters: Any) -> str:
        """Call ``handler(event)`` (sync or async) for matching events; returns the id.

        Filters: ``stream_id``, ``execution_id``, ``node_id`` (``filter_stream`` etc. are
        accepted as aliases), ``buffer_size``, ``lossless``. A slow handler never slows
        executions (bounded buffer, oldest dropped) unless it asks for ``lossless``.
        """
        for old, new in (("filter_stream", "stream_id"), ("filter_execution", "execution_id"),
                         ("filter_node", "node_id")):
            if old in filters:
                filters[new] = filters.pop(old)
        return self._bus.subscribe(event_types, handler, **filters)

    def unsubscribe_from_events(self, subscription_id: str) -> bool:
        return self._bus.unsubscribe(subscription_id)

    # ---- lifecycle -----------------------------------------------------------------------

    async def run(
        self, *, task_status: trio.TaskStatus[AgentRuntime] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Start every actor, report started, serve until ``stop()`` or cancellation.

        Raises RuntimeStateError if already running, the start error (after unwinding) if a
        child fails to start, and ActorFailedError if an actor exhausts its restart budget.
        """
        if self._state != "stopped":
            raise RuntimeStateError(f"runtime of {self.graph.id!r} is already {self._state}")
        if self._bus.closed or self._bus.has_run:
            self._bus, self._state_manager, self._outcomes = self._new_bus()
        # Validate every trigger config before anything starts. A firing looks up
        # self.trigger when it fires (a seam: tests wrap it on a running runtime).
        triggers = {spec.id: make_trigger(spec, lambda ep, data: self.trigger(ep, data),
                                          self._bus)
                    for spec in self._specs.values()}
        self._state = "starting"
        self._stopped = trio.Event()
        self._failure = None
        self._started_at = trio.current_time()
        try:
            async with (provider_lifespan(self.llm) as context_vars, single_errors(),
                        trio.open_nursery() as nursery):
                infra: list[trio.CancelScope] = []
                try:
                    svc = self._svc = await self._start_infrastructure(nursery, infra,
                                                                       context_vars)
                    with trio.CancelScope() as self._work_scope:
                        async with trio.open_nursery() as work:
                            if self.mcp_servers:
                                await self._start_mcp_servers(work, svc)
                            await self._start_streams(work, svc, triggers)
                            self._state = "running"
                            await self._log("start", agent=self.agent_name,
                                            entry_points=list(self._specs))
                            await self._recover_interrupted(work, svc)
                            if self.config.store is not None and self.config.worker:
                                worker = Worker(self)  # runs the store's queue here
                                await self._start_actor(work, "cluster worker",
                                                        lambda: worker.serve)
                            elif self.config.store is not None:  # a client: remote events
                                follower = EventFollower(self.config.store, self.agent_name,
                                                         self._bus.publish)
                                await self._start_actor(work, "event follower",
                                                        lambda: follower.run)
                            task_status.started(self)
                            await trio.sleep_forever()
                finally:
                    self._state = "stopping"
                    for scope in reversed(infra):  # writer commits, then the bus stops
                        scope.cancel()
        except BaseException as exc:
            if self._runtime_log is not None:
                with trio.CancelScope(shield=True):
                    await self._log("stop", agent=self.agent_name,
                                    reason="cancelled" if isinstance(exc, trio.Cancelled)
                                    else f"failed: {type(exc).__name__}: {exc}")
            raise
        else:
            await self._log("stop", agent=self.agent_name, reason="stopped")
        finally:
            self._state = "stopped"
            if isinstance(self._sessions, PgSessionReader):
                self._sessions.close()  # its connection (no call is in flight: tasks ended)
            self._work_scope = None
            self._svc = None
            self._streams = {}
            self._triggers = {}
            self._stopped.set()

    async def start(self, nursery: trio.Nursery | None = None) -> None:
        """Start the runtime and return once it runs (no-op if it already does).

        With ``nursery`` the runtime is a child of it; without, it runs in a trio system task
        (see the module docstring). Raises what a failed start raised, after unwinding.
        """
        if self._state == "running":
            return
        if self._state != "stopped":
            raise RuntimeStateError(f"runtime of {self.graph.id!r} is {self._state}")
        if nursery is not None:
            await nursery.start(self.run)
            return
        self._host_done = trio.Event()
        await start_in_system_task(self.run, f"runtime {self.graph.id}", self._host_failed,
                                   self._host_done)

    def _host_failed(self, exc: BaseException) -> None:
        log.error("runtime of %s failed", self.graph.id, exc_info=exc)
        self._failure = exc  # re-raised by stop() and reported by later calls

    async def stop(self) -> None:
        """Structured cancellation: returns once every execution has ended ``cancelled`` (or
        finished), every task of the runtime has ended and every record is durable (the
        final records of all in-flight executions in one group commit). With the journal,
        the session files show them too unless more than ``view_catch_up_limit`` view
        writes were due: those are left to the next start, `storage.engines.open_reader`
        or ``hive-actors sessions``, which replay the journal first.

        Idempotent. Re-raises the error that made the runtime fail, if one did.
        """
        self.request_stop()
        with trio.CancelScope(shield=True):
            await self._stopped.wait()
            if self._host_done is not None:  # the system task start() opened has ended too
                await self._host_done.wait()
                self._host_done = None
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise RuntimeStateError(f"runtime of {self.graph.id!r} failed: {failure}") from failure

    def request_stop(self) -> None:
        """Ask a running runtime to stop and return at once: its structured shutdown (see
        `stop`) runs as soon as the trio loop does. No-op when not running."""
        if self._work_scope is not None:
            self._work_scope.cancel()
            if self.storage_engine is not None:
                self.storage_engine.stopping()

    async def __aenter__(self) -> AgentRuntime:
        stack = contextlib.AsyncExitStack()
        await stack.enter_async_context(single_errors())
        nursery = await stack.enter_async_context(trio.open_nursery())
        try:
            await nursery.start(self.run)
        except BaseException as exc:
            # unwinding re-raises the start error (ungrouped by _single_errors)
            await stack.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        self._exit_stack = stack
        return self

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        stack, self._exit_stack = self._exit_stack, None
        self.request_stop()
        assert stack is not None
        return await stack.__aexit__(*exc_info)

    # ---- start-up ------------------------------------------------------------------------
    # Infrastructure actors run in shielded scopes that ``run`` collects in ``infra`` and
    # cancels last (writer commits, then the bus stops), so they outlive the executions.

    def _new_bus(self) -> tuple[EventBus, SharedBufferManager, OutcomeAggregator]:
        """A new event bus, and the shared state and outcome aggregator publishing on it."""
        history, size = self.config.event_history, self.config.event_history_max
        bus = EventBus(max_history=0 if history == "none" else size,
                       history_types=LIFECYCLE_EVENTS if history == "lifecycle" else None)
        return bus, SharedBufferManager(bus), OutcomeAggregator(self.goal, bus)

    async def _start_infrastructure(self, nursery: trio.Nursery, infra: list[trio.CancelScope],
                                    context_vars: ContextValues) -> RuntimeServices:
        """Start the event bus and (with a storage path) the storage writer, each shielded
        in a scope appended to ``infra``; return the services the streams share.
        Raises what a failed start raised."""
        bus = self._bus
        await self._start_actor(nursery, "event_bus", lambda: bus.run, infra, restarts=0)
        writer: Journal | StorageWriter | PgLog | None = None
        sessions = None
        if self.storage_path is not None:
            _check_sessions_folder(self.storage_path / "sessions")
            writer = await self._storage_engine(self.storage_path)
            await self._start_actor(nursery, "storage_writer", lambda: writer.run, infra,
                                    restarts=0)
            sessions = SessionStore(self.storage_path, writer)
        self._sessions = sessions
        if self.config.store is not None and self.storage_path is not None:
            self._sessions = PgSessionReader(self.config.store, self.storage_path)
        return RuntimeServices(
            graph=self.graph, goal=self.goal, llm=self.llm, tools=self.tools,
            tool_executor=self.tool_executor, checkpoint_config=self.checkpoint_config,
            config=self.config, bus=bus, state_manager=self._state_manager,
            sessions=sessions, writer=writer, agent_name=self.agent_name,
            owner=current_owner() if sessions is not None else None,
            executor_class=self.executor_class, context_vars=context_vars,
            tracing=self._tracing(),
        )

    async def _storage_engine(self, storage_path: Path) -> Journal | StorageWriter | PgLog:
        """The configured engine; the journal recovers when it starts, and the files engine
        first replays a journal an earlier runtime left."""
        engine: Journal | StorageWriter | PgLog
        if self.config.store is not None:
            engine = PgLog(self.config.store, storage_path, owner_id=process_owner_id())
        elif self.config.storage_engine == "journal":
            engine = Journal(storage_path,
                             view_catch_up_on_stop=self.config.view_catch_up_on_stop,
                             view_catch_up_limit=self.config.view_catch_up_limit)
        else:
            await trio.to_thread.run_sync(recover_if_idle, storage_path)
            # temp files in one folder: far cheaper to create than one per session folder
            engine = StorageWriter(staging_dir=storage_path / ".staging")
        self.storage_engine = engine
        return engine

    def _tracing(self) -> Tracing | None:
        """The runtime's Tracing when ``config.tracing`` (made once, at the first start)."""
        config = self.config
        if config.tracing and self._tracing_sink is None:
            self._tracing_sink = Tracing(
                tracer_provider=config.tracer_provider, meter_provider=config.meter_provider,
                capture_content=config.capture_content, agent_name=self.agent_name,
            )
        return self._tracing_sink

    async def _start_streams(self, work: trio.Nursery, svc: RuntimeServices,
                             triggers: dict[str, TimerTrigger | EventTrigger | None]) -> None:
        """Start one stream per entry point, then its trigger actor (if any), in ``work``."""
        for spec in self._specs.values():
            stream = ExecutionStream(spec, svc)
            await self._start_actor(work, f"stream:{spec.id}", _run_of(stream))
            self._streams[spec.id] = stream
        for spec in self._specs.values():
            trigger = triggers[spec.id]
            # with a store, timers fire once per slot cluster-wide (cluster/timers.py), and
            # event triggers on the worker whose execution published the event (a client
            # following the store's events would fire them a second time)
            store = self.config.store is not None
            if trigger is not None and not (store and (spec.trigger_type == "timer"
                                                       or not self.config.worker)):
                await self._start_actor(work, f"trigger:{spec.id}", _run_of(trigger))
                self._triggers[spec.id] = trigger

    async def _start_actor(self, nursery: trio.Nursery, name: str,
                           make_run: Callable[[], Callable[..., Any]],
                           infra: list[trio.CancelScope] | None = None,
                           restarts: int | None = None) -> None:
        """Run ``make_run()`` under `supervise` in ``nursery`` and return once it started;
        with ``infra``, in a new shielded scope appended to it. Crashes go to the bus."""
        shield = None
        if infra is not None:
            shield = trio.CancelScope(shield=True)
            infra.append(shield)
        await nursery.start(functools.partial(
            supervise, name, make_run, self._report_crash,
            max_restarts=self.config.max_actor_restarts if restarts is None else restarts,
            window=self.config.restart_window_seconds, shielded_scope=shield,
        ))

    async def _log(self, event: str, **data: Any) -> None:
        """A line in ``{storage}/runtime_logs/`` (no-op without storage)."""
        if self._runtime_log is not None:
            await trio.to_thread.run_sync(functools.partial(self._runtime_log.write, event, **data))

    def _log_now(self, event: str, **data: Any) -> None:
        """`_log` from a synchronous callback: a blocking append, for rare events only."""
        if self._runtime_log is not None:
            self._runtime_log.write(event, **data)

    async def _start_mcp_servers(self, work: trio.Nursery, svc: RuntimeServices) -> None:
        """Start the MCP clients in ``work`` (closed with the executions); the streams then
        use their tools (runtime/mcp_servers.py). Raises a required server's start error."""
        from hive_actors.graph.services import as_registry
        from hive_actors.runtime.mcp_servers import start_mcp_servers

        def use(registry: ToolRegistry) -> None:
            svc.tools, svc.tool_executor = registry, None

        def warn(server: str, message: str) -> None:
            self._log_now("mcp_server_warning", server=server, message=message)
            self._bus.publish_nowait(AgentEvent(
                type=EventType.TOOL_SERVER_WARNING, stream_id=f"mcp:{server}",
                data={"server": server, "message": message}))

        def listed(server: str, tools: list[str]) -> None:
            self._log_now("mcp_server_tools", server=server, tools=tools)
            self._bus.publish_nowait(AgentEvent(
                type=EventType.TOOLS_CHANGED, stream_id=f"mcp:{server}",
                data={"server": server, "tools": tools}))

        await start_mcp_servers(
            work, self.mcp_servers, as_registry(svc.tools, svc.tool_executor),
            on_crash=self._report_crash, warn=warn, on_registry=use, on_listed=listed,
            max_restarts=self.config.max_actor_restarts, window=self.config.restart_window_seconds)

    def _report_crash(self, name: str, exc: BaseException, count: int) -> None:
        self._log_now("actor_crashed", actor=name, crashes=count,
                      error=f"{type(exc).__name__}: {exc}")
        self._bus.publish_nowait(AgentEvent(
            type=EventType.ACTOR_CRASHED, stream_id=name,
            data={"actor": name, "error": f"{type(exc).__name__}: {exc}", "crashes": count},
        ))

    # ---- executions ----------------------------------------------------------------------

    def _check_running(self) -> None:
        if self._state != "running":
            cause = f" (it failed: {self._failure})" if self._failure else ""
            raise RuntimeStateError(f"runtime of {self.graph.id!r} is not running{cause}")

    def _stream(self, entry_point_id: str) -> ExecutionStream:
        stream = self._streams.get(entry_point_id)
        if stream is None and entry_point_id == "default" and len(self._streams) == 1:
            stream = next(iter(self._streams.values()))  # a single entry point is the default
        if stream is None:
            raise UnknownEntryPointError(
                f"no entry point {entry_point_id!r} (known: {', '.join(self._streams) or 'none'})"
            )
        return stream

    async def _submit(self, entry_point_id: str, input_data: dict[str, Any] | None,
                      session_state: SessionStateInput, key: str | None) -> Execution:
        """Submit a new execution to ``entry_point_id``'s stream and return it once accepted
        (the same one again for a repeated ``key``). Raises what `trigger` raises."""
        self._check_running()
        stream = self._stream(entry_point_id)
        data = _input_dict(entry_point_id, input_data)
        await self._check_input(data, f"entry point {entry_point_id!r}: input_data")
        state = SessionState.from_dict(session_state) if session_state is not None else None
        if state is not None and key is None and await self._owns_resumable(state.session_id):
            return await self._resume_session(state.session_id, data, state=state)
        if key is None:
            return await stream.submit(data, state)
        return await self._claims.submit_once(
            key, stream.id,
            lambda: stream.submit(data, state, idempotency_key=key),
            ttl=self.config.idempotency_ttl_seconds, max_keys=self.config.idempotency_max_keys,
        )

    async def _check_input(self, value: object, where: str) -> None:
        """Raise InputDataError unless ``value`` is plain JSON within the config's bounds.
        A small value is checked at once; a large one's remainder in a worker thread, so
        the event loop never stalls on it."""
        check = InputCheck(value, where=where, max_bytes=self.config.max_input_bytes,
                           max_depth=self.config.max_input_depth)
        if not check.step(_ITEMS_CHECKED_ON_LOOP):
            await trio.to_thread.run_sync(check.step)

    async def trigger(self, entry_point_id: str, input_data: dict[str, Any] | None = None,
                      session_state: SessionStateInput = None,
                      idempotency_key: str | None = None) -> str:
        """Accept an execution and return its id at once (it runs in the background).

        ``state.json`` (status running) is durable before this returns. The same
        ``idempotency_key`` returns the same execution id and never starts a second one.
        Raises RuntimeStateError, UnknownEntryPointError, SessionStateError (malformed
        session_state), QueueFullError, StorageError.
        """
        if self._store_client():
            return await self._queue(entry_point_id, input_data, idempotency_key)
        ex = await self._submit(entry_point_id, input_data, session_state, idempotency_key)
        return ex.id

    async def trigger_and_wait(self, entry_point_id: str, input_data: dict[str, Any] | None = None,
                               session_state: SessionStateInput = None,
                               idempotency_key: str | None = None,
                               timeout: float | None = None) -> ExecutionResult:
        """Trigger and return the ExecutionResult once the execution ends.

        ``timeout`` (seconds, None = forever) bounds the wait only: on expiry trio.TooSlowError
        is raised and the execution keeps running. Raises what `trigger` raises.
        """
        if self._store_client():
            sid = await self._queue(entry_point_id, input_data, idempotency_key)
            with trio.fail_after(math.inf if timeout is None else timeout):
                return await wait_in_store(self.config.store or "", self.agent_name, sid)
        ex = await self._submit(entry_point_id, input_data, session_state, idempotency_key)
        if timeout is None:
            return await ex.wait()
        with trio.fail_after(timeout):
            return await ex.wait()

    def _store_client(self) -> bool:
        """A client of a store: executions go to its queue (RuntimeConfig.worker=False)."""
        return self.config.store is not None and not self.config.worker

    async def _queue(self, entry_point_id: str, input_data: dict[str, Any] | None,
                     key: str | None) -> str:
        """Queue an execution in the store (durable on return); its session id."""
        self._check_running()
        stream = self._stream(entry_point_id)
        data = _input_dict(entry_point_id, input_data)
        await self._check_input(data, f"entry point {entry_point_id!r}: input_data")
        return await submit_to_store(self.config.store or "", self.agent_name, stream.id,
                                     data, key)

    async def wait_for_result(self, execution_id: str) -> ExecutionResult:
        """The result of a running, queued or recently finished execution (waits for it).
        Raises KeyError if this runtime does not know the id."""
        for stream in self._streams.values():
            ex = stream.find(execution_id)
            if ex is not None:
                return await ex.wait()
            result = stream.result(execution_id)
            if result is not None:
                return result
        raise KeyError(f"execution {execution_id!r} is not known to this runtime")

    async def inject_input(self, node_id: str, content: str,
                           execution_id: str | None = None) -> bool:
        """Give user input to a node waiting for it; True if a running execution took it,
        False if none is running that node. Raises UnknownNodeError for a node the graph
        does not have."""
        if self.graph.get_node(node_id) is None:
            known = ", ".join(n.id for n in self.graph.nodes)
            raise UnknownNodeError(
                f"inject_input: no node {node_id!r} in graph {self.graph.id!r} (nodes: {known})")
        if self._store_client() and execution_id is not None:
            # the worker running it delivers it (cluster/relay.py); True once durable
            await queue_input_in_store(self.config.store or "", execution_id, node_id, content)
            return True
        for stream in list(self._streams.values()):
            if await stream.inject_input(node_id, content, execution_id):
                return True
        return False

    def decline_input(self, node_id: str, execution_id: str) -> bool:
        """The client of ``execution_id`` will not answer ``node_id`` (e.g. its input ended):
        the execution pauses at that node, and resuming it delivers the reply. False if that
        node is not waiting for input."""
        return any(s.decline_input(node_id, execution_id) for s in self._streams.values())

    def pause_execution(self, execution_id: str) -> bool:
        """Stop one running execution as ``paused`` (e.g. its client went away); it resumes
        from its latest checkpoint. False if it is not running."""
        return any(s.pause(execution_id) for s in self._streams.values())

    def cancel_execution(self, execution_id: str) -> bool:
        """Cancel one running execution (it ends ``cancelled`` and stays resumable)."""
        return any(s.cancel(execution_id) for s in self._streams.values())

    # ---- sessions ------------------------------------------------------------------------

    async def resume_nowait(self, session_id: str, input_data: dict[str, Any] | None = None,
                            *, checkpoint: int | None = None, fallback: bool = False) -> str:
        """Like `resume` but returns the execution id once accepted (the session id, or the
        new session's id for a ``checkpoint`` fork)."""
        return (await self._accept_resume(session_id, input_data, checkpoint, fallback)).id

    async def resume(self, session_id: str, input_data: dict[str, Any] | None = None, *,
                     checkpoint: int | None = None, fallback: bool = False) -> ExecutionResult:
        """Continue a cancelled, interrupted, failed or paused session from its latest
        checkpoint (completed nodes never run again) and return its result.

        ``checkpoint=N`` continues from that earlier checkpoint instead, as a fork: a new
        session (recording ``forked_from``), leaving the old one as it was (it may be
        completed). A damaged latest checkpoint refuses the resume (`CorruptFileError` naming
        it and these choices) unless ``fallback=True``, which continues from the newest intact
        one (and logs which nodes run again). Raises RuntimeStateError (not running, no
        storage, session already running or completed), UnknownSessionError,
        UnknownEntryPointError, SessionStateError (no intact checkpoint N).
        """
        return await (await self._accept_resume(session_id, input_data, checkpoint,
                                                 fallback)).wait()

    async def fork(self, session_id: str, at: int,
                   input_data: dict[str, Any] | None = None) -> ExecutionResult:
        """Run a new session from checkpoint ``at`` (its seq, as `hive-actors sessions ... show`
        lists it) of ``session_id``, with ``input_data`` written over its memory (or, at a
        checkpoint waiting for client input, as the reply), and return its result. The old
        session is left as it was; nodes completed before the checkpoint do not run again.
        Same as ``resume(session_id, input_data, checkpoint=at)``; raises what it raises."""
        return await self.resume(session_id, input_data, checkpoint=at)

    async def replay(self, session_id: str, *, llm: LLMProvider | None = None) -> ReplayReport:
        """Run session ``session_id`` again offline from its records and compare the trace
        (runtime/replay.py says what is compared). No model is called (``llm``: one to use
        for turns that were not recorded), no tool runs; the session is left as it was.
        Works whether this runtime is running or not. Raises UnknownSessionError,
        CorruptFileError, RuntimeStateError (no storage)."""
        if self.storage_path is None:
            raise RuntimeStateError("replay needs a runtime with a storage_path")
        if self._svc is not None and self._svc.sessions is not None:
            await self.flush_view()
            sessions, registry = self._svc.sessions, as_registry(self._svc.tools,
                                                                 self._svc.tool_executor)
        else:
            await trio.to_thread.run_sync(recover_if_idle, self.storage_path)
            sessions, registry = SessionStore(self.storage_path), as_registry(self.tools,
                                                                              self.tool_executor)
        with tempfile.TemporaryDirectory(prefix="hive-replay-") as scratch:
            plan = await trio.to_thread.run_sync(prepare_replay, sessions, session_id,
                                                 Path(scratch))
            base = self.config.executor_config or ExecutorConfig()
            offline = AgentRuntime(
                self.graph, self.goal, scratch, llm=llm or OfflineLLM(),
                tools=offline_tools(registry, self.graph), agent_name=self.agent_name,
                checkpoint_config=self.checkpoint_config,
                config=attrs.evolve(self.config, resume_interrupted=False, store=None,
                                    executor_config=attrs.evolve(base, retry_delay_override=0.0)))
            for spec in self._specs.values():
                offline.register_entry_point(spec)
            used = StepsUsed()
            offline.subscribe_to_events(list(StepsUsed.TYPES), used.count)
            async with offline:
                if plan.start_state is not None:  # a fork: from the state it started from
                    result = await offline.trigger_and_wait(
                        plan.entry_point, plan.input_data, session_state=plan.start_state)
                else:
                    result = await offline.resume(session_id)
                for reply in plan.resume_inputs:
                    if result.status != ExecutionStatus.PAUSED:
                        break
                    result = await offline.resume(session_id, reply)
                await offline.flush_view()
            replayed = SessionStore(Path(scratch))
            upto = None
            if plan.interrupted:
                latest = await trio.to_thread.run_sync(
                    sessions.latest_checkpoint, session_id)
                upto = latest.seq if latest is not None else 0
            mine = await trio.to_thread.run_sync(
                functools.partial(session_trace, sessions, session_id, upto_seq=upto))
            theirs = await trio.to_thread.run_sync(
                functools.partial(session_trace, replayed, session_id, upto_seq=upto))
        compared, difference = compare_traces([("recorded steps replayed", plan.steps), *mine],
                                              [("recorded steps replayed", used.n), *theirs])
        return ReplayReport(session_id, difference is None, compared, difference,
                            plan.interrupted)

    async def flush_view(self) -> None:
        """Return once the session files (state.json, checkpoints, logs) show every record
        made durable so far. With the journal engine they follow its records within the
        view's lag (docs/storage.md); with the files engine, or no storage, this returns at
        once. Raises `StorageError` if the view could not write a file."""
        svc = self._svc
        if svc is not None and svc.writer is not None:
            await svc.writer.settle()

    async def _accept_resume(self, session_id: str, input_data: dict[str, Any] | None,
                             checkpoint: int | None, fallback: bool) -> Execution:
        if input_data is not None:
            await self._check_input(_input_dict("resume", input_data),
                                    f"resume of {session_id!r}: input_data")
        if checkpoint is not None:
            return await self._fork_session(session_id, checkpoint, input_data)
        return await self._resume_session(session_id, input_data, fallback=fallback)

    async def _owns_resumable(self, session_id: str) -> bool:
        """Whether ``session_id`` is a session of this storage that a session_state of it
        continues: stored, not completed, not running (here or in a live process)."""
        sessions = self.sessions
        if not session_id or sessions is None:
            return False
        if self._running_here(session_id):
            return False
        await self.flush_view()
        try:
            record = await trio.to_thread.run_sync(sessions.read_state, session_id)
        except HiveActorsError:  # not stored here (or unreadable): a new session
            return False
        return record.status not in (ExecutionStatus.COMPLETED, ExecutionStatus.RUNNING)

    def _running_here(self, session_id: str) -> bool:
        """Whether ``session_id`` is being resumed or run by one of this runtime's streams."""
        return session_id in self._resuming or any(
            s.find(session_id) for s in self._streams.values())

    async def _resume_session(self, session_id: str, input_data: dict[str, Any] | None,
                              state: SessionState | None = None,
                              fallback: bool = False) -> Execution:
        """Submit ``session_id`` again to its entry point's stream, from ``state`` or else its
        latest checkpoint (or from the start with its original input if none was saved).

        Raises RuntimeStateError (not running, no storage, session already running or
        completed), UnknownSessionError, UnknownEntryPointError, CorruptFileError (a damaged
        latest checkpoint without ``fallback``).
        """
        sessions, record = await self._stored_session(session_id)
        if self._running_here(session_id):
            raise RuntimeStateError(f"session {session_id!r} is already running here")
        if record.status == ExecutionStatus.COMPLETED:
            raise RuntimeStateError(f"session {session_id!r} already completed; nothing to resume")
        stream = self._stream(record.entry_point)
        if state is None:
            point = await self._resume_point(sessions, session_id, fallback=fallback)
            if point.note:
                log.warning("%s", point.note)
            state = point.checkpoint.state if point.checkpoint is not None else None
        self._resuming.add(session_id)
        try:
            if state is None:  # nothing completed: start over with the original input
                return await stream.submit(record.input_data, None, execution_id=session_id,
                                           resumed=True)
            return await stream.submit(dict(input_data or {}), state,
                                       execution_id=session_id, resumed=True)
        finally:
            self._resuming.discard(session_id)

    async def _fork_session(self, session_id: str, seq: int,
                            input_data: dict[str, Any] | None) -> Execution:
        """A new session continuing from checkpoint ``seq`` of ``session_id``. Raises
        SessionStateError when that checkpoint is not there intact."""
        sessions, record = await self._stored_session(session_id)
        point = await self._resume_point(sessions, session_id, checkpoint=seq)
        assert point.checkpoint is not None  # choose_checkpoint raises otherwise
        return await self._stream(record.entry_point).submit(dict(input_data or {}),
                                                              point.checkpoint.state)

    async def _resume_point(self, sessions: SessionReader, session_id: str, *,
                            checkpoint: int | None = None, fallback: bool = False) -> ResumePoint:
        """`choose_checkpoint` of ``session_id`` (its blocking reads in a worker thread)."""
        return await trio.to_thread.run_sync(functools.partial(
            choose_checkpoint, sessions, session_id, checkpoint=checkpoint, fallback=fallback))

    @property
    def sessions(self) -> SessionReader | None:
        """The storage's read side (the seam's `SessionReader`) while running with a storage
        path, else None. Its reads see the view as it is: `flush_view` first to see every
        durable record."""
        return self._sessions if self._svc is not None else None

    async def _stored_session(self, session_id: str) -> tuple[SessionReader, SessionRecord]:
        """This runtime's session reader and ``session_id``'s record. Raises RuntimeStateError
        (not running, no storage), UnknownSessionError."""
        self._check_running()
        sessions = self.sessions
        if sessions is None:
            raise RuntimeStateError("resume needs a runtime with a storage_path")
        await self.flush_view()  # the session's files show every durable record
        return sessions, await trio.to_thread.run_sync(sessions.read_state, session_id)

    async def _recover_interrupted(self, work: trio.Nursery, svc: RuntimeServices) -> None:
        """Record the sessions left ``running`` on disk in ``interrupted_sessions``, report
        their damaged checkpoint files (log and runtime log) and, if the config asks, resume
        each in ``work``. A failed scan is logged, never raised."""
        sessions = self._sessions
        if svc.sessions is None or sessions is None:
            return
        try:
            orphans = sessions.find_orphaned()
        except HiveActorsError:
            log.exception("could not scan %s for interrupted sessions", svc.sessions.sessions_dir)
            return
        self.interrupted_sessions = [r.session_id for r in orphans]
        if orphans:
            await self._log("interrupted_sessions", sessions=self.interrupted_sessions,
                            resuming=self.config.resume_interrupted)
            damaged = await trio.to_thread.run_sync(
                damaged_checkpoints, sessions, self.interrupted_sessions)
            for path in damaged:
                log.warning("interrupted session: damaged checkpoint %s (a resume never "
                            "continues from it)", path)
            if damaged:
                await self._log("damaged_checkpoints", files=damaged)
        if self.config.resume_interrupted:
            for sid in self.interrupted_sessions:
                work.start_soon(self._resume_quietly, sid)

    async def _resume_quietly(self, session_id: str) -> None:
        try:
            await self._resume_session(session_id, None)
        except (HiveActorsError, UnknownSessionError) as exc:
            log.error("could not resume interrupted session %s: %s", session_id, exc)


def _check_sessions_folder(folder: Path) -> None:
    """Raise CorruptFileError when ``folder`` exists but is not a folder: no session could be
    stored (new executions do not list their folders, so nothing else would notice first)."""
    if folder.exists() and not folder.is_dir():
        raise CorruptFileError(str(folder), "not a folder: no session can be stored under it")


def create_agent_runtime(
    graph: GraphSpec | AgentDefinition,
    goal: Goal | None = None,
    storage_path: str | Path | None = None,
    entry_points: Iterable[EntryPointSpec] | None = None,
    llm: LLMProvider | None = None,
    tools: Any = None,
    tool_executor: Callable[..., Any] | None = None,
    checkpoint_config: CheckpointConfig | None = None,
    config: RuntimeConfig | None = None,
    agent_name: str | None = None,
    mcp_servers: Iterable[MCPServerConfig] | None = None,
    store: str | None = None,
    worker: bool = False,
) -> AgentRuntime:
    """A runtime (not started): the one factory behind AgentRunner, ``run``, ``resume`` and
    ``serve``.

    ``graph`` is a GraphSpec, or a loaded agent (`load_agent`), which also gives the goal, the
    entry points, the tools and the name unless they are passed. For a loaded agent, or a
    graph `load_agent` returned, function nodes resolve against the agent's folder (its
    modules, and bare names from its ``tools.py``). No entry points = one ``default`` on
    ``graph.entry_node``; a runtime with a single entry point answers to ``default`` too.
    ``mcp_servers`` start with it (tools/mcp_config.py); None means the servers a loaded
    agent's folder declares (none for a bare graph). ``store`` (a postgresql:// URL): a client
    of that store, or with ``worker=True`` one of its workers (docs/scale-out.md); its local
    folder defaults to a new temp folder. Raises ValueError for bad entry points,
    ConfigurationError without a goal, MCPConfigError for a bad server declaration.
    """
    if isinstance(graph, AgentDefinition):
        agent = graph
        graph = agent.graph
        goal = goal or agent.goal
        entry_points = entry_points if entry_points is not None else agent.entry_points
        tools = agent.tools if tools is None else tools
        agent_name = agent_name or agent.name
        if mcp_servers is None:
            mcp_servers = servers_for_agent(agent.path)
    if goal is None:
        raise ConfigurationError("create_agent_runtime: give the goal, or a loaded agent "
                                 "(create_agent_runtime(load_agent(path), ...))")
    if store is not None:  # a client of the store, or with worker=True one of its workers
        config = attrs.evolve(config or RuntimeConfig(), store=store, worker=worker)
    if config is not None and config.store is not None and storage_path is None:
        storage_path = tempfile.mkdtemp(prefix="hive-store-")  # runtime log, resume cache
    runtime = AgentRuntime(graph, goal, storage_path, llm=llm, tools=tools,
                           tool_executor=tool_executor, checkpoint_config=checkpoint_config,
                           config=_with_folder_functions(config, graph), agent_name=agent_name,
                           mcp_servers=mcp_servers or ())
    for spec in entry_points or [EntryPointSpec(id="default", name="Default",
                                                entry_node=graph.entry_node)]:
        runtime.register_entry_point(spec)
    return runtime


def _with_folder_functions(config: RuntimeConfig | None, graph: GraphSpec) -> RuntimeConfig:
    """``config`` whose executor resolves function nodes against the agent folder ``graph``
    was loaded from (unless it has a resolver of its own)."""
    config = config or RuntimeConfig()
    base = config.executor_config or ExecutorConfig()
    resolver = function_resolver(graph)
    if base.function_resolver is not None or resolver is None:
        return config
    return attrs.evolve(config, executor_config=attrs.evolve(base, function_resolver=resolver))


@contextlib.asynccontextmanager
async def open_agent_runtime(**kwargs: Any) -> AsyncIterator[AgentRuntime]:
    """``create_agent_runtime(**kwargs)``, running for the duration of the block."""
    runtime = create_agent_runtime(**kwargs)
    async with runtime:
        yield runtime


def _run_of(
    actor: ExecutionStream | TimerTrigger | EventTrigger,
) -> Callable[[], Callable[..., Any]]:
    """A ``make_run`` for ``_start_actor``: the actor's ``run``, looked up at each (re)start."""
    return lambda: actor.run


# Values of an input checked on the event loop before the rest goes to a worker thread.
_ITEMS_CHECKED_ON_LOOP = 10_000


def _input_dict(entry_point_id: str, input_data: object) -> dict[str, Any]:
    """A copy of ``input_data`` as a dict; raises InputDataError for anything else (values JSON
    cannot hold are refused when state.json is written, by the session recorder)."""
    if input_data is None:
        return {}
    if not isinstance(input_data, dict) or not all(isinstance(k, str) for k in input_data):
        raise InputDataError(
            f"entry point {entry_point_id!r}: input_data must be a dict with string keys "
            f"(a JSON object), got {type(input_data).__name__}")
    return dict(input_data)


@contextlib.asynccontextmanager
async def provider_lifespan(llm: LLMProvider | None) -> AsyncIterator[ContextValues]:
    """The provider's resources for the runtime's life (e.g. litellm's asyncio loop), if it
    has a ``lifespan()``; yields the context variables that lifespan set (none without one).

    They are found through context variables, which a task inherits from the task that
    spawned it; executions are spawned by whoever called trigger(), so the runtime keeps these
    in `RuntimeServices.context_vars` and each execution's task sets them again."""
    lifespan = getattr(llm, "lifespan", None)  # optional: not part of LLMProvider
    if lifespan is None:
        yield ()
        return
    before = contextvars.copy_context()
    async with lifespan():
        yield tuple(
            (var, value) for var, value in contextvars.copy_context().items()
            if var not in before or before[var] is not value
        )
