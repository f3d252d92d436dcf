"""Run the five_steps agent with ``hive-actors run`` in a child process and SIGKILL it at a
chosen point, then ``hive-actors resume`` it; every step is coordinated through FIFOs.

A point is ``(where, step)``: ``enter``/``mid`` kill while the step blocks before/after its
side effect (logging its call); ``exit`` releases the step once it has done its work and
kills at once, so the kill lands somewhere in the node boundary that follows (output applied,
details.jsonl appended, checkpoint and state.json written, next node started, or, after the
last step, the final state.json and summary).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import trio

from fault.support import AGENTS, STATS, check_session_folder
from hive_actors.storage.checkpoint_store import CheckpointStore

AGENT = AGENTS / "five_steps"
STEPS = ("s1", "s2", "s3", "s4", "s5")
POINTS = tuple((where, step) for step in STEPS for where in ("enter", "mid", "exit"))
INPUT = {"x": 1}
CHILD_TIMEOUT = 60  # seconds; a safety net against a hung child, not a coordination means


def cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from hive_actors.cli import main; sys.exit(main())",
            *args]


@attrs.define
class Outcome:
    """What one kill-and-resume round saw."""

    point: tuple[str, str]
    session_id: str
    status_after_kill: str
    completed_before: tuple[str, ...]  # execution path of the latest checkpoint at the kill
    calls_before: list[str]
    calls_after: list[str]
    temp_after_kill: list[str]
    final_state: dict[str, Any]
    resume_rc: int | None
    resume_stderr: str


class Control:
    """One run's control folder: plan file, signal and hold FIFOs, call log."""

    def __init__(self, folder: Path) -> None:
        self.dir = folder
        folder.mkdir(parents=True)
        os.mkfifo(folder / "signal.fifo")
        os.mkfifo(folder / "hold.fifo")
        # opened read-write so it never sees EOF and never blocks the child's open()
        self._signal = trio.lowlevel.FdStream(os.open(folder / "signal.fifo", os.O_RDWR))
        self._buf = b""

    def plan(self, where: str | None, step: str | None = None) -> None:
        path = self.dir / "plan"
        if where is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(f"{where} {step}\n")

    async def next_signal(self) -> str:
        while b"\n" not in self._buf:
            chunk = await self._signal.receive_some(256)
            assert chunk, "signal FIFO closed"
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode()

    async def release(self) -> None:
        """Let the blocked step go on (it is blocked in, or about to enter, open(hold.fifo))."""
        def open_close() -> None:
            os.close(os.open(self.dir / "hold.fifo", os.O_WRONLY))
        await trio.to_thread.run_sync(open_close)

    def calls(self) -> list[str]:
        try:
            return (self.dir / "calls.log").read_text().split()
        except FileNotFoundError:
            return []

    async def aclose(self) -> None:
        await self._signal.aclose()


def env_for(ctl: Control) -> dict[str, str]:
    return {**os.environ, "FAULT_CTL": str(ctl.dir)}


async def run_uninterrupted(tmp: Path) -> dict[str, Any]:
    """The output of an uninterrupted run (state.json's ``output``)."""
    ctl = Control(tmp / "ctl")
    storage = tmp / "store"
    try:
        proc = await trio.run_process(
            cli("run", str(AGENT), "--input", json.dumps(INPUT), "--storage", str(storage)),
            env=env_for(ctl), stdin=b"", capture_stdout=True, capture_stderr=True, check=False)
        assert proc.returncode == 0, proc.stderr.decode()
        (sid,) = [p.name for p in (storage / "sessions").iterdir()]
        state = json.loads((storage / "sessions" / sid / "state.json").read_bytes())
        assert state["status"] == "completed"
        assert ctl.calls() == list(STEPS)
        return state["output"]
    finally:
        await ctl.aclose()


