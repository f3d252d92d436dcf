"""Headless mode: a terminal (or pipe) as the client of one execution.

Client output (``CLIENT_OUTPUT_DELTA``) is printed as it streams. When a node asks for input
(``CLIENT_INPUT_REQUESTED``) one line is read from stdin and injected. Stdin is read by a trio
task on a non-blocking dup of the fd (`trio.lowlevel.FdStream`), so reading never blocks the
loop, is cancelled with the run, and never swallows a line after it. At end of input (EOF on a
pipe, Ctrl-D on a terminal) the execution is paused at its waiting node and the command to
resume it is printed; once EOF is seen, later input requests pause at once.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TextIO

import trio

from hive_actors.errors import HiveActorsError
from hive_actors.graph.result import ExecutionResult
from hive_actors.events import AgentEvent, EventType
from hive_actors.status import ExecutionStatus

if TYPE_CHECKING:
    from hive_actors.runtime.agent_runtime import AgentRuntime

__all__ = ["LineReader", "run_headless"]


class LineReader:
    """Reads lines from a trio ReceiveStream; ``None`` means end of input."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self._stream = stream
        self._buf = bytearray()
        self.eof = False

    @classmethod
    def from_fd(cls, fd: int) -> LineReader:
        """A reader on a duplicate of ``fd``; `aclose` restores blocking mode for others."""
        return cls(trio.lowlevel.FdStream(os.dup(fd)))

    async def readline(self) -> str | None:
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                line = bytes(self._buf[:nl])
                del self._buf[: nl + 1]
                return line.decode("utf-8", "replace").rstrip("\r")
            if self.eof:
                if self._buf:
                    line = bytes(self._buf)
                    self._buf.clear()
                    return line.decode("utf-8", "replace")
                return None
            chunk = await self._stream.receive_some(65536)
            if not chunk:
                self.eof = True
            else:
                self._buf += chunk

    def isatty(self) -> bool:
        """Whether the stream is a terminal (which echoes what the user types)."""
        fileno = getattr(self._stream, "fileno", None)  # a file stream has one; others not
        try:
            return fileno is not None and os.isatty(fileno())
        except OSError:
            return False

    async def aclose(self) -> None:
        fd = getattr(self._stream, "fileno", lambda: None)()
        if fd is not None:
            try:
                os.set_blocking(fd, True)  # the dup shares the open file with the real stdin
            except OSError:
                pass
        await self._stream.aclose()




async def run_headless(
    runtime: AgentRuntime,
    start: Callable[[], Awaitable[str]],
    *,
    entry_point_id: str,
    reader: LineReader | None = None,
    out: TextIO | None = None,
    resume_hint: Callable[[str], str] | None = None,
    show_output: bool | None = None,
) -> ExecutionResult:
    """Run one execution with this process's terminal as its client and return its result.

    ``start()`` triggers (or resumes) the execution and returns its id; it is called after
    the client has subscribed, so no request is missed. ``reader`` defaults to stdin, ``out``
    to stdout. On a pause, ``resume_hint(session_id)`` is printed. On completion the output
    is printed as JSON when ``show_output`` says so (None: when the agent streamed nothing,
    so what it said is not printed twice).
    """
    out = out or sys.stdout
    own_reader = reader is None
    reader = reader or LineReader.from_fd(sys.stdin.fileno())
    mine: dict[str, str] = {}
    requests: trio.MemorySendChannel[AgentEvent]
    requests, pending = trio.open_memory_channel[AgentEvent](64)

    echo = not reader.isatty()
    last_node: str | None = None  # the node whose text is on screen (None: a fresh line)
    out_closed = False
    streamed = False  # any client output shown

    def show(event: AgentEvent) -> None:
        nonlocal last_node, out_closed, streamed
        if out_closed:
            return
        try:
            if event.data.get("reset") or (last_node not in (None, event.node_id)):
                out.write("\n\n")  # a restarted turn, or another node talking: a new paragraph
            last_node = event.node_id
            streamed = True
            out.write(str(event.data.get("content", "")))
            out.flush()
        except BrokenPipeError:  # the reader went away (e.g. `| head`): the run goes on, unseen
            out_closed = True

    sub_out = runtime.subscribe_to_events([EventType.CLIENT_OUTPUT_DELTA], show,
                                          stream_id=entry_point_id, lossless=True)
    # a live client: while subscribed, input requests of this stream wait for us
    sub_in = runtime.subscribe_to_events([EventType.CLIENT_INPUT_REQUESTED], requests.send_nowait,
                                         stream_id=entry_point_id)

    async def answer() -> None:
        nonlocal last_node
        async for event in pending:
            if mine.get("id") not in (None, event.execution_id):
                continue
            node_id = event.node_id
            if node_id is None:  # nodes emit input requests, so this is a runtime bug
                raise HiveActorsError(f"client input request without a node id: {event!r}")
            if last_node is None and event.data.get("prompt"):
                out.write(str(event.data["prompt"]))  # asked again on resume: show the question
            out.write("\n> ")
            out.flush()
            line = await reader.readline() if not reader.eof else None
            if line is not None and echo:
                out.write(line + "\n")  # piped input: show the answer as if typed
            last_node = None
            if line is None:
                runtime.unsubscribe_from_events(sub_in)  # nobody answers from now on
                if not runtime.decline_input(node_id, event.execution_id):
                    runtime.pause_execution(event.execution_id)
                continue
            await runtime.inject_input(node_id, line, execution_id=event.execution_id)

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(answer)
            execution_id = mine["id"] = await start()
            result = await runtime.wait_for_result(execution_id)
            nursery.cancel_scope.cancel()
    finally:
        runtime.unsubscribe_from_events(sub_out)
        runtime.unsubscribe_from_events(sub_in)
        if own_reader:
            with trio.CancelScope(shield=True):
                await reader.aclose()
    out.write("\n")
    if result.status == ExecutionStatus.PAUSED and resume_hint is not None:
        out.write(f"Session {result.session_id} paused at node {result.paused_at!r}.\n")
        out.write(resume_hint(result.session_id) + "\n")
    elif result.status == ExecutionStatus.COMPLETED:
        if show_output or (show_output is None and not streamed):
            out.write(json.dumps(result.output, ensure_ascii=False, default=str, indent=1) + "\n")
        out.write(f"Session {result.session_id} completed.\n")
    else:
        out.write(f"Session {result.session_id} {result.status}: {result.error}\n")
    out.flush()
    return result
