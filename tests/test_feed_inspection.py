"""The feed's requests for the dashboard: get_graph, get_session, resume_session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio
from trio_websocket import open_websocket_url

from feed_support import FakeRuntime, FeedClient, interview_graph, interview_llm, run_bus
from hive_actors.feed import open_event_feed
from hive_actors.graph.spec import Goal
from hive_actors.runtime.agent_runtime import open_agent_runtime


async def _run_interview(c: FeedClient) -> str:
    await c.call("subscribe")
    execution_id = (await c.call("trigger", entry_point="default"))["result"]["execution_id"]
    await c.next_event("client_input_requested")
    await c.call("inject_input", node_id="intake", content="bees", execution_id=execution_id)
    while (await c.next_event("execution_completed"))["event"]["execution_id"] != execution_id:
        pass
    return str(execution_id)


async def test_get_graph_gives_every_node_and_edge_with_a_layout() -> None:
    async with open_agent_runtime(graph=interview_graph(), goal=Goal(id="goal"),
                                  llm=interview_llm()) as runtime:
        async with open_event_feed(runtime, port=0) as info, open_websocket_url(info.url) as ws:
            reply = await FeedClient(ws).call("get_graph")
    result = reply["result"]
    assert result["entry_node"] == "intake" and result["terminal_nodes"] == ["work"]
    layout = result["layout"]
    boxes = {n["id"]: n for n in layout["nodes"]}
    assert set(boxes) == {"intake", "work"}
    assert boxes["intake"]["roles"] == ["entry", "client"]
    assert boxes["intake"]["y"] < boxes["work"]["y"]  # top to bottom
    (edge,) = layout["edges"]
    assert edge["id"] == "intake_to_work" and len(edge["points"]) >= 2
    for n in boxes.values():
        assert 0 <= n["x"] - n["width"] / 2 and n["x"] + n["width"] / 2 <= layout["width"]


async def test_get_session_shows_a_finished_session_and_resume_refuses_it(tmp_path: Path) -> None:
    async with open_agent_runtime(graph=interview_graph(), goal=Goal(id="goal"),
                                  llm=interview_llm(), storage_path=tmp_path) as runtime:
        async with open_event_feed(runtime, port=0) as info, open_websocket_url(info.url) as ws:
            c = FeedClient(ws)
            execution_id = await _run_interview(c)
            listed = (await c.call("list_sessions"))["result"]["sessions"]
            opened = await c.call("get_session", session_id=execution_id)
            resumed = await c.call("resume_session", session_id=execution_id)
            unknown = await c.call("get_session", session_id="session_19990101_000000_00000000")
    assert [s["session_id"] for s in listed] == [execution_id]
    result = opened["result"]
    assert result["session"]["status"] == "completed"
    assert Path(result["path"]).is_dir() and Path(result["path"]).name == execution_id
    assert result["output"]["topic"] == "bees"
    kinds = [(cp["kind"], cp["node_id"]) for cp in result["checkpoints"]]
    assert ("node_complete", "intake") in kinds
    assert resumed["type"] == "error" and resumed["code"] == "rejected"
    assert "already completed" in resumed["message"]
    assert unknown["type"] == "error" and unknown["code"] == "not_found"


async def test_bad_session_ids_are_bad_requests_and_the_connection_stays() -> None:
    async with trio.open_nursery() as nursery:
        runtime = FakeRuntime(await run_bus(nursery))
        async with open_event_feed(runtime, port=0) as info, open_websocket_url(info.url) as ws:
            c = FeedClient(ws)
            replies: list[dict[str, Any]] = []
            for bad in ("../../etc", ".hidden", "a/b", ""):
                replies.append(await c.call("get_session", session_id=bad))
                replies.append(await c.call("resume_session", session_id=bad))
            replies.append(await c.call("get_session"))
            no_graph = await c.call("get_graph")
            no_storage = await c.call("get_session", session_id="s1")
            alive = await c.call("list_entry_points")
        nursery.cancel_scope.cancel()
    assert all(r["type"] == "error" and r["code"] == "bad_request" for r in replies), replies
    assert "session_id" in replies[0]["message"]
    assert no_graph["code"] == "rejected" and no_storage["code"] == "rejected"
    assert alive["type"] == "result"


async def test_resume_session_continues_a_paused_session_from_the_page_s_request(
        tmp_path: Path) -> None:
    async with open_agent_runtime(graph=interview_graph(), goal=Goal(id="goal"),
                                  llm=interview_llm(), storage_path=tmp_path) as runtime:
        async with open_event_feed(runtime, port=0) as info:
            async with open_websocket_url(info.url) as ws:  # asked, then left unanswered
                c = FeedClient(ws)
                await c.call("subscribe", event_types=["client_input_requested"])
                execution_id = (await c.call("trigger", entry_point="default"))["result"][
                    "execution_id"]
                await c.next_event("client_input_requested")
            assert (await runtime.wait_for_result(execution_id)).status == "paused"
            async with open_websocket_url(info.url) as ws:
                c = FeedClient(ws)
                opened = await c.call("get_session", session_id=execution_id)
                await c.call("subscribe", execution_id=execution_id)
                resumed = await c.call("resume_session", session_id=execution_id)
                asked = await c.next_event("client_input_requested")
                await c.call("inject_input", node_id="intake", content="bees",
                             execution_id=execution_id)
                done = await c.next_event("execution_completed")
    assert opened["result"]["session"]["status"] == "paused"
    assert resumed["result"] == {"execution_id": execution_id}
    assert asked["event"]["node_id"] == "intake"
    assert done["event"]["data"]["output"]["topic"] == "bees"


async def test_get_session_reads_through_the_runtime_s_reader(tmp_path: Path) -> None:
    """A runtime whose sessions live elsewhere (Postgres) is read through its own reader,
    not the folder's files; the path still names the session's folder."""
    from hive_actors.feed import inspection
    from hive_actors.feed import protocol as p
    from hive_actors.storage.session_store import SessionRecord

    record = SessionRecord.new("s1", agent_name="g", input_data={})

    class Reader:
        def read_state(self, session_id: str) -> SessionRecord:
            assert session_id == "s1"
            return record

        def checkpoints(self, session_id: str, *, skip_damaged: bool = False) -> list[Any]:
            return []

        def read_summary(self, session_id: str) -> None:
            return None

    class Runtime:
        storage_path = tmp_path
        sessions = Reader()

    result = await inspection.get_session(Runtime(), p.GetSession(id=1, session_id="s1"))
    assert result["session"]["session_id"] == "s1"
    assert result["path"] == str(tmp_path / "sessions" / "s1")
