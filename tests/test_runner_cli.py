"""`hive-actors run / resume / sessions` as child processes, including a SIGKILL mid-node."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import trio

AGENT_PY = '''
from hive_actors.graph import EdgeSpec, Goal, NodeSpec

goal = Goal(id="steps")
nodes = [
    NodeSpec(id="n1", node_type="function", function="steps:one", input_keys=("x",),
             output_keys=("a",)),
    NodeSpec(id="n2", node_type="function", function="steps:two", input_keys=("a",),
             output_keys=("b",)),
    NodeSpec(id="n3", node_type="function", function="steps:three", input_keys=("b",),
             output_keys=("c",)),
]
edges = [EdgeSpec(id="e1", source="n1", target="n2"), EdgeSpec(id="e2", source="n2", target="n3")]
'''

# n2 tells the test it is running (by writing to a FIFO) and then blocks reading another FIFO,
# unless the "free" file exists. Every call is logged, so reruns are visible.
STEPS_PY = '''
import os
HERE = os.path.dirname(__file__)

def _log(name):
    with open(os.path.join(HERE, "calls.log"), "a") as f:
        f.write(name + "\\n")

def one(x):
    _log("n1")
    return {"a": x + 1}

def two(a):
    _log("n2")
    if not os.path.exists(os.path.join(HERE, "free")):
        with open(os.path.join(HERE, "entered.fifo"), "w") as f:
            f.write("in n2\\n")
        with open(os.path.join(HERE, "hold.fifo")) as f:
            f.read()
    return {"b": a * 10}

def three(b):
    _log("n3")
    return {"c": b + 5}
'''


def make_agent(tmp_path):
    folder = tmp_path / "steps_agent"
    folder.mkdir()
    (folder / "agent.py").write_text(textwrap.dedent(AGENT_PY))
    (folder / "steps.py").write_text(textwrap.dedent(STEPS_PY))
    os.mkfifo(folder / "entered.fifo")
    os.mkfifo(folder / "hold.fifo")
    return folder


def cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from hive_actors.cli import main; sys.exit(main())",
            *args]


async def test_sigkill_mid_node_then_resume_completes_without_rerunning_done_nodes(tmp_path):
    agent = make_agent(tmp_path)
    storage = tmp_path / "store"
    proc = subprocess.Popen(cli("run", str(agent), "--input", '{"x": 1}', "--storage", str(storage)),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        with trio.fail_after(60):
            # blocks until n2 is running in the child
            line = await trio.to_thread.run_sync(lambda: (agent / "entered.fifo").read_text())
        assert line == "in n2\n"
        proc.send_signal(signal.SIGKILL)
        await trio.to_thread.run_sync(proc.wait)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # The session files are the journal's view: `sessions` replays a dead runtime's journal
    # into them first, so they are read after it, not straight after the kill.
    listing = subprocess.run(cli("sessions", str(agent), "--storage", str(storage)),
                             capture_output=True, text=True, timeout=60)
    (sid,) = [p.name for p in (storage / "sessions").iterdir()]
    assert sid in listing.stdout and "running" in listing.stdout
    state = json.loads((storage / "sessions" / sid / "state.json").read_text())
    assert state["status"] == "running"  # left behind by a dead process

    (agent / "free").touch()
    done = await trio.to_thread.run_sync(lambda: subprocess.run(
        cli("resume", str(agent), sid, "--storage", str(storage)),
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60))
    assert done.returncode == 0, done.stderr
    state = json.loads((storage / "sessions" / sid / "state.json").read_text())
    assert state["status"] == "completed" and state["output"]["c"] == (1 + 1) * 10 + 5
    calls = (agent / "calls.log").read_text().split()
    # n1 completed before the kill and never ran again; n2 was in flight and ran again
    assert calls == ["n1", "n2", "n2", "n3"]


async def test_run_command_bad_input_is_a_usage_error(tmp_path):
    agent = make_agent(tmp_path)
    proc = subprocess.run(cli("run", str(agent), "--input", "{nope"), capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and "not valid JSON" in proc.stderr
