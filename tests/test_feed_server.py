"""The feed server over real loopback websockets, on a fake runtime (real EventBus).

Protocol round trips, filters, replay, limits and security; the tests with the real runtime
are in test_feed_runtime.py.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing
from trio_websocket import ConnectionClosed, ConnectionRejected, open_websocket_url

from feed_support import FakeRuntime, FeedClient, run_bus
from hive_actors.errors import ConfigurationError
from hive_actors.feed import FeedConfig, FeedInfo, open_event_feed, serve_feed


@asynccontextmanager
async def feed(**config: Any) -> AsyncIterator[tuple[FakeRuntime, FeedInfo]]:
    async with trio.open_nursery() as nursery:
        runtime = FakeRuntime(await run_bus(nursery))
        async with open_event_feed(runtime, port=0, config=FeedConfig(**config)) as info:
            yield runtime, info
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def client(url: str, **kw: Any) -> AsyncIterator[FeedClient]:
    async with open_websocket_url(url, **kw) as ws:
        yield FeedClient(ws)


async def test_subscriber_receives_triggered_execution_in_order_with_increasing_seq() -> None:
    async with feed() as (_, info), client(info.url) as c:
        sub = await c.call("subscribe")
        assert sub["type"] == "result" and sub["result"]["subscription"] == "s1"
        trig = await c.call("trigger", entry_point="default", input={"q": "hi"})
        execution_id = trig["result"]["execution_id"]
        messages = [await c.next_event() for _ in range(6)]
        types = [m["event"]["type"] for m in messages]
        assert types == ["execution_started", "node_started", "node_completed",
                         "node_started", "node_completed", "execution_completed"]
        assert {m["event"]["execution_id"] for m in messages} == {execution_id}
        seqs = [m["seq"] for m in messages]
        assert seqs == sorted(seqs) and len(set(seqs)) == 6
        assert seqs[0] >= sub["result"]["next_seq"]
        assert [m["event"]["seq"] for m in messages] == [1, 2, 3, 4, 5, 6]
        assert messages[0]["event"]["data"] == {"input": {"q": "hi"}}


async def test_filters_by_type_and_execution() -> None:
    async with feed() as (runtime, info), client(info.url) as c:
        await c.call("subscribe", event_types=["node_started"], node_id="b")
        first = (await c.call("trigger", entry_point="default"))["result"]["execution_id"]
        await c.call("subscribe", execution_id="exec_2", event_types=["execution_completed"])
        second = (await c.call("trigger", entry_point="default"))["result"]["execution_id"]
        got = [await c.next_event() for _ in range(3)]
        seen = sorted((m["subscription"], m["event"]["type"], m["event"]["execution_id"],
                       m["event"]["node_id"]) for m in got)
        assert seen == [("s1", "node_started", first, "b"), ("s1", "node_started", second, "b"),
                        ("s2", "execution_completed", second, None)]
        # nothing else was queued for this client
        stats = await c.call("get_stats")
        assert [m for m in c.events if m["type"] == "event"] == []
        assert stats["result"]["published"] == 12


async def test_since_replays_history_then_continues_live() -> None:
    async with feed() as (_, info):
        async with client(info.url) as c:
            await c.call("trigger", entry_point="default")
        async with client(info.url) as c:
            await c.call("subscribe", event_types=["execution_completed"], since=1)
            replayed = await c.next_event()
            assert replayed["event"]["execution_id"] == "exec_1" and replayed["seq"] == 6
            await c.call("trigger", entry_point="default")
            live = await c.next_event()
            assert live["event"]["execution_id"] == "exec_2" and live["seq"] == 12
        async with client(info.url) as c:
            await c.call("subscribe", event_types=["execution_completed"], since=7)
            assert (await c.next_event())["seq"] == 12


async def test_unsubscribe_stops_events_and_unknown_subscription_is_an_error() -> None:
    async with feed() as (_, info), client(info.url) as c:
        await c.call("subscribe", event_types=["execution_started"])
        await c.call("subscribe", event_types=["execution_completed"])
        assert (await c.call("unsubscribe", subscription="s1"))["type"] == "result"
        await c.call("trigger", entry_point="default")
        assert (await c.next_event())["subscription"] == "s2"
        again = await c.call("unsubscribe", subscription="s1")
        assert again["type"] == "error" and again["code"] == "not_found"


async def test_bad_messages_get_errors_and_the_connection_keeps_working() -> None:
    async with feed() as (_, info), client(info.url) as c:
        await c.ws.send_message("{oops")
        assert (await c.receive())["code"] == "bad_json"
        await c.ws.send_message(json.dumps({"type": "fly", "id": "x"}))
        assert await c.receive() == {"type": "error", "id": "x", "code": "unknown_type",
                                     "message": await _message_of_unknown("fly")}
        await c.ws.send_message(b'{"type": "get_stats", "id": 9}')  # binary frames are fine
        assert (await c.receive())["id"] == 9
        missing = await c.call("trigger", entry_point="nope")
        assert missing["code"] == "not_found" and "nope" in missing["message"]
        assert (await c.call("list_sessions", limit=1))["result"]["sessions"] == [
            {"session_id": "s1"}]
        eps = (await c.call("list_entry_points"))["result"]["entry_points"]
        assert [ep["id"] for ep in eps] == ["default"]


async def _message_of_unknown(kind: str) -> str:
    from hive_actors.feed import protocol

    with pytest.raises(protocol.ProtocolError) as info:
        protocol.parse_request(json.dumps({"type": kind, "id": "x"}))
    return info.value.reply.message


async def test_inject_input_reaches_the_runtime() -> None:
    async with feed() as (runtime, info), client(info.url) as c:
        reply = await c.call("inject_input", node_id="ask", content="yes", execution_id="e9")
        assert reply["result"] == {"delivered": True}
        assert runtime.injected == [("ask", "yes", "e9")]


async def test_oversized_frame_closes_only_that_connection() -> None:
    async with feed(max_message_size=1000) as (_, info), client(info.url) as other:
        async with client(info.url) as c:
            await c.ws.send_message(json.dumps({"type": "get_stats", "id": 1, "pad": "x" * 5000}))
            with pytest.raises(ConnectionClosed) as closed:
                await c.receive()
            assert closed.value.reason.code == 1009
        assert (await other.call("get_stats"))["type"] == "result"


async def test_subscription_limit_is_an_error() -> None:
    async with feed(max_subscriptions=1) as (_, info), client(info.url) as c:
        await c.call("subscribe")
        refused = await c.call("subscribe")
        assert refused["code"] == "limit"


async def test_token_is_required_when_set() -> None:
    async with feed(token="s3cret") as (_, info):
        with pytest.raises(ConnectionRejected) as rejected:
            async with client(info.url):
                pass
        assert rejected.value.status_code == 401
        with pytest.raises(ConnectionRejected):
            async with client(info.url + "?token=wrong"):
                pass
        async with client(info.url + "?token=s3cret") as c:
            assert (await c.call("get_stats"))["type"] == "result"
        async with client(info.url, extra_headers=[(b"authorization", b"Bearer s3cret")]) as c:
            assert (await c.call("get_stats"))["type"] == "result"


async def test_token_can_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HIVE_ACTORS_FEED_TOKEN", "envtok")
    async with feed() as (_, info):
        with pytest.raises(ConnectionRejected):
            async with client(info.url):
                pass
        async with client(info.url + "?token=envtok") as c:
            assert (await c.call("get_stats"))["type"] == "result"


async def test_non_loopback_binding_without_token_is_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HIVE_ACTORS_FEED_TOKEN", raising=False)
    with pytest.raises(ConfigurationError, match="token"):
        await serve_feed(FakeRuntime(None), "0.0.0.0", 0)  # type: ignore[arg-type]


async def test_foreign_browser_origin_is_refused_without_token() -> None:
    async with feed() as (_, info):
        with pytest.raises(ConnectionRejected) as rejected:
            async with client(info.url, extra_headers=[(b"origin", b"http://evil.example")]):
                pass
        assert rejected.value.status_code == 403


async def test_client_that_never_answers_pings_is_disconnected(autojump_clock: Any) -> None:
    async with feed(heartbeat_interval=5, idle_timeout=5) as (_, info):
        stream = await trio.open_tcp_stream("127.0.0.1", info.port)
        await stream.send_all(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        received = b""
        while chunk := await stream.receive_some():  # the handshake, pings, then EOF
            received += chunk
        assert received.startswith(b"HTTP/1.1 101")
        assert b"\x89" in received  # a ping frame was sent
        await stream.aclose()
