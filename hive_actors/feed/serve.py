"""``hive-actors serve``: one agent's runtime with the event feed and the dashboard, until
Ctrl-C (SIGINT) or SIGTERM, which cancel everything in order (structured cancellation)."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from collections.abc import Sequence
from typing import Any, TextIO

import trio

from hive_actors.errors import AgentDefinitionError, ConfigurationError, HiveActorsError
from hive_actors.feed.config import SAME_PORT, FeedConfig
from hive_actors.feed.server import FeedInfo, open_event_feed, resolve_config

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def describe(info: FeedInfo, token: str | None) -> str:
    """The lines ``serve`` prints once listening."""
    lines = [f"event feed: {info.url}"]
    if info.dashboard_url:
        suffix = "?token=<your token>" if token else ""
        lines.append(f"dashboard:  {info.dashboard_url}{suffix}")
    lines.append("Ctrl-C stops the runtime (running executions end cancelled, resumable).")
    return "\n".join(lines)


async def serve_agent(path: str | Path, *, llm: Any, config: FeedConfig,
                      storage: str | Path | None = None, out: TextIO = sys.stdout,
                      mcp_config: Sequence[str] = (), store: str | None = None,
                      task_status: trio.TaskStatus[FeedInfo] = trio.TASK_STATUS_IGNORED) -> None:
    """Load the agent at ``path`` (as `AgentRunner.load` does: the same runtime as ``run``),
    run it with the feed until SIGINT/SIGTERM or cancellation, then stop everything.
    ``llm``: a provider, "scripted", or None for a function-only agent. ``task_status.started``
    gets the FeedInfo. ``store``: a client of that store (docs/scale-out.md): its feed follows
    executions on any worker.

    Raises AgentDefinitionError for an invalid agent, ConfigurationError for an unsafe binding
    or an agent with LLM nodes and no model.
    """
    from hive_actors.runner.runner import AgentRunner

    config = resolve_config(config)
    runner = AgentRunner.load(path, llm=llm, storage_path=storage, mcp_servers=list(mcp_config),
                              store=store)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with runner, open_event_feed(runner.runtime, config=config) as info:
            print(f"serving {runner.definition.name} (sessions in {runner.storage_path})", file=out)
            print(describe(info, config.token), file=out, flush=True)
            task_status.started(info)
            async for signum in signals:
                print(f"{signal.Signals(signum).name}: stopping...", file=out, flush=True)
                break
    print("stopped", file=out, flush=True)


def run_from_args(args: Any) -> int:
    """``hive-actors serve`` with parsed arguments; returns the exit code.

    Exit codes: 0 stopped by a signal, 1 invalid agent or runtime failure, 2 bad options
    (a model the agent needs is missing, --model with --scripted, unsafe binding, port in use).
    """
    from hive_actors.runner.runner import cli_llm

    dashboard = None if args.no_dashboard else SAME_PORT
    try:
        config = FeedConfig(host=args.host, port=args.port, token=args.token,
                            dashboard_port=dashboard)
        llm, note = cli_llm(args.path, args.model, args.scripted)
        if note:
            print(note, file=sys.stderr)
        trio.run(lambda: serve_agent(args.path, llm=llm, config=config, storage=args.storage,
                                     mcp_config=getattr(args, "mcp_config", ()),
                                     store=getattr(args, "store", None)))
    except BaseException as exc:  # noqa: BLE001 - report the one real error, not a group
        real = _single(exc)
        if isinstance(real, AgentDefinitionError):
            for problem in real.problems:
                print(problem, file=sys.stderr)
            return EXIT_FAILED
        if isinstance(real, (ConfigurationError, OSError, ValueError)):
            print(f"hive-actors serve: error: {real}", file=sys.stderr)
            return EXIT_USAGE
        if isinstance(real, HiveActorsError):
            print(f"hive-actors serve: error: {real}", file=sys.stderr)
            return EXIT_FAILED
        raise
    return EXIT_OK


def _single(exc: BaseException) -> BaseException:
    """The one error inside nested exception groups, else ``exc`` itself."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc
