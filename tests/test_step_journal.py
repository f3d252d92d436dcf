"""Durable steps inside an event_loop node (issue 18): a node of three model turns, each with a
tool call, interrupted by ``stop()`` or a pause after its second tool result, resumes with the
model requests of turn 3 onwards only, and the tools of turns 1-2 ran once each. The fake
OpenAI server's request log is the evidence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trio

from hive_actors.errors import CorruptFileError
from hive_actors.events import EventType
from hive_actors import create_agent_runtime, load_agent, tool
from hive_actors.llm.scripted import Reply as ScriptedReply
from hive_actors.llm.scripted import ScriptedLLM, call
from hive_actors.runner import AgentRunner
from hive_actors.storage.session_store import SessionStore
from hive_actors.tools.registry import Tool

from fake_openai import FakeOpenAI
from step_support import (AGENT, ASKING_TURNS, HANG, MODEL, TURNS, calls, env_for, messages,
                          script)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:litellm")


async def uninterrupted(tmp_path, monkeypatch, nursery) -> tuple[dict, list]:
    """Output and model requests of a run that nothing interrupts."""
    server = FakeOpenAI(script(*TURNS))
    await nursery.start(server.run)
    env_for(monkeypatch, server, tmp_path / "ctl0")
    async with AgentRunner.load(AGENT, model=MODEL, storage_path=tmp_path / "s0") as runner:
        with trio.fail_after(60):
            result = await runner.run({})
    assert result.status == "completed", result.error
    assert calls(tmp_path / "ctl0") == ["bump1", "bump2", "bump3"]
    return result.output, messages(server.requests)


async def test_stop_mid_node_then_resume_asks_the_model_only_from_turn_three(
        tmp_path, monkeypatch, nursery):
    expected, asked = await uninterrupted(tmp_path, monkeypatch, nursery)
    server = FakeOpenAI(script(TURNS[0], TURNS[1], HANG, TURNS[2]))
    await nursery.start(server.run)
    ctl, storage = tmp_path / "ctl", tmp_path / "s"
    env_for(monkeypatch, server, ctl)
    async with AgentRunner.load(AGENT, model=MODEL, storage_path=storage) as runner:
        sid = await runner.trigger(input_data={})
        with trio.fail_after(60):
            await server.wait_for_requests(3)  # turn 3 asked: tool result 2 is durable
        await runner.stop()
    state = json.loads((storage / "sessions" / sid / "state.json").read_text())
    assert state["status"] == "cancelled"
    assert calls(ctl) == ["bump1", "bump2"]
    before = len(server.requests)

    replayed: list[dict] = []
    async with AgentRunner.load(AGENT, model=MODEL, storage_path=storage) as runner:
        runner.runtime.subscribe_to_events(
            [EventType.CLIENT_OUTPUT_DELTA, EventType.LLM_TURN_COMPLETED],
            lambda e: replayed.append({"type": e.type, **e.data}), lossless=True)
        with trio.fail_after(60):
            result = await runner.resume(sid)
    assert result.status == "completed", result.error
    assert result.output == expected
    # the model was asked turn 3 only, with exactly the conversation of an uninterrupted run
    assert messages(server.requests[before:]) == asked[2:]
    assert calls(ctl) == ["bump1", "bump2", "bump3"]  # turns 1-2's tools ran once each
    # replayed turns stream no text again; their turn events say they were replayed
    deltas = "".join(e["content"] for e in replayed if e["type"] == EventType.CLIENT_OUTPUT_DELTA)
    assert deltas == "Turn 3."
    turns = [(e.get("replayed", False), e.get("text")) for e in replayed
             if e["type"] == EventType.LLM_TURN_COMPLETED]
    assert turns == [(True, "Turn 1."), (True, "Turn 2."), (False, None)]  # text, not deltas


async def test_pause_for_input_mid_node_then_resume_asks_only_from_turn_three(
        tmp_path, monkeypatch, nursery):
    server = FakeOpenAI(script(*ASKING_TURNS))
    await nursery.start(server.run)
    ctl, storage = tmp_path / "ctl", tmp_path / "s"
    env_for(monkeypatch, server, ctl)
    async with AgentRunner.load(AGENT, model=MODEL, storage_path=storage) as runner:
        with trio.fail_after(60):
            paused = await runner.run({})  # no client listens: the question pauses it
        assert paused.status == "paused" and calls(ctl) == ["bump1", "bump2"]
        with trio.fail_after(60):
            result = await runner.run({"input": "yes"}, session_state=paused.session_state)
    assert result.status == "completed", result.error
    assert result.output == {"result": "three bumps"}
    assert len(server.requests) == 3  # turns 1 and 2 were not asked again
    third = messages(server.requests)[2]
    assert third[:-4] == messages(server.requests)[1]  # turn 2's conversation, then
    assert [m["role"] for m in third[-4:]] == ["assistant", "tool", "tool", "user"]
    assert third[-1]["content"] == "yes"
    assert calls(ctl) == ["bump1", "bump2", "bump3"]


async def test_reply_to_a_pause_is_replayed_when_the_resumed_node_is_stopped_again(
        tmp_path, monkeypatch, nursery):
    """Paused for input, resumed with the reply, stopped while turn 3 waits for the model:
    the next resume (without a reply) replays the reply and the turns, asks turn 3 only."""
    server = FakeOpenAI(script(ASKING_TURNS[0], ASKING_TURNS[1], HANG, ASKING_TURNS[2]))
    await nursery.start(server.run)
    ctl, storage = tmp_path / "ctl", tmp_path / "s"
    env_for(monkeypatch, server, ctl)
    async with AgentRunner.load(AGENT, model=MODEL, storage_path=storage) as runner:
        with trio.fail_after(60):
            paused = await runner.run({})
        sid = await runner.trigger(input_data={"input": "yes"},
                                   session_state=paused.session_state)
        with trio.fail_after(60):
            third = await server.wait_for_requests(3)
        await runner.stop()
    assert third.body["messages"][-1] == {"role": "user", "content": "yes"}
    async with AgentRunner.load(AGENT, model=MODEL, storage_path=storage) as runner:
        with trio.fail_after(60):
            result = await runner.resume(sid)
    assert result.status == "completed", result.error
    assert result.output == {"result": "three bumps"}
    assert len(server.requests) == 4
    assert messages(server.requests)[3] == third.body["messages"]  # the reply came back
    assert calls(ctl) == ["bump1", "bump2", "bump3"]


def _pay_agent(tmp_path) -> Path:
    folder = tmp_path / "pay"
    folder.mkdir()
    (folder / "agent.json").write_text(json.dumps({
        "agent": {"id": "pay", "name": "Pay"},
        "graph": {"id": "pay-graph", "entry_node": "pay", "terminal_nodes": ["pay"],
                  "nodes": [{"id": "pay", "name": "Pay", "description": "charges once",
                             "node_type": "event_loop", "output_keys": ["receipt"],
                             "tools": ["charge"]}],
                  "edges": []},
        "goal": {"id": "pay", "name": "Pay"},
    }))
    return folder


def _pay_script() -> ScriptedLLM:
    return ScriptedLLM({"pay": [
        ScriptedReply("Charging.", [call("charge", amount=5)]),
        ScriptedReply("", [call("set_output", key="receipt", value="ok")]),
    ]})


async def _stop_inside_charge(tmp_path, idempotent: bool) -> tuple[Path, str, list[int], Any]:
    """Run the pay agent, stop() while its charge tool is in flight; the charge tool to
    resume with (it blocks on its first call only)."""
    entered: list[int] = []
    first_call = trio.Event()

    @tool(idempotent=idempotent)
    async def charge(amount: int) -> str:
        """Charge the card."""
        entered.append(amount)
        if len(entered) == 1:
            first_call.set()
            await trio.sleep_forever()
        return f"charged {amount}"

    storage = tmp_path / "s"
    agent = load_agent(_pay_agent(tmp_path))
    async with create_agent_runtime(agent, storage_path=storage, llm=_pay_script(),
                                    tools=[charge]) as runtime:
        sid = await runtime.trigger("default", {})
        with trio.fail_after(30):
            await first_call.wait()
        await runtime.stop()
    return storage, sid, entered, charge


async def _resume_pay(tmp_path, storage: Path, sid: str, charge: Any) -> Any:
    agent = load_agent(tmp_path / "pay")
    async with create_agent_runtime(agent, storage_path=storage, llm=_pay_script(),
                                    tools=[charge]) as runtime:
        with trio.fail_after(30):
            return await runtime.resume(sid)


async def test_a_tool_not_safe_to_repeat_in_flight_at_stop_fails_the_resume_naming_it(tmp_path):
    storage, sid, entered, charge = await _stop_inside_charge(tmp_path, idempotent=False)
    result = await _resume_pay(tmp_path, storage, sid, charge)
    assert result.status == "failed"
    assert "tool 'charge'" in result.error and "not safe to repeat" in result.error
    assert entered == [5]  # never called twice


async def test_a_repeatable_tool_in_flight_at_stop_runs_again_and_says_so(tmp_path):
    storage, sid, entered, charge = await _stop_inside_charge(tmp_path, idempotent=True)
    result = await _resume_pay(tmp_path, storage, sid, charge)
    assert result.status == "completed", result.error
    assert entered == [5, 5]  # at-least-once
    log = SessionStore(storage).read_tool_logs(sid)
    assert [r.get("rerun") for r in log if r["tool_name"] == "charge"] == [True]


def test_mcp_annotations_and_hive_tools_declare_a_tool_not_safe_to_repeat():
    from mcp import types

    from hive_actors.tools.hive_contract import hive_registry
    from hive_actors.tools.mcp_tools import repeatable

    assert repeatable(None) and repeatable(types.ToolAnnotations())
    assert not repeatable(types.ToolAnnotations(idempotentHint=False))
    assert repeatable(types.ToolAnnotations(idempotentHint=False, readOnlyHint=True))
    assert repeatable(types.ToolAnnotations(idempotentHint=True, destructiveHint=True))

    module = type(json)("hive_tools")
    module.TOOLS = {"pay": Tool("pay", "Pay.", {"type": "object", "properties": {}},
                                idempotent=False),
                    "look": Tool("look", "Look.", {"type": "object", "properties": {}})}
    registry = hive_registry(module)
    assert [registry.get(n).idempotent for n in ("pay", "look")] == [False, True]


async def test_without_the_step_journal_nothing_is_recorded(tmp_path):
    from hive_actors.runtime.config import RuntimeConfig

    @tool
    def charge(amount: int) -> str:
        """Charge the card."""
        return f"charged {amount}"

    agent = load_agent(_pay_agent(tmp_path))
    for journal in (True, False):
        storage = tmp_path / f"s{journal}"
        async with create_agent_runtime(agent, storage_path=storage, llm=_pay_script(),
                                        tools=[charge],
                                        config=RuntimeConfig(step_journal=journal)) as runtime:
            result = await runtime.trigger_and_wait("default", {})
            await runtime.flush_view()
        assert result.status == "completed"
        steps = SessionStore(storage).read_steps(result.session_id)
        assert [r["kind"] for r in steps] == (["turn", "tool", "turn"] if journal else [])


async def test_a_damaged_step_journal_refuses_the_resume_naming_the_line(tmp_path):
    storage, sid, entered, charge = await _stop_inside_charge(tmp_path, idempotent=True)
    path = SessionStore(storage).steps_path(sid)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(["{not json", *lines]) + "\n")
    with pytest.raises(CorruptFileError, match=r"steps\.jsonl:1"):
        await _resume_pay(tmp_path, storage, sid, charge)
    assert entered == [5]  # nothing ran again
