"""GraphExecutor: runs one graph execution to completion, pause or failure.

The walk is sequential in the execution's task; a fan-out runs its branches as child tasks of a
nursery and continues at their join node once all have finished. Routing decisions come from
the pure `routing` module; a node attempt (with retries and buffer writes) from `node_runner`.
Cancelling ``execute()`` propagates `trio.Cancelled`; the last checkpoint written before it is
complete, and resuming from it runs the node that was in flight again from its start.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from hive_actors.errors import RuntimeStateError
from hive_actors.tools.context import ToolContext, use_tool_context
from hive_actors.events import EventSink, EventType, NullSink
from hive_actors.graph.checkpoint_config import CheckpointConfig
from hive_actors.graph.client_input import InputHub
from hive_actors.graph.compiled import compile_graph
from hive_actors.graph.executor_config import ExecutorConfig
from hive_actors.graph.llm_decide import decide_edges
from hive_actors.graph.node_runner import NodeRunner, Paused, SharedScope, StopRun
from hive_actors.graph.preflight import preflight_error
from hive_actors.graph.result import ExecutionResult, SessionState
from hive_actors.graph.routing import RoutingTable
from hive_actors.graph.run_state import Lane, RunState
from hive_actors.graph.services import Services, ToolsArg, as_registry
from hive_actors.graph.spec import EdgeCondition, Goal, GraphSpec, NodeSpec
from hive_actors.graph.steps import StepLog
from hive_actors.llm.provider import LLMProvider
from hive_actors.status import ExecutionStatus
from hive_actors.tools.registry import ToolExecutor

if TYPE_CHECKING:
    from hive_actors.storage.checkpoint_store import CheckpointStore

__all__ = ["ExecutorConfig", "GraphExecutor", "GraphRun"]

_CONDITION_NAMES = {c: c.value for c in EdgeCondition}

log = logging.getLogger(__name__)


class GraphExecutor:
    """Runs graphs. Its model, tools, config and resolved functions are made once and shared
    by every run it starts; ``start()`` wires one execution (events, session folder,
    checkpoint store, shared scope) into a `GraphRun`, and many runs may go at once.

    ``execute``/``restore`` start a run with this executor's own wiring; ``inject_input``
    and ``current_node_id`` then refer to the one of those in progress.

    ``resolved``: a dict in which executors with the same tools and config share the function
    references they resolved (the runtime gives one per runtime).
    """

    def __init__(
        self,
        llm: LLMProvider | None = None,
        tools: ToolsArg = None,
        tool_executor: ToolExecutor | None = None,
        storage_path: str | Path | None = None,
        events: EventSink | None = None,
        checkpoint_store: CheckpointStore | None = None,
        scope: SharedScope | None = None,
        config: ExecutorConfig | None = None,
        *,
        resolved: dict[str, tuple[Callable[..., Any], bool]] | None = None,
        step_log: StepLog | None = None,
    ) -> None:
        self.config = config or ExecutorConfig()
        self.storage_path = Path(storage_path) if storage_path is not None else None
        self.scope = scope
        self._checkpoint_store = checkpoint_store
        self._events = events if events is not None else NullSink()
        self._llm = llm
        self._tools = as_registry(tools, tool_executor)
        self._resolved = resolved if resolved is not None else {}
        self._step_log = step_log  # for this executor's own execute()
        self._run: GraphRun | None = None

    def start(
        self,
        *,
        events: EventSink | None = None,
        storage_path: str | Path | None = None,
        checkpoint_store: CheckpointStore | None = None,
        scope: SharedScope | None = None,
        step_log: StepLog | None = None,
    ) -> GraphRun:
        """One execution, not started yet: ``await run.execute(...)`` runs it. What is not
        given is this executor's own (its events, storage_path, checkpoint store, scope, step
        journal)."""
        if storage_path is None and checkpoint_store is None:
            storage_path, checkpoint_store = self.storage_path, self._own_store()
        services = Services(self._llm, self._tools, self.config,
                            events if events is not None else self._events, InputHub(),
                            self._resolved,
                            step_log=step_log if step_log is not None else self._step_log)
        return GraphRun(services, Path(storage_path) if storage_path is not None else None,
                        checkpoint_store, scope if scope is not None else self.scope)

    def _own_store(self) -> CheckpointStore | None:
        if self._checkpoint_store is None and self.storage_path is not None:
            from hive_actors.storage.checkpoint_store import CheckpointStore

            self._checkpoint_store = CheckpointStore(self.storage_path)
        return self._checkpoint_store

    @property
    def current_node_id(self) -> str | None:
        """The node running now in this executor's own ``execute`` (see GraphRun)."""
        return self._run.current_node_id if self._run is not None else None

    async def inject_input(self, node_id: str, content: Any) -> bool:
        """Give client input to ``node_id`` of this executor's own ``execute`` (see GraphRun)."""
        return self._run is not None and await self._run.inject_input(node_id, content)

    def decline_input(self, node_id: str) -> bool:
        """Tell ``node_id`` of this executor's own ``execute`` that no input will come."""
        return self._run is not None and self._run.decline_input(node_id)

    async def execute(
        self,
        graph: GraphSpec,
        goal: Goal,
        input_data: dict[str, Any] | None = None,
        session_state: dict[str, Any] | SessionState | None = None,
        checkpoint_config: CheckpointConfig | None = None,
        *,
        session_id: str | None = None,
        entry_node: str | None = None,
    ) -> ExecutionResult:
        """`GraphRun.execute` on a run of this executor's own wiring."""
        run = self._run = self.start()
        try:
            return await run.execute(graph, goal, input_data, session_state, checkpoint_config,
                                     session_id=session_id, entry_node=entry_node)
        finally:
            if self._run is run:
                self._run = None

    async def restore(
        self,
        graph: GraphSpec,
        goal: Goal,
        input_data: dict[str, Any] | None = None,
        checkpoint_config: CheckpointConfig | None = None,
        *,
        session_id: str | None = None,
    ) -> ExecutionResult:
        """Continue the execution whose checkpoints are in this executor's checkpoint store
        (``storage_path`` or ``checkpoint_store``) from its latest intact checkpoint; run from
        the start when there is none. Same as ``execute(..., session_state=latest.state)``."""
        store = _store_for(self._own_store(), checkpoint_config or CheckpointConfig())
        latest = store[0].latest(skip_damaged=True) if store is not None else None
        state = latest.state if latest is not None else None
        return await self.execute(graph, goal, input_data, state, checkpoint_config,
                                  session_id=session_id)


