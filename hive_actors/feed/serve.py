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
from hive_actors.feed.config import FeedConfig
from hive_actors.feed.server import FeedInfo, open_event_feed, resolve_config

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def make_llm(model: str | None, scripted: str | None) -> Any:
    """The provider for ``--model`` or ``--scripted [SCRIPT.json]`` (an empty script plays
    autopilot replies). Raises ConfigurationError when neither or both are given."""
    if (model is None) == (scripted is None):
        raise ConfigurationError("give exactly one of --model PROVIDER/NAME or --scripted")
    if scripted is not None:
        from hive_actors.llm.scripted import ScriptedLLM

        if scripted == "":
            return ScriptedLLM(autopilot=True)
        return ScriptedLLM.from_file(scripted, autopilot=True)
    from hive_actors.llm.factory import make_provider

    return make_provider(model)  # type: ignore[arg-type]


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
                      mcp_config: Sequence[str] = (),
                      task_status: trio.TaskStatus[FeedInfo] = trio.TASK_STATUS_IGNORED) -> None:
    """Load the agent at ``path``, run its runtime with the feed until SIGINT/SIGTERM or
    cancellation, then stop everything. ``task_status.started`` gets the FeedInfo.

    Raises AgentDefinitionError for an invalid agent, ConfigurationError for an unsafe binding.
    """
    from hive_actors.graph.loader import load_agent
    from hive_actors.runner.runner import AgentRunner
    from hive_actors.tools.mcp_config import servers_for_agent

    config = resolve_config(config)
    agent = load_agent(path)
    storage_path = Path(storage) if storage else Path.home() / ".hive" / "agents" / agent.name
    # the runner's runtime resolves the agent folder's functions ("tools:format_report")
    runtime = AgentRunner(agent, llm=llm, storage_path=storage_path,
                          mcp_servers=servers_for_agent(agent.path, list(mcp_config))).runtime
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with runtime, open_event_feed(runtime, config=config) as info:
            print(f"serving {agent.name} (sessions in {storage_path})", file=out)
            print(describe(info, config.token), file=out, flush=True)
            task_status.started(info)
            async for signum in signals:
                print(f"{signal.Signals(signum).name}: stopping...", file=out, flush=True)
                break
    print("stopped", file=out, flush=True)


def run_from_args(args: Any) -> int:
    """``hive-actors serve`` with parsed arguments; returns the exit code.

    Exit codes: 0 stopped by a signal, 1 invalid agent or runtime failure, 2 bad options
    (no model, unsafe binding, port in use).
    """
    dashboard = None if args.no_dashboard else (0 if args.port == 0 else -1)
    config = FeedConfig(host=args.host, port=args.port, token=args.token,
                        dashboard_port=dashboard)
    try:
        llm = make_llm(args.model, args.scripted)
        trio.run(lambda: serve_agent(args.path, llm=llm, config=config, storage=args.storage,
                                       mcp_config=getattr(args, "mcp_config", ())))
    except BaseException as exc:  # noqa: BLE001 - report the one real error, not a group
        real = _single(exc)
        if isinstance(real, AgentDefinitionError):
            for problem in real.problems:
                print(problem, file=sys.stderr)
            return EXIT_FAILED
        if isinstance(real, (ConfigurationError, OSError)):
            print(f"serve: {real}", file=sys.stderr)
            return EXIT_USAGE
        if isinstance(real, HiveActorsError):
            print(f"serve: {real}", file=sys.stderr)
            return EXIT_FAILED
        raise
    return EXIT_OK


def _single(exc: BaseException) -> BaseException:
    """The one error inside nested exception groups, else ``exc`` itself."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc
