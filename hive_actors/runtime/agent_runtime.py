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
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import functools
import logging
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import attrs
import trio

from hive_actors.errors import (
    HiveActorsError,
    RuntimeStateError,
    UnknownEntryPointError,
    UnknownSessionError,
)
from hive_actors.graph.executor_config import ExecutorConfig
from hive_actors.graph.result import ExecutionResult, SessionState
from hive_actors.graph.spec import Goal, GraphSpec
from hive_actors.runtime.config import RuntimeConfig
from hive_actors.runtime.entry_point import EntryPointSpec
from hive_actors.runtime.event_bus import EventBus
from hive_actors.runtime.events import AgentEvent, EventType
from hive_actors.runtime.execution_stream import Execution, ExecutionStream
from hive_actors.runtime.supervisor import supervise
from hive_actors.runtime.triggers import make_trigger
from hive_actors.storage.checkpoint_store import CheckpointStore
from hive_actors.storage.owner import current_owner
from hive_actors.storage.session_store import SessionStore
from hive_actors.storage.writer import StorageWriter
from hive_actors.tools.registry import ToolRegistry

__all__ = ["AgentRuntime", "RuntimeConfig", "create_agent_runtime", "open_agent_runtime"]

log = logging.getLogger(__name__)


@attrs.define(eq=False)
class RuntimeServices:
    """What the streams of one runtime share (built at each start)."""

    graph: GraphSpec
    goal: Goal
    llm: Any
    tools: Any
    tool_executor: Any
    checkpoint_config: Any
    config: RuntimeConfig
    bus: EventBus
    state_manager: Any
    sessions: SessionStore | None
    writer: StorageWriter | None
    agent_name: str
    owner: Any
    executor_class: Any = None
    # context variables the provider's lifespan set (e.g. its asyncio loop), for executions
    context_vars: tuple[tuple[Any, Any], ...] = ()
    # the one registry of every execution when the runtime has no tools (per-registry
    # caches such as tool schemas then hold across executions)
    _no_tools: ToolRegistry = attrs.field(factory=ToolRegistry, init=False)

    def make_executor(self, ex: Execution, spec: EntryPointSpec, sink: Any) -> Any:
        """A GraphExecutor for one execution, wired to its session folder, events and scope."""
        executor_class = self.executor_class
        if executor_class is None:
            from hive_actors.graph.executor import GraphExecutor as executor_class

        session_dir = ex.recorder.session_dir
        base = self.config.executor_config or ExecutorConfig()
        tools = self.tools
        if tools is None and self.tool_executor is None:
            tools = self._no_tools
        return executor_class(
            self.llm,
            tools,
            self.tool_executor,
            storage_path=session_dir,
            events=sink,
            checkpoint_store=ex.recorder.checkpoint_store,
            scope=self._scope(ex, spec),
            config=attrs.evolve(base, input_timeout=self._input_policy(ex, spec)),
        )

    def _scope(self, ex: Execution, spec: EntryPointSpec) -> Any:
        if self.state_manager is None:
            return None
        return self.state_manager.scope_for(ex.id, spec.id, spec.isolation_level,
                                            events=ex.recorder.sink)

    def release(self, ex: Execution) -> None:
        """Forget what the runtime kept for a finished execution."""
        if self.state_manager is not None:
            self.state_manager.cleanup_execution(ex.id)

    def _input_policy(self, ex: Execution, spec: EntryPointSpec) -> Any:
        """SEMANTICS §2: wait for a live client that listens for this execution, else pause."""
        bus, wait = self.bus, self.config.client_input_timeout

        def input_timeout() -> float | None:
            live = bus.has_subscribers(
                EventType.CLIENT_INPUT_REQUESTED, stream_id=spec.id, execution_id=ex.id
            )
            return wait if live else 0.0

        return input_timeout


@attrs.define(eq=False)
class _Claim:
    """An idempotency key: pending until its execution is accepted."""

    stream_id: str
    execution: Execution | None = None
    settled: trio.Event = attrs.field(factory=trio.Event)
    at: float = 0.0