class GraphRun:
    """One execution, in one record: what it was wired to (services with its events and
    client-input mailbox, session folder, checkpoint store, shared scope) and, once its checks
    passed, its walk of the graph. Node visits go through ``runner``, which owns nothing that
    refers back here. Made by `GraphExecutor.start`; runs once."""

    __slots__ = ("services", "events", "storage_path", "checkpoint_store", "scope", "_used",
                 "_walking", "graph", "nodes", "table", "goal", "previous", "runner", "state",
                 "input_data")
    # set by execute() once its checks passed (then _walking is True)
    graph: GraphSpec
    nodes: Mapping[str, NodeSpec]
    table: RoutingTable
    goal: Goal
    previous: SessionState | None
    runner: NodeRunner
    state: RunState
    input_data: Mapping[str, Any]

    def __init__(self, services: Services, storage_path: Path | None,
                 checkpoint_store: CheckpointStore | None, scope: SharedScope | None) -> None:
        self.services = services
        self.events = services.events
        self.storage_path = storage_path
        self.checkpoint_store = checkpoint_store
        self.scope = scope
        self._used = False
        self._walking = False

    @property
    def current_node_id(self) -> str | None:
        """The node running now (the first one, when branches run in parallel)."""
        if not self._walking or not self.state.inflight:
            return None
        return next(iter(self.state.inflight.values()))

    async def inject_input(self, node_id: str, content: Any) -> bool:
        """Give client input to ``node_id``. True when that node is waiting for it or running
        (then it reads it at its next turn); False when no such node is running."""
        return self.services.inputs.deliver(node_id, content)

    def decline_input(self, node_id: str) -> bool:
        """Tell ``node_id``, waiting for client input, that none will come: the execution pauses
        there as on an input timeout (its reply comes with the resume). False if not waiting."""
        return self.services.inputs.decline(node_id)

    async def execute(
        self,
        graph: GraphSpec,
        goal: Goal,
        input_data: dict[str, Any] | None = None,
        session_state: dict[str, Any] | SessionState | None = None,
        checkpoint_config: CheckpointConfig | None = None,
        *,
        session_id: str | None = None,
        entry_node: str | None = None,
    ) -> ExecutionResult:
        """Run ``graph`` towards ``goal`` and return its result (completed, failed or paused).

        ``session_state`` (a previous result's ``session_state`` or a checkpoint's state)
        continues that execution; it is validated first and `SessionStateError` is raised,
        before anything runs, when it is malformed. ``input_data`` goes into the buffer; when
        resuming a node that waited for client input it is that node's reply instead (its
        ``input`` value when present, else the whole dict as JSON).
        """
        if self._used:
            raise RuntimeStateError(f"this GraphRun of {graph.id!r} has run already: a GraphRun "
                                    "runs once; start another from its GraphExecutor")
        self._used = True
        previous = SessionState.from_dict(session_state) if session_state is not None else None
        store = _store_for(self.checkpoint_store, checkpoint_config)
        sid = session_id or (previous.session_id if previous else "") or (
            self.storage_path.name if self.storage_path is not None else ""
        )
        started = time.perf_counter()
        state = RunState(sid, previous)
        compiled = compile_graph(graph)
        services = self.services
        error = preflight_error(graph, compiled, services.tools, entry_node)
        if error is not None or compiled.routing is None:
            return _result(state, ExecutionStatus.FAILED, error, started)
        runner = NodeRunner(graph, compiled, goal, state, services, dict(input_data or {}),
                            self.scope, store)
        self.graph, self.nodes, self.table = graph, compiled.index.nodes, compiled.routing
        self.goal, self.previous, self.runner = goal, previous, runner
        self.state, self.input_data = state, runner.input_data
        self._walking = True
        with use_tool_context(ToolContext(agent_id=graph.id, session_id=sid,
                                          session_dir=self.storage_path)):
            tracing = services.config.tracing
            if tracing is None:
                return await self._walk_from(entry_node, started)
            with tracing.execution(graph.id, sid, entry_node) as span:
                result = await self._walk_from(entry_node, started)
                span.set_attribute("hive.execution.status", result.status.value)
                if result.status is ExecutionStatus.FAILED:
                    tracing.fail(span, "execution_failed", result.error or "failed")
                return result

    async def _walk_from(self, entry_node: str | None, started: float) -> ExecutionResult:
        state = self.state
        try:
            await self._start(entry_node)
        except Paused as p:
            state.paused_at = p.node_id
            state.waiting_input = p.node_id if p.waiting_input else None
            await self.runner.checkpoint("pause", p.node_id)
            return _result(state, ExecutionStatus.PAUSED, None, started)
        except StopRun as stop:
            return _result(state, ExecutionStatus.FAILED, stop.message, started)
        return _result(state, ExecutionStatus.COMPLETED, None, started)

    async def _start(self, entry_node: str | None) -> None:
        prev, state, graph = self.previous, self.state, self.graph
        root = state.root
        if prev is not None and prev.waiting_input and entry_node is None:
            data = self.input_data
            reply = data["input"] if "input" in data else (data or None)
            if reply is not None:
                self.services.inputs.preload(prev.waiting_input, reply)
            self.runner.resuming = prev.waiting_input
        elif self.input_data:
            state.memory.update(self.input_data)
        if entry_node is not None:
            start = graph.entry_points.get(entry_node, entry_node)
            return await self._walk(root, start, None)
        if prev is not None and prev.resume_after:
            root.previous = prev.resume_after
            return await self._walk(root, None, None, after=prev.resume_after)
        if prev is not None and prev.execution_path and not prev.next_nodes:
            return  # a checkpoint taken after the last node: the execution had finished
        if prev is not None and prev.next_nodes:
            nodes = tuple(prev.next_nodes)
            if len(nodes) == 1:
                return await self._walk(root, nodes[0], None)
            join = self.table.join_of(nodes)
            await self._fan_out(root, nodes, join)
            if join is not None:
                await self._walk(root, join, None)
            return
        await self._walk(root, graph.entry_node, None)

    async def _walk(self, lane: Lane, current: str | None, stop_at: str | None,
                   after: str | None = None) -> None:
        """Run nodes along ``lane`` from ``current`` (or route on from ``after``, a pause node
        already completed) until nothing follows or the lane reaches ``stop_at``. Raises
        StopRun when the execution fails and Paused when it pauses."""
        graph, nodes, runner, state = self.graph, self.nodes, self.runner, self.state
        pause_nodes, terminal = graph.pause_nodes, graph.terminal_nodes
        while True:
            if after is None:
                if current == stop_at:
                    lane.finish()
                    return
                node = nodes.get(current) if current is not None else None
                if node is None:
                    raise StopRun(f"an edge leads to node {current!r}, which does not exist")
                lane.position = node.id
                outcome = await runner.visit(node, lane)
                if outcome is None:  # visit limit reached: skipped, route on as a success
                    succeeded, output, jump = True, _outputs_of(node, state.memory), None
                else:
                    if outcome.paused:
                        raise Paused(node.id, waiting_input=True)
                    succeeded, output, jump = outcome.success, outcome.output, outcome.next_node
                    lane.previous = node.id
                    if succeeded and node.id in pause_nodes:
                        if lane.parent is None:
                            lane.position = None
                            state.resume_after = node.id
                            raise Paused(node.id)
                        # inside a branch: route now, resume runs what follows
                        await self._advance(lane, node.id, True, output, None, stop_at)
                        raise Paused(node.id)
                    if succeeded and node.id in terminal:
                        lane.finish()
                        if runner.store is not None:
                            await runner.checkpoint("node_complete", node.id)
                        return
                source = node.id
            else:
                source, succeeded, jump = after, True, None
                output = _outputs_of(nodes.get(after), state.memory)
                after = None
            targets = await self._advance(lane, source, succeeded, output, jump, stop_at)
            if not targets:
                if not succeeded:
                    raise StopRun(runner.failure_message(source))
                return
            if len(targets) == 1:
                current = targets[0]
                continue
            join = lane.join
            await self._fan_out(lane, targets, join, created=True)
            if join is None:
                return
            current = join

    async def _advance(self, lane: Lane, source: str, succeeded: bool, output: dict[str, Any],
                       jump: str | None, stop_at: str | None) -> tuple[str, ...]:
        """Decide where ``lane`` goes after ``source``, move it there, emit EDGE_TRAVERSED and
        write the node_complete checkpoint. Returns the targets (several = fan-out)."""
        emit = self.events.emit
        if jump is not None:
            targets: tuple[str, ...] = (jump,)
            await emit(EventType.EDGE_TRAVERSED, source, source_node=source, target_node=jump,
                       edge_id=None, edge_condition="router")
        else:
            verdicts = None
            if source in self.table.has_llm_decide and succeeded:
                verdicts = await decide_edges(self.services.llm, self.runner.compiled.index,
                                              self.goal, source, output,
                                              self.services.config.tracing,
                                              self.services.step_log,
                                              self.state.visits.get(source, 0))
            decision = self.table.decide(
                source, succeeded, output, self.state.memory, verdicts
            )
            targets = decision.targets
            for edge_id, problem in decision.errors:  # the edge did not hold; say why
                log.warning("edge %r from %r: condition failed: %s", edge_id, source, problem)
            if decision.edges and self.events.wants(EventType.EDGE_TRAVERSED):
                for e in decision.edges:
                    await emit(EventType.EDGE_TRAVERSED, source, source_node=source,
                               target_node=e.target, edge_id=e.id,
                               edge_condition=_CONDITION_NAMES[e.condition])
        if not targets and not succeeded:
            lane.position = source  # a resume of this state retries the failed node
        elif not targets or (len(targets) == 1 and targets[0] == stop_at):
            lane.finish()
        elif len(targets) == 1:
            lane.position = targets[0]
        else:
            lane.fork(targets, self.table.join_of(targets))
        if succeeded and self.runner.store is not None:
            await self.runner.checkpoint("node_complete", source)
        return targets

    async def _fan_out(self, lane: Lane, targets: tuple[str, ...], join: str | None,
                       created: bool = False) -> None:
        """Run one branch per target concurrently until each reaches ``join`` or ends.
        Branch failures follow ``graph.parallel.on_branch_failure``."""
        if not created:
            lane.fork(targets, join)
        policy = self.graph.parallel
        failures: list[str] = []
        paused: list[Paused] = []

        timeout = policy.branch_timeout_seconds

        async def branch(child: Lane, nursery: trio.Nursery) -> None:
            try:
                if timeout:
                    with trio.fail_after(timeout):
                        await self._walk(child, child.position, join)
                else:  # no cancel scope per branch when branches are not timed
                    await self._walk(child, child.position, join)
            except Paused as p:
                paused.append(p)
            except Exception as exc:  # StopRun, trio.TooSlowError or a bug
                message = exc.message if isinstance(exc, StopRun) else ""
                failures.append(message or f"branch timed out or failed: {exc!r}")
                self.state.inflight.pop(child, None)
                child.finish()
                if policy.on_branch_failure == "fail_all":
                    nursery.cancel_scope.cancel()

        async with trio.open_nursery() as nursery:
            for child in list(lane.children):
                nursery.start_soon(branch, child, nursery)
        if failures and policy.on_branch_failure == "fail_all":
            raise StopRun("parallel branches failed: " + "; ".join(failures))
        if failures:
            self.state.failures += len(failures)
        if paused:
            lane.position = None
            raise paused[0]


