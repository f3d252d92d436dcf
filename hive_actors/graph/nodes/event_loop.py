"""event_loop nodes: the LLM turn loop (SEMANTICS §3).

Each iteration is one model turn: stream the reply (text deltas as events), run its tool calls,
then decide. The node succeeds at the end of a turn after which every required output key is
set (a node without output keys: at the end of a turn without tool calls). A client-facing
node that asked (``ask_user``) or replied with text only waits for client input; when none
comes within the input timeout the node stops with ``paused`` and runs again on resume. Any
other text-only turn gets a nudge. ``max_iterations`` bounds the turns.

With a step journal (``GraphExecutor(step_log=...)``, see `hive_actors.graph.steps`) every model
turn, tool result and client input is recorded, durable before the next step uses it; when
the node runs again after a crash, ``stop()`` or a pause, the recorded steps are replayed
into the conversation (no model call, no tool call, no text deltas; their events carry
``replayed``) and the node goes on live from the first step without a record.
"""

from __future__ import annotations

from typing import Any

from hive_actors.errors import NodeError
from hive_actors.graph.nodes.base import NodeContext, NodeImpl, NodeOutcome, register_node_type
from hive_actors.graph.nodes.conversation import (
    nudge,
    opening_message,
    phase_start,
    recover_outputs,
    system_prompt,
)
from hive_actors.graph.nodes.llm_tools import (
    assistant_message,
    run_tool_calls,
    tool_message,
    tool_schemas,
)
from hive_actors.graph.steps import NodeSteps, UnsafeToRepeatError
from hive_actors.llm.provider import (
    LLMRequest,
    StreamReset,
    TextDelta,
    ToolCall,
    TurnEnd,
    Usage,
    model_of,
)
from hive_actors.events import EventType


def max_iterations(ctx: NodeContext) -> int:
    """Turns the node may take: its ``max_iterations`` (or its ``loop_config``'s), else the
    graph's ``loop_config``, else the executor's default (cached per graph and node)."""
    cache = ctx.lookups.max_iterations
    key = (ctx.node.id, ctx.services.config.default_max_iterations)
    limit = cache.get(key)
    if limit is None:
        limit = cache[key] = _max_iterations(ctx)
    return limit


def _max_iterations(ctx: NodeContext) -> int:
    node_extra = ctx.node.extra
    for source in (node_extra, node_extra.get("loop_config") or {}, ctx.graph.loop_config):
        value = source.get("max_iterations") if isinstance(source, dict) else None
        if isinstance(value, int) and value > 0:
            return value
    return ctx.services.config.default_max_iterations


@register_node_type
class EventLoopNode(NodeImpl):
    node_type = "event_loop"
    uses_conversation = True

    async def run(self, ctx: NodeContext) -> NodeOutcome:
        if ctx.services.llm is None:
            return NodeOutcome.fail(
                "this event_loop node needs a model, and the executor has none (pass llm=...)"
            )
        try:
            return await self._run(ctx)
        except UnsafeToRepeatError as exc:
            return NodeOutcome.fail(str(exc), final=True)  # retrying would call it again

    async def _run(self, ctx: NodeContext) -> NodeOutcome:
        node, services = ctx.node, ctx.services
        steps = NodeSteps(services.step_log, node.id, ctx.visit, ctx.attempt)
        conv = ctx.conversation if ctx.conversation is not None else []
        outputs: dict[str, Any] = {}
        start = phase_start(conv, node.id) if ctx.resuming else None
        if start is not None:
            outputs = recover_outputs(conv, start, node.output_keys)
        else:
            previous = ctx.lookups.index.nodes.get(ctx.previous_node) if ctx.previous_node else None
            conv.append({"role": "user", "content": opening_message(
                node, ctx.inputs, previous, continuing=len(conv) > 0)})
        await _take_inputs(ctx, conv, steps)
        if ctx.resuming and conv and conv[-1].get("role") != "user":
            # resumed while it waited for the user, and no reply came with the resume:
            # ask the client again instead of making the model repeat its question
            if not await _wait_for_input(ctx, conv, _last_text(conv), steps):
                return NodeOutcome(False, error="waiting for client input", paused=True)
        system = system_prompt(ctx.graph, ctx.goal, node, ctx.lookups.system_prompts)
        schemas, offered = tool_schemas(ctx)
        required = node.required_output_keys
        limit = max_iterations(ctx)
        tokens = 0
        missing = [k for k in required if outputs.get(k) is None]
        for iteration in range(limit):
            at = len(conv)
            recorded = steps.replay_turn(at)
            if recorded is not None:
                text, calls, usage, stop = _turn_of(recorded[1])
                turn = (recorded[0], at)
            else:
                request = LLMRequest(
                    messages=tuple(conv), tools=schemas, system=system,
                    max_tokens=ctx.graph.max_tokens, model=node.model, node_id=node.id,
                    output_keys=tuple(missing), client_facing=node.client_facing,
                    session_id=ctx.session_id,
                )
                text, calls, usage, stop = await _stream_turn(ctx, request, iteration)
                turn = await steps.record_turn(at, _turn_record(text, calls, usage, stop))
            replayed = recorded is not None
            tokens += usage.total_tokens
            conv.append(assistant_message(text, calls))
            question = None
            if calls:
                results, question = await run_tool_calls(ctx, calls, offered, outputs, steps,
                                                          turn, replayed)
                conv.extend(tool_message(r) for r in results)
            await services.events.emit(
                EventType.LLM_TURN_COMPLETED, node.id, iteration=iteration, stop_reason=stop,
                input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
                cached_tokens=usage.cached_tokens, cost_usd=usage.cost_usd,
                tool_calls=len(calls),
                # a replayed turn streams no deltas: its text comes with this event
                **({"replayed": True, "text": text} if replayed else {}),
            )
            missing = [k for k in required if outputs.get(k) is None]
            if question is None and not missing and (node.output_keys or not calls):
                return NodeOutcome.ok(outputs, tokens=tokens)
            if question is not None or (not calls and node.client_facing):
                got = await _wait_for_input(ctx, conv, question or text, steps)
                if not got:
                    return NodeOutcome(False, error="waiting for client input", paused=True,
                                       tokens=tokens)
            elif not calls:
                conv.append({"role": "user", "content": nudge(missing)})
        return NodeOutcome.fail(
            f"max_iterations ({limit}) reached with required output(s) {missing} still unset",
            tokens=tokens,
        )


