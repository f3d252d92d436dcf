"""One visit of a node: visit limits, max_steps, attempts with retries, buffer writes, events
and checkpoints. Used by the executor's walk. A NodeRunner serves one execution: it is given
the compiled graph, the goal, the execution's RunState and Services, the shared scope and the
checkpoint store, and keeps only which node resumes and the last error of each failed node."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

import trio

from hive_actors.errors import AgentDefinitionError, NodeDefinitionError
from hive_actors.events import EventType
from hive_actors.graph.checkpoint_config import CheckpointConfig
from hive_actors.graph.compiled import CompiledGraph, NodePlan
from hive_actors.graph.nodes import NodeContext, NodeOutcome
from hive_actors.graph.run_state import Lane, RunState
from hive_actors.graph.services import Services
from hive_actors.graph.spec import Goal, GraphSpec, NodeSpec

if TYPE_CHECKING:
    from hive_actors.storage.checkpoint_store import CheckpointStore

_MISSING = object()
_clock = time.perf_counter


class StopRun(Exception):
    """The execution fails; ``message`` says why."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class Paused(Exception):
    """The execution pauses at ``node_id`` (a pause node, or a node waiting for input)."""

    def __init__(self, node_id: str, waiting_input: bool = False) -> None:
        self.node_id = node_id
        self.waiting_input = waiting_input
        super().__init__(node_id)


class SharedScope(Protocol):
    """Shared state outside the execution: inputs missing from the buffer are read from it,
    and every output written to the buffer is written to it too."""

    def get(self, key: str, default: Any = None) -> Any: ...

    async def write(self, key: str, value: Any) -> None: ...