def _store_for(
    store: CheckpointStore | None, cp: CheckpointConfig | None
) -> tuple[CheckpointStore, CheckpointConfig] | None:
    if store is None or (cp is not None and not cp.enabled):
        return None
    return (store, cp or CheckpointConfig())


def _result(state: RunState, status: ExecutionStatus, error: str | None,
            started: float) -> ExecutionResult:
    if status is ExecutionStatus.FAILED:
        quality = "failed"
    else:
        quality = "degraded" if state.failures else "clean"
    if state.inflight:  # nodes in flight do not count: the snapshot leaves them out
        snap = state.snapshot()
        lazy: SessionState | RunState = snap
        path, steps, visits = snap.execution_path, snap.steps_executed, snap.node_visit_counts
    else:  # the execution is over and nothing changes state now: snapshot it when read
        lazy, path, steps, visits = state, tuple(state.path), state.steps, state.visits
    return ExecutionResult(
        success=status is not ExecutionStatus.FAILED,
        output=dict(state.memory),  # the result's own: the session_state's stays as it was
        error=error,
        paused_at=state.paused_at,
        session_state=lazy,
        path=path,
        steps_executed=steps,
        total_tokens=state.tokens,
        total_latency_ms=(time.perf_counter() - started) * 1000.0,
        node_visit_counts=dict(visits),
        total_retries=state.retries,
        execution_quality=quality,
        session_id=state.session_id,
        status=status,
    )


def _outputs_of(node: NodeSpec | None, memory: dict[str, Any]) -> dict[str, Any]:
    if node is None:
        return {}
    return {k: memory[k] for k in node.output_keys if k in memory}
