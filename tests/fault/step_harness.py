"""SIGKILL ``hive-actors run`` of the three_turns agent (one event_loop node: three model turns,
a bump tool call each) at a step of its node, then ``hive-actors resume`` it; the fake OpenAI
server runs in the test process, so its request log shows what each process asked.

Points: ``("turn", n)``: model turn n is recorded and tool n is entered (the kill comes before
its side effect); ``("result", n)``: tool result n is recorded and turn n+1 is asked (the
server holds that request until the kill).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import attrs
import trio

from fake_openai import FakeOpenAI
from fault.crash_harness import CHILD_TIMEOUT, Control, child_process, cli
from fault.support import STATS
from step_support import AGENT, HANG, MODEL, TURNS, messages, script

POINTS = (("turn", 1), ("result", 1), ("turn", 2), ("result", 2), ("turn", 3))


@attrs.define
class StepOutcome:
    asked_before: list[Any]  # the conversations the killed run sent the model
    asked_after: list[Any]  # ... and the resumed run
    calls_before: list[str]
    calls_after: list[str]
    final_state: dict[str, Any]
    tool_log: list[dict[str, Any]]


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
        return StepOutcome(asked_before, messages(server.requests)[len(asked_before):],
                           calls_before, ctl.calls()[len(calls_before):],
                           json.loads((session / "state.json").read_bytes()), tool_log)
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
