"""What ``hive-actors run``, ``resume`` and ``sessions`` do (cli.py only parses arguments).

Each function returns the exit code: 0 when the session completed or paused (a pause is a
normal stop; the resume command is printed), 1 when it failed or could not start, 2 for bad
arguments.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from collections.abc import Sequence
from typing import Any, TextIO

import trio

from hive_actors.errors import HiveActorsError
from hive_actors.runner.headless import run_headless
from hive_actors.runner.runner import AgentRunner
from hive_actors.runtime.config import RuntimeConfig
from hive_actors.status import ExecutionStatus

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def run_command(path: str, input_json: str, *, model: str | None = None,
                storage: str | None = None, entry_point: str | None = None,
                scripted: str | None = None, out: TextIO | None = None,
                mcp_config: Sequence[str] = (), trace: bool = False) -> int:
    """Run the agent at ``path`` once, headless, with ``input_json`` as its input;
    ``mcp_config``: extra mcp_servers.json files; ``trace`` sends OpenTelemetry traces and
    metrics where the ``OTEL_*`` variables say."""
    out = out or sys.stdout
    try:
        input_data = json.loads(input_json)
    except (ValueError, RecursionError) as exc:
        print(f"--input is not valid JSON: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not isinstance(input_data, dict):
        print("--input must be a JSON object", file=sys.stderr)
        return EXIT_USAGE

    async def main(runner: AgentRunner) -> Any:
        ep = entry_point or runner.get_entry_points()[0].id
        runtime = runner.runtime
        return await run_headless(runtime, lambda: runtime.trigger(ep, input_data),
                                  entry_point_id=ep, out=out,
                                  resume_hint=_hint(path, storage, model, scripted, mcp_config))

    return _with_runner(path, model, storage, scripted, main, mcp_config, trace)


def resume_command(path: str, session_id: str, *, model: str | None = None,
                   storage: str | None = None, scripted: str | None = None,
                   checkpoint: int | None = None, fallback: bool = False,
                   out: TextIO | None = None, mcp_config: Sequence[str] = ()) -> int:
    """Continue session ``session_id`` of the agent at ``path`` from its latest checkpoint
    (or checkpoint ``checkpoint``). A damaged latest checkpoint refuses, naming the choices,
    unless ``fallback``; going back to an older checkpoint prints which nodes run again."""
    out = out or sys.stdout

    async def main(runner: AgentRunner) -> Any:
        runtime = runner.runtime
        from hive_actors.storage.checkpoint_store import CheckpointStore
        from hive_actors.storage.recovery import choose_checkpoint
        from hive_actors.storage.session_store import SessionStore

        sessions = SessionStore(runner.storage_path)
        record = sessions.read_state(session_id)
        point = choose_checkpoint(CheckpointStore(sessions.session_dir(session_id)), session_id,
                                  checkpoint=checkpoint, fallback=fallback)
        if point.note:
            print(point.note, file=out, flush=True)
        return await run_headless(runtime, lambda: runtime.resume_nowait(
                                      session_id, checkpoint=checkpoint, fallback=fallback),
                                  entry_point_id=record.entry_point, out=out,
                                  resume_hint=_hint(path, storage, model, scripted, mcp_config))

    return _with_runner(path, model, storage, scripted, main, mcp_config)


def sessions_command(path: str, *, storage: str | None = None, out: TextIO | None = None) -> int:
    """Print a table of the agent's sessions: id, status, current node, updated time."""
    out = out or sys.stdout
    from hive_actors.storage.session_store import SessionStore

    try:
        runner = AgentRunner.load(path, storage_path=storage)
    except HiveActorsError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_FAILED
    from hive_actors.storage.journal import recover_if_idle

    try:
        recover_if_idle(runner.storage_path)  # a dead runtime's journal tail into the files
        records, damaged = SessionStore(runner.storage_path).scan()
    except HiveActorsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    rows = [("SESSION", "STATUS", "CURRENT NODE", "UPDATED")]
    for r in records:
        rows.append((r.session_id, r.status, r.current_node or "-",
                     r.updated_at.isoformat(timespec="seconds")))
    for d in damaged:
        rows.append((d.session_id, "damaged", "-", "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        out.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() + "\n")
    for d in damaged:
        out.write(f"damaged {d.session_id}: {d.reason}\n")
    if len(rows) == 1:
        out.write(f"(no sessions in {runner.storage_path / 'sessions'})\n")
    return EXIT_OK


def _with_runner(path: str, model: str | None, storage: str | None, scripted: str | None,
                 main: Any, mcp_config: Sequence[str] = (), trace: bool = False) -> int:
    async def body() -> int:
        runner = AgentRunner.load(path, model=model, llm=_scripted_llm(scripted),
                                  storage_path=storage, mcp_servers=list(mcp_config),
                                  config=RuntimeConfig(tracing=True) if trace else None)
        async with runner:
            result = await main(runner)
        done = result.status in (ExecutionStatus.COMPLETED, ExecutionStatus.PAUSED)
        return EXIT_OK if done else EXIT_FAILED

    shutdown = None
    try:
        if trace:
            from hive_actors.tracing import configure_from_env

            shutdown = configure_from_env()
        return trio.run(body)
    except (HiveActorsError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        if shutdown is not None:
            shutdown()  # flushes what is still batched


def _scripted_llm(scripted: str | None) -> Any:
    """``--scripted``: None (not asked), "" (the agent's script.json or autopilot) or a file."""
    if scripted is None:
        return None
    if scripted == "":
        return "scripted"
    from hive_actors.llm.scripted import ScriptedLLM

    return ScriptedLLM.from_file(scripted, autopilot=True)


def _hint(path: str, storage: str | None, model: str | None, scripted: str | None,
          mcp_config: Sequence[str] = ()) -> Any:
    def hint(session_id: str) -> str:
        cmd = ["hive-actors", "resume", str(Path(path)), session_id]
        if storage:
            cmd += ["--storage", storage]
        if model:
            cmd += ["--model", model]
        if scripted is not None:
            cmd += ["--scripted", scripted] if scripted else ["--scripted"]
        for file in mcp_config:
            cmd += ["--mcp-config", file]
        return "Resume with: " + shlex.join(cmd)

    return hint
