"""The feed on the real AgentRuntime (ScriptedLLM), with real websocket clients: trio-websocket's
and the `websockets` library's (not written here, run in a thread)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio
from trio_websocket import open_websocket_url

from feed_support import (FeedClient, ask_and_answer, chatty_graph, chatty_llm, interview_graph,
                          interview_llm)
from hive_actors.feed import FeedConfig, FeedInfo, open_event_feed
from hive_actors.graph.spec import Goal
from hive_actors.runtime.agent_runtime import AgentRuntime, open_agent_runtime

TERMINAL = {"execution_completed", "execution_failed", "execution_paused",
            "execution_cancelled"}


@asynccontextmanager
async def served(graph: Any, llm: Any,
                 **config: Any) -> AsyncIterator[tuple[AgentRuntime, FeedInfo]]:
    async with open_agent_runtime(graph=graph, goal=Goal(id="goal"), llm=llm) as runtime:
        async with open_event_feed(runtime, port=0, config=FeedConfig(**config)) as info:
            yield runtime, info


async def _until_terminal(c: FeedClient, execution_id: str) -> list[dict[str, Any]]:
    got = []
    while True:
        message = await c.next_event()
        if message["event"]["execution_id"] == execution_id:
            got.append(message)
            if message["event"]["type"] in TERMINAL:
                return got


async def test_client_triggers_answers_input_and_sees_completion_in_order() -> None:
    async with served(interview_graph(), interview_llm()) as (_, info):
        async with open_websocket_url(info.url) as ws:
            c = FeedClient(ws)
            execution_id, asked, reply = await ask_and_answer(c, "bees")
            assert reply["result"] == {"delivered": True}
            rest = await _until_terminal(c, execution_id)
        events = [asked, *rest]
        assert rest[-1]["event"]["type"] == "execution_completed"
        assert rest[-1]["event"]["data"]["output"]["topic"] == "bees"
        received = next(m for m in rest if m["event"]["type"] == "client_input_received")
        assert received["event"]["data"]["content"] == "bees"
        seqs = [m["seq"] for m in events]
        assert seqs == sorted(set(seqs))  # bus offsets strictly increase
        per_execution = [m["event"]["seq"] for m in events]
        assert per_execution == list(range(per_execution[0], per_execution[0] + len(events)))
        started = [m["event"]["node_id"] for m in rest if m["event"]["type"] == "node_started"]
        assert started == ["work"]


async def test_input_to_a_node_that_is_not_waiting_is_not_delivered() -> None:
    async with served(interview_graph(), interview_llm()) as (_, info):
        async with open_websocket_url(info.url) as ws:
            c = FeedClient(ws)
            reply = await c.call("inject_input", node_id="intake", content="early")
            assert reply["result"] == {"delivered": False}
            missing = await c.call("trigger", entry_point="nightly")
            assert missing["code"] == "not_found" and "nightly" in missing["message"]
            stats = await c.call("get_stats")
            assert stats["result"]["running"] is True
            eps = await c.call("list_entry_points")
            assert [ep["entry_node"] for ep in eps["result"]["entry_points"]] == ["intake"]


def _websockets_session(url: str) -> dict[str, Any]:
    """A whole session with the `websockets` library (sync client, run in a thread)."""
    from websockets.sync.client import connect

    out: dict[str, Any] = {"errors": []}
    with connect(url) as ws:
        def call(**request: Any) -> dict[str, Any]:
            ws.send(json.dumps(request))
            while True:
                message = json.loads(ws.recv(timeout=30))
                if message.get("id") == request["id"]:
                    return message

        ws.send("not json at all")
        out["errors"].append(json.loads(ws.recv(timeout=30)))
        out["errors"].append(call(type="subscribe", id="bad", event_types=["no_such_event"]))
        call(type="subscribe", id="s", event_types=["node_started", "execution_completed",
                                                    "client_input_requested"])
        execution_id = call(type="trigger", id="t", entry_point="default")["result"]["execution_id"]
        live = []
        while True:
            message = json.loads(ws.recv(timeout=30))
            if message["type"] != "event":
                continue
            live.append(message)
            if message["event"]["type"] == "client_input_requested":
                ws.send(json.dumps({"type": "inject_input", "id": "i", "node_id": "intake",
                                    "content": "ants", "execution_id": execution_id}))
            if message["event"]["type"] == "execution_completed":
                break
        out["live"] = live
        # a second subscription replays the same events from the bus history
        call(type="subscribe", id="r", execution_id=execution_id, since=live[0]["seq"],
             event_types=["node_started", "execution_completed", "client_input_requested"])
        out["replayed"] = [json.loads(ws.recv(timeout=30)) for _ in live]
    return out


async def test_websockets_library_client_subscribes_triggers_replays_and_gets_errors() -> None:
    async with served(interview_graph(), interview_llm()) as (_, info):
        out = await trio.to_thread.run_sync(_websockets_session, info.url)
    assert [(e["type"], e["id"], e["code"]) for e in out["errors"]] == [
        ("error", None, "bad_json"), ("error", "bad", "bad_request")]
    assert "subscribe.event_types[0]" in out["errors"][1]["message"]
    live = [(m["seq"], m["event"]["type"], m["event"]["node_id"]) for m in out["live"]]
    assert [t for _, t, _ in live] == ["node_started", "client_input_requested", "node_started",
                                       "execution_completed"]
    replayed = [(m["seq"], m["event"]["type"], m["event"]["node_id"]) for m in out["replayed"]]
    assert replayed == live
    assert {m["subscription"] for m in out["replayed"]} == {"s2"}


async def test_client_that_never_reads_does_not_hold_up_executions() -> None:
    executions, deltas = 20, 500  # about 10,000 events in all
    config = dict(event_buffer_size=200)
    async with served(chatty_graph(), chatty_llm(executions, deltas), **config) as (runtime, info):
        async with open_websocket_url(info.url, message_queue_size=1) as stuck_ws, \
                open_websocket_url(info.url) as reader_ws:
            stuck, reader = FeedClient(stuck_ws), FeedClient(reader_ws)
            await stuck.call("subscribe")
            await reader.call("subscribe", event_types=["execution_completed"])
            published_before = runtime.event_bus.next_offset
            # `stuck` stops reading now; executions run one after another
            results = [await runtime.trigger_and_wait("default") for _ in range(executions)]
            assert all(r.success for r in results)
            finished = [await reader.next_event() for _ in range(executions)]
            assert {m["event"]["execution_id"] for m in finished} == {r.session_id for r in results}
            published = runtime.event_bus.next_offset - published_before
            assert published >= executions * deltas

            # Now read everything the stuck client was sent: every event is either delivered
            # or counted as dropped, and some were dropped.
            delivered = dropped = 0
            last_seq = 0
            while delivered + dropped < published:
                message = await stuck.receive()
                if message["type"] == "events_dropped":
                    dropped += message["count"]
                elif message["type"] == "event":
                    assert message["seq"] > last_seq
                    last_seq = message["seq"]
                    delivered += 1
            assert dropped > 0
            assert delivered + dropped == published
            stats = (await stuck.call("get_stats"))["result"]
            assert stats["connection"] == {"subscriptions": ["s1"], "events_dropped": dropped}
            assert all(n == 0 for n in (stats["streams"]["default"]["failed"],
                                        stats["streams"]["default"]["cancelled"]))
