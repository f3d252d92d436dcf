"""The three_turns agent (tests/fault/agents/three_turns) against the fake OpenAI server:
its script, and what the step-journal tests compare (the model requests, the tool's calls)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fake_openai import FakeOpenAI, FakeScript, FakeToolCall, RecordedRequest, Reply

AGENT = Path(__file__).parent / "fault" / "agents" / "three_turns"
MODEL = "openai/gpt-4o-mini"


def turn(n: int, *extra: FakeToolCall) -> Reply:
    """Model turn ``n``: some text and a call of bump(n) (ids fixed: the requests of two runs
    must be comparable)."""
    return Reply(text=f"Turn {n}.", tool_calls=(
        FakeToolCall("bump", json.dumps({"n": n}), id=f"call_{n}"), *extra))


SET_RESULT = FakeToolCall("set_output", json.dumps({"key": "result", "value": "three bumps"}),
                          id="call_out")
TURNS = (turn(1), turn(2), turn(3, SET_RESULT))
HANG = Reply(text="never", hang_after=0)  # stalls until the client goes away


def script(*replies: Reply) -> FakeScript:
    return FakeScript({"work": list(replies)})


def messages(requests: list[RecordedRequest]) -> list[Any]:
    """What each request asked the model (the conversation it sent)."""
    return [r.body["messages"] for r in requests]


def calls(ctl: Path) -> list[str]:
    try:
        return (ctl / "calls.log").read_text().split()
    except FileNotFoundError:
        return []


def env_for(monkeypatch: Any, server: FakeOpenAI, ctl: Path) -> None:
    ctl.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_API_BASE", server.base_url)
    monkeypatch.setenv("FAULT_CTL", str(ctl))

ASK = FakeToolCall("ask_user", json.dumps({"question": "Go on?"}), id="call_ask")
ASKING_TURNS = (turn(1), turn(2, ASK), turn(3, SET_RESULT))  # turn 2 asks the client too


def by_turn() -> FakeScript:
    """Answers by how far the conversation got (the marker of the last tool result), so a
    turn asked again gets the same reply whatever was asked before."""
    return FakeScript({"work": [TURNS[0]] * 10, "after1": [TURNS[1]] * 10,
                       "after2": [TURNS[2]] * 10}, last_marker=True)
