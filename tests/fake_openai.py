"""A fake OpenAI-compatible chat-completions server for tests (127.0.0.1 only).

In a test::

    server = FakeOpenAI(FakeScript({"default": [Reply(text="hello")]}))
    base_url = await nursery.start(server.run)      # "http://127.0.0.1:PORT/v1"

As a subprocess (crash tests)::

    python tests/fake_openai.py --port 0 --script script.json   # prints the base URL

Choosing replies: a request whose messages contain the marker ``[[fake:KEY]]`` (usually in
the system prompt) takes the next reply of ``replies[KEY]``; other requests use ``default``.
When a key's list is used up, ``fallback`` answers (or, without one, a 400 error naming the
key). A reply can be an error (``status`` 429 / 500 with ``retry_after``), stream in chunks
of ``chunk_chars`` with ``first_byte_delay`` / ``chunk_delay``, drop the connection after
``drop_after`` chunks, or stall after ``hang_after`` chunks until the client goes away.
Every request is recorded (``server.requests``) with its body and whether the client closed
the connection before the response ended (``RecordedRequest.closed_early``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
from pathlib import Path
from typing import Any

import attrs
import h11
import trio

MARKER = re.compile(r"\[\[fake:([A-Za-z0-9_.\-]+)\]\]")


@attrs.frozen
class FakeToolCall:
    name: str
    arguments: str = "{}"  # the raw JSON text sent to the client
    id: str = ""  # generated when empty


@attrs.frozen
class FakeUsage:
    prompt_tokens: int = 10
    completion_tokens: int = 5
    cached_tokens: int = 0


@attrs.frozen
class Reply:
    text: str = ""
    tool_calls: tuple[FakeToolCall, ...] = ()
    finish_reason: str | None = None  # default: "tool_calls" if tool_calls else "stop"
    usage: FakeUsage = FakeUsage()
    # errors
    status: int = 200
    error_message: str = "fake error"
    retry_after: str | None = None  # Retry-After header value, e.g. "0.01" or "2"
    # streaming shape
    chunk_chars: int = 3
    first_byte_delay: float = 0.0
    chunk_delay: float = 0.0
    drop_after: int | None = None  # close the connection after this many chunks
    hang_after: int | None = None  # stop sending after this many chunks, until the client leaves


@attrs.frozen
class FakeScript:
    replies: dict[str, list[Reply]] = attrs.field(factory=dict)
    fallback: Reply | None = None
    # the last marker of a request picks its key (e.g. one in a tool result), not the first
    last_marker: bool = False


@attrs.define
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    key: str
    closed_early: bool = False
    finished: trio.Event = attrs.field(factory=trio.Event, repr=False)


class FakeOpenAI:
    """The server. ``run`` serves until cancelled; ``requests`` lists what it received."""

    def __init__(self, script: FakeScript | None = None, host: str = "127.0.0.1", port: int = 0):
        self.host, self.port = host, port
        self._queues: dict[str, list[Reply]] = {}
        self._fallback: Reply | None = None
        self._last_marker = False
        self.requests: list[RecordedRequest] = []
        self._arrived = trio.Event()  # set (and replaced) at each request
        self._ids = itertools.count(1)
        self.load(script or FakeScript())

    def load(self, script: FakeScript) -> None:
        """Replace the script (pending replies are dropped)."""
        self._queues = {k: list(v) for k, v in script.replies.items()}
        self._fallback = script.fallback
        self._last_marker = script.last_marker

    def add(self, key: str, *replies: Reply) -> None:
        """Append replies to a key's queue."""
        self._queues.setdefault(key, []).extend(replies)

    async def wait_for_requests(self, n: int) -> RecordedRequest:
        """Wait until ``n`` requests have arrived; return the n-th."""
        while len(self.requests) < n:
            await self._arrived.wait()
        return self.requests[n - 1]

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    async def run(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(self.port, host=self.host)
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started(self.base_url)
        await trio.serve_listeners(self._serve_connection, listeners)

    # -- one connection: h11 request/response cycles, keep-alive ----------------------------

    async def _serve_connection(self, stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                got = await _read_request(stream, conn)
                if got is None:
                    return
                request, body = got
                await self._answer(stream, conn, request, body)
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError):
            pass
        finally:
            await stream.aclose()

    async def _answer(self, stream, conn, request: h11.Request, body: bytes) -> None:
        headers = {k.decode().lower(): v.decode() for k, v in request.headers}
        try:
            payload = json.loads(body or b"null")
        except ValueError:
            payload = None
        rec = RecordedRequest(
            request.method.decode(), request.target.decode(), headers, payload,
            _key_of(payload, last=self._last_marker)
        )
        self.requests.append(rec)
        self._arrived.set()
        self._arrived = trio.Event()
        try:
            async with trio.open_nursery() as nursery:
                # An HTTP/1.1 client sends nothing while it waits for the answer, so EOF here
                # means it went away: record it and stop answering.
                nursery.start_soon(_watch_for_close, stream, conn, rec, nursery.cancel_scope)
                await self._respond(stream, conn, rec)
                nursery.cancel_scope.cancel()
        finally:
            rec.finished.set()

    async def _respond(self, stream, conn, rec: RecordedRequest) -> None:
        if not rec.path.rstrip("/").endswith("/chat/completions") or rec.method != "POST":
            await _send_json(stream, conn, 404, {"error": {"message": f"no route {rec.path}"}})
            return
        reply = self._next_reply(rec.key)
        if reply is None:
            msg = f"fake_openai: no scripted reply left for key {rec.key!r}"
            await _send_json(stream, conn, 400, {"error": {"message": msg, "type": "invalid_request_error"}})
            return
        if reply.first_byte_delay:
            await trio.sleep(reply.first_byte_delay)
        if reply.status != 200:
            extra = [("retry-after", reply.retry_after)] if reply.retry_after is not None else []
            err = {"error": {"message": reply.error_message, "type": "fake_error", "code": reply.status}}
            await _send_json(stream, conn, reply.status, err, extra)
            return
        model = (rec.body or {}).get("model", "fake-model")
        completion_id = f"chatcmpl-fake-{next(self._ids)}"
        if (rec.body or {}).get("stream"):
            await self._stream(stream, conn, reply, model, completion_id)
        else:
            await _send_json(stream, conn, 200, _completion(reply, model, completion_id))

    async def _stream(self, stream, conn, reply: Reply, model: str, completion_id: str) -> None:
        head = [("content-type", "text/event-stream"), ("cache-control", "no-cache")]
        await stream.send_all(conn.send(h11.Response(status_code=200, headers=head)))
        for n, chunk in enumerate(_stream_chunks(reply, model, completion_id)):
            if reply.drop_after is not None and n >= reply.drop_after:
                await stream.aclose()  # mid-body: the client sees an incomplete response
                return
            if reply.hang_after is not None and n >= reply.hang_after:
                await trio.sleep_forever()
            if n and reply.chunk_delay:
                await trio.sleep(reply.chunk_delay)
            data = chunk if isinstance(chunk, str) else json.dumps(chunk)
            await stream.send_all(conn.send(h11.Data(data=f"data: {data}\n\n".encode())))
        await stream.send_all(conn.send(h11.EndOfMessage()))

    def _next_reply(self, key: str) -> Reply | None:
        queue = self._queues.get(key)
        if queue:
            return queue.pop(0)
        return self._fallback


async def _read_request(stream, conn: h11.Connection) -> tuple[h11.Request, bytes] | None:
    """The next request and its body, or None when the client closed the connection."""
    request, body = None, bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await stream.receive_some(65536)
            if not data and request is None and conn.their_state is h11.IDLE:
                return None
            conn.receive_data(data)
        elif isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            assert request is not None
            return request, bytes(body)
        elif isinstance(event, h11.ConnectionClosed):
            return None


async def _watch_for_close(stream, conn, rec: RecordedRequest, scope: trio.CancelScope) -> None:
    try:
        while data := await stream.receive_some(65536):
            conn.receive_data(data)  # pipelined bytes: h11 keeps them for the next cycle
    except trio.ClosedResourceError:
        return  # we closed it ourselves (drop_after)
    except trio.BrokenResourceError:
        pass
    rec.closed_early = True
    scope.cancel()


async def _send_json(stream, conn, status: int, body: Any, extra=()) -> None:
    data = json.dumps(body).encode()
    head = [("content-type", "application/json"), ("content-length", str(len(data))), *extra]
    await stream.send_all(conn.send(h11.Response(status_code=status, headers=head)))
    await stream.send_all(conn.send(h11.Data(data=data)))
    await stream.send_all(conn.send(h11.EndOfMessage()))


def _key_of(body: Any, last: bool = False) -> str:
    key = "default"
    if isinstance(body, dict):
        for message in body.get("messages") or ():
            content = message.get("content") if isinstance(message, dict) else None
            texts = [content] if isinstance(content, str) else [
                part.get("text", "") for part in content or () if isinstance(part, dict)
            ]
            for text in texts:
                for m in MARKER.finditer(text or ""):
                    if not last:
                        return m.group(1)
                    key = m.group(1)
    return key


def _tool_call_id(reply: Reply, i: int) -> str:
    return reply.tool_calls[i].id or f"call_fake_{i}"


def _finish(reply: Reply) -> str:
    return reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")


def _usage(u: FakeUsage) -> dict[str, Any]:
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.prompt_tokens + u.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens},
    }


