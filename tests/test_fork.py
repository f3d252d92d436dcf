"""Forks (issue 18): a new session from any checkpoint of a finished 5-node session, the old
one unchanged; the same output when nothing changes, the changed output when a memory key is
changed; no model request for a node completed before the checkpoint."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import trio

from hive_actors import ScriptedLLM, create_agent_runtime, load_agent
from hive_actors.cli import main
from hive_actors.storage.checkpoint_store import CheckpointStore

AGENT = Path(__file__).parent / "agents" / "five_llm"
LLM_NODES = ("s1", "s2", "s3", "s4")


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


async def test_fork_from_each_checkpoint_pays_only_for_the_nodes_after_it(tmp_path):
    llm = ScriptedLLM.from_file(AGENT / "script.json")
    agent = load_agent(AGENT)
    async with create_agent_runtime(agent, storage_path=tmp_path, llm=llm) as runtime:
        with trio.fail_after(30):
            original = await runtime.trigger_and_wait("default", {"topic": "trio"})
        assert original.status == "completed"
        assert original.output["result"] == "trio: v1 v2 v3 v4"
        await runtime.flush_view()  # the session files show every durable record
        folder = tmp_path / "sessions" / original.session_id
        before = _digest(folder)
        checkpoints = CheckpointStore(folder).load_all()
        assert [(c.seq, c.node_id) for c in checkpoints] == [
            (1, "s1"), (2, "s2"), (3, "s3"), (4, "s4"), (5, "s5")]
        for cp in checkpoints:
            asked = len(llm.requests)
            with trio.fail_after(30):
                same = await runtime.fork(original.session_id, cp.seq)
            assert same.status == "completed" and same.session_id != original.session_id
            assert same.output == original.output
            after = LLM_NODES[LLM_NODES.index(cp.node_id) + 1:] if cp.node_id in LLM_NODES else ()
            assert tuple(r.node_id for r in llm.requests[asked:]) == after
            with trio.fail_after(30):
                changed = await runtime.fork(original.session_id, cp.seq, {"topic": "actors"})
            expected = dict(original.output, topic="actors")
            if cp.node_id != "s5":  # the join runs again, with the changed key
                expected["result"] = "actors: v1 v2 v3 v4"
            assert changed.output == expected
        assert _digest(folder) == before  # the old session is left as it was


def test_fork_command_runs_a_new_session_and_refuses_an_unknown_checkpoint(tmp_path, capsys,
                                                                           monkeypatch):
    monkeypatch.setattr("sys.stdin", open(os.devnull))  # headless: nothing to answer with
    storage = str(tmp_path)
    assert main(["run", str(AGENT), "--scripted", "-i", '{"topic": "t"}', "--storage", storage,
                 "-q"]) == 0
    (sid,) = [p.name for p in (tmp_path / "sessions").iterdir()]
    capsys.readouterr()
    assert main(["fork", str(AGENT), sid, "--at", "3", "--input", '{"topic": "u"}',
                 "--scripted", "--storage", storage, "-q"]) == 0
    new_sid, status = capsys.readouterr().out.split()
    assert status == "completed" and new_sid != sid
    state = json.loads((tmp_path / "sessions" / new_sid / "state.json").read_text())
    assert state["output"]["result"] == "u: v1 v2 v3 v4" and state["forked_from"] == sid
    assert main(["fork", str(AGENT), sid, "--at", "9", "--scripted", "--storage", storage]) == 2
    assert "9" in capsys.readouterr().err
    assert main(["fork", str(AGENT), sid, "--scripted"]) == 2  # --at is required
    assert "--at" in capsys.readouterr().err
