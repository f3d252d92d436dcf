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

What the streams share is in `services.py`, idempotency keys in `idempotency.py`, session
resume and crash recovery in `recovery.py`, supervision of the actors in `supervisor.py`,
actor start-up in `startup.py`, admission of new executions in `admission.py`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import trio

from hive_actors.errors import RuntimeStateError, UnknownEntryPointError, UnknownNodeError
from hive_actors.graph.result import ExecutionResult
from hive_actors.graph.spec import Goal, GraphSpec
from hive_actors.runtime.admission import submit_execution
from hive_actors.runtime.config import RuntimeConfig
from hive_actors.graph.spec import EntryPointSpec
from hive_actors.runtime.event_bus import EventBus
from hive_actors.runtime.execution_stream import ExecutionStream
from hive_actors.runtime.idempotency import IdempotencyClaims
from hive_actors.runtime.recovery import recover_interrupted, resume_session
from hive_actors.runtime.services import (
    RuntimeServices,
    make_outcome_aggregator,
    make_state_manager,
    provider_lifespan,
)
from hive_actors.runtime.startup import start_infrastructure, start_streams
from hive_actors.runtime.supervisor import single_errors, start_in_system_task
from hive_actors.runtime.triggers import make_trigger
from hive_actors.storage.writer import StorageWriter  # a seam: tests patch it here

__all__ = [
    "AgentRuntime",
    "RuntimeConfig",
    "RuntimeServices",
    "create_agent_runtime",
    "open_agent_runtime",
]

log = logging.getLogger(__name__)


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
        self._state_manager = make_state_manager(self._bus)
        self._outcomes = make_outcome_aggregator(goal, self._bus)
        self._state = "stopped"  # stopped | starting | running | stopping
        self._work_scope: trio.CancelScope | None = None
        self._stopped = trio.Event()
        self._stopped.set()
        self._host_done: trio.Event | None = None
        self._started_at: float | None = None
        self._failure: BaseException | None = None
        self._claims = IdempotencyClaims()
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
            async with (provider_lifespan(self.llm) as context_vars, single_errors(),
                        trio.open_nursery() as nursery):
                infra: list[trio.CancelScope] = []
                try:
                    svc = await start_infrastructure(self, nursery, infra, context_vars,
                                                     StorageWriter)
                    with trio.CancelScope() as self._work_scope:
                        async with trio.open_nursery() as work:
                            await start_streams(self, work, svc, triggers)
                            self._state = "running"
                            recover_interrupted(self, work, svc)
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
        ex = await submit_execution(self, entry_point_id, input_data, session_state,
                                    idempotency_key)
        return ex.id

    async def trigger_and_wait(self, entry_point_id: str, input_data: dict[str, Any] | None = None,
                               session_state: Any = None, idempotency_key: str | None = None,
                               timeout: float | None = None) -> ExecutionResult:
        """Trigger and return the ExecutionResult once the execution ends.

        ``timeout`` (seconds, None = forever) bounds the wait only: on expiry trio.TooSlowError
        is raised and the execution keeps running. Raises what `trigger` raises.
        """
        ex = await submit_execution(self, entry_point_id, input_data, session_state,
                                    idempotency_key)
        if timeout is None:
            return await ex.wait()
        with trio.fail_after(timeout):
            return await ex.wait()

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
        """Give user input to a node waiting for it; True if a running execution took it,
        False if none is running that node. Raises UnknownNodeError for a node the graph
        does not have."""
        if self.graph.get_node(node_id) is None:
            known = ", ".join(n.id for n in self.graph.nodes)
            raise UnknownNodeError(
                f"inject_input: no node {node_id!r} in graph {self.graph.id!r} (nodes: {known})")
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
        return (await resume_session(self, session_id, input_data)).id

    async def resume(self, session_id: str, input_data: dict[str, Any] | None = None) -> ExecutionResult:
        """Continue a cancelled, interrupted, failed or paused session from its latest
        checkpoint (completed nodes never run again) and return its result.

        Raises RuntimeStateError (not running, no storage, session already running or
        completed), UnknownSessionError, UnknownEntryPointError.
        """
        return await (await resume_session(self, session_id, input_data)).wait()


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
