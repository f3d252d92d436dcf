"""Hive's tools.py contract: ``TOOLS`` (name -> object with ``name``, ``description``,
``parameters``) and ``tool_executor(tool_use)`` (``tool_use`` has ``.id``, ``.name``,
``.input``) returning a ToolResult-like object (``content``, ``is_error``) or a plain value.

`ToolUse` and `ToolResult` are the shapes Hive's ``framework.llm.provider`` exports (Hive's
``Tool`` is our registry `Tool`: name, description, parameters). `hive_registry(module)` is
the registry of a tools.py module written either way (``@tool`` functions, Hive's TOOLS and
executor, a ``(name, arguments)`` executor). Context parameters a TOOLS schema declares are
hidden from the model and filled in (tools/context.py).
"""

from __future__ import annotations

import functools
import inspect
import itertools
import types
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import trio

from hive_actors.tools.context import call_record, hide_context_params, inject_context_params
from hive_actors.tools.registry import Tool, ToolExecutor, ToolRegistry

__all__ = ["ToolResult", "ToolUse", "adapt_executor", "hive_registry"]

_ids = itertools.count(1)


@attrs.define
class ToolUse:
    id: str
    name: str
    input: dict[str, Any] = attrs.field(factory=dict)


@attrs.define
class ToolResult:
    tool_use_id: str
    content: Any
    is_error: bool = False


def hive_registry(module: types.ModuleType) -> ToolRegistry:
    """The tools a tools.py module provides (see the module docstring)."""
    declared: dict[str, tuple[str, ...]] = {}
    listed: list[Tool] = []
    tools = getattr(module, "TOOLS", None)
    if isinstance(tools, Mapping):
        for key, spec in tools.items():
            name = str(getattr(spec, "name", None) or key)
            params = getattr(spec, "parameters", None)
            visible, declared[name] = hide_context_params(
                params if isinstance(params, Mapping) else {"type": "object", "properties": {}})
            listed.append(Tool(name, str(getattr(spec, "description", "") or ""), visible,
                               idempotent=getattr(spec, "idempotent", True) is not False))
    executor = getattr(module, "tool_executor", None)
    if callable(executor):
        adapted: ToolExecutor | None = adapt_executor(executor, declared)
    elif listed:  # Hive gives TOOLS without an executor a mock one
        adapted = _mock_executor
    else:
        adapted = None
    registry = ToolRegistry(listed, tool_executor=adapted)
    registry.register_module(module)
    return registry


def adapt_executor(fn: Callable[..., Any],
                   declared: Mapping[str, tuple[str, ...]] | None = None) -> ToolExecutor:
    """``fn`` as a ``(name, arguments)`` executor: Hive's one-argument ``tool_executor(tool_use)``
    is wrapped (``declared``: context parameters to fill in per tool); others are returned
    as they are (a wrapped one takes two)."""
    if not _takes_one(fn):
        return fn
    return _hive_executor(fn, declared or {})


def _takes_one(fn: Callable[..., Any]) -> bool:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                  and p.default is p.empty]
    return len(positional) == 1


def _hive_executor(fn: Callable[..., Any],
                   declared: Mapping[str, tuple[str, ...]]) -> ToolExecutor:
    async def call(name: str, arguments: dict[str, Any]) -> Any:
        use = ToolUse(f"toolu_{next(_ids):06d}", name,
                      inject_context_params(arguments, declared.get(name, ())))
        call_record().update(arguments=use.input)
        if inspect.iscoroutinefunction(fn):
            return await fn(use)
        result = await trio.to_thread.run_sync(functools.partial(fn, use))
        if inspect.isawaitable(result):
            result = await result
        return result

    return call


def _mock_executor(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"mock": True, "tool": name, "arguments": arguments}
