"""``hive-actors serve``: a real process, driven by the `websockets` client, stopped by SIGINT."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import trio

AGENT = {
    "agent": {"id": "interview", "name": "interview", "version": "1.0.0"},
    "goal": {"id": "g", "name": "Interview"},
    "graph": {
        "id": "interview", "entry_node": "intake", "terminal_nodes": ["work"],
        "nodes": [
            {"id": "intake", "node_type": "event_loop", "client_facing": True,
             "output_keys": ["topic"]},
            {"id": "work", "node_type": "event_loop", "input_keys": ["topic"],
             "output_keys": ["answer"]},
        ],
        "edges": [{"id": "e", "source": "intake", "target": "work", "condition": "on_success"}],
    },
}


SCRIPT = {"intake": [{"text": "Which topic?"}]}


def _trigger_then_interrupt(url: str, interrupt: Any) -> str:
    """Connect, subscribe, trigger; once the intake node asks for input, ``interrupt()`` the
    server and read until it closes the connection. Returns the execution id."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    with connect(url) as ws:
        ws.send(json.dumps({"type": "subscribe", "id": 1}))
        ws.send(json.dumps({"type": "trigger", "id": 2, "entry_point": "default"}))
        while True:
            message = json.loads(ws.recv(timeout=30))
            if message["type"] == "event" and message["event"]["type"] == "client_input_requested":
                execution_id = message["event"]["execution_id"]
                break
        interrupt()
        try:
            while True:
                ws.recv(timeout=30)
        except ConnectionClosed:
            return execution_id


async def _read_until(stream: trio.abc.ReceiveStream, marker: bytes) -> bytes:
    out = b""
    while marker not in out:
        chunk = await stream.receive_some()
        if not chunk:
            raise AssertionError(f"process output ended before {marker!r}: {out.decode()}")
        out += chunk
    return out


async def test_serve_prints_urls_serves_clients_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    agent = tmp_path / "agent"
    agent.mkdir()
    (agent / "agent.json").write_text(json.dumps(AGENT))
    (tmp_path / "script.json").write_text(json.dumps(SCRIPT))
    storage = tmp_path / "storage"
    command = [sys.executable, "-m", "hive_actors.cli", "serve", str(agent),
               "--scripted", str(tmp_path / "script.json"), "--port", "0",
               "--storage", str(storage)]
    process = await trio.lowlevel.open_process(command, stdout=subprocess.PIPE,
                                               stderr=subprocess.STDOUT)
    try:
        with trio.fail_after(60):
            assert process.stdout is not None
            banner = (await _read_until(process.stdout, b"Ctrl-C")).decode()
            url = next(line.split()[-1] for line in banner.splitlines()
                       if line.startswith("event feed:"))
            assert any(line.startswith("dashboard:  http://127.0.0.1:")
                       for line in banner.splitlines())
            # Ctrl-C while the execution waits for its client
            interrupt = lambda: trio.from_thread.run_sync(process.send_signal, signal.SIGINT)
            execution_id = await trio.to_thread.run_sync(_trigger_then_interrupt, url, interrupt)
            tail = (await _read_until(process.stdout, b"stopped")).decode()
            assert "SIGINT: stopping" in tail
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    state = json.loads((storage / "sessions" / execution_id / "state.json").read_text())
    assert state["status"] == "cancelled"


def test_serve_refuses_a_public_binding_without_token(
        tmp_path: Path, monkeypatch: Any, capsys: Any) -> None:
    monkeypatch.delenv("HIVE_ACTORS_FEED_TOKEN", raising=False)
    agent = tmp_path / "agent"
    agent.mkdir()
    (agent / "agent.json").write_text(json.dumps(AGENT))
    from hive_actors.cli import main

    code = main(["serve", str(agent), "--scripted", "--host", "0.0.0.0", "--port", "0"])
    assert code == 2
    assert "give a token" in capsys.readouterr().err
