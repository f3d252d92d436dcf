"""Deterministic replay (issue 18): 20 recorded sessions (scripted and fake-server ones, with
fan-out, tool calls, forks, pauses for client input, stops and resumes, one left interrupted)
replay identical offline with the fake server stopped; an edited record is reported as the
first difference; ``hive-actors replay`` prints the verdict and exits 1 on a difference."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import trio

from hive_actors import ScriptedLLM, create_agent_runtime, load_agent
from hive_actors.cli import main
from hive_actors.runner import AgentRunner
from hive_actors.storage.session_store import SessionStore

from fake_openai import FakeOpenAI
from step_support import AGENT as THREE_TURNS
from step_support import ASKING_TURNS, HANG, MODEL, TURNS, env_for, script

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:litellm")

AGENTS = Path(__file__).parent / "agents"
EXAMPLE = Path(__file__).parents[1] / "examples" / "research_assistant"


async def _scripted_sessions(tmp_path) -> list[tuple[Path, Path, str]]:
    """Ten sessions of scripted models: a 5-node run and six forks of it, three fan-outs."""
    found = []
    five = AGENTS / "five_llm"
    store = tmp_path / "five"
    async with create_agent_runtime(load_agent(five), storage_path=store,
                                    llm=ScriptedLLM.from_file(five / "script.json")) as rt:
        first = await rt.trigger_and_wait("default", {"topic": "trio"})
        sids = [first.session_id]
        for seq in range(1, 6):
            sids.append((await rt.fork(first.session_id, seq)).session_id)
        sids.append((await rt.fork(first.session_id, 2, {"topic": "changed"})).session_id)
    found += [(five, store, sid) for sid in sids]
    fan = AGENTS / "fan_llm"
    store = tmp_path / "fan"
    async with create_agent_runtime(load_agent(fan), storage_path=store,
                                    llm=ScriptedLLM.from_file(fan / "script.json")) as rt:
        for subject in ("a", "b", "c"):
            result = await rt.trigger_and_wait("default", {"subject": subject})
            assert result.output["done"] == "L+R"
            found.append((fan, store, result.session_id))
    return found


async def _client_input_sessions(tmp_path) -> list[tuple[Path, Path, str]]:
    """Two sessions of the research assistant: paused for the user then resumed, and left
    paused."""
    store = tmp_path / "ra"
    async with AgentRunner.load(EXAMPLE, llm="scripted", storage_path=store) as runner:
        paused = await runner.run({"topic_request": "trio"})
        assert paused.status == "paused"
        done = await runner.run({"input": "structured concurrency"},
                                session_state=paused.session_state)
        assert done.status == "completed"
        waiting = await runner.run({"topic_request": "asyncio"})
    return [(EXAMPLE, store, done.session_id), (EXAMPLE, store, waiting.session_id)]


async def _fake_server_sessions(tmp_path, monkeypatch) -> list[tuple[Path, Path, str]]:
    """Eight sessions of the three_turns agent against the fake OpenAI server (stopped when
    this returns): plain runs, a stop and resume, pauses and resumes, one left cancelled."""
    store = tmp_path / "three"
    sids = []
    async with trio.open_nursery() as nursery:
        server = FakeOpenAI(script())
        await nursery.start(server.run)
        env_for(monkeypatch, server, tmp_path / "ctl")

        async def runner() -> AgentRunner:
            return AgentRunner.load(THREE_TURNS, model=MODEL, storage_path=store)

        for input_data in ({}, {"note": "second"}, {}):
            server.load(script(*TURNS))
            async with await runner() as r:
                sids.append((await r.run(input_data)).session_id)
        for resume in (True, False):  # stopped while turn 3 waits; resumed, or left so
            server.load(script(TURNS[0], TURNS[1], HANG, TURNS[2]))
            async with await runner() as r:
                sid = await r.trigger(input_data={})
                await server.wait_for_requests(len(server.requests) + 3)
                await r.stop()
            if resume:
                async with await runner() as r:
                    assert (await r.resume(sid)).status == "completed"
            sids.append(sid)
        server.load(script(*ASKING_TURNS))
        async with await runner() as r:
            paused = await r.run({})
            sids.append((await r.run({"input": "yes"}, session_state=paused.session_state)
                         ).session_id)
            server.load(script(*ASKING_TURNS[:2]))
            sids.append((await r.run({})).session_id)  # left paused
        server.load(script(ASKING_TURNS[0], ASKING_TURNS[1], HANG, ASKING_TURNS[2]))
        async with await runner() as r:
            paused = await r.run({})
            sid = await r.trigger(input_data={"input": "yes"}, session_state=paused.session_state)
            await server.wait_for_requests(len(server.requests) + 1)
            await r.stop()
        async with await runner() as r:
            assert (await r.resume(sid)).status == "completed"
        sids.append(sid)
        nursery.cancel_scope.cancel()  # the fake server is gone for the replays
    return [(THREE_TURNS, store, sid) for sid in sids]


async def test_twenty_recorded_sessions_replay_identical_offline(tmp_path, monkeypatch):
    with trio.fail_after(120):
        sessions = [*await _scripted_sessions(tmp_path),
                    *await _client_input_sessions(tmp_path),
                    *await _fake_server_sessions(tmp_path, monkeypatch)]
    assert len(sessions) == 20
    monkeypatch.setenv("OPENAI_API_BASE", "http://127.0.0.1:9/v1")  # nothing listens there
    interrupted = 0
    for agent, store, sid in sessions:
        before = sorted((p, p.read_bytes()) for p in (store / "sessions" / sid).rglob("*")
                        if p.is_file())
        runtime = create_agent_runtime(load_agent(agent), storage_path=store)  # no model
        with trio.fail_after(60):
            report = await runtime.replay(sid)
        assert report.identical, (agent.name, sid, report.difference)
        # steps used, and the final state (an interrupted session: steps and checkpoints)
        assert report.compared >= (1 if report.interrupted else 5), (agent.name, sid, report)
        interrupted += report.interrupted
        after = sorted((p, p.read_bytes()) for p in (store / "sessions" / sid).rglob("*")
                       if p.is_file())
        assert after == before  # a replay leaves the session as it was
    assert interrupted == 1


def _three_turns_session(tmp_path, monkeypatch) -> tuple[Path, str]:
    async def record() -> str:
        async with trio.open_nursery() as nursery:
            server = FakeOpenAI(script(*TURNS))
            await nursery.start(server.run)
            env_for(monkeypatch, server, tmp_path / "ctl")
            async with AgentRunner.load(THREE_TURNS, model=MODEL,
                                        storage_path=tmp_path / "s") as r:
                sid = (await r.run({})).session_id
            nursery.cancel_scope.cancel()
        return sid

    return tmp_path / "s", trio.run(record)


def _edit_step(store: Path, sid: str, match: str, old: str, new: str) -> None:
    path = store / "sessions" / sid / "logs" / "steps.jsonl"
    lines = path.read_text().splitlines()
    (i,) = [i for i, line in enumerate(lines) if match in line]
    assert old in lines[i]
    lines[i] = lines[i].replace(old, new)
    path.write_text("\n".join(lines) + "\n")


def test_replay_command_says_identical_then_names_an_edited_record(tmp_path, monkeypatch,
                                                                   capsys):
    store, sid = _three_turns_session(tmp_path, monkeypatch)
    args = ["replay", str(THREE_TURNS), sid, "--storage", str(store)]
    assert main(args) == 0
    assert "replay identical" in capsys.readouterr().out
    _edit_step(store, sid, '"part": "tool:call_2"', "bumped 2", "bumped 20")
    assert main(args) == 1
    out = capsys.readouterr().out
    # the first difference: the tool message of turn 2 in the conversation
    assert "replay differs: conversation '_shared' message 4" in out
    assert "bumped 2 " in out and "bumped 20" in out


def test_replay_reports_an_edited_model_turn_as_the_first_difference(tmp_path, monkeypatch):
    store, sid = _three_turns_session(tmp_path, monkeypatch)
    _edit_step(store, sid, "three bumps", "three bumps", "four bumps")
    report = trio.run(create_agent_runtime(load_agent(THREE_TURNS), storage_path=store).replay,
                      sid)
    assert not report.identical
    # the model's turn 3 as the conversation holds it
    assert report.difference.startswith("conversation '_shared' message 5: ")
    assert "four bumps" in report.difference


def test_replay_of_an_unknown_session_is_a_usage_error(tmp_path, capsys):
    assert main(["replay", str(THREE_TURNS), "session_20260101_000000_00000000",
                 "--storage", str(tmp_path)]) == 2
    assert "session_20260101_000000_00000000" in capsys.readouterr().err


def test_a_headless_run_answered_on_stdin_replays_identical(tmp_path, monkeypatch, capsys):
    """The answer typed while the node waits (not a pause) is a recorded input too."""
    answer = tmp_path / "answer.txt"
    answer.write_text("structured concurrency\n")
    monkeypatch.setattr("sys.stdin", answer.open())
    store = str(tmp_path / "s")
    assert main(["run", str(EXAMPLE), "--scripted", "--storage", store, "-q"]) == 0
    sid, status = capsys.readouterr().out.split()
    assert status == "completed"
    kinds = [r["kind"] for r in SessionStore(Path(store)).read_steps(sid)]
    assert "input" in kinds and "resume" not in kinds  # taken live, no pause
    assert main(["replay", str(EXAMPLE), sid, "--storage", store]) == 0
    assert "replay identical" in capsys.readouterr().out


async def test_llm_decide_verdicts_are_recorded_and_replayed(tmp_path):
    """The model sends the run down 'no' (it declines 'yes'); offline, without the recorded
    verdicts, a failing model would count as proceed on both edges."""
    agent = AGENTS / "decide_llm"
    async with create_agent_runtime(load_agent(agent), storage_path=tmp_path,
                                    llm=ScriptedLLM.from_file(agent / "script.json")) as rt:
        result = await rt.trigger_and_wait("default", {})
    assert result.output["went"] == "no" and list(result.path) == ["start", "no"]
    steps = SessionStore(tmp_path).read_steps(result.session_id)
    assert [(r["part"], r["proceed"]) for r in steps if r["kind"] == "decision"] == [
        ("edge:s-yes", False), ("edge:s-no", True)]
    report = await create_agent_runtime(load_agent(agent), storage_path=tmp_path).replay(
        result.session_id)
    assert report.identical, report.difference
