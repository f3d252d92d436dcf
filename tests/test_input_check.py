"""The input check at the door: trigger (API and feed), resume and the CLI refuse input that
is not plain JSON within bounds with InputDataError naming the path of the offending value;
nothing is stored for refused input."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from trio_websocket import open_websocket_url

from feed_support import FeedClient
from hive_actors.errors import InputDataError
from hive_actors.feed import open_event_feed
from hive_actors.graph.spec import Goal, GraphSpec, NodeSpec
from hive_actors.jsonsafe import InputCheck
from hive_actors.runner.commands import run_command
from hive_actors.runtime.agent_runtime import RuntimeConfig, create_agent_runtime


def graph() -> GraphSpec:
    return GraphSpec(id="g", entry_node="a", nodes=(NodeSpec(id="a", node_type="function",
                                                             function="builtins:dict"),))


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def self_referencing() -> dict[str, Any]:
    loop: dict[str, Any] = {"a": []}
    loop["a"].append(loop)
    return loop


BAD_INPUTS = [
    ({"x": nested(400)}, r"\['x'\](\[0\])+ is nested more than 64 levels deep"),
    (self_referencing(), r"\['a'\]\[0\]\['a'\].* is nested more than"),
    ({"x": [1, math.nan]}, r"\['x'\]\[1\] is nan"),
    ({"y": {"z": math.inf}}, r"\['y'\]\['z'\] is inf"),
    ({"b": b"raw"}, r"\['b'\] is bytes.*decode it"),
    ({"s": "a\udcffb"}, r"\['s'\] holds a lone surrogate"),
    ({"k": {1: 2}}, r"\['k'\] has a key of type int"),
    ({"big": "x" * 2000}, r"\['big'\] takes the input over max_input_bytes \(1000 bytes\)"),
]


@pytest.mark.parametrize("bad, message", BAD_INPUTS)
async def test_trigger_refuses_input_that_is_not_plain_json_within_bounds(
        tmp_path: Path, bad: dict[str, Any], message: str) -> None:
    rt = create_agent_runtime(graph=graph(), goal=Goal(id="g"), storage_path=tmp_path,
                              config=RuntimeConfig(max_input_bytes=1000))
    async with rt:
        with pytest.raises(InputDataError, match=r"entry point 'default': input_data" + message):
            await rt.trigger("default", bad)
        ok = await rt.trigger_and_wait("default", {"fine": [1.5, "é", None, True]})
        assert ok.success
    assert len(list((tmp_path / "sessions").iterdir())) == 1  # only the good one


def test_a_large_input_is_checked_in_steps() -> None:
    check = InputCheck({"items": list(range(50_000))}, where="input", max_bytes=10**7,
                       max_depth=64)
    assert check.step(1000) is False  # more to do: the runtime finishes it in a thread
    assert check.step() is True


async def test_feed_trigger_with_bad_input_is_rejected_naming_the_path(tmp_path: Path) -> None:
    rt = create_agent_runtime(graph=graph(), goal=Goal(id="g"), storage_path=tmp_path,
                              config=RuntimeConfig(max_input_depth=10))
    async with rt, open_event_feed(rt, port=0) as info, open_websocket_url(info.url) as ws:
        client = FeedClient(ws)
        frame = '{"type": "trigger", "id": 1, "entry_point": "default", "input": {"n": NaN}}'
        await ws.send_message(frame)
        reply = await client.reply_to(1)
        assert reply["code"] == "rejected" and "['n'] is nan" in reply["message"]
        deep = {"d": nested(20)}  # within the feed's frame bound, over the runtime's
        reply = await client.call("trigger", entry_point="default", input=deep)
        assert reply["code"] == "rejected" and "nested more than" in reply["message"]


def test_cli_run_with_deep_or_non_finite_input_is_a_clear_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], devnull_stdin: None) -> None:
    agent = tmp_path / "agent"
    agent.mkdir()
    (agent / "agent.json").write_text(json.dumps({
        "graph": {"id": "g", "entry_node": "a",
                  "nodes": [{"id": "a", "node_type": "function", "function": "builtins:dict"}]},
        "goal": {"id": "g"}}))
    storage = str(tmp_path / "store")
    deep = '{"x": ' + "[" * 400 + "]" * 400 + "}"
    assert run_command(str(agent), deep, storage=storage) == 1
    assert "nested more than 64 levels deep" in capsys.readouterr().err
    assert run_command(str(agent), '{"x": NaN}', storage=storage) == 1
    assert "['x'] is nan" in capsys.readouterr().err
    assert run_command(str(agent), "[" * 100_000, storage=storage) == 2  # not even JSON


async def test_resume_input_is_checked_too(tmp_path: Path) -> None:
    rt = create_agent_runtime(graph=graph(), goal=Goal(id="g"), storage_path=tmp_path)
    async with rt:
        with pytest.raises(InputDataError, match=r"resume of 'nope': input_data\['x'\] is inf"):
            await rt.resume("nope", {"x": math.inf})
