"""Tools: the ``@tool`` decorator and the ToolRegistry the executor dispatches through.

A tool's JSON schema comes from its type hints through pydantic (Optional, Literal, unions,
nested models, TypedDicts, ...) and its docstring (Google, NumPy or reST parameter sections,
read by docstring-parser). The model's arguments are validated before the call: against that
pydantic model for a typed function (which also converts them, e.g. a dict into a nested
model), or with jsonschema against a hand-written ``parameters`` schema. A failure raises
``ToolArgumentsError`` naming the field; the tool never sees those arguments. What cannot
be checked (a hint without a JSON schema, an invalid hand-written schema) is logged as a
warning and passes unchecked, as before.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, overload

import attrs
import trio

from hive_actors.errors import ToolArgumentsError, ToolError

if TYPE_CHECKING:  # imported when a tool is made: `import hive_actors` stays fast
    import jsonschema.protocols
    import pydantic

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger(__name__)


@attrs.frozen
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]  # JSON schema of the arguments object
    fn: Callable[..., Any] | None = attrs.field(default=None, eq=False, repr=False)
    # the pydantic model of ``fn``'s arguments, when the schema was made from its type hints
    arguments_model: type[pydantic.BaseModel] | None = attrs.field(default=None, eq=False, repr=False)
    # False: calling it twice may do harm (a payment, an email). A resume that finds a call of
    # it in flight at the interruption stops with an error instead of calling it again.
    idempotent: bool = True

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

    def check_arguments(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """The arguments as the tool receives them, validated (and, for a typed function,
        converted). Raises ``ToolArgumentsError`` naming each bad field."""
        if self.arguments_model is not None:
            return _validate_with_model(self.name, self.arguments_model, arguments)
        validator = _schema_validator(self)
        errors = validator.iter_errors(arguments) if validator else ()
        problems = [line for e in errors for line in _jsonschema_problems(e)]
        if problems:
            raise ToolArgumentsError(self.name, sorted(problems))
        return arguments


def _validate_with_model(
    name: str, model: type[pydantic.BaseModel], arguments: dict[str, Any]
) -> dict[str, Any]:
    import pydantic

    try:
        parsed = model.model_validate(arguments)
    except pydantic.ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in err['loc']) or '(arguments)'}: {err['msg']}"
            for err in exc.errors(include_url=False)
        ]
        raise ToolArgumentsError(name, problems) from None
    return {**dict(parsed), **(parsed.model_extra or {})}


@functools.lru_cache(maxsize=1024)
def _schema_validator_cached(name: str, schema_json: str) -> jsonschema.protocols.Validator | None:
    import jsonschema

    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as exc:  # warned once per schema (cached), calls go through
        log.warning("tool %r: parameters schema is not valid JSON schema, arguments are not "
                    "checked (%s)", name, exc.message)
        return None
    return cls(schema)


def _schema_validator(t: Tool) -> jsonschema.protocols.Validator | None:
    return _schema_validator_cached(t.name, json.dumps(t.parameters, sort_keys=True, default=str))


def _jsonschema_problems(error: Any) -> list[str]:  # a jsonschema.ValidationError
    """``path: message`` lines; a missing required property is named by its own path."""
    path = [str(p) for p in error.absolute_path]
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [n for n in error.validator_value if n not in error.instance]
        return [f"{'.'.join([*path, str(n)])}: Field required" for n in missing]
    return [f"{'.'.join(path) or '(arguments)'}: {error.message}"]


def _strip_titles(schema: Any) -> Any:
    """``schema`` without pydantic's generated ``title`` keys (they only cost tokens); a
    property that is itself named "title" stays."""
    if isinstance(schema, list):
        return [_strip_titles(v) for v in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title" and isinstance(value, str):
            continue
        if key in ("properties", "$defs") and isinstance(value, dict):
            out[key] = {k: _strip_titles(v) for k, v in value.items()}
        else:
            out[key] = _strip_titles(value)
    return out


def arguments_model(fn: Callable[..., Any], name: str | None = None) -> type[pydantic.BaseModel]:
    """The pydantic model of ``fn``'s keyword arguments: one field per parameter, typed by its
    hint (``Any`` without one), described by the docstring. ``**kwargs`` admits extra fields.

    A hint pydantic cannot describe (an arbitrary class, ``typing.TypedDict`` before Python
    3.12) makes that parameter untyped, with a warning naming the tool and the parameter: a
    tool that worked without validation keeps working.
    """
    import docstring_parser
    import pydantic

    tool_name: str = name or getattr(fn, "__name__", None) or repr(fn)
    sig = inspect.signature(fn)
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:  # unresolvable forward refs: fall back to no types
        hints = {}
    docs = {p.arg_name: p.description for p in docstring_parser.parse(inspect.getdoc(fn) or "").params}
    fields: dict[str, Any] = {}
    extra: typing.Literal["allow", "forbid"] = "forbid"
    for pname, param in sig.parameters.items():
        if param.kind is param.VAR_KEYWORD:
            extra = "allow"
            continue
        if param.kind is param.VAR_POSITIONAL:
            continue
        default = ... if param.default is param.empty else param.default
        hint = _describable(hints.get(pname, Any), tool_name, pname)
        fields[pname] = (hint, pydantic.Field(default, description=docs.get(pname) or None))
    model: type[pydantic.BaseModel] = pydantic.create_model(
        f"{tool_name}_arguments", __config__=pydantic.ConfigDict(extra=extra), **fields
    )
    return model


def _describable(hint: Any, tool_name: str, parameter: str) -> Any:
    """``hint`` if pydantic can validate it and make its JSON schema, else ``Any`` (warned)."""
    import pydantic

    try:
        pydantic.TypeAdapter(hint).json_schema()
        return hint
    except (pydantic.PydanticUserError, pydantic.PydanticSchemaGenerationError, TypeError) as exc:
        reason = str(exc).splitlines()[0]
        log.warning("tool %r: parameter %r is left untyped (no JSON schema for %r: %s)",
                    tool_name, parameter, hint, reason)
        return Any


def schema_from_callable(fn: Callable[..., Any]) -> dict[str, Any]:
    """JSON schema of ``fn``'s keyword arguments, from its type hints and docstring."""
    return schema_of(arguments_model(fn))


