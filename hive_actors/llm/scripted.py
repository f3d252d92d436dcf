"""ScriptedLLM: an offline LLMProvider that plays scripted replies per node, for tests, demos
and benchmarks.

    llm = ScriptedLLM({"intake": [Reply("Hello!", [call("set_output", key="topic", value="x")])]},
                      autopilot=True)

Each node id has a list of replies, played in order, one per model call of that node (the key
``"*"`` serves any node without its own list), for each execution (session) anew. When a node's replies run out (or it has none)
and ``autopilot`` is on, the reply calls ``set_output`` for every required output key still
missing (``request.output_keys``) with a plausible value, or says "Done." when nothing is
missing; without autopilot that is an `LLMError`. Text streams in ``chunk_size`` pieces; each
call first sleeps ``delay`` seconds of trio time (so MockClock's autojump skips it), rounded up
to a whole millisecond: calls due in the same millisecond share one timer, which keeps
thousands of concurrent calls cheap. Requests are recorded in ``requests`` (oldest first);
only the latest ``keep_requests`` are sure to stay (up to twice as many are kept).

Script files (JSON): ``{"node_id": [{"text": "...", "tool_calls": [{"name": "set_output",
"arguments": {"key": "k", "value": "v"}}]}, ...], ...}``.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import trio

from hive_actors.errors import ConfigurationError, LLMError
from hive_actors.llm.provider import (
    Chunk,
    LLMRequest,
    StreamReset,
    TextDelta,
    ToolCall,
    TurnEnd,
    Usage,
)


@attrs.frozen
class ScriptedCall:
    """A tool call in a script; its id is assigned when played."""

    name: str
    arguments: dict[str, Any] | str = attrs.field(factory=dict)  # JSON arguments, or raw text


def call(name: str, /, **arguments: Any) -> ScriptedCall:
    """A scripted tool call: ``call("set_output", key="x", value="1")``."""
    return ScriptedCall(name, arguments)


def _call_tuple(calls: Iterable[ScriptedCall]) -> tuple[ScriptedCall, ...]:
    return tuple(calls)


@attrs.frozen
class Reply:
    """One scripted model turn. ``reset_after`` emits a StreamReset after that many chunks
    (then plays the turn in full); ``error`` makes the call raise instead."""

    text: str = ""
    tool_calls: tuple[ScriptedCall, ...] = attrs.field(default=(), converter=_call_tuple)
    reset_after: int | None = None
    error: str | None = None


_DONE = Reply("Done.")


# What a script lists per node: a Reply, its text, or its JSON form (see the module docs).
ScriptItem = Reply | str | Mapping[str, Any]


def _as_reply(item: ScriptItem) -> Reply:
    if isinstance(item, Reply):
        return item
    if isinstance(item, str):
        return Reply(item)
    if isinstance(item, Mapping):
        calls = tuple(
            c if isinstance(c, ScriptedCall) else ScriptedCall(c["name"], c.get("arguments", {}))
            for c in item.get("tool_calls", ())
        )
        return Reply(item.get("text", ""), calls, item.get("reset_after"), item.get("error"))
    raise TypeError(f"a scripted reply must be a Reply, str or dict, got {type(item).__name__}")


def plausible_value(key: str) -> str:
    """What autopilot sets for an output key: "false" for yes/no-sounding keys (so feedback
    loops end), otherwise a short text naming the key."""
    lowered = key.lower()
    if lowered.startswith(("is_", "has_", "needs_", "should_", "continue", "retry", "more_")):
        return "false"
    return f"autopilot {key}"


class _Tick:
    """The calls due in one millisecond: one of them sleeps (``leading``), the rest park."""

    __slots__ = ("rang", "leading", "lot")

    def __init__(self) -> None:
        self.rang = False
        self.leading = False
        self.lot = trio.lowlevel.ParkingLot()


class _SharedTimer:
    """Sleeps of many tasks on few trio timers: a sleep ends at the first whole millisecond
    (of trio time) at or after its deadline, and the sleeps ending in one millisecond share one
    ``trio.sleep_until``. A cancelled sleeper hands the timer to a parked one."""

    def __init__(self) -> None:
        self._ticks: dict[int, _Tick] = {}

    async def sleep(self, delay: float) -> None:
        due = math.ceil((trio.current_time() + delay) * 1000 - 1e-6)
        tick = self._ticks.get(due)
        if tick is None:
            tick = self._ticks[due] = _Tick()
        while not tick.rang:
            if tick.leading:
                await tick.lot.park()
                continue
            tick.leading = True
            try:
                await trio.sleep_until(due / 1000)
                tick.rang = True
            finally:
                tick.leading = False
                if (tick.rang or not tick.lot) and self._ticks.get(due) is tick:
                    del self._ticks[due]
                tick.lot.unpark_all()  # rang: all return; else the first to run leads


class ScriptedLLM:
    def __init__(
        self,
        script: Mapping[str, Sequence[ScriptItem]] | None = None,
        *,
        autopilot: bool = False,
        delay: float = 0.0,
        chunk_size: int = 16,
        keep_requests: int = 1000,
    ) -> None:
        self._script = {k: [_as_reply(r) for r in v] for k, v in (script or {}).items()}
        # (session id, script key) -> replies played: each execution plays the script from its
        # start, and a resumed one (same session) goes on where it paused
        self._played: dict[tuple[str, str], int] = {}
        self.autopilot = autopilot
        self.delay = delay
        self.chunk_size = max(1, chunk_size)
        self.keep_requests = max(1, keep_requests)
        self.requests: list[LLMRequest] = []
        self._ids = itertools.count(1)
        self._timer = _SharedTimer()

    @classmethod
    def from_file(cls, path: str | Path, **kw: Any) -> ScriptedLLM:
        """A ScriptedLLM playing the JSON script at ``path`` (see module docs); raises
        ConfigurationError naming the file when it cannot be read or parsed."""
        try:
            script = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"scripted model: cannot read script {path}: {exc}") from None
        return cls(script, **kw)

    def calls_for(self, node_id: str) -> list[LLMRequest]:
        """The requests made for ``node_id`` so far."""
        return [r for r in self.requests if r.node_id == node_id]

    def _next(self, request: LLMRequest) -> Reply:
        key = request.node_id if request.node_id in self._script else "*"
        replies = self._script.get(key, [])
        played = (request.session_id, key)
        n = self._played.get(played, 0)
        if key != "*":
            # a visit resumed from a checkpoint (perhaps in a new process) already holds its
            # earlier turns: never replay a reply the conversation already has
            n = max(n, _turns_in_visit(request))
        if n < len(replies):
            self._played[played] = n + 1
            return replies[n]
        if not self.autopilot:
            raise LLMError(f"ScriptedLLM: no scripted reply left for node {request.node_id!r}")
        if request.output_keys:
            return Reply("", tuple(call("set_output", key=k, value=plausible_value(k))
                                   for k in request.output_keys))
        return _DONE

    async def stream(self, request: LLMRequest) -> AsyncIterator[Chunk]:
        requests = self.requests
        requests.append(request)
        if len(requests) > 2 * self.keep_requests:  # trimmed in batches: O(1) amortised
            del requests[:-self.keep_requests]
        reply = self._next(request)
        if self.delay:
            await self._timer.sleep(self.delay)
        if reply.error is not None:
            raise LLMError(reply.error)
        text = reply.text
        size = self.chunk_size
        pieces = [text[i:i + size] for i in range(0, len(text), size)]
        if reply.reset_after is not None:
            for piece in pieces[: reply.reset_after]:
                yield TextDelta(piece)
            yield StreamReset("scripted reset")
        for piece in pieces:
            yield TextDelta(piece)
        for c in reply.tool_calls:
            args = c.arguments if isinstance(c.arguments, str) else json.dumps(c.arguments)
            yield ToolCall(f"call_{next(self._ids)}", c.name, args)
        usage = Usage(input_tokens=sum(len(str(m.get("content") or "")) for m in request.messages) // 4 + 1,
                      output_tokens=len(text) // 4 + 1)
        yield TurnEnd("tool_calls" if reply.tool_calls else "stop", usage)


def _turns_in_visit(request: LLMRequest) -> int:
    """Assistant turns since the opening message of the requesting node's current visit."""
    from hive_actors.graph.nodes.conversation import phase_start

    messages = list(request.messages)
    start = phase_start(messages, request.node_id)
    if start is None:
        return 0
    return sum(1 for m in messages[start:] if m.get("role") == "assistant")
