"""ExecutionStream: the actor that runs the executions of one entry point.

Up to ``spec.max_concurrent`` executions run at once, each as its own task in the stream's
nursery; the rest wait in a bounded FIFO queue (``spec.max_queued``). A new trigger never
cancels a running execution. An execution that crashes ends ``failed``; the stream goes on.
When the stream is cancelled (runtime ``stop()``), every running and queued execution ends
``cancelled``: its final ``state.json`` is written under a shield and its last checkpoint is
left intact, so ``resume()`` can continue it.
"""

from __future__ import annotations

import collections
import contextvars
import logging
import math
from collections.abc import Callable
from typing import Any

import attrs
import trio

from hive_actors.errors import QueueFullError, RuntimeStateError
from hive_actors.events import EventSink, EventType
from hive_actors.graph.checkpoint_config import CheckpointConfig
from hive_actors.graph.executor import GraphExecutor, GraphRun
from hive_actors.graph.executor_config import ExecutorConfig
from hive_actors.graph.result import ExecutionResult, SessionState
from hive_actors.llm.provider import LLMProvider
from hive_actors.graph.spec import EntryPointSpec, Goal, GraphSpec
from hive_actors.runtime.config import RuntimeConfig
from hive_actors.runtime.event_bus import BusEmitter, EventBus
from hive_actors.runtime.session_recorder import NullRecorder, RecordingSink, SessionRecorder
from hive_actors.runtime.shared_state import SharedBufferManager
from hive_actors.status import ExecutionStatus
from hive_actors.storage.owner import OwnerInfo
from hive_actors.storage.session_store import SessionStore, new_session_id
from hive_actors.storage.seam import DurableLog
from hive_actors.tools.context import current_tool_context
from hive_actors.tools.registry import ToolRegistry
from hive_actors.tracing import Tracing

__all__ = ["EntryPointSpec", "Execution", "ExecutionStream", "RuntimeServices", "StreamStats"]

log = logging.getLogger(__name__)

# (variable, value) pairs a model provider's lifespan set, set again in each execution's task
ContextValues = tuple[tuple[contextvars.ContextVar[Any], Any], ...]

_TERMINAL_EVENTS = {
    ExecutionStatus.COMPLETED: EventType.EXECUTION_COMPLETED,
    ExecutionStatus.FAILED: EventType.EXECUTION_FAILED,
    ExecutionStatus.PAUSED: EventType.EXECUTION_PAUSED,
    ExecutionStatus.CANCELLED: EventType.EXECUTION_CANCELLED,
}


@attrs.define(eq=False)
class Execution:
    """One accepted execution: its inputs, its completion event and, once done, its result."""

    id: str
    stream_id: str
    input_data: dict[str, Any]
    session_state: SessionState | None = None
    resumed: bool = False
    idempotency_key: str | None = None
    done: trio.Event = attrs.field(factory=trio.Event)
    result: ExecutionResult | None = None
    executor: GraphRun | None = None  # while it runs
    cancel_scope: trio.CancelScope | None = None
    # set by ExecutionStream.submit right after construction
    recorder: SessionRecorder | NullRecorder = attrs.field(init=False)
    # set by ExecutionStream.pause(): the execution ends `paused` at this node, not cancelled
    pause_at: str | None = None
    pause_requested: bool = False
    # the OpenTelemetry context of whoever submitted it (tracing on): its span's parent
    trace_parent: Any = None

    async def wait(self) -> ExecutionResult:
        """The result, once the execution has ended (completed, failed, paused or cancelled)."""
        await self.done.wait()
        assert self.result is not None
        return self.result


@attrs.define
class StreamStats:
    running: int = 0
    queued: int = 0
    completed: int = 0
    failed: int = 0
    paused: int = 0
    cancelled: int = 0

    def count(self, status: ExecutionStatus) -> None:
        """One more execution ended ``status``."""
        if status is ExecutionStatus.COMPLETED:
            self.completed += 1
        elif status is ExecutionStatus.FAILED:
            self.failed += 1
        elif status is ExecutionStatus.PAUSED:
            self.paused += 1
        else:
            self.cancelled += 1