def schema_of(model: type[pydantic.BaseModel]) -> dict[str, Any]:
    """The JSON schema a model is offered for an arguments model."""
    schema: dict[str, Any] = _strip_titles(model.model_json_schema())
    schema.setdefault("properties", {})
    schema.setdefault("required", [])
    if schema.get("additionalProperties") is False:
        del schema["additionalProperties"]  # extra fields are refused at validation anyway
    return schema


@overload
def tool(
    fn: F, *, name: str | None = None, description: str | None = None,
    parameters: dict[str, Any] | None = None, idempotent: bool = True,
) -> F: ...


@overload
def tool(
    fn: None = None, *, name: str | None = None, description: str | None = None,
    parameters: dict[str, Any] | None = None, idempotent: bool = True,
) -> Callable[[F], F]: ...


def tool(
    fn: F | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    parameters: dict[str, Any] | None = None,
    idempotent: bool = True,
) -> F | Callable[[F], F]:
    """Mark a function as a tool. Use bare (``@tool``) or with overrides (``@tool(name=...)``).
    ``idempotent=False`` declares it not safe to repeat (see `Tool.idempotent`).

    The function is returned unchanged, with a ``__hive_tool__`` attribute holding its Tool.
    """

    def mark(f: F) -> F:
        doc = inspect.getdoc(f) or ""
        tool_name = name or f.__name__
        model = None if parameters else arguments_model(f, tool_name)
        f.__hive_tool__ = Tool(  # type: ignore[attr-defined]
            name=tool_name,
            description=description if description is not None else doc.split("\n\n")[0],
            parameters=parameters or schema_of(model),  # type: ignore[arg-type]
            fn=f,
            arguments_model=model,
            idempotent=idempotent,
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
        """Run a tool with validated arguments. Raises ``ToolArgumentsError`` (before the call)
        when the arguments do not fit the tool's schema, ToolError for an unknown tool; the
        tool's own exceptions pass through."""
        t = self._tools.get(name)
        if t is not None:
            arguments = t.check_arguments(arguments)
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
