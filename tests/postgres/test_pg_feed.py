"""Events and client input across runtimes through the store: a feed client of a client
runtime follows an execution that a worker runtime runs, and answers its question."""

from __future__ import annotations

import sys
from pathlib import Path

import trio
from trio_websocket import open_websocket_url

sys.path.insert(0, str(Path(__file__).parents[1]))  # tests/feed_support.py

from feed_support import FeedClient, ask_and_answer, interview_graph, interview_llm  # noqa: E402
from hive_actors.feed import open_event_feed  # noqa: E402
from hive_actors.graph.spec import Goal  # noqa: E402
from hive_actors.runtime.agent_runtime import create_agent_runtime  # noqa: E402
from hive_actors.storage.postgres import PgSessionReader  # noqa: E402

TERMINAL = {"execution_completed", "execution_failed", "execution_paused",
            "execution_cancelled"}


async def test_a_feed_on_a_client_follows_a_workers_execution_and_answers_its_question(
        pg_url: str) -> None:
    worker = create_agent_runtime(interview_graph(), Goal(id="goal"), llm=interview_llm(),
                                  store=pg_url, worker=True, agent_name="interview")
    client = create_agent_runtime(interview_graph(), Goal(id="goal"), store=pg_url,
                                  agent_name="interview")
    with trio.fail_after(120):  # a hang guard
        async with worker, client, open_event_feed(client, port=0) as info:
            worker_id = worker.storage_engine.owner_id
            async with open_websocket_url(info.url) as ws:
                c = FeedClient(ws)
                execution_id, asked, reply = await ask_and_answer(c, "bees")
                assert asked["event"]["execution_id"] == execution_id
                assert reply["result"] == {"delivered": True}
                while True:
                    message = await c.next_event()
                    if (message["event"]["execution_id"] == execution_id
                            and message["event"]["type"] in TERMINAL):
                        break
    assert message["event"]["type"] == "execution_completed"
    assert message["event"]["data"]["output"]["topic"] == "bees"
    # it ran on the worker, recorded in the store under the worker's name
    reader = PgSessionReader(pg_url, Path("/"))
    assert reader.read_state(execution_id).output["topic"] == "bees"
    assert reader.owner_of(execution_id) == worker_id
    reader.close()


async def test_event_triggers_fire_on_the_worker_only_not_on_a_following_client(
        pg_url: str) -> None:
    from hive_actors.events import EventType
    from hive_actors.graph.spec import EntryPointSpec

    after = EntryPointSpec(id="after", entry_node="intake", trigger_type="event",
                           trigger_config={"event_types": ["execution_completed"],
                                           "filter_stream": "default"})
    eps = [EntryPointSpec(id="default", entry_node="intake"), after]
    worker = create_agent_runtime(interview_graph(), Goal(id="goal"), llm=interview_llm(),
                                  entry_points=eps, store=pg_url, worker=True,
                                  agent_name="interview")
    client = create_agent_runtime(interview_graph(), Goal(id="goal"), entry_points=eps,
                                  store=pg_url, agent_name="interview")
    async with worker, client:
        # the worker listens for the events of its own executions; the client, whose bus
        # replays the worker's events, does not fire the entry point a second time
        assert worker.event_bus.has_subscribers(EventType.EXECUTION_COMPLETED,
                                                stream_id="default", execution_id="x")
        assert not client.event_bus.has_subscribers(EventType.EXECUTION_COMPLETED,
                                                    stream_id="default", execution_id="x")
