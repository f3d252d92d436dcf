"""ExecutorConfig: every knob of a GraphExecutor in one record, with documented defaults."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Union

import attrs

if TYPE_CHECKING:
    from hive_actors.tracing import Tracing

# 0 = pause at once, None = wait forever, else seconds; or a zero-argument callable returning one
# of those, asked each time a node needs input (so a runtime can say "a client is watching").
InputTimeout = Union[float, None, Callable[[], Union[float, None]]]


@attrs.frozen
class ExecutorConfig:
    """How a GraphExecutor runs nodes.

    input_timeout: how long a client-facing node waits for `inject_input` before the execution
        pauses (see `InputTimeout`). Default 0: a bare executor has no client, so it pauses.
    tool_timeout: seconds one tool call may take before its result becomes a timeout error
        sent back to the model (None = no bound). Default 60.
    max_concurrent_tools: tool calls running at once per executor. Default 8.
    default_max_iterations: LLM turns an event_loop node may take when neither the node nor
        the graph's ``loop_config`` says (``max_iterations``). Default 50.
    function_node_timeout: seconds a function node may run before it fails (None = no bound).
    functions: callables for function nodes by reference (``"module:attr"`` or a bare name);
        consulted before `function_resolver` and the import fallback.
    function_resolver: ``ref -> callable`` used when ``functions`` has no entry (the runtime
        passes one built on ``loader.resolve_function(definition, ref)``).
    sync_functions_in_thread: run sync function nodes in a worker thread (default True); False
        calls them inline in the execution task (faster, for short pure functions only).
    retry_delay_override: when not None, replaces the graph's retry backoff (tests use 0).
    tracing: a `hive_actors.tracing.Tracing` to record OpenTelemetry spans and metrics of
        executions, nodes, model and tool calls; None (default) records nothing.
    """

    input_timeout: InputTimeout = 0.0
    tool_timeout: float | None = 60.0
    max_concurrent_tools: int = 8
    default_max_iterations: int = 50
    function_node_timeout: float | None = None
    functions: Mapping[str, Callable[..., Any]] = attrs.field(factory=dict)
    function_resolver: Callable[[str], Callable[..., Any]] | None = None
    sync_functions_in_thread: bool = True
    retry_delay_override: float | None = None
    tracing: Tracing | None = None

    def current_input_timeout(self) -> float | None:
        """The input timeout now (calls the callable form)."""
        value = self.input_timeout
        if callable(value):
            value = value()
        return None if value is None else float(value)
