"""Headless mode: stdin answers client input; EOF pauses instead of hanging."""

from __future__ import annotations

import io
import os
import textwrap

import pytest
import trio

from hive_actors.llm.scripted import Reply, ScriptedLLM, call
from hive_actors.runner import AgentRunner, LineReader, run_headless

from test_runner_seed import AGENT_PY, STEPS_PY


@pytest.fixture
def agent_dir(tmp_path):
    folder = tmp_path / "my_agent"
    folder.mkdir()
    (folder / "agent.py").write_text(textwrap.dedent(AGENT_PY))
    (folder / "steps.py").write_text(textwrap.dedent(STEPS_PY))
    return folder


def llm():
    return ScriptedLLM({"review-node": [
        Reply("Approve?"),
        Reply("Noted.", [call("set_output", key="decision", value="approved")]),
    ]})


def piped(data: bytes) -> LineReader:
    r, w = os.pipe()
    os.write(w, data)
    os.close(w)
    reader = LineReader.from_fd(r)
    os.close(r)
    return reader


async def test_headless_answers_input_from_piped_stdin(agent_dir, tmp_path):
    out = io.StringIO()
    async with AgentRunner.load(agent_dir, llm=llm(), storage_path=tmp_path / "s") as runner:
        rt = runner.runtime
        reader = piped(b"approved\n")
        with trio.fail_after(10):
            result = await run_headless(rt, lambda: rt.trigger("default", {"query": "q"}),
                                        entry_point_id="default", reader=reader, out=out)
        await reader.aclose()
    assert result.status == "completed" and result.output["report"] == "do q: approved"
    assert "Approve?" in out.getvalue()


async def test_headless_eof_on_piped_stdin_pauses_and_prints_resume_hint(agent_dir, tmp_path):
    out = io.StringIO()
    model = llm()
    async with AgentRunner.load(agent_dir, llm=model, storage_path=tmp_path / "s") as runner:
        rt = runner.runtime
        reader = piped(b"")
        with trio.fail_after(10):  # the reference hangs forever here
            result = await run_headless(rt, lambda: rt.trigger("default", {"query": "q"}),
                                        entry_point_id="default", reader=reader, out=out,
                                        resume_hint=lambda sid: f"resume {sid}")
        await reader.aclose()
        assert result.status == "paused" and result.paused_at == "review-node"
        # paused *waiting for the user*: resuming hands the reply to that node
        assert result.session_state["waiting_input"] == "review-node"
        assert f"resume {result.session_id}" in out.getvalue()
        # the paused session resumes from its checkpoint with a live answer
        reader = piped(b"approved\n")
        sid = result.session_id
        result = await run_headless(rt, lambda: rt.resume_nowait(sid), entry_point_id="default",
                                    reader=reader, out=out)
        await reader.aclose()
    assert result.status == "completed" and result.output["decision"] == "approved"
    # the question was asked again to the client, not to the model: two model turns in all
    assert len(model.calls_for("review-node")) == 2
    assert out.getvalue().count("Approve?") == 2