def _completion(reply: Reply, model: str, completion_id: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    if reply.tool_calls:
        message["tool_calls"] = [
            {"id": _tool_call_id(reply, i), "type": "function",
             "function": {"name": tc.name, "arguments": tc.arguments}}
            for i, tc in enumerate(reply.tool_calls)
        ]
    return {
        "id": completion_id, "object": "chat.completion", "created": 0, "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": _finish(reply)}],
        "usage": _usage(reply.usage),
    }


def _stream_chunks(reply: Reply, model: str, completion_id: str):
    """The SSE payloads of a streamed reply: role, text pieces, tool-call pieces, finish,
    usage (a final chunk with no choices), then ``[DONE]``."""

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": completion_id, "object": "chat.completion.chunk", "created": 0, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    size = max(1, reply.chunk_chars)
    yield chunk({"role": "assistant", "content": ""})
    for i in range(0, len(reply.text), size):
        yield chunk({"content": reply.text[i : i + size]})
    for i, tc in enumerate(reply.tool_calls):
        head = {"index": i, "id": _tool_call_id(reply, i), "type": "function",
                "function": {"name": tc.name, "arguments": ""}}
        yield chunk({"tool_calls": [head]})
        for j in range(0, len(tc.arguments), size):
            piece = {"index": i, "function": {"arguments": tc.arguments[j : j + size]}}
            yield chunk({"tool_calls": [piece]})
    yield chunk({}, _finish(reply))
    yield {
        "id": completion_id, "object": "chat.completion.chunk", "created": 0, "model": model,
        "choices": [], "usage": _usage(reply.usage),
    }
    yield "[DONE]"


def load_script(path: str | Path) -> FakeScript:
    """A script from a JSON file shaped like ``FakeScript`` (replies by key, fallback)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from hive_actors.serde import from_data

    return from_data(json.loads(Path(path).read_text()), FakeScript)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--script", help="JSON file: {replies: {key: [reply...]}, fallback}")
    args = parser.parse_args(argv)
    script = load_script(args.script) if args.script else FakeScript(fallback=Reply(text="ok"))
    server = FakeOpenAI(script, port=args.port)

    async def serve() -> None:
        async with trio.open_nursery() as nursery:
            url = await nursery.start(server.run)
            print(url, flush=True)

    trio.run(serve)


if __name__ == "__main__":
    main()
