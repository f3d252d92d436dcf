"""Tools of the LLM loop: the synthetic ``set_output`` / ``ask_user`` and dispatch of one
turn's tool calls. Real tools of a turn run concurrently; every failure (unknown tool, bad
JSON arguments, an exception, a timeout) becomes an error result for the model."""

from __future__ import annotations

from typing import Any

import attrs
import trio

from hive_actors.graph.nodes.base import NodeContext, ToolSchemas
from hive_actors.graph.nodes.conversation import decode_value
from hive_actors.graph.steps import NodeSteps, Turn, UnsafeToRepeatError
from hive_actors.llm.provider import ToolCall
from hive_actors.errors import ToolArgumentsError, ToolError
from hive_actors.events import EventType
from hive_actors.tools.context import recording_call
from hive_actors.tools.result import tool_output

SET_OUTPUT = "set_output"
ASK_USER = "ask_user"


def tool_schemas(ctx: NodeContext) -> ToolSchemas:
    """The tool schemas offered to ``ctx.node`` and their names (kept per graph and registry
    in ``ctx.lookups.tool_schemas``)."""
    node = ctx.node
    cache = ctx.lookups.tool_schemas.setdefault(ctx.services.tools, {})
    hit = cache.get(node.id)
    if hit is not None:
        return hit
    schemas = list(ctx.services.tools.schemas(node.tools))
    if node.output_keys:
        schemas.append(_schema(
            SET_OUTPUT, "Set one output of this step. Call once per output key.",
            {"key": {"type": "string", "enum": list(node.output_keys)},
             "value": {"type": "string", "description": "the value; JSON is decoded"}},
            ["key", "value"],
        ))
    if node.client_facing:
        schemas.append(_schema(
            ASK_USER, "Ask the user a question and wait for the reply.",
            {"question": {"type": "string"}}, ["question"],
        ))
    names = frozenset(s["function"]["name"] for s in schemas)
    hit = cache[node.id] = (tuple(schemas), names)
    return hit


def _schema(name: str, description: str, props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "function", "function": {
        "name": name, "description": description,
        "parameters": {"type": "object", "properties": props, "required": required},
    }}


@attrs.define(slots=True)
class ToolResult:
    call: ToolCall
    content: str
    is_error: bool = False
    # for the tool log: arguments, duration_ms, and what the tool recorded (an MCP server,
    # the arguments as sent with context parameters filled in)
    details: dict[str, Any] = attrs.field(factory=dict)
    parts: tuple[dict[str, Any], ...] = ()  # content parts (images) for the model


async def run_tool_calls(ctx: NodeContext, calls: list[ToolCall], offered: frozenset[str],
                         outputs: dict[str, Any], steps: NodeSteps | None = None,
                         turn: Turn = (0, 0), replayed: bool = False,
                         ) -> tuple[list[ToolResult], str | None]:
    """Run one turn's calls; results in call order, and the question if ask_user was called.
    ``outputs`` is updated by set_output calls.

    With ``steps`` each real tool result is recorded as it completes (step ``turn``). A
    ``replayed`` turn takes recorded results instead of calling; a call without one may have
    been in flight at the interruption and runs again (its events say ``rerun``), unless the
    tool is not safe to repeat and was recorded as started: `UnsafeToRepeatError`."""
    results: list[ToolResult | None] = [None] * len(calls)
    question: str | None = None
    emit = ctx.services.events.emit
    node_id = ctx.node.id
    real: list[tuple[int, ToolCall, dict[str, Any]]] = []
    reruns: set[int] = set()
    flag = {"replayed": True} if replayed else {}
    for i, call in enumerate(calls):
        recorded = steps.tool_result(turn, call.id) if steps is not None and replayed else None
        if recorded is not None:
            results[i] = _recorded_result(call, recorded)
            continue
        try:
            args: dict[str, Any] | None = call.parsed_arguments()
        except ValueError as exc:
            args, bad = None, exc
        # a real tool of a replayed turn without a recorded result: it may have run already
        rerun = (replayed and args is not None and call.name in offered
                 and call.name not in (SET_OUTPUT, ASK_USER))
        await emit(EventType.TOOL_CALL_STARTED, node_id, tool_use_id=call.id,
                   tool_name=call.name, tool_input=call.arguments,
                   **({"rerun": True} if rerun else flag))
        if args is None:
            results[i] = ToolResult(call, f"ERROR: arguments of {call.name!r} are not a JSON object: {bad}", True)
            continue
        if call.name not in offered:
            results[i] = ToolResult(
                call, f"ERROR: unknown tool {call.name!r}; available: {sorted(offered)}", True)
        elif call.name == SET_OUTPUT:
            results[i] = await _set_output(ctx, call, args, outputs, flag)
        elif call.name == ASK_USER:
            question = str(args.get("question", "")) or "Please reply."
            results[i] = ToolResult(call, "Waiting for the user's reply.")
        else:
            if rerun:
                _check_repeatable(ctx, steps, turn, call)
                reruns.add(i)
            real.append((i, call, args))

    async def one(i: int, call: ToolCall, args: dict[str, Any]) -> None:
        result = results[i] = await _call_recorded(ctx, call, args, steps, turn)
        if i in reruns:  # it may have run before the interruption: at-least-once
            result.details["rerun"] = True

    if len(real) == 1:
        await one(*real[0])
    elif real:
        async with trio.open_nursery() as nursery:
            for i, call, args in real:
                nursery.start_soon(one, i, call, args)
    done = [r for r in results if r is not None]
    for r in done:
        replay = {"replayed": True} if replayed and "rerun" not in r.details else {}
        await emit(EventType.TOOL_CALL_COMPLETED, node_id, tool_use_id=r.call.id,
                   tool_name=r.call.name, result=r.content, is_error=r.is_error,
                   **r.details, **replay)
    return done, question


