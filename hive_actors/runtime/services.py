"""What the streams of one runtime share: `RuntimeServices`, and the executor wiring it does
for each execution (session folder, events, shared-state scope, client-input policy)."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import AsyncIterator
from typing import Any

import attrs

from hive_actors.graph.executor_config import ExecutorConfig
from hive_actors.graph.spec import Goal, GraphSpec
from hive_actors.runtime.config import RuntimeConfig
from hive_actors.graph.spec import EntryPointSpec
from hive_actors.runtime.event_bus import EventBus
from hive_actors.events import EventType
from hive_actors.runtime.execution_stream import Execution
from hive_actors.storage.session_store import SessionStore
from hive_actors.storage.writer import StorageWriter
from hive_actors.tools.registry import ToolRegistry

__all__ = ["RuntimeServices", "make_outcome_aggregator", "make_state_manager", "provider_lifespan"]


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


def make_state_manager(bus: EventBus) -> Any:
    """The shared-state manager publishing on ``bus`` (None if not available)."""
    try:
        from hive_actors.runtime.shared_state import SharedBufferManager
    except ImportError:  # not built yet: executions run isolated
        return None
    return SharedBufferManager(bus)


def make_outcome_aggregator(goal: Goal, bus: EventBus) -> Any:
    """The outcome aggregator of ``goal`` listening on ``bus`` (None if not available)."""
    try:
        from hive_actors.runtime.outcome_aggregator import OutcomeAggregator
    except ImportError:
        return None
    return OutcomeAggregator(goal, bus)


@contextlib.asynccontextmanager
async def provider_lifespan(llm: Any) -> AsyncIterator[tuple[tuple[Any, Any], ...]]:
    """The provider's resources for the runtime's life (e.g. litellm's asyncio loop), if it
    has a ``lifespan()``; yields the context variables that lifespan set (none without one).

    They are found through context variables, which a task inherits from the task that
    spawned it; executions are spawned by whoever called trigger(), so the runtime keeps these
    in `RuntimeServices.context_vars` and each execution's task sets them again."""
    lifespan = getattr(llm, "lifespan", None)
    if lifespan is None:
        yield ()
        return
    before = contextvars.copy_context()
    async with lifespan():
        yield tuple(
            (var, value) for var, value in contextvars.copy_context().items()
            if var not in before or before[var] is not value
        )
