"""A feed client that leaves while an execution waits for its input: the execution pauses at
that node (resumable with the reply) unless another client still listens for input requests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from trio.testing import wait_all_tasks_blocked
from trio_websocket import open_websocket_url

from feed_support import FeedClient, interview_graph, interview_llm
from hive_actors.feed import FeedInfo, open_event_feed
from hive_actors.graph.spec import Goal
from hive_actors.runtime.agent_runtime import AgentRuntime, open_agent_runtime


@asynccontextmanager
async def served() -> AsyncIterator[tuple[AgentRuntime, FeedInfo]]:
    async with open_agent_runtime(graph=interview_graph(), goal=Goal(id="goal"),
                                  llm=interview_llm()) as runtime:
        async with open_event_feed(runtime, port=0) as info:
            yield runtime, info


async def _asked(c: FeedClient) -> tuple[str, dict[str, Any]]:
    """Subscribe to input requests, trigger, and wait for the question."""
    await c.call("subscribe", event_types=["client_input_requested"])
    reply = await c.call("trigger", entry_point="default", input={})
    execution_id = reply["result"]["execution_id"]
    asked = await c.next_event("client_input_requested")
    assert asked["event"]["execution_id"] == execution_id
    assert asked["event"]["node_id"] == "intake"
    return execution_id, asked


async def test_client_leaving_unanswered_pauses_execution_at_the_asking_node() -> None:
    async with served() as (runtime, info):
        async with open_websocket_url(info.url) as ws:
            execution_id, _ = await _asked(FeedClient(ws))
        # the client closed without answering
        result = await runtime.wait_for_result(execution_id)
        assert result.status == "paused"
        assert result.paused_at == "intake"
        assert result.session_state["waiting_input"] == "intake"

        resumed = await runtime.trigger_and_wait("default", {"input": "bees"},
                                                 session_state=result.session_state)
        assert resumed.status == "completed"


async def test_client_leaving_while_another_listens_does_not_pause() -> None:
    async with served() as (runtime, info):
        async with open_websocket_url(info.url) as other_ws:
            other = FeedClient(other_ws)
            await other.call("subscribe", event_types=["client_input_requested",
                                                       "client_input_received"])
            subscriptions = len(runtime.event_bus.stats().subscriptions)
            async with open_websocket_url(info.url) as ws:
                execution_id, _ = await _asked(FeedClient(ws))
            asked = await other.next_event("client_input_requested")
            assert asked["event"]["execution_id"] == execution_id
            await wait_all_tasks_blocked()  # the server has ended the first connection
            assert len(runtime.event_bus.stats().subscriptions) == subscriptions
            stats = (await other.call("get_stats"))["result"]["streams"]["default"]
            assert (stats["running"], stats["paused"]) == (1, 0)  # still waiting for input
            reply = await other.call("inject_input", node_id="intake", content="ants",
                                     execution_id=execution_id)
            assert reply["result"] == {"delivered": True}
            result = await runtime.wait_for_result(execution_id)
        assert result.status == "completed"