async def kill_at(tmp: Path, point: tuple[str, str]) -> Outcome:
    """Run, SIGKILL at ``point``, check the folder, resume, and report what happened."""
    where, step = point
    ctl = Control(tmp / "ctl")
    storage = tmp / "store"
    try:
        ctl.plan(where, step)
        argv = cli("run", str(AGENT), "--input", json.dumps(INPUT), "--storage", str(storage))
        async with child_process(argv, env_for(ctl), tmp / "run.out") as proc:
            with trio.fail_after(CHILD_TIMEOUT):
                signal = await _signal_or_exit(ctl, proc, tmp / "run.out")
            assert signal == f"{where} {step}"
            if where == "exit":
                await ctl.release()
        STATS.add("kills")
        calls_before = ctl.calls()
        listed = await list_sessions(storage)
        (sid,) = [p.name for p in (storage / "sessions").iterdir()]
        session = storage / "sessions" / sid
        seen = check_session_folder(session, "after_kill")
        status = json.loads((session / "state.json").read_bytes())["status"]
        assert listed == {sid: status}
        latest = CheckpointStore(session).latest()
        completed = tuple(latest.state.execution_path) if latest is not None else ()
        if where == "exit":  # where in the boundary the kill landed
            landed = ("after_final_state" if status == "completed"
                      else "after_next_step_started" if len(calls_before) > len(completed)
                      and step in completed
                      else "after_checkpoint" if step in completed else "before_checkpoint")
            STATS.add(f"boundary_kills_{landed}")

        ctl.plan(None)
        rc, stderr = None, ""
        if status != "completed":
            done = await trio.run_process(
                cli("resume", str(AGENT), sid, "--storage", str(storage)),
                env=env_for(ctl), stdin=b"", capture_stdout=True, capture_stderr=True,
                check=False)
            rc, stderr = done.returncode, done.stderr.decode()
        final = json.loads((session / "state.json").read_bytes())
        if final["status"] == "completed":
            STATS.add("sessions_recovered")
        check_session_folder(session, "after_resume")
        return Outcome(point, sid, status, completed, calls_before,
                       ctl.calls()[len(calls_before):], seen["temp"], final, rc, stderr)
    finally:
        await ctl.aclose()


@contextlib.asynccontextmanager
async def child_process(argv: list[str], env: dict[str, str],
                        out: Path) -> AsyncIterator[trio.Process]:
    """A child process writing to ``out``; SIGKILLed (if still running) and reaped on exit."""
    with out.open("wb") as sink:
        proc = await trio.lowlevel.open_process(argv, env=env, stdin=open(os.devnull, "rb"),
                                                stdout=sink, stderr=sink)
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
        with trio.CancelScope(shield=True):
            await proc.wait()


async def list_sessions(storage: Path) -> dict[str, str]:
    """``hive-actors sessions`` on ``storage`` (which replays a dead runtime's journal into
    the session files first): session id -> status."""
    done = await trio.run_process(cli("sessions", str(AGENT), "--storage", str(storage)),
                                  check=False, capture_stdout=True, capture_stderr=True)
    assert done.returncode == 0, done.stderr.decode()
    lines = done.stdout.decode().splitlines()[1:]
    return {line.split()[0]: line.split()[1] for line in lines if not line.startswith("(")}


async def _signal_or_exit(ctl: Control, proc: trio.Process, out: Path) -> str:
    """The child's next signal line; fails with its output if it exits first."""
    got: dict[str, str] = {}
    async with trio.open_nursery() as nursery:
        async def read() -> None:
            got["line"] = await ctl.next_signal()
            nursery.cancel_scope.cancel()

        async def exited() -> None:
            await proc.wait()
            nursery.cancel_scope.cancel()

        nursery.start_soon(read)
        nursery.start_soon(exited)
    if "line" not in got:
        raise AssertionError(f"child exited ({proc.returncode}) before signalling:\n"
                             f"{out.read_text()}")
    return got["line"]