def status_of(result: ExecutionResult) -> ExecutionStatus:
    """The session status a result ends in: completed, failed, paused or cancelled."""
    if result.status == ExecutionStatus.CANCELLED:
        return ExecutionStatus.CANCELLED
    if result.status == ExecutionStatus.PAUSED or result.paused_at:
        return ExecutionStatus.PAUSED
    return ExecutionStatus.COMPLETED if result.success else ExecutionStatus.FAILED


def cancelled_result(ex: Execution) -> ExecutionResult:
    return ExecutionResult(
        success=False, error="Execution cancelled", session_id=ex.id,
        status=ExecutionStatus.CANCELLED,
        execution_quality="failed",
    )


def paused_result(ex: Execution) -> ExecutionResult:
    return ExecutionResult(
        success=True, paused_at=ex.pause_at, session_id=ex.id, status=ExecutionStatus.PAUSED,
        error="paused by client",
    )


@attrs.define(eq=False)
class RuntimeServices:
    """What the streams of one runtime share (built at each start)."""

    graph: GraphSpec
    goal: Goal
    llm: LLMProvider | None
    tools: Any  # what GraphExecutor accepts: a ToolRegistry, or tools to register
    tool_executor: Callable[..., Any] | None
    checkpoint_config: CheckpointConfig | None
    config: RuntimeConfig
    bus: EventBus
    state_manager: SharedBufferManager
    sessions: SessionStore | None
    writer: DurableLog | None
    agent_name: str
    owner: OwnerInfo | None
    executor_class: Callable[..., GraphExecutor] | None = None
    # context variables the provider's lifespan set (e.g. its asyncio loop), for executions
    context_vars: ContextValues = ()
    tracing: Tracing | None = None
    # the one registry of every execution when the runtime has no tools (per-registry
    # caches such as tool schemas then hold across executions)
    _no_tools: ToolRegistry = attrs.field(factory=ToolRegistry, init=False)
    # function references resolved by the executors, shared: same tools and config for all
    _resolved: dict[str, tuple[Callable[..., Any], bool]] = attrs.field(factory=dict,
                                                                         init=False)
    # entry point id -> (tools, tool_executor, the executor of its executions made with them)
    _executors: dict[str, tuple[Any, Any, GraphExecutor]] = attrs.field(factory=dict,
                                                                         init=False)

    def start_run(self, ex: Execution, spec: EntryPointSpec, sink: EventSink) -> GraphRun:
        """One execution of ``spec``'s executor, wired to its session folder, events and scope.
        The executor is made once per entry point, again when the tools change (MCP)."""
        made = self._executors.get(spec.id)
        if made is not None and made[0] is self.tools and made[1] is self.tool_executor:
            executor = made[2]
        else:
            executor = self._make_executor(spec)
            self._executors[spec.id] = (self.tools, self.tool_executor, executor)
        return executor.start(
            events=sink,
            storage_path=ex.recorder.session_dir,
            checkpoint_store=ex.recorder.checkpoint_store,
            scope=self.state_manager.scope_for(ex.id, spec.id, spec.isolation_level,
                                               events=ex.recorder.sink),
            step_log=ex.recorder.step_log,
        )

    def _make_executor(self, spec: EntryPointSpec) -> GraphExecutor:
        tools = self.tools
        if tools is None and self.tool_executor is None:
            tools = self._no_tools
        return (self.executor_class or GraphExecutor)(
            self.llm, tools, self.tool_executor, config=self._config_for(spec),
            resolved=self._resolved)

    def release(self, ex: Execution) -> None:
        """Forget what the runtime kept for a finished execution."""
        self.state_manager.cleanup_execution(ex.id)

    def _config_for(self, spec: EntryPointSpec) -> ExecutorConfig:
        """The ExecutorConfig of every execution of ``spec``: the runtime's base with the
        client input policy and tracing."""
        base = self.config.executor_config or ExecutorConfig()
        return attrs.evolve(base, input_timeout=self._input_policy(spec),
                            tracing=self.tracing or base.tracing)

    def _input_policy(self, spec: EntryPointSpec) -> Callable[[], float | None]:
        """SEMANTICS §2: wait for a live client that listens for the asking execution, else
        pause. The asking execution is the one whose tool context is current: its executor
        sets it (session_id = execution id) around the whole execution."""
        bus, wait = self.bus, self.config.client_input_timeout

        def input_timeout() -> float | None:
            live = bus.has_subscribers(EventType.CLIENT_INPUT_REQUESTED, stream_id=spec.id,
                                       execution_id=current_tool_context().session_id)
            return wait if live else 0.0

        return input_timeout


