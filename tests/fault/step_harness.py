"""SIGKILL ``hive-actors run`` of the three_turns agent (one event_loop node: three model turns,
a bump tool call each) at a step of its node, then ``hive-actors resume`` it; the fake OpenAI
server runs in the test process, so its request log shows what each process asked.

Points: ``("turn", n)``: model turn n is recorded and tool n is entered (the kill comes before
its side effect); ``("result", n)``: tool result n is recorded and turn n+1 is asked (the
server holds that request until the kill). `kill_in_write` kills inside the journal's durable
write instead (children/kill_in_storage.py), at every call of one run.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import attrs
import trio

from fake_openai import FakeOpenAI
from fault.crash_harness import CHILD_TIMEOUT, Control, child_process, cli
from fault.support import STATS
from hive_actors.storage.session_store import SessionStore
from step_support import AGENT, HANG, MODEL, TURNS, by_turn, messages, script

POINTS = (("turn", 1), ("result", 1), ("turn", 2), ("result", 2), ("turn", 3))


@attrs.define
class StepOutcome:
    asked_before: list[Any]  # the conversations the killed run sent the model
    asked_after: list[Any]  # ... and the resumed run
    calls_before: list[str]
    calls_after: list[str]
    final_state: dict[str, Any]
    tool_log: list[dict[str, Any]]
    replay: str  # what `hive-actors replay` printed for the resumed session


def child_env(server: FakeOpenAI, ctl: Control) -> dict[str, str]:
    return {**os.environ, "FAULT_CTL": str(ctl.dir), "OPENAI_API_KEY": "sk-test",
            "OPENAI_API_BASE": server.base_url}


def script_for(point: tuple[str, int]) -> list[Any]:
    where, n = point
    if where == "result":  # turn n+1 is first asked of a model that never answers
        return [*TURNS[:n], HANG, *TURNS[n:]]
    return list(TURNS)


async def kill_at_step(tmp: Path, point: tuple[str, int], nursery: trio.Nursery) -> StepOutcome:
    where, n = point
    server = FakeOpenAI(script(*script_for(point)))
    await nursery.start(server.run)
    ctl = Control(tmp / "ctl")
    storage = tmp / "store"
    env = child_env(server, ctl)
    try:
        if where == "turn":
            ctl.plan("tool", str(n))
        argv = cli("run", str(AGENT), "--model", MODEL, "--storage", str(storage))
        async with child_process(argv, env, tmp / "run.out"):
            with trio.fail_after(CHILD_TIMEOUT):
                if where == "turn":
                    assert await ctl.next_signal() == f"tool {n}"
                else:
                    await server.wait_for_requests(n + 1)
        STATS.add("step_kills")
        ctl.plan(None)
        calls_before, asked_before = ctl.calls(), messages(server.requests)
        (sid,) = [p.name for p in (storage / "sessions").iterdir()]
        done = await trio.run_process(
            cli("resume", str(AGENT), sid, "--model", MODEL, "--storage", str(storage)),
            env=env, stdin=b"", capture_stdout=True, capture_stderr=True, check=False)
        assert done.returncode == 0, done.stderr.decode()
        session = storage / "sessions" / sid
        tool_log = [json.loads(line) for line in
                    (session / "logs" / "tool_logs.jsonl").read_text().splitlines()]
        asked_after = messages(server.requests)[len(asked_before):]
        replay = await trio.run_process(
            cli("replay", str(AGENT), sid, "--storage", str(storage)), env=env,
            capture_stdout=True, capture_stderr=True, check=False)
        assert len(server.requests) == len(asked_before) + len(asked_after)  # offline
        return StepOutcome(asked_before, asked_after, calls_before,
                           ctl.calls()[len(calls_before):],
                           json.loads((session / "state.json").read_bytes()), tool_log,
                           f"{replay.returncode} {replay.stdout.decode()}")
    finally:
        await ctl.aclose()


async def uninterrupted(tmp: Path, nursery: trio.Nursery) -> tuple[dict[str, Any], list[Any]]:
    """Output and model conversations of a ``hive-actors run`` nothing interrupts."""
    server = FakeOpenAI(script(*TURNS))
    await nursery.start(server.run)
    ctl = Control(tmp / "ctl")
    storage = tmp / "store"
    try:
        done = await trio.run_process(
            cli("run", str(AGENT), "--model", MODEL, "--storage", str(storage)),
            env=child_env(server, ctl), stdin=b"", capture_stdout=True, capture_stderr=True,
            check=False)
        assert done.returncode == 0, done.stderr.decode()
        assert ctl.calls() == ["bump1", "bump2", "bump3"]
        (sid,) = [p.name for p in (storage / "sessions").iterdir()]
        state = json.loads((storage / "sessions" / sid / "state.json").read_bytes())
        assert state["status"] == "completed"
        return state["output"], messages(server.requests)
    finally:
        await ctl.aclose()


KILL_CHILD = Path(__file__).parent / "children" / "kill_in_storage.py"


@attrs.define
class WriteKill:
    """One kill inside the journal's durable write, then a resume."""

    recorded_turns: int  # model turns whose step record was durable at the kill
    recorded_results: list[str]  # tool calls whose result record was durable
    asked_after: list[Any]
    calls: list[str]  # the tool's side effects, both processes
    final_state: dict[str, Any]


async def kill_in_write(tmp: Path, op: str, nth: int, nursery: trio.Nursery) -> WriteKill | None:
    """Run with the journal killing the process at its ``nth`` call of ``op`` (see
    children/kill_in_storage.py); None when the run made fewer calls. The server answers by
    turn (`by_turn`), so a turn asked again gets its reply again."""
    server = FakeOpenAI(by_turn())
    await nursery.start(server.run)
    ctl = Control(tmp / "ctl")
    storage = tmp / "store"
    env = {**child_env(server, ctl), "KILL_MODEL": MODEL, "KILL_INPUT": "{}"}
    try:
        run = await trio.run_process(
            [sys.executable, str(KILL_CHILD), str(AGENT), str(storage), op, str(nth)],
            env=env, check=False, capture_stdout=True, capture_stderr=True)
        if run.returncode == 0:
            return None
        assert run.returncode == -9, run.stderr.decode()
        STATS.add("step_write_kills")
        listed = await trio.run_process(cli("sessions", str(AGENT), "--storage", str(storage)),
                                        env=env, check=False, capture_stdout=True,
                                        capture_stderr=True)  # replays the journal
        assert listed.returncode == 0, listed.stderr.decode()
        sessions = storage / "sessions"
        sids = [p.name for p in sessions.iterdir()] if sessions.exists() else []
        if not sids:  # killed before the acceptance record was durable: nothing accepted
            assert ctl.calls() == []
            return WriteKill(0, [], [], [], {"status": "not accepted"})
        (sid,) = sids
        steps = SessionStore(storage).read_steps(sid)
        turns = sum(1 for r in steps if r["kind"] == "turn")
        results = [r["part"].removeprefix("tool:") for r in steps if r["kind"] == "tool"]
        asked = len(server.requests)
        state = json.loads((sessions / sid / "state.json").read_bytes())
        if state["status"] != "completed":
            done = await trio.run_process(
                cli("resume", str(AGENT), sid, "--model", MODEL, "--storage", str(storage)),
                env=env, stdin=b"", capture_stdout=True, capture_stderr=True, check=False)
            assert done.returncode == 0, done.stderr.decode()
        return WriteKill(turns, results, messages(server.requests)[asked:], ctl.calls(),
                         json.loads((sessions / sid / "state.json").read_bytes()))
    finally:
        await ctl.aclose()
