"""Hostile frames and handshakes against a live feed on 127.0.0.1: each costs at most the
request (or the connection) that carried it; the server keeps answering fresh clients."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trio_websocket import ConnectionClosed, ConnectionRejected, open_websocket_url

from feed_support import FakeRuntime, FeedClient, run_bus
from hive_actors.errors import ConfigurationError
from hive_actors.feed import FeedConfig, FeedInfo, open_event_feed
from hive_actors.feed.server import resolve_config
from hive_actors.feed import protocol as p


@asynccontextmanager
async def feed(**config: Any) -> AsyncIterator[FeedInfo]:
    async with trio.open_nursery() as nursery:
        runtime = FakeRuntime(await run_bus(nursery))
        async with open_event_feed(runtime, port=0, config=FeedConfig(**config)) as info:
            yield info
        nursery.cancel_scope.cancel()


async def still_serves(info: FeedInfo) -> None:
    async with open_websocket_url(info.url) as ws:
        reply = await FeedClient(ws).call("get_stats")
        assert reply["type"] == "result"


async def send_raw(info: FeedInfo, frame: str | bytes) -> dict[str, Any] | None:
    """Send one frame on a fresh connection; its reply, or None if the server closed it."""
    async with open_websocket_url(info.url) as ws:
        await ws.send_message(frame)
        try:
            reply = json.loads(await ws.get_message())
        except ConnectionClosed:
            return None
        assert isinstance(reply, dict)
        return reply


async def test_lone_surrogate_id_is_answered_and_the_server_lives() -> None:
    async with feed() as info:
        frame = '{"type": "get_stats", "id": "\\udcff"}'
        assert len(frame) == 37
        reply = await send_raw(info, frame)
        assert reply is not None and reply["type"] == "result"
        assert reply["id"] == "\udcff"  # echoed as a JSON escape, decodes to the same id
        await still_serves(info)


async def test_deeply_nested_frame_is_a_bad_request_and_the_server_lives() -> None:
    async with feed() as info:
        for frame in ("[" * 1000, '{"type": "trigger", "id": 1, "input": {"a": ' + "[" * 5000
                      + "]" * 5000 + "}}"):
            reply = await send_raw(info, frame)
            assert reply is not None and reply["code"] in (p.BAD_JSON, p.BAD_REQUEST)
            assert "deep" in reply["message"]
        await still_serves(info)


async def test_huge_since_is_a_bad_request() -> None:
    async with feed() as info, open_websocket_url(info.url) as ws:
        reply = await FeedClient(ws).call("subscribe", since=2**63)
        assert reply["code"] == p.BAD_REQUEST and "since" in reply["message"]
        assert (await FeedClient(ws).call("list_sessions", limit=10**30))["code"] == p.BAD_REQUEST


def test_blank_token_is_refused_for_a_public_binding() -> None:
    for token in (" ", "\t\n"):
        with pytest.raises(ConfigurationError, match="blank"):
            resolve_config(FeedConfig(host="0.0.0.0", token=token))


async def test_connection_limit_holds_under_simultaneous_handshakes() -> None:
    limit, attempts = 2, 40
    accepted = rejected = 0
    all_tried = trio.Event()

    async def attempt(info: FeedInfo) -> None:
        nonlocal accepted, rejected
        try:
            async with open_websocket_url(info.url):
                accepted += 1
                if accepted + rejected == attempts:
                    all_tried.set()
                await all_tried.wait()
        except ConnectionRejected:
            rejected += 1
            if accepted + rejected == attempts:
                all_tried.set()

    async with feed(max_connections=limit) as info:
        async with trio.open_nursery() as nursery:
            for _ in range(attempts):
                nursery.start_soon(attempt, info)
        assert accepted <= limit and accepted + rejected == attempts
        await still_serves(info)


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


_frames = st.one_of(
    st.text(max_size=60),
    st.builds(lambda d: _nested(d), st.integers(1, 3000)),
    st.builds(lambda d: '{"type": "trigger", "id": 1, "input": {"x": ' + _nested(d) + "}}",
              st.integers(1, 3000)),
    st.builds(lambda n: '{"type": "subscribe", "id": 1, "since": %d}' % n,
              st.integers(-(2**80), 2**80)),
    st.builds(lambda n: '{"type": "get_stats", "id": %s}' % n,
              st.sampled_from(["1e999", "-1e999", "NaN", "Infinity", str(10**400)])),
    st.builds(lambda c: '{"type": "get_stats", "id": "\\u%04x"}' % c, st.integers(0xD800, 0xDFFF)),
    st.builds(lambda c: '{"type": "trigger", "id": 2, "entry_point": "\\u%04x", "input": '
              '{"\\u%04x": 1}}' % (c, c), st.integers(0xD800, 0xDFFF)),
    st.builds(lambda kind, s: json.dumps({"type": kind, "id": s, "node_id": s, "content": s,
                                          "entry_point": s, "subscription": s}),
              st.sampled_from(sorted(p.REQUEST_TYPES)), st.text(max_size=20)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=_frames, binary=st.booleans())
def test_fuzzed_frames_never_take_the_server_down(frame: str, binary: bool) -> None:
    async def main() -> None:
        async with feed() as info:
            payload: str | bytes = frame
            if binary:
                payload = frame.encode("utf-8", "surrogatepass")
            await send_raw(info, payload)
            await still_serves(info)

    trio.run(main)