class ExecutionStream:
    """Runs the executions of one entry point. Start with ``await nursery.start(stream.run)``."""

    def __init__(self, spec: EntryPointSpec, services: RuntimeServices) -> None:
        self.spec = spec
        self.id = spec.id
        self._svc = services
        self._nursery: trio.Nursery | None = None
        self._running: dict[str, Execution] = {}
        self._queue: collections.deque[Execution] = collections.deque()
        self._live: set[str] = set()  # ids of executions being accepted, queued or running
        self._admitting = 0
        self._space = trio.lowlevel.ParkingLot()
        self._results: collections.OrderedDict[str, ExecutionResult] = collections.OrderedDict()
        self.stats = StreamStats()

    # ---- actor ---------------------------------------------------------------------------

    async def run(
        self, *, task_status: trio.TaskStatus[ExecutionStream] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve until cancelled; then end every queued execution as cancelled."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started(self)
                await trio.sleep_forever()
        finally:
            self._nursery = None
            self._space.unpark_all()
            with trio.CancelScope(shield=True):
                while self._queue:
                    ex = self._queue.popleft()
                    self._live.discard(ex.id)
                    await self._finish(ex, cancelled_result(ex))

    @property
    def accepting(self) -> bool:
        return self._nursery is not None

    # ---- caller side ---------------------------------------------------------------------

    async def submit(
        self,
        input_data: dict[str, Any],
        session_state: SessionState | None = None,
        *,
        execution_id: str | None = None,
        resumed: bool = False,
        idempotency_key: str | None = None,
    ) -> Execution:
        """Accept an execution: durable ``state.json`` (status running) first, then run or queue.

        Returns once accepted. Raises `QueueFullError` when the queue is full (or waits, with
        ``queue_full="wait"``), `RuntimeStateError` if the stream is not running, and
        `StorageError` if ``state.json`` cannot be written (then nothing runs).
        """
        await self._reserve()
        ex = Execution(
            id=execution_id or self._new_id(),
            stream_id=self.id,
            input_data=input_data,
            session_state=session_state,
            resumed=resumed,
            idempotency_key=idempotency_key,
        )
        if self._svc.tracing is not None:
            ex.trace_parent = self._svc.tracing.current_context()
        self._live.add(ex.id)
        try:
            ex.recorder = self._make_recorder(ex)
            await ex.recorder.accepted()
        except BaseException:
            self._admitting -= 1
            self._live.discard(ex.id)
            self._space.unpark()
            raise
        self._admitting -= 1
        if not self.accepting:  # stopped while state.json was being written
            self._live.discard(ex.id)
            with trio.CancelScope(shield=True):
                await self._finish(ex, cancelled_result(ex))
            raise RuntimeStateError(f"entry point {self.id!r} stopped while accepting {ex.id}")
        if len(self._running) < self.spec.max_concurrent:
            self._start(ex)
        else:
            self._queue.append(ex)
        return ex

    def _new_id(self) -> str:
        # unique in this process by construction; with storage, not a folder already on disk
        sessions = self._svc.sessions
        if sessions is None:
            return new_session_id()
        return new_session_id(taken=lambda sid: sessions.session_dir(sid).exists())

    async def _reserve(self) -> None:
        while True:
            if not self.accepting:
                raise RuntimeStateError(f"entry point {self.id!r} is not running")
            capacity = self.spec.max_concurrent + self.spec.max_queued
            if len(self._running) + len(self._queue) + self._admitting < capacity:
                self._admitting += 1
                return
            if self._svc.config.queue_full != "wait":
                raise QueueFullError(
                    f"entry point {self.id!r}: {len(self._running)} running and "
                    f"{len(self._queue)} queued (max_concurrent={self.spec.max_concurrent}, "
                    f"max_queued={self.spec.max_queued})"
                )
            await self._space.park()

    def find(self, execution_id: str) -> Execution | None:
        """A running or queued execution by id."""
        ex = self._running.get(execution_id)
        if ex is None:
            ex = next((q for q in self._queue if q.id == execution_id), None)
        return ex

    def result(self, execution_id: str) -> ExecutionResult | None:
        """A retained result of a finished execution, or None."""
        return self._results.get(execution_id)

    def cancel(self, execution_id: str) -> bool:
        """Cancel one running execution (it ends ``cancelled``); False if it is not running."""
        ex = self._running.get(execution_id)
        if ex is None or ex.cancel_scope is None:
            return False
        ex.cancel_scope.cancel()
        return True

    def pause(self, execution_id: str) -> bool:
        """Stop one running execution and record it ``paused`` at its current node (resumable
        from its latest checkpoint); False if it is not running."""
        ex = self._running.get(execution_id)
        if ex is None or ex.cancel_scope is None:
            return False
        ex.pause_requested = True
        ex.pause_at = ex.executor.current_node_id if ex.executor is not None else None
        ex.cancel_scope.cancel()
        return True

    async def inject_input(self, node_id: str, content: str, execution_id: str | None = None) -> bool:
        """Hand user input to a waiting node of a running execution; True if one took it."""
        if execution_id is not None:
            targets = [self._running[execution_id]] if execution_id in self._running else []
        else:
            targets = list(self._running.values())
        for ex in targets:
            if ex.executor is not None and await ex.executor.inject_input(node_id, content):
                return True
        return False

    def decline_input(self, node_id: str, execution_id: str) -> bool:
        """No input will come for ``node_id`` of ``execution_id``: it pauses there, resumable."""
        ex = self._running.get(execution_id)
        return ex is not None and ex.executor is not None and ex.executor.decline_input(node_id)

    def get_stats(self) -> dict[str, int]:
        s = self.stats
        return {
            "running": len(self._running),
            "queued": len(self._queue),
            "completed": s.completed,
            "failed": s.failed,
            "paused": s.paused,
            "cancelled": s.cancelled,
            "max_concurrent": self.spec.max_concurrent,
        }

    @property
    def active_execution_ids(self) -> list[str]:
        return list(self._running) + [q.id for q in self._queue]

    # ---- execution tasks -----------------------------------------------------------------

    def _make_recorder(self, ex: Execution) -> SessionRecorder | NullRecorder:
        svc = self._svc
        emitter = BusEmitter(svc.bus, self.id, ex.id)  # one per execution, via its recorder
        if svc.sessions is None:
            return NullRecorder(emitter)
        return SessionRecorder(ex, self.spec, svc, svc.sessions, emitter)

    def _start(self, ex: Execution) -> None:
        self._running[ex.id] = ex
        assert self._nursery is not None
        self._nursery.start_soon(self._run_one, ex, name=f"execution {ex.id}")

    def _start_next(self) -> None:
        # (the cancellation check walks every enclosing scope: only when something is queued)
        if self._queue and trio.current_effective_deadline() != -math.inf:
            # a stream being cancelled (stop()) starts nothing: queued executions end
            # cancelled in run(), they must not start running nodes now
            while (self._queue and len(self._running) < self.spec.max_concurrent
                   and self.accepting):
                self._start(self._queue.popleft())
        self._space.unpark()

    async def _run_one(self, ex: Execution) -> None:
        for var, value in self._svc.context_vars:  # e.g. the model provider's asyncio loop
            var.set(value)
        if self._svc.tracing is not None and ex.trace_parent is not None:
            # spawned in the runtime's nursery: the caller's context does not flow here by itself
            self._svc.tracing.attach(ex.trace_parent)
        result: ExecutionResult | None = None
        try:
            with trio.CancelScope() as ex.cancel_scope:
                try:
                    result = await self._execute(ex)
                except trio.Cancelled:
                    # stop() or this execution's own cancel/pause request: it ends here,
                    # recorded. The task then returns instead of re-raising: nothing of it
                    # runs on, and a Cancelled out of each of thousands of tasks would cost
                    # trio a repr of the task and the error each at stop()
                    await self._finish_shielded(ex, self._interrupted_result(ex))
                    return
            if result is not None:
                await self._finish_shielded(ex, result)
        finally:
            del self._running[ex.id]
            self._live.discard(ex.id)
            ex.executor = None
            self._svc.release(ex)
            self._start_next()

    async def _finish_shielded(self, ex: Execution, result: ExecutionResult) -> None:
        """`_finish`, never cut short by cancellation."""
        if self._finishes_at_once(ex):  # no await inside: nothing to shield
            await self._finish(ex, result)
        else:
            with trio.CancelScope(shield=True):
                await self._finish(ex, result)

    @staticmethod
    def _finishes_at_once(ex: Execution) -> bool:
        """Whether `_finish` runs without yielding: nothing to write and an end event that
        no lossless subscriber can hold up."""
        return type(ex.recorder) is NullRecorder and not ex.recorder.sink.may_wait()

    @staticmethod
    def _interrupted_result(ex: Execution) -> ExecutionResult:
        return paused_result(ex) if ex.pause_requested else cancelled_result(ex)

    async def _execute(self, ex: Execution) -> ExecutionResult:
        """Run the graph; any exception of the execution becomes a failed result."""
        svc = self._svc
        sink = ex.recorder.sink
        try:
            ex.executor = svc.start_run(ex, self.spec, sink)
            await sink.emit(
                EventType.EXECUTION_RESUMED if ex.resumed else EventType.EXECUTION_STARTED,
                self.spec.entry_node,
                input=ex.input_data,
            )
            return await ex.executor.execute(
                svc.graph,
                svc.goal,
                ex.input_data,
                ex.session_state,
                svc.checkpoint_config,
                session_id=ex.id,
                # a session_state says where to continue; otherwise start at this entry point
                entry_node=self.spec.entry_node if ex.session_state is None else None,
            )
        except Exception as exc:
            log.exception("execution %s of entry point %s crashed", ex.id, self.id)
            return ExecutionResult(
                success=False,
                error=f"{type(exc).__name__}: {exc}",
                session_id=ex.id,
                status=ExecutionStatus.FAILED,
                execution_quality="failed",
            )

    async def _finish(self, ex: Execution, result: ExecutionResult) -> None:
        """Record the end of an execution (files, event, stats) and wake its waiters.

        Always runs to its end; a failing write is logged and the result still delivered.
        """
        status = status_of(result)
        if result.status != status:
            result = attrs.evolve(result, status=status)
        if not result.session_id:
            result = attrs.evolve(result, session_id=ex.id)
        try:
            await ex.recorder.finished(result)
        except Exception:
            log.exception("could not record the end of execution %s", ex.id)
        self.stats.count(status)
        ex.result = result
        self._retain(ex.id, result)
        sink = ex.recorder.sink
        if not sink.may_wait():  # publishes without yielding
            await self._emit_end(ex, sink, status, result)
        else:
            # Bounded: a lossless subscriber that stopped reading must not hold up stop().
            with trio.move_on_after(self._svc.config.shutdown_event_grace_seconds):
                await self._emit_end(ex, sink, status, result)
        ex.done.set()

    @staticmethod
    async def _emit_end(ex: Execution, sink: BusEmitter | RecordingSink, status: ExecutionStatus,
                        result: ExecutionResult) -> None:
        try:
            await sink.emit(_TERMINAL_EVENTS[status], result.paused_at, **_terminal_data(result))
        except Exception:
            log.exception("could not publish the end of execution %s", ex.id)

    def _retain(self, execution_id: str, result: ExecutionResult) -> None:
        self._results[execution_id] = result
        while len(self._results) > self._svc.config.result_retention_max:
            self._results.popitem(last=False)


def _terminal_data(result: ExecutionResult) -> dict[str, Any]:
    status = result.status
    if status == ExecutionStatus.COMPLETED:
        return {"output": result.output}
    if status == ExecutionStatus.PAUSED:
        return {"paused_at": result.paused_at, "reason": result.error or "paused"}
    if status == ExecutionStatus.CANCELLED:
        return {"reason": result.error or "cancelled"}
    return {"error": result.error}