class NodeRunner:
    def __init__(
        self,
        graph: GraphSpec,
        compiled: CompiledGraph,
        goal: Goal,
        state: RunState,
        services: Services,
        input_data: Mapping[str, Any],
        scope: SharedScope | None = None,
        store: tuple[CheckpointStore, CheckpointConfig] | None = None,
    ) -> None:
        self.graph = graph
        self.compiled = compiled
        self.goal = goal
        self.state = state
        self.services = services
        self.input_data = input_data
        self.scope = scope
        self.store = store
        self.resuming: str | None = None  # node to continue with the resume reply
        self._errors: dict[str, tuple[str, int]] = {}

    async def visit(self, node: NodeSpec, lane: Lane) -> NodeOutcome | None:
        """Run ``node`` (with its retries). Returns its final outcome, or None when the visit
        was skipped because ``max_node_visits`` is exhausted. Raises StopRun when
        ``max_steps`` is used up."""
        tracing = self.services.config.tracing
        if tracing is None:
            return await self._visit(node, lane)
        with tracing.node(node.id, node.node_type, self.state.visits.get(node.id, 0) + 1) as span:
            outcome = await self._visit(node, lane)
            if outcome is None:
                span.set_attribute("hive.node.skipped", True)
            elif outcome.paused:
                span.set_attribute("hive.node.paused", True)
            elif not outcome.success:
                tracing.fail(span, "node_failed", outcome.error or "failed")
            return outcome

    async def _visit(self, node: NodeSpec, lane: Lane) -> NodeOutcome | None:
        state, graph, services = self.state, self.graph, self.services
        events = services.events
        emit, wants = events.emit, events.wants
        if state.steps >= graph.max_steps:
            raise StopRun(
                f"max_steps ({graph.max_steps}) reached before node {node.id!r} could run: "
                "the graph kept looping; raise max_steps or bound the loop"
            )
        state.steps += 1
        count = state.visits[node.id] = state.visits.get(node.id, 0) + 1
        if node.max_node_visits and count > node.max_node_visits:
            return None
        if count > 1:  # a stale nullable output must not satisfy a condition again
            mem = state.memory
            for k in node.nullable_output_keys:
                if mem.get(k) is not None:
                    mem[k] = None
        plan = self.compiled.plans[node.id]
        impl = plan.impl
        state.inflight[lane] = node.id
        if self.store is not None and self.store[1].checkpoint_on_node_start:
            await self.checkpoint("node_start", node.id)
        uses_conv = impl.uses_conversation
        conversation = self._conversation_for(node, lane) if uses_conv else None
        base = len(conversation) if conversation is not None else 0
        inputs = self._inputs(node, lane, uses_conv)
        resuming = self.resuming == node.id
        if resuming:
            self.resuming = None
        hub = services.inputs
        if uses_conv:
            hub.activate(node.id)
        lookups = self.compiled.lookups
        attempt = 0
        try:
            while True:
                if wants(EventType.NODE_STARTED):
                    await emit(EventType.NODE_STARTED, node.id, node_type=node.node_type,
                               attempt=attempt, visit=count)
                started = _clock()
                ctx = NodeContext(node, graph, self.goal, inputs, state.memory, services,
                                  attempt, count, conversation, lane.previous, resuming,
                                  lookups=lookups, session_id=state.session_id)
                # A cancellation point before every node call: once stop() has begun, no
                # node starts (the emits above may not have yielded at all).
                await trio.lowlevel.checkpoint_if_cancelled()
                try:
                    outcome = await impl.run(ctx)
                except (NodeDefinitionError, AgentDefinitionError) as exc:
                    outcome = NodeOutcome.fail(f"{type(exc).__name__}: {exc}", final=True)
                except Exception as exc:
                    outcome = NodeOutcome.fail(f"{type(exc).__name__}: {exc}")
                state.tokens += outcome.tokens
                if outcome.paused:
                    return outcome
                if outcome.success:
                    output = outcome.output
                    error = self._check(node, plan, output)
                    if error is None:
                        state.memory.update(output)
                        if self.scope is not None:
                            for k, v in output.items():
                                await self.scope.write(k, v)
                        del state.inflight[lane]
                        state.path.append(node.id)
                        if wants(EventType.NODE_COMPLETED):
                            await emit(EventType.NODE_COMPLETED, node.id, success=True,
                                       latency_ms=(_clock() - started) * 1000.0,
                                       output_keys=list(output), tokens=outcome.tokens)
                        return outcome
                    outcome = NodeOutcome.fail(error, tokens=outcome.tokens)
                state.failures += 1
                will_retry = attempt < node.max_retries and not outcome.final
                await emit(EventType.NODE_FAILED, node.id, error=outcome.error,
                           attempt=attempt, will_retry=will_retry)
                if not will_retry:
                    del state.inflight[lane]
                    state.path.append(node.id)
                    self._errors[node.id] = (outcome.error or "failed", attempt + 1)
                    return outcome
                attempt += 1
                state.retries += 1
                delay = self._delay(attempt)
                await emit(EventType.NODE_RETRY, node.id, retry_count=attempt,
                           max_retries=node.max_retries, error=outcome.error, delay=delay)
                await trio.sleep(delay)
                if conversation is not None:
                    del conversation[base:]
                resuming = False
        finally:
            if uses_conv:
                hub.deactivate(node.id)

    def failure_message(self, node_id: str) -> str:
        error, attempts = self._errors.get(node_id, ("failed", 1))
        plural = "attempt" if attempts == 1 else "attempts"
        return f"node {node_id!r} failed after {attempts} {plural}: {error}"

    async def checkpoint(self, kind: str, node_id: str | None) -> None:
        """Save a checkpoint of the whole execution now (if checkpoints are on)."""
        if self.store is None:
            return
        store, config = self.store
        if kind == "node_complete" and not config.checkpoint_on_node_complete:
            return
        snap = self.state.snapshot()
        cp = await store.save(kind, node_id, snap)
        await self.services.events.emit(EventType.CHECKPOINT_SAVED, node_id, kind=kind,
                                   seq=cp.seq, next_nodes=list(snap.next_nodes))

    def _delay(self, attempt: int) -> float:
        override = self.services.config.retry_delay_override
        if override is not None:
            return override
        r = self.graph.retry
        return min(r.base_delay_seconds * r.factor ** (attempt - 1), r.max_delay_seconds)

    def _inputs(self, node: NodeSpec, lane: Lane, uses_conv: bool) -> dict[str, Any]:
        mem, scope = self.state.memory, self.scope
        inputs: dict[str, Any] = {}
        for k in node.input_keys:
            if k in mem:
                inputs[k] = mem[k]
            elif scope is not None:
                v = scope.get(k, _MISSING)
                if v is not _MISSING:
                    inputs[k] = v
        if uses_conv and not node.input_keys and lane.previous is None and lane.parent is None:
            inputs = dict(self.input_data)  # a start node that declares no inputs sees all
        return inputs

    def _conversation_for(self, node: NodeSpec, lane: Lane) -> list[dict[str, Any]]:
        convs = self.state.conversations
        if self.resuming == node.id and node.id in convs:
            return convs[node.id]  # it paused with a conversation of its own (a branch)
        if self.graph.conversation_mode == "continuous" and lane.parent is None:
            return convs.setdefault("_shared", [])
        conv: list[dict[str, Any]] = []
        convs[node.id] = conv
        return conv

    @staticmethod
    def _check(node: NodeSpec, plan: NodePlan, output: dict[str, Any]) -> str | None:
        """Why a successful attempt's output cannot be written to the buffer (a key outside
        the node's output keys, or a required key a function node left out), or None."""
        keys = plan.output_keys
        for k in output:
            if k not in keys:
                return (f"wrote output key {k!r}, which is not one of its output_keys "
                        f"{list(node.output_keys)}")
        if plan.check_required:
            missing = [k for k in plan.required if output.get(k) is None]
            if missing:
                return f"did not return required output key(s) {missing}"
        return None

