"""Services: what an execution lends its nodes: the executor's model, tools, config and
resolved functions, and the execution's own events and client input."""

from __future__ import annotations

import functools
import importlib
import inspect
import weakref
from collections.abc import Callable, Iterable
from typing import Any, cast

import attrs
import trio

from hive_actors.errors import NodeDefinitionError
from hive_actors.graph.client_input import InputHub
from hive_actors.graph.executor_config import ExecutorConfig
from hive_actors.graph.steps import StepLog
from hive_actors.events import EventSink
from hive_actors.llm.provider import LLMProvider
from hive_actors.tools.hive_contract import adapt_executor
from hive_actors.tools.registry import Tool, ToolExecutor, ToolRegistry

# What an executor accepts as its tools: a registry, tools (or functions to make tools of),
# a dict of them by name, or None.
ToolsArg = ToolRegistry | Iterable[Tool | Callable[..., Any]] | dict[str, Any] | None


@attrs.define(slots=True, eq=False)
class Services:
    llm: LLMProvider | None
    tools: ToolRegistry
    config: ExecutorConfig
    events: EventSink
    inputs: InputHub
    # resolved function references, shared by every run of an executor (or of a runtime)
    _functions: dict[str, tuple[Callable[..., Any], bool]] = attrs.field(factory=dict)
    # the execution's step journal (hive_actors/graph/steps.py); None: nothing recorded
    step_log: StepLog | None = None
    _tool_limiter: trio.CapacityLimiter | None = None

    @property
    def tool_limiter(self) -> trio.CapacityLimiter:
        """Bounds concurrent tool calls of the execution (``config.max_concurrent_tools``);
        made on first use: most executions of function graphs never call a tool."""
        if self._tool_limiter is None:
            self._tool_limiter = trio.CapacityLimiter(max(1, self.config.max_concurrent_tools))
        return self._tool_limiter

    def resolve_function(self, ref: str, node_id: str) -> tuple[Callable[..., Any], bool]:
        """The callable a function node names and whether it is async (cached).

        Looks in ``config.functions``, then ``config.function_resolver``, then registered tools
        of that name, then imports ``module:attr`` (or ``module.attr``) from sys.path. Raises
        NodeDefinitionError naming the node and the reference when nothing provides it.
        """
        hit = self._functions.get(ref)
        if hit is not None:
            return hit
        fn = self.config.functions.get(ref)
        if fn is None and self.config.function_resolver is not None:
            fn = self.config.function_resolver(ref)
        if fn is None:
            tool = self.tools.get(ref)
            fn = tool.fn if tool is not None else None
        if fn is None:
            fn = _import(ref, node_id)
        if not callable(fn):
            raise NodeDefinitionError(f"function {ref!r} is not callable", node_id)
        hit = self._functions[ref] = (fn, _is_async(fn))
        return hit


_ASYNC: weakref.WeakKeyDictionary[Callable[..., Any], bool] = weakref.WeakKeyDictionary()


def _is_async(fn: Callable[..., Any]) -> bool:
    try:
        return _ASYNC[fn]
    except (KeyError, TypeError):
        pass
    result = _check_async(fn)
    try:
        _ASYNC[fn] = result
    except TypeError:  # not weak-referenceable
        pass
    return result


def _check_async(fn: Callable[..., Any]) -> bool:
    while isinstance(fn, functools.partial):
        fn = fn.func
    call = getattr(fn, "__call__", None)  # an async callable object: its __call__ method
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(call)


def _import(ref: str, node_id: str) -> Callable[..., Any]:
    module_name, sep, attr = ref.partition(":")
    if not sep:
        module_name, _, attr = ref.rpartition(".")
    if not module_name or not attr:
        raise NodeDefinitionError(
            f"cannot resolve function {ref!r}: no tool of that name; define it in the agent "
            "folder's tools.py, give it in ExecutorConfig.functions or name it as 'module:attr'",
            node_id,
        )
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise NodeDefinitionError(
            f"cannot resolve function {ref!r}: {exc} (a graph built in code resolves the agent "
            "folder's modules only when the runtime is given the loaded agent: "
            "create_agent_runtime(load_agent(path), ...))", node_id) from None
    return cast(Callable[..., Any], obj)  # looked up by name; the caller checks callable()


def as_registry(tools: ToolsArg, tool_executor: ToolExecutor | None) -> ToolRegistry:
    """A ToolRegistry from what the executor was given (registry, list, dict or None). A
    ``tool_executor`` may be ``(name, arguments)`` or Hive's ``(tool_use)``."""
    if tool_executor is not None:
        tool_executor = adapt_executor(tool_executor)
    if isinstance(tools, ToolRegistry):
        if tool_executor is None:
            return tools
        merged = ToolRegistry(tool_executor=tool_executor)
        for name in tools.names():
            known = tools.get(name)
            if known is not None:
                merged.register(known)
        return merged
    return ToolRegistry(tools, tool_executor)