async def _stream_turn(ctx: NodeContext, request: LLMRequest,
                       iteration: int) -> tuple[str, list[ToolCall], Usage, str]:
    """One model call: its final text, tool calls, usage and stop reason (a ``chat`` span
    when tracing is on)."""
    tracing = ctx.services.config.tracing
    if tracing is None:
        return await _stream(ctx, request, iteration)
    llm = ctx.services.llm
    model = model_of(llm, request) if llm is not None else ""
    with tracing.chat(model, request.system, request.messages, request.max_tokens) as call:
        text, calls, usage, stop = await _stream(ctx, request, iteration)
        call.end(stop, usage, text)
    return text, calls, usage, stop


async def _stream(ctx: NodeContext, request: LLMRequest,
                  iteration: int) -> tuple[str, list[ToolCall], Usage, str]:
    """One model call, streamed as events. A StreamReset discards the text and calls so far
    and emits a delta with ``reset=True``."""
    node_id = ctx.node.id
    emit = ctx.services.events.emit
    kind = EventType.CLIENT_OUTPUT_DELTA if ctx.node.client_facing else EventType.LLM_TEXT_DELTA
    snapshot = ""
    calls: list[ToolCall] = []
    usage, stop = Usage(), "stop"
    llm = ctx.services.llm
    if llm is None:  # run() fails the node before any turn when there is no model
        raise NodeError("this event_loop node needs a model, and the executor has none", node_id)
    async for chunk in llm.stream(request):
        if isinstance(chunk, TextDelta):
            snapshot += chunk.text
            await emit(kind, node_id, content=chunk.text, snapshot=snapshot, iteration=iteration)
        elif isinstance(chunk, ToolCall):
            calls.append(chunk)
        elif isinstance(chunk, StreamReset):
            snapshot = ""
            calls.clear()
            await emit(kind, node_id, content="", snapshot="", iteration=iteration,
                       reset=True, reason=chunk.reason)
        elif isinstance(chunk, TurnEnd):
            usage, stop = chunk.usage, chunk.stop_reason
    return snapshot, calls, usage, stop


def _turn_record(text: str, calls: list[ToolCall], usage: Usage, stop: str) -> dict[str, Any]:
    """A completed model turn as its step record."""
    return {"text": text, "stop": stop,
            "calls": [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in calls],
            "usage": {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
                      "cached_tokens": usage.cached_tokens, "cost_usd": usage.cost_usd}}


def _turn_of(rec: dict[str, Any]) -> tuple[str, list[ToolCall], Usage, str]:
    """A recorded turn back as (text, tool calls, usage, stop reason)."""
    u = rec.get("usage") or {}
    usage = Usage(input_tokens=int(u.get("input_tokens") or 0),
                  output_tokens=int(u.get("output_tokens") or 0),
                  cached_tokens=int(u.get("cached_tokens") or 0), cost_usd=u.get("cost_usd"))
    calls = [ToolCall(id=str(c["id"]), name=str(c["name"]), arguments=str(c["arguments"]))
             for c in rec.get("calls") or ()]
    return str(rec.get("text") or ""), calls, usage, str(rec.get("stop") or "stop")


async def _take_inputs(ctx: NodeContext, conv: list[dict[str, Any]], steps: NodeSteps) -> None:
    """Client input waiting for the node as it starts (recorded, or replayed)."""
    at = len(conv)
    replayed = steps.replay_input(at)
    if replayed is not None:
        await _add_inputs(ctx, conv, replayed, replayed=True)
        return
    items = ctx.services.inputs.take_all(ctx.node.id)
    await steps.record_input(at, items)
    await _add_inputs(ctx, conv, items)


async def _wait_for_input(ctx: NodeContext, conv: list[dict[str, Any]], prompt: str,
                          steps: NodeSteps) -> bool:
    """Ask the client and wait per the input timeout; True when input arrived (a replay
    takes the recorded input without asking)."""
    at = len(conv)
    replayed = steps.replay_input(at, waiting=True)
    if replayed is not None:
        await _add_inputs(ctx, conv, replayed, replayed=True)
        return True
    services = ctx.services
    await services.events.emit(EventType.CLIENT_INPUT_REQUESTED, ctx.node.id, prompt=prompt)
    items = await services.inputs.wait(ctx.node.id, services.config.current_input_timeout())
    await steps.record_input(at, items)
    await _add_inputs(ctx, conv, items)
    return bool(items)


def _last_text(conv: list[dict[str, Any]]) -> str:
    for message in reversed(conv):
        if message.get("role") == "assistant" and message.get("content"):
            return str(message["content"])
    return ""


async def _add_inputs(ctx: NodeContext, conv: list[dict[str, Any]], items: list[str],
                      replayed: bool = False) -> None:
    flag = {"replayed": True} if replayed else {}
    for text in items:
        conv.append({"role": "user", "content": text})
        await ctx.services.events.emit(EventType.CLIENT_INPUT_RECEIVED, ctx.node.id,
                                       content=text, **flag)