class AgentRuntime:
    """Runs one agent graph: routes triggers to entry-point streams, owns events and storage."""

    # The executor class of every execution (None = GraphExecutor); a seam for tests.
    executor_class: Any = None

    def __init__(
        self,
        graph: GraphSpec,
        goal: Goal,
        storage_path: str | Path | None = None,
        *,
        llm: Any = None,
        tools: Any = None,
        tool_executor: Any = None,
        checkpoint_config: Any = None,
        config: RuntimeConfig | None = None,
        agent_name: str | None = None,
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
        self._specs: dict[str, EntryPointSpec] = {}
        self._streams: dict[str, ExecutionStream] = {}
        self._triggers: dict[str, Any] = {}
        self._bus = EventBus()
        self._state_manager = _make_state_manager(self._bus)
        self._outcomes = _make_outcome_aggregator(goal, self._bus)
        self._state = "stopped"  # stopped | starting | running | stopping
        self._work_scope: trio.CancelScope | None = None
        self._stopped = trio.Event()
        self._stopped.set()
        self._host_done: trio.Event | None = None
        self._lifespan_vars: tuple[tuple[Any, Any], ...] = ()
        self._started_at: float | None = None
        self._failure: BaseException | None = None
        self._claims: collections.OrderedDict[str, _Claim] = collections.OrderedDict()
        self._resuming: set[str] = set()
        self._exit_stack: contextlib.AsyncExitStack | None = None
        self.interrupted_sessions: list[str] = []

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
    def state_manager(self) -> Any:
        return self._state_manager

    @property
    def outcome_aggregator(self) -> Any:
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

    def subscribe_to_events(self, event_types: Any, handler: Any, **filters: Any) -> str:
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

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Start every actor, report started, serve until ``stop()`` or cancellation.

        Raises RuntimeStateError if already running, the start error (after unwinding) if a
        child fails to start, and ActorFailedError if an actor exhausts its restart budget.
        """
        if self._state != "stopped":
            raise RuntimeStateError(f"runtime of {self.graph.id!r} is already {self._state}")
        # Validate every trigger config before anything starts.
        triggers = {spec.id: make_trigger(spec, self) for spec in self._specs.values()}
        self._state = "starting"
        self._stopped = trio.Event()
        self._failure = None
        self._started_at = trio.current_time()
        try:
            async with self._llm_lifespan(), _single_errors(), trio.open_nursery() as nursery:
                infra: list[trio.CancelScope] = []
                try:
                    svc = await self._start_infrastructure(nursery, infra)
                    with trio.CancelScope() as self._work_scope:
                        async with trio.open_nursery() as work:
                            await self._start_streams(work, svc, triggers)
                            self._state = "running"
                            self._recover(work, svc)
                            task_status.started(self)
                            await trio.sleep_forever()
                finally:
                    self._state = "stopping"
                    for scope in reversed(infra):  # writer commits, then the bus stops
                        scope.cancel()
        finally:
            self._state = "stopped"
            self._work_scope = None
            self._streams = {}
            self._triggers = {}
            self._stopped.set()

    @contextlib.asynccontextmanager
    async def _llm_lifespan(self) -> AsyncIterator[None]:
        """The provider's resources for the runtime's life (e.g. litellm's asyncio loop).

        They are found through context variables, which a task inherits from the task that
        spawned it; executions are spawned by whoever called trigger(), so the variables the
        lifespan set are recorded here and set again in each execution's task."""
        self._lifespan_vars = ()
        lifespan = getattr(self.llm, "lifespan", None)
        if lifespan is None:
            yield
            return
        before = contextvars.copy_context()
        async with lifespan():
            self._lifespan_vars = tuple(
                (var, value) for var, value in contextvars.copy_context().items()
                if var not in before or before[var] is not value
            )
            yield

    async def _start_infrastructure(
        self, nursery: trio.Nursery, infra: list[trio.CancelScope]
    ) -> RuntimeServices:
        if self._bus.closed or getattr(self._bus, "_started", False):
            self._bus = EventBus()  # a bus runs once; a restarted runtime gets a new one
            self._state_manager = _make_state_manager(self._bus)
            self._outcomes = _make_outcome_aggregator(self.goal, self._bus)
        bus = self._bus
        await self._start_actor(nursery, "event_bus", lambda: bus.run, infra, restarts=0)
        writer = sessions = None
        if self.storage_path is not None:
            # temp files in one folder: far cheaper to create than one per session folder
            writer = StorageWriter(staging_dir=Path(self.storage_path) / ".staging")
            await self._start_actor(nursery, "storage_writer", lambda: writer.run, infra,
                                    restarts=0)
            sessions = SessionStore(self.storage_path, writer)
        return RuntimeServices(
            graph=self.graph, goal=self.goal, llm=self.llm, tools=self.tools,
            tool_executor=self.tool_executor, checkpoint_config=self.checkpoint_config,
            config=self.config, bus=bus, state_manager=self._state_manager,
            sessions=sessions, writer=writer, agent_name=self.agent_name,
            owner=current_owner() if sessions is not None else None,
            executor_class=self.executor_class, context_vars=self._lifespan_vars,
        )

    async def _start_streams(self, work: trio.Nursery, svc: RuntimeServices,
                             triggers: dict[str, Any]) -> None:
        self._svc = svc
        for spec in self._specs.values():
            stream = ExecutionStream(spec, svc)
            await self._start_actor(work, f"stream:{spec.id}", lambda s=stream: s.run)
            self._streams[spec.id] = stream
        for spec in self._specs.values():
            trigger = triggers[spec.id]
            if trigger is not None:
                await self._start_actor(work, f"trigger:{spec.id}", lambda t=trigger: t.run)
                self._triggers[spec.id] = trigger

    async def _start_actor(self, nursery: trio.Nursery, name: str, make_run: Any,
                           infra: list[trio.CancelScope] | None = None,
                           restarts: int | None = None) -> None:
        shield = None
        if infra is not None:
            shield = trio.CancelScope(shield=True)
            infra.append(shield)
        await nursery.start(functools.partial(
            supervise, name, make_run, self._report_crash,
            max_restarts=self.config.max_actor_restarts if restarts is None else restarts,
            window=self.config.restart_window_seconds, shielded_scope=shield,
        ))

    def _report_crash(self, name: str, exc: BaseException, count: int) -> None:
        self._bus.publish_nowait(AgentEvent(
            type=EventType.ACTOR_CRASHED, stream_id=name,
            data={"actor": name, "error": f"{type(exc).__name__}: {exc}", "crashes": count},
        ))

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
        started = trio.Event()
        box: dict[str, BaseException] = {}
        host_done = self._host_done = trio.Event()

        async def host() -> None:
            try:
                async with _single_errors(), trio.open_nursery() as n:
                    await n.start(self.run)
                    started.set()
            except BaseException as exc:  # noqa: BLE001 - a system task must not raise
                if started.is_set() and not isinstance(exc, trio.Cancelled):
                    log.error("runtime of %s failed", self.graph.id, exc_info=exc)
                    self._failure = exc  # re-raised by stop() and reported by later calls
                box["error"] = exc
            finally:
                started.set()
                host_done.set()

        trio.lowlevel.spawn_system_task(host, name=f"runtime {self.graph.id}",
                                        context=contextvars.copy_context())
        await started.wait()
        if "error" in box:
            raise box["error"]

    async def stop(self) -> None:
        """Structured cancellation: returns once every execution has ended ``cancelled`` (or
        finished), every task of the runtime has ended and every file is durable.

        Idempotent. Re-raises the error that made the runtime fail, if one did.
        """
        if self._work_scope is not None:
            self._work_scope.cancel()
        with trio.CancelScope(shield=True):
            await self._stopped.wait()
            if self._host_done is not None:  # the system task start() opened has ended too
                await self._host_done.wait()
                self._host_done = None
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise RuntimeStateError(f"runtime of {self.graph.id!r} failed: {failure}") from failure

    async def __aenter__(self) -> AgentRuntime:
        stack = contextlib.AsyncExitStack()
        await stack.enter_async_context(_single_errors())
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
        if self._work_scope is not None:
            self._work_scope.cancel()
        assert stack is not None
        return await stack.__aexit__(*exc_info)

    # ---- executions ----------------------------------------------------------------------

    def _check_running(self) -> None:
        if self._state != "running":
            cause = f" (it failed: {self._failure})" if self._failure else ""
            raise RuntimeStateError(f"runtime of {self.graph.id!r} is not running{cause}")

    def _stream(self, entry_point_id: str) -> ExecutionStream:
        stream = self._streams.get(entry_point_id)
        if stream is None:
            raise UnknownEntryPointError(
                f"no entry point {entry_point_id!r} (known: {', '.join(self._streams) or 'none'})"
            )
        return stream

    async def trigger(self, entry_point_id: str, input_data: dict[str, Any] | None = None,
                      session_state: Any = None, idempotency_key: str | None = None) -> str:
        """Accept an execution and return its id at once (it runs in the background).

        ``state.json`` (status running) is durable before this returns. The same
        ``idempotency_key`` returns the same execution id and never starts a second one.
        Raises RuntimeStateError, UnknownEntryPointError, SessionStateError (malformed
        session_state), QueueFullError, StorageError.
        """
        ex = await self._trigger(entry_point_id, input_data, session_state, idempotency_key)
        return ex.id

    async def trigger_and_wait(self, entry_point_id: str, input_data: dict[str, Any] | None = None,
                               session_state: Any = None, idempotency_key: str | None = None,
                               timeout: float | None = None) -> ExecutionResult:
        """Trigger and return the ExecutionResult once the execution ends.

        ``timeout`` (seconds, None = forever) bounds the wait only: on expiry trio.TooSlowError
        is raised and the execution keeps running. Raises what `trigger` raises.
        """
        ex = await self._trigger(entry_point_id, input_data, session_state, idempotency_key)
        if timeout is None:
            return await ex.wait()
        with trio.fail_after(timeout):
            return await ex.wait()

    async def _trigger(self, entry_point_id: str, input_data: dict[str, Any] | None,
                       session_state: Any, key: str | None) -> Execution:
        self._check_running()
        stream = self._stream(entry_point_id)
        if session_state is not None:
            session_state = SessionState.from_dict(session_state)
        if key is None:
            return await stream.submit(dict(input_data or {}), session_state)
        while True:
            self._prune_claims()
            claim = self._claims.get(key)
            if claim is None:
                break
            if claim.execution is not None:
                return claim.execution
            await claim.settled.wait()  # accepted or failed meanwhile; look again
        claim = self._claims[key] = _Claim(stream_id=stream.id, at=trio.current_time())
        try:
            claim.execution = await stream.submit(
                dict(input_data or {}), session_state, idempotency_key=key
            )
        except BaseException:
            self._claims.pop(key, None)
            raise
        finally:
            claim.settled.set()
        return claim.execution

    def _prune_claims(self) -> None:
        ttl, cap = self.config.idempotency_ttl_seconds, self.config.idempotency_max_keys
        horizon = trio.current_time() - ttl
        claims = self._claims
        while claims:
            key, oldest = next(iter(claims.items()))
            if oldest.execution is not None and (oldest.at < horizon or len(claims) > cap):
                claims.popitem(last=False)
            else:
                break

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

    async def inject_input(self, node_id: str, content: Any, execution_id: str | None = None) -> bool:
        """Give user input to a node waiting for it; True if a running execution took it."""
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

    async def resume_nowait(self, session_id: str, input_data: dict[str, Any] | None = None) -> str:
        """Like `resume` but returns the execution id (= session id) once accepted."""
        return (await self._resume(session_id, input_data)).id

    async def resume(self, session_id: str, input_data: dict[str, Any] | None = None) -> ExecutionResult:
        """Continue a cancelled, interrupted, failed or paused session from its latest
        checkpoint (completed nodes never run again) and return its result.

        Raises RuntimeStateError (not running, no storage, session already running or
        completed), UnknownSessionError, UnknownEntryPointError.
        """
        return await (await self._resume(session_id, input_data)).wait()

    async def _resume(self, session_id: str, input_data: dict[str, Any] | None) -> Execution:
        self._check_running()
        sessions = self._svc.sessions
        if sessions is None:
            raise RuntimeStateError("resume needs a runtime with a storage_path")
        if session_id in self._resuming or any(s.find(session_id) for s in self._streams.values()):
            raise RuntimeStateError(f"session {session_id!r} is already running here")
        record = await trio.to_thread.run_sync(sessions.read_state, session_id)
        if record.status == "completed":
            raise RuntimeStateError(f"session {session_id!r} already completed; nothing to resume")
        stream = self._stream(record.entry_point)
        store = CheckpointStore(sessions.session_dir(session_id), self._svc.writer)
        latest = await trio.to_thread.run_sync(lambda: store.latest(skip_damaged=True))
        self._resuming.add(session_id)
        try:
            if latest is None:  # nothing completed: start over with the original input
                return await stream.submit(record.input_data, None, execution_id=session_id,
                                           resumed=True)
            return await stream.submit(dict(input_data or {}), latest.state,
                                       execution_id=session_id, resumed=True)
        finally:
            self._resuming.discard(session_id)

    def _recover(self, work: trio.Nursery, svc: RuntimeServices) -> None:
        if svc.sessions is None:
            return
        try:
            orphans = svc.sessions.find_orphaned()
        except HiveActorsError:
            log.exception("could not scan %s for interrupted sessions", svc.sessions.sessions_dir)
            return
        self.interrupted_sessions = [r.session_id for r in orphans]
        if self.config.resume_interrupted:
            for sid in self.interrupted_sessions:
                work.start_soon(self._resume_quietly, sid)

    async def _resume_quietly(self, session_id: str) -> None:
        try:
            await self._resume(session_id, None)
        except (HiveActorsError, UnknownSessionError) as exc:
            log.error("could not resume interrupted session %s: %s", session_id, exc)


@contextlib.asynccontextmanager
async def _single_errors() -> AsyncIterator[None]:
    """Re-raise a nursery error group holding one real error as that error (so a failed
    start raises, say, ConfigurationError rather than a nested ExceptionGroup)."""
    try:
        yield
    except BaseExceptionGroup as group:
        leaves = _leaves(group)
        real = [e for e in leaves if not isinstance(e, trio.Cancelled)]
        if len(real) == 1:
            raise real[0] from group
        raise


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in _leaves(sub)]
    return [exc]


def _make_state_manager(bus: EventBus) -> Any:
    try:
        from hive_actors.runtime.shared_state import SharedBufferManager
    except ImportError:  # not built yet: executions run isolated
        return None
    return SharedBufferManager(bus)


def _make_outcome_aggregator(goal: Goal, bus: EventBus) -> Any:
    try:
        from hive_actors.runtime.outcome_aggregator import OutcomeAggregator
    except ImportError:
        return None
    return OutcomeAggregator(goal, bus)


def create_agent_runtime(
    graph: GraphSpec,
    goal: Goal,
    storage_path: str | Path | None = None,
    entry_points: Iterable[EntryPointSpec] | None = None,
    llm: Any = None,
    tools: Any = None,
    tool_executor: Any = None,
    checkpoint_config: Any = None,
    config: RuntimeConfig | None = None,
    agent_name: str | None = None,
) -> AgentRuntime:
    """A runtime (not started) with these entry points; none given = one ``default`` entry
    point on ``graph.entry_node``. Raises ValueError for bad entry points."""
    runtime = AgentRuntime(graph, goal, storage_path, llm=llm, tools=tools,
                           tool_executor=tool_executor, checkpoint_config=checkpoint_config,
                           config=config, agent_name=agent_name)
    for spec in entry_points or [EntryPointSpec(id="default", name="Default",
                                                entry_node=graph.entry_node)]:
        runtime.register_entry_point(spec)
    return runtime


@contextlib.asynccontextmanager
async def open_agent_runtime(**kwargs: Any) -> AsyncIterator[AgentRuntime]:
    """``create_agent_runtime(**kwargs)``, running for the duration of the block."""
    runtime = create_agent_runtime(**kwargs)
    async with runtime:
        yield runtime
