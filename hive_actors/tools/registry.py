"""Tools: the ``@tool`` decorator and the ToolRegistry the executor dispatches through."""

from __future__ import annotations

import inspect
import json
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar, overload

import attrs
import trio

from hive_actors.errors import ToolError

F = TypeVar("F", bound=Callable[..., Any])

_JSON_TYPES: dict[type, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    dict: "object",
    list: "array",
}


@attrs.frozen
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]  # JSON schema of the arguments object
    fn: Callable[..., Any] | None = attrs.field(default=None, eq=False, repr=False)

    def schema(self) -> dict[str, Any]:
        """The OpenAI tool schema (the whole parameters schema, not a narrowed copy)."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


def _json_type(annotation: object) -> dict[str, Any]:
    origin = typing.get_origin(annotation)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _json_type(members[0]) if len(members) == 1 else {}
    if origin in (list, tuple, set):
        args = typing.get_args(annotation)
        return {"type": "array", **({"items": _json_type(args[0])} if args else {})}
    if origin is dict:
        return {"type": "object"}
    if annotation in _JSON_TYPES:
        return {"type": _JSON_TYPES[annotation]}
    return {}


def _param_docs(doc: str) -> dict[str, str]:
    """`name: text` lines from an Args:/Parameters section of a docstring."""
    out: dict[str, str] = {}
    for m in re.finditer(r"^[ \t]*(\w+)[ \t]*(?:\([^)]*\))?[ \t]*:[ \t]*(.+)$", doc, re.MULTILINE):
        out.setdefault(m.group(1), m.group(2).strip())
    return out


def schema_from_callable(fn: Callable[..., Any]) -> dict[str, Any]:
    """JSON schema of ``fn``'s keyword arguments, from its type hints and docstring."""
    sig = inspect.signature(fn)
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # unresolvable forward refs: fall back to no types
        hints = {}
    docs = _param_docs(inspect.getdoc(fn) or "")
    props: dict[str, Any] = {}
    required: list[str] = []
    for name, param in sig.parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        prop = _json_type(hints.get(name, Any))
        if name in docs:
            prop["description"] = docs[name]
        props[name] = prop
        if param.default is param.empty:
            required.append(name)
    return {"type": "object", "properties": props, "required": required}


@overload
def tool(
    fn: F, *, name: str | None = None, description: str | None = None, parameters: dict[str, Any] | None = None
) -> F: ...


@overload
def tool(
    fn: None = None, *, name: str | None = None, description: str | None = None,
    parameters: dict[str, Any] | None = None,
) -> Callable[[F], F]: ...


def tool(
    fn: F | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    parameters: dict[str, Any] | None = None,
) -> F | Callable[[F], F]:
    """Mark a function as a tool. Use bare (``@tool``) or with overrides (``@tool(name=...)``).

    The function is returned unchanged, with a ``__hive_tool__`` attribute holding its Tool.
    """

    def mark(f: F) -> F:
        doc = inspect.getdoc(f) or ""
        f.__hive_tool__ = Tool(  # type: ignore[attr-defined]
            name=name or f.__name__,
            description=description if description is not None else doc.split("\n\n")[0],
            parameters=parameters or schema_from_callable(f),
            fn=f,
        )
        return f

    return mark(fn) if fn is not None else mark


def _tool_of(fn: Callable[..., Any]) -> Tool:
    """The Tool ``@tool`` attached to ``fn``, or one made from ``fn`` now."""
    marked = getattr(fn, "__hive_tool__", None)
    if isinstance(marked, Tool):
        return marked
    found: Tool = getattr(tool(fn), "__hive_tool__")
    return found


# A tool_executor takes (tool name, arguments) and returns the result, or an awaitable of it.
# A result is whatever the tool returns (any value ``result_to_text`` can show).
ToolExecutor = Callable[[str, dict[str, Any]], object]


class ToolRegistry:
    """Name -> Tool. Calls run sync tools in a worker thread and async ones in the caller's task."""

    def __init__(
        self,
        tools: Iterable[Tool | Callable[..., Any]] | Mapping[str, Tool | Callable[..., Any]] | None = None,
        tool_executor: ToolExecutor | None = None,
    ) -> None:
        self._tools: dict[str, Tool] = {}
        self._executor = tool_executor
        if isinstance(tools, Mapping):
            tools = tools.values()
        for t in tools or ():
            self.register(t)

    def register(self, t: Tool | Callable[..., Any]) -> Tool:
        if not isinstance(t, Tool):
            t = _tool_of(t)
        self._tools[t.name] = t
        return t

    def copy(self) -> ToolRegistry:
        """A new registry with the same tools and tool_executor."""
        return ToolRegistry(self._tools.values(), self._executor)

    def register_module(self, module: types.ModuleType) -> list[Tool]:
        """Register every ``@tool`` function of a module (e.g. an agent's tools.py)."""
        found = [v.__hive_tool__ for v in vars(module).values() if hasattr(v, "__hive_tool__")]
        for t in found:
            self.register(t)
        return found

    def __contains__(self, name: str) -> bool:
        """True when a call of ``name`` can be dispatched (registered, or a tool_executor)."""
        return name in self._tools or self._executor is not None

    def has(self, name: str) -> bool:
        """True when a registered tool has this name (a tool_executor may still serve others)."""
        return name in self._tools

    def names(self) -> list[str]:
        return sorted(self._tools)

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def schemas(self, names: Iterable[str]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for n in names:
            t = self._tools.get(n)
            if t is not None:
                out.append(t.schema())
            elif self._executor is not None:
                out.append(Tool(n, "", {"type": "object", "properties": {}}).schema())
        return out

    async def call(self, name: str, arguments: dict[str, Any]) -> Any:  # Any: the tool's own result
        """Run a tool. Raises ToolError for an unknown tool; other exceptions pass through."""
        t = self._tools.get(name)
        if t is not None and t.fn is not None:
            fn = t.fn
            if inspect.iscoroutinefunction(fn):
                return await fn(**arguments)
            return await trio.to_thread.run_sync(lambda: fn(**arguments))
        if self._executor is not None:
            result = self._executor(name, arguments)
            if inspect.isawaitable(result):
                result = await result
            return result
        raise ToolError(f"unknown tool {name!r} (known: {', '.join(self.names()) or 'none'})")


def result_to_text(value: object) -> str:
    """A tool result as the string sent back to the model."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)