def _check_repeatable(ctx: NodeContext, steps: NodeSteps | None, turn: Turn,
                      call: ToolCall) -> None:
    """Raise `UnsafeToRepeatError` when ``call`` was started before the interruption and its
    tool declares itself not safe to repeat."""
    tool = ctx.services.tools.get(call.name)
    if tool is None or tool.idempotent or steps is None or not steps.tool_started(turn, call.id):
        return
    raise UnsafeToRepeatError(
        f"tool {call.name!r} (call {call.id!r}) was in flight when the session was "
        f"interrupted and is declared not safe to repeat (idempotent=False): whether it took "
        f"effect is unknown, so it is not called again; check its effect, then fork the "
        f"session from an earlier checkpoint (hive-actors fork ... --at SEQ)", ctx.node.id)


async def _call_recorded(ctx: NodeContext, call: ToolCall, args: dict[str, Any],
                         steps: NodeSteps | None, turn: Turn) -> ToolResult:
    """Call the tool; with ``steps``, its start (a tool not safe to repeat) and its result
    are recorded, durable before the result is used."""
    if steps is None:
        return await _call_tool(ctx, call, args)
    tool = ctx.services.tools.get(call.name)
    if tool is not None and not tool.idempotent:
        await steps.record_tool_start(turn, call.id, call.name)
    result = await _call_tool(ctx, call, args)
    await steps.record_tool(turn, call.id, {
        "content": result.content, "is_error": result.is_error, "parts": list(result.parts),
        "details": result.details})
    return result


def _recorded_result(call: ToolCall, rec: dict[str, Any]) -> ToolResult:
    details = rec.get("details")
    return ToolResult(call, str(rec.get("content", "")), bool(rec.get("is_error")),
                      details=dict(details) if isinstance(details, dict) else {},
                      parts=tuple(rec.get("parts") or ()))


async def _set_output(ctx: NodeContext, call: ToolCall, args: dict[str, Any],
                      outputs: dict[str, Any], flag: dict[str, Any]) -> ToolResult:
    key = args.get("key")
    keys = ctx.node.output_keys
    if key not in keys:
        return ToolResult(call, f"ERROR: invalid output key {key!r}; valid keys: {list(keys)}", True)
    if "value" not in args:
        return ToolResult(call, f"ERROR: set_output({key!r}) needs a value", True)
    value = outputs[key] = decode_value(args["value"])
    await ctx.services.events.emit(EventType.OUTPUT_KEY_SET, ctx.node.id, key=key, value=value,
                                    **flag)
    return ToolResult(call, f"Output {key!r} set.")


class ToolTimeout(ToolError):
    """A tool call outlived ``ExecutorConfig.tool_timeout``."""


async def _call_tool(ctx: NodeContext, call: ToolCall, args: dict[str, Any]) -> ToolResult:
    """One tool call as the result the model sees, with what the tool log records; every
    failure becomes an error result (an ``execute_tool`` span, marked failed, when tracing
    is on)."""
    tracing = ctx.services.config.tracing
    started = trio.current_time()
    with recording_call() as details:
        try:
            if tracing is None:
                result = _as_result(call, await _invoke(ctx, call, args))
            else:
                with tracing.tool(call.name, call.id, call.arguments) as span:
                    result = _as_result(call, await _invoke(ctx, call, args))
                    tracing.tool_result(span, result.content)
                    if result.is_error:  # the tool answered with an error (an MCP isError)
                        tracing.fail(span, "tool_error", result.content)
        except (ToolArgumentsError, ToolTimeout) as exc:  # ToolArgumentsError: it never ran
            result = ToolResult(call, f"ERROR: {exc}", True)
        except Exception as exc:
            result = ToolResult(call, f"ERROR: tool {call.name!r} raised {type(exc).__name__}: "
                                      f"{exc}", True)
    result.details = {"arguments": args, **details,
                      "duration_ms": round((trio.current_time() - started) * 1000, 3)}
    return result


def _as_result(call: ToolCall, value: object) -> ToolResult:
    out = tool_output(value)
    return ToolResult(call, out.text, out.is_error, parts=out.parts)


async def _invoke(ctx: NodeContext, call: ToolCall, args: dict[str, Any]) -> object:
    """The tool's result; raises what it raised, or ``ToolTimeout``."""
    services = ctx.services
    timeout = services.config.tool_timeout
    async with services.tool_limiter:
        with trio.move_on_after(timeout if timeout is not None else float("inf")):
            return await services.tools.call(call.name, args)
    raise ToolTimeout(f"tool {call.name!r} timed out after {timeout}s")


def assistant_message(text: str, calls: list[ToolCall]) -> dict[str, Any]:
    msg: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        msg["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in calls
        ]
    return msg


def tool_message(result: ToolResult) -> dict[str, Any]:
    content: Any = list(result.parts) if result.parts else result.content
    return {"role": "tool", "tool_call_id": result.call.id, "content": content}

