"""The dashboard in headless chromium (Playwright): the research assistant example run from the
page, watched in the graph, the timeline, the conversation and the sessions browser; a
fan-out agent whose branches run at once; a paused session resumed from the page; a retry."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any

import pytest
import trio

from dashboard_browser import CHROMIUM, READ_STATES, RECORD_STATES, open_page, shot
from hive_actors.feed import SAME_PORT, FeedConfig, open_event_feed
from hive_actors.feed.serve import serve_agent
from hive_actors.graph.spec import EdgeSpec, Goal, GraphSpec, NodeSpec
from hive_actors.llm.scripted import Reply, ScriptedLLM, call
from hive_actors.runner.runner import AgentRunner
from hive_actors.graph.executor_config import ExecutorConfig
from hive_actors.runtime.agent_runtime import open_agent_runtime
from hive_actors.runtime.config import RuntimeConfig
from hive_actors.tools.registry import ToolRegistry

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's chromium at /usr/bin/chromium (make browser)")

EXAMPLE = Path(__file__).parents[1] / "examples" / "research_assistant"
QUESTION = "What topic should I look into?"
ANSWER = "structured concurrency in trio"
PATH = ["intake", "research", "format", "present"]


def _node(page: Any, node_id: str) -> str:
    return str(page.get_attribute(f"#graph [data-node-id={node_id}]", "data-state"))


def drive_research_assistant(url: str) -> dict[str, Any]:
    """Everything the page shows along one run, read in the browser (a worker thread)."""
    seen: dict[str, Any] = {}
    with open_page(url) as page:
        page.wait_for_selector("#graph [data-node-id=present]")
        seen["graph_nodes"] = page.eval_on_selector_all(
            "#graph [data-node-id]", "els => els.map(e => e.dataset.nodeId)")
        seen["graph_edges"] = page.eval_on_selector_all(
            "#graph [data-edge-id]", "els => els.map(e => e.dataset.edgeId)")
        page.evaluate(RECORD_STATES)
        page.click("[data-trigger=start]")
        page.wait_for_selector("#graph [data-node-id=intake][data-state=waiting]")
        page.wait_for_selector("#input-form.visible")
        seen["while_waiting"] = {n: _node(page, n) for n in PATH}
        seen["question"] = page.text_content("#conversation .msg.question")
        shot(page, "dashboard-1-waiting.png")

        page.fill("#input-text", ANSWER)
        page.keyboard.press("Enter")  # the input box is a form: Enter sends
        page.wait_for_selector("#executions li[data-status=completed]")
        page.wait_for_selector("#graph [data-node-id=present][data-state=done]")
        seen["states"] = page.evaluate(READ_STATES)
        seen["after"] = {n: _node(page, n) for n in PATH}
        seen["traversed"] = page.eval_on_selector_all(
            "#graph [data-edge-id][data-traversed=true]", "els => els.map(e => e.dataset.edgeId)")
        seen["bars"] = page.eval_on_selector_all(
            "#timeline .visit .tl-bar",
            "els => els.map(e => [e.dataset.nodeId, e.dataset.start, e.dataset.end])")
        seen["nested"] = page.eval_on_selector_all(
            "#timeline .sub .tl-bar", "els => els.map(e => e.dataset.kind)")
        seen["conversation"] = page.eval_on_selector_all(
            "#conversation .msg", "els => els.map(e => [e.dataset.role, e.textContent])")
        shot(page, "dashboard-2-done.png")

        page.wait_for_selector("#sessions tr[data-status=completed]")
        seen["sessions"] = page.eval_on_selector_all(
            "#sessions tr", "els => els.map(e => [e.dataset.session, e.dataset.status])")
        shot(page, "dashboard-3-sessions.png")
        page.focus("#sessions tr[data-status=completed] button")  # reachable by keyboard
        page.keyboard.press("Enter")
        page.wait_for_selector("#session-detail[data-session] .path")
        seen["session_path"] = page.text_content("#session-detail .path")
        seen["checkpoints"] = page.locator("#session-detail li").count()
        seen["resumable"] = page.locator("#session-detail [data-resume]").count()
        shot(page, "dashboard-4-session-open.png")
        page.focus("[data-trigger=start]")  # Tab from the run button reaches the graph's nodes
        for _ in range(8):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.dataset.nodeId === 'intake'"):
                break
        seen["focused"] = page.evaluate("document.activeElement.getAttribute('aria-label')")
        page.set_viewport_size({"width": 480, "height": 900})
        seen["narrow_overflow"] = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth")
        shot(page, "dashboard-5-narrow.png")
    return seen


async def test_research_assistant_runs_from_the_page(tmp_path: Path) -> None:
    # what `hive-actors serve examples/research_assistant --scripted script.json` runs
    llm = ScriptedLLM.from_file(EXAMPLE / "script.json", autopilot=True)
    config = FeedConfig(port=0, dashboard_port=SAME_PORT)  # one port, as `hive-actors serve`
    async with trio.open_nursery() as nursery:
        info = await nursery.start(lambda task_status: serve_agent(
            EXAMPLE, llm=llm, config=config, storage=tmp_path, out=io.StringIO(),
            task_status=task_status))
        assert info.dashboard_url is not None
        seen = await trio.to_thread.run_sync(drive_research_assistant, info.dashboard_url)
        nursery.cancel_scope.cancel()

    # the graph: one element per node and per edge
    assert sorted(seen["graph_nodes"]) == sorted(PATH)
    assert len(seen["graph_edges"]) == 4
    # while the agent asks, its node waits and nothing after it has started
    assert seen["while_waiting"] == {"intake": "waiting", "research": "idle",
                                     "format": "idle", "present": "idle"}
    assert QUESTION in seen["question"]
    # after the answer: each node ran, then finished, in path order
    changes = [tuple(c) for c in seen["states"]]
    after_answer = changes[changes.index(("intake", "waiting")) + 1:]
    expected = [("intake", "running"), ("intake", "done")]
    for node in PATH[1:]:
        expected += [(node, "running"), (node, "done")]
    assert after_answer == expected
    assert seen["after"] == dict.fromkeys(PATH, "done")
    assert seen["focused"] == "intake: done"
    assert set(seen["traversed"]) == {"intake-research", "research-format", "format-present"}
    # the timeline: one bar per node visit, start <= end
    assert [b[0] for b in seen["bars"]] == PATH
    for _node_id, start, end in seen["bars"]:
        assert dt.datetime.fromisoformat(start) <= dt.datetime.fromisoformat(end)
    assert {"turn", "tool", "wait"} <= set(seen["nested"])
    # the conversation: the question, the answer, the agent's report
    roles = [m[0] for m in seen["conversation"]]
    texts = "\n".join(m[1] for m in seen["conversation"])
    assert roles[:2] == ["agent", "user"] and ANSWER in seen["conversation"][1][1]
    assert QUESTION in texts and "# Research brief: structured concurrency in trio" in texts
    # the sessions browser: the finished session, its folder and checkpoints
    (session_id, status), = seen["sessions"]
    assert status == "completed"
    assert seen["session_path"] == str(tmp_path / "sessions" / session_id)
    assert seen["checkpoints"] >= 4 and seen["resumable"] == 0
    assert seen["narrow_overflow"] <= 0  # nothing sticks out sideways on a narrow window


def fan_out_graph() -> GraphSpec:
    """start -> (left, right at once) -> join."""
    nodes = (NodeSpec(id="start", output_keys=("topic",)),
             NodeSpec(id="left", input_keys=("topic",), output_keys=("l",), tools=("hold",)),
             NodeSpec(id="right", input_keys=("topic",), output_keys=("r",), tools=("hold",)),
             NodeSpec(id="join", input_keys=("l", "r"), output_keys=("done",)))
    edges = (EdgeSpec(id="s-l", source="start", target="left"),
             EdgeSpec(id="s-r", source="start", target="right"),
             EdgeSpec(id="l-j", source="left", target="join"),
             EdgeSpec(id="r-j", source="right", target="join"))
    return GraphSpec(id="fan", entry_node="start", nodes=nodes, edges=edges,
                     terminal_nodes=("join",))


async def test_fan_out_branches_show_running_at_the_same_time() -> None:
    gate = trio.Event()

    async def hold() -> str:
        """Wait until the test has seen both branches running."""
        await gate.wait()
        return "released"

    tools = ToolRegistry([hold])
    held = Reply("holding", [call("hold")])
    llm = ScriptedLLM({"left": [held], "right": [held]}, autopilot=True)

    def drive(url: str) -> tuple[dict[str, str], dict[str, str]]:
        nodes = ["start", "left", "right", "join"]
        with open_page(url) as page:
            page.wait_for_selector("#graph [data-node-id=join]")
            page.click("[data-trigger=default]")
            page.wait_for_selector("#graph [data-node-id=left][data-state=running]")
            page.wait_for_selector("#graph [data-node-id=right][data-state=running]")
            both = {n: _node(page, n) for n in nodes}
            shot(page, "dashboard-fan-out.png")
            trio.from_thread.run_sync(gate.set)
            page.wait_for_selector("#graph [data-node-id=join][data-state=done]")
            return both, {n: _node(page, n) for n in nodes}

    async with open_agent_runtime(graph=fan_out_graph(), goal=Goal(id="goal"), llm=llm,
                                  tools=tools) as runtime:
        async with open_event_feed(runtime, port=0,
                                   config=FeedConfig(dashboard_port=0)) as info:
            assert info.dashboard_url is not None
            both, after = await trio.to_thread.run_sync(drive, info.dashboard_url)
    assert both == {"start": "done", "left": "running", "right": "running", "join": "idle"}
    assert after == dict.fromkeys(after, "done")


async def test_a_paused_session_is_resumed_from_the_sessions_browser(tmp_path: Path) -> None:
    llm = ScriptedLLM.from_file(EXAMPLE / "script.json", autopilot=True)
    runtime = AgentRunner.load(EXAMPLE, llm=llm, storage_path=tmp_path).runtime

    def drive(url: str, session_id: str) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        with open_page(url) as page:
            row = f"#sessions tr[data-session={session_id}]"
            page.wait_for_selector(f"{row}[data-status=paused]")
            page.click(f"{row} button")
            page.wait_for_selector(f"#session-detail[data-session={session_id}] [data-resume]")
            shot(page, "dashboard-6-paused-session.png")
            page.click("#session-detail [data-resume]")
            page.wait_for_selector("#graph [data-node-id=intake][data-state=waiting]")
            page.fill("#input-text", ANSWER)
            page.click("#input-send")
            page.wait_for_selector(f"#executions li[data-execution={session_id}]"
                                   "[data-status=completed]")
            page.wait_for_selector(f"{row}[data-status=completed]")
            seen["states"] = {n: _node(page, n) for n in PATH}
        return seen

    async with runtime:
        # nobody listens for input yet: the agent's question pauses the session at once
        paused = await runtime.trigger_and_wait("start", {})
        assert paused.status == "paused"
        async with open_event_feed(runtime, port=0,
                                   config=FeedConfig(dashboard_port=0)) as info:
            assert info.dashboard_url is not None
            seen = await trio.to_thread.run_sync(drive, info.dashboard_url, paused.session_id)
        result = await runtime.wait_for_result(paused.session_id)
    assert result.status == "completed" and result.output["topic"] == ANSWER
    assert seen["states"] == dict.fromkeys(PATH, "done")


async def test_a_retried_node_is_one_visit_with_its_retry_nested() -> None:
    calls = []

    def flaky() -> dict[str, Any]:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("first attempt fails")
        return {"x": 1}

    graph = GraphSpec(
        id="retry", entry_node="flaky",
        nodes=(NodeSpec(id="flaky", node_type="function", function="flaky", output_keys=("x",),
                        max_retries=1),
               NodeSpec(id="after", node_type="function", function="after", input_keys=("x",))),
        edges=(EdgeSpec(id="f-a", source="flaky", target="after"),), terminal_nodes=("after",))
    functions = {"flaky": flaky, "after": lambda x: {}}
    config = RuntimeConfig(executor_config=ExecutorConfig(functions=functions))

    def drive(url: str) -> dict[str, Any]:
        with open_page(url) as page:
            page.wait_for_selector("#graph [data-node-id=after]")
            page.click("[data-trigger=default]")
            page.wait_for_selector("#executions li[data-status=completed]")
            return {
                "visits": page.eval_on_selector_all(
                    "#timeline .visit .tl-bar", "els => els.map(e => e.dataset.nodeId)"),
                "nested": page.eval_on_selector_all(
                    "#timeline .sub .tl-bar", "els => els.map(e => e.title)"),
                "flaky": _node(page, "flaky"),
            }

    async with open_agent_runtime(graph=graph, goal=Goal(id="goal"), config=config) as runtime:
        async with open_event_feed(runtime, port=0,
                                   config=FeedConfig(dashboard_port=0)) as info:
            assert info.dashboard_url is not None
            seen = await trio.to_thread.run_sync(drive, info.dashboard_url)
    assert seen["visits"] == ["flaky", "after"]
    assert seen["nested"] == ["retry 1"] and seen["flaky"] == "done"
