"""The ``hive-actors`` command line.

Each subcommand is one function registered with :func:`command`; it receives the parsed
arguments and returns the exit code. Commands import what they need inside their body, so
``hive-actors validate`` starts without importing the LLM or websocket stacks. To add one:

    @command("run", "run an agent", arg("path"), arg("--input", default="{}"))
    def _run(args: argparse.Namespace) -> int:
        from hive_actors.runner import ...
        return 0

Exit codes: 0 success, 1 failure (invalid agent, failed run), 2 usage error.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

Handler = Callable[[argparse.Namespace], int]
# one add_argument call: its flags and its keyword options (argparse takes values of any type)
ArgSpec = tuple[tuple[str, ...], dict[str, Any]]
# name -> (help, argument specs, handler, example), in registration order
COMMANDS: dict[str, tuple[str, tuple[ArgSpec, ...], Handler, str]] = {}


def arg(*flags: str, **options: Any) -> ArgSpec:
    """One ``add_argument`` call of a command, e.g. ``arg("--json", action="store_true")``."""
    return flags, options


def command(name: str, help: str, *args: ArgSpec, example: str) -> Callable[[Handler], Handler]:
    """Register ``fn`` as subcommand ``name`` with the given :func:`arg` specs; ``example``
    (one or more command lines) ends its ``--help``."""

    def register(fn: Handler) -> Handler:
        COMMANDS[name] = (help, args, fn, example)
        return fn

    return register


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr (exit code 2), naming the command and its --help."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _agent_path(text: str) -> str:
    """An agent PATH argument: it must exist (what it holds is the loader's to judge)."""
    if not Path(text).exists():
        raise argparse.ArgumentTypeError(f"no such file or folder: {text}")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="hive-actors", description="Run and inspect Hive-style agent graphs.",
        epilog="example:\n  hive-actors run examples/research_assistant --scripted",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subs = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                 parser_class=_Parser)
    for name, (help_text, specs, fn, example) in COMMANDS.items():
        sub = subs.add_parser(name, help=help_text, description=help_text,
                              epilog="example:\n  " + example.replace("\n", "\n  "),
                              formatter_class=argparse.RawDescriptionHelpFormatter)
        for flags, options in specs:
            sub.add_argument(*flags, **options)
        sub.set_defaults(handler=fn)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (argparse usage errors give 2)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help (0) and on usage errors (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    handler: Handler = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`: stop quietly, as Unix tools do
        sys.stderr.close()
        return 141


# ---------------------------------------------------------------- validate


@command(
    "validate",
    "check agent definitions (folders, agent.json/agent.py or .json files) and report every problem",
    arg("paths", nargs="+", metavar="PATH"),
    arg("-q", "--quiet", action="store_true", help="report errors only, not warnings"),
    example="hive-actors validate examples/research_assistant exports/*/",
)
def _validate(args: argparse.Namespace) -> int:
    from hive_actors.graph.loader import validate_agent

    invalid = warnings = 0
    for path in args.paths:
        problems = validate_agent(path)
        errors = [p for p in problems if p.severity == "error"]
        warnings += len(problems) - len(errors)
        invalid += bool(errors)
        for p in problems:
            if p.severity == "error" or not args.quiet:
                print(p)
    total = len(args.paths)
    print(f"{total - invalid} of {total} valid, {invalid} invalid, {warnings} warning(s)")
    return EXIT_FAILED if invalid else EXIT_OK


# ---------------------------------------------------------------- info


@command(
    "info",
    "show an agent's nodes, edges, entry points and tools (starts its MCP servers to list "
    "theirs)",
    arg("path", metavar="PATH", type=_agent_path),
    arg("--json", action="store_true", help="print the agent as our agent.json (Hive's "
        "export shape) instead of tables (starts no server)"),
    arg("--mcp-config", action="append", default=[], metavar="FILE",
        help="an mcp_servers.json besides the agent folder's own (repeatable)"),
    arg("--mermaid", action="store_true",
        help="print the graph as a Mermaid flowchart instead of the tables (starts no server)"),
    arg("--svg", default=None, metavar="FILE",
        help="also write a picture of the graph (the dashboard's layout) to FILE"),
    example="hive-actors info examples/research_assistant\n"
            "hive-actors info examples/research_assistant --json",
)
def _info(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from hive_actors.errors import AgentDefinitionError, HiveActorsError
    from hive_actors.graph.loader import definition_to_json, load_agent

    try:
        agent = load_agent(args.path)
    except AgentDefinitionError as exc:
        for p in exc.problems:
            print(p, file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        import json

        print(json.dumps(definition_to_json(agent), ensure_ascii=False, indent=2, default=str))
        return EXIT_OK
    graph = agent.graph
    if args.svg:
        from hive_actors.graph.render import to_svg

        try:
            Path(args.svg).write_text(to_svg(graph), encoding="utf-8")
        except OSError as exc:
            print(f"error: --svg {args.svg}: cannot write: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_FAILED
    if args.mermaid:
        from hive_actors.graph.render import to_mermaid

        sys.stdout.write(to_mermaid(graph))
        return EXIT_OK
    console = Console()
    console.print(f"[bold]{agent.name}[/bold]  ({agent.source})")
    console.print(f"goal: {agent.goal.name or agent.goal.id}  entry node: {graph.entry_node}  "
                  f"terminal: {', '.join(graph.terminal_nodes) or '-'}  "
                  f"pause: {', '.join(graph.pause_nodes) or '-'}  "
                  f"conversation: {graph.conversation_mode}  max steps: {graph.max_steps}")

    nodes = Table("id", "type", "client", "inputs", "outputs", "tools", title="Nodes")
    for n in graph.nodes:
        kind = n.node_type + (f" ({n.legacy_type})" if n.legacy_type else "")
        nodes.add_row(n.id, kind, "yes" if n.client_facing else "", ", ".join(n.input_keys),
                      ", ".join(n.output_keys), ", ".join(n.tools))
    edges = Table("id", "source", "target", "condition", "priority", title="Edges")
    for e in graph.edges:
        cond = e.condition.value + (f": {e.condition_expr}" if e.condition_expr else "")
        edges.add_row(e.id, e.source, e.target, cond, str(e.priority))
    for n in graph.nodes:
        for label, target in n.routes.items():
            edges.add_row("", n.id, target, f"route {label!r}", "")
    eps = Table("id", "entry node", "trigger", "isolation", title="Entry points")
    for ep in agent.entry_points:
        eps.add_row(ep.id, ep.entry_node, ep.trigger_type, ep.isolation_level)
    try:
        servers = _server_tools(agent.path, args.mcp_config)
    except HiveActorsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    offered: dict[str, tuple[str, str]] = {}
    mcp = Table("server", "transport", "command or URL", "tools", title="MCP servers")
    for config, found in servers:
        if isinstance(found, str):
            mcp.add_row(config.name, config.transport, config.target, f"[red]{found}[/red]")
            continue
        mcp.add_row(config.name, config.transport, config.target, ", ".join(t.name for t in found))
        for t in found:
            offered.setdefault(t.name, (f"MCP {config.name}", t.description or ""))
    tools = Table("name", "provided by", "description", title="Tools")
    used = dict.fromkeys([*agent.required_tools, *(t for n in graph.nodes for t in n.tools)])
    for name in dict.fromkeys([*agent.tools.names(), *used]):
        tool = agent.tools.get(name)
        if tool is not None:
            source, text = "tools.py", tool.description
        elif name in offered:
            source, text = offered[name]
        else:
            source, text = ("tool_executor" if name in agent.tools else "missing"), ""
        tools.add_row(name, source, text)
    for table in (nodes, edges, eps, *([mcp] if servers else []), tools):
        console.print(table)
    all_provided = all(n in agent.tools or n in offered for n in used)
    for w in agent.warnings:
        if all_provided and w.path.endswith(".tools"):  # validate's offline guess: now known
            continue
        console.print(f"[yellow]{w}[/yellow]", highlight=False)
    if args.svg:
        console.print(f"wrote {args.svg}", highlight=False)
    return EXIT_OK


def _server_tools(path: Any, extra: list[str]) -> list[tuple[Any, Any]]:
    """(config, its tools or the start error) per MCP server of the agent."""
    import trio

    from hive_actors.tools.mcp_client import list_server_tools
    from hive_actors.tools.mcp_config import servers_for_agent

    configs = servers_for_agent(path, extra)
    return trio.run(list_server_tools, configs) if configs else []


# ---------------------------------------------------------------- serve


_MODEL_ARGS = (
    arg("-m", "--model", default=None, help="provider/name of the model (litellm form), e.g. "
        "openai/gpt-4o-mini; not needed by agents of function and router nodes only"),
    arg("--scripted", nargs="?", const="", default=None, metavar="SCRIPT.json",
        help="offline ScriptedLLM instead of --model: plays SCRIPT.json, else the agent "
             "folder's script.json, else autopilot placeholder replies (it says which)"),
    arg("--storage", default=None, help="storage folder (default ~/.hive/agents/FOLDER, "
        "FOLDER being the agent folder's name)"),
    arg("--mcp-config", action="append", default=[], metavar="FILE",
        help="an mcp_servers.json giving the agent its MCP tool servers (repeatable; added "
             "to the agent folder's own)"),
)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def _store_url(text: str) -> str:
    if not text.startswith(("postgresql://", "postgres://")):
        raise argparse.ArgumentTypeError(f"--store must be a postgresql:// URL, got {text[:40]!r}")
    return text


def _store_missing(command: str, store: str | None) -> bool:
    if not store:
        print(f"hive-actors {command}: error: --store URL (or $HIVE_ACTORS_STORE) is required",
              file=sys.stderr)
    return not store


_STORE_ARG = arg("--store", default=os.environ.get("HIVE_ACTORS_STORE") or None,
                 type=_store_url, metavar="URL", help="a postgresql:// store shared by workers (default "
                 "$HIVE_ACTORS_STORE; see docs/scale-out.md)")


@command(
    "serve",
    "run an agent with the websocket event feed and the live dashboard until Ctrl-C",
    arg("path", metavar="PATH", type=_agent_path),
    arg("--host", default="127.0.0.1", help="address to bind; anything but loopback needs a token"),
    arg("--port", type=int, default=8765,
        help="the port of the event feed and the dashboard page (0 = any free one)"),
    arg("--token", default=None,
        help="token clients must give (?token= or Authorization: Bearer); "
             "default: $HIVE_ACTORS_FEED_TOKEN"),
    arg("--no-dashboard", action="store_true", help="serve the event feed only (no page)"),
    _STORE_ARG,
    *_MODEL_ARGS,
    example="hive-actors serve examples/research_assistant --scripted --port 8765",
)
def _serve(args: argparse.Namespace) -> int:
    from hive_actors.feed.serve import run_from_args

    return run_from_args(args)


# ---------------------------------------------------------------- run / resume / sessions

_OUTPUT_ARGS = (
    arg("-o", "--output", default=None, metavar="FILE",
        help="also write the ExecutionResult as JSON to FILE"),
    arg("-q", "--quiet", action="store_true",
        help="print only the result line (session id and status) and errors"),
    arg("-v", "--verbose", action="store_true",
        help="also print the output as JSON and the session folder"),
)


def _run_options(args: argparse.Namespace) -> Any:
    from hive_actors.runner.commands import RunOptions

    return RunOptions(model=args.model, scripted=args.scripted, storage=args.storage,
                      verbosity=-1 if args.quiet else (1 if args.verbose else 0),
                      output=args.output, mcp_config=tuple(args.mcp_config),
                      trace=getattr(args, "trace", False))


@command(
    "run",
    "run an agent once, headless: stream its output, answer its questions from stdin",
    arg("path", metavar="PATH", type=_agent_path),
    arg("-i", "--input", default="{}", help="input data as a JSON object"),
    arg("-f", "--input-file", default=None, metavar="FILE",
        help="read the input JSON object from FILE (instead of --input)"),
    arg("--entry-point", default=None, help="entry point id (default: the first)"),
    *_MODEL_ARGS,
    *_OUTPUT_ARGS,
    arg("--trace", action="store_true",
        help="OpenTelemetry traces and metrics, set up from the OTEL_* environment variables "
             "(needs hive-actors[otel])"),
    example="printf 'trio\\n' | hive-actors run examples/research_assistant --scripted\n"
            "hive-actors run exports/my_agent -i '{\"query\": \"hello\"}' -m openai/gpt-4o-mini "
            "-o result.json",
)
def _run(args: argparse.Namespace) -> int:
    from hive_actors.runner.commands import run_command

    return run_command(args.path, args.input, entry_point=args.entry_point,
                       input_file=args.input_file, options=_run_options(args))


def _checkpoint(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a checkpoint number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"checkpoint numbers start at 1, got {value}")
    return value


@command(
    "resume",
    "continue a session from its latest checkpoint (completed nodes do not run again)",
    arg("path", metavar="PATH", type=_agent_path),
    arg("session_id", metavar="SESSION_ID"),
    arg("--checkpoint", type=_checkpoint, default=None, metavar="N",
        help="continue from checkpoint N instead (see `sessions PATH show ID`): a fork into a "
             "new session, the old one left as it was"),
    arg("--fallback", action="store_true",
        help="if the latest checkpoint is damaged, continue from the newest intact one "
             "(says which nodes run again)"),
    _STORE_ARG,
    *_MODEL_ARGS,
    *_OUTPUT_ARGS,
    example="hive-actors resume examples/research_assistant session_20260101_120000_ab12cd34 "
            "--scripted\n"
            "hive-actors resume examples/research_assistant session_20260101_120000_ab12cd34 "
            "--scripted --checkpoint 2",
)
def _resume(args: argparse.Namespace) -> int:
    from hive_actors.runner.commands import resume_command

    if args.store:  # a worker of the store continues it
        from hive_actors.cluster.commands import run_resume

        given = [flag for flag, value in (("--checkpoint", args.checkpoint),
                                          ("--fallback", args.fallback),
                                          ("--model", args.model),
                                          ("--scripted", args.scripted is not None))
                 if value]
        if given:
            print(f"hive-actors resume: error: {', '.join(given)} cannot go with --store "
                  "(a worker continues the session from its latest checkpoint, with its own "
                  "model)", file=sys.stderr)
            return EXIT_USAGE

        return run_resume(args.path, args.store, args.session_id)
    return resume_command(args.path, args.session_id, checkpoint=args.checkpoint,
                          fallback=args.fallback, options=_run_options(args))


@command(
    "worker",
    "run executions of the store's queue (and take over a dead worker's sessions)",
    arg("path", metavar="PATH", type=_agent_path),
    _STORE_ARG,
    arg("--concurrency", type=int, default=8, help="executions at once here (default 8)"),
    arg("--lease-seconds", type=_positive, default=5.0,
        help="lease length: a worker silent this long is taken over (default 5)"),
    *_MODEL_ARGS,
    example="hive-actors worker examples/research_assistant --store postgresql:///hive "
            "--concurrency 16",
)
def _worker(args: argparse.Namespace) -> int:
    from hive_actors.cluster.commands import run_worker

    if _store_missing("worker", args.store):
        return EXIT_USAGE
    if args.concurrency < 1:
        print("hive-actors worker: error: --concurrency must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    return run_worker(args.path, args.store, concurrency=args.concurrency,
                      lease_seconds=args.lease_seconds, model=args.model, scripted=args.scripted,
                      cache=args.storage, mcp_config=args.mcp_config)


@command(
    "submit",
    "queue an execution in the store durably and print its session id",
    arg("path", metavar="PATH", type=_agent_path),
    _STORE_ARG,
    arg("--input", default="{}", help="the input as a JSON object"),
    arg("--entry-point", default=None, metavar="ID", help="entry point (default the first)"),
    arg("--key", default=None, help="idempotency key: the same key queues one session only"),
    arg("--wait", action="store_true", help="wait for it and print its status and output"),
    example="hive-actors submit examples/research_assistant --store postgresql:///hive "
            "--input '{\"topic\": \"trio\"}' --wait",
)
def _submit(args: argparse.Namespace) -> int:
    from hive_actors.cluster.commands import run_submit

    if _store_missing("submit", args.store):
        return EXIT_USAGE
    return run_submit(args.path, args.store, args.input, entry_point=args.entry_point,
                      key=args.key, wait=args.wait)


@command(
    "sessions",
    "list an agent's sessions (status, current node, updated time), or show one",
    arg("path", metavar="PATH", type=_agent_path),
    arg("show", nargs="*", metavar="show SESSION_ID",
        help="show one session: its state, folder, checkpoints and files"),
    arg("--storage", default=None, help="storage folder (default ~/.hive/agents/FOLDER)"),
    _STORE_ARG,
    example="hive-actors sessions examples/research_assistant\n"
            "hive-actors sessions examples/research_assistant show session_20260101_120000_ab12cd34",
)
def _sessions(args: argparse.Namespace) -> int:
    from hive_actors.runner.commands import session_show_command, sessions_command

    if args.store:
        from hive_actors.cluster.commands import list_sessions

        show = args.show[1] if len(args.show) == 2 and args.show[0] == "show" else None
        if args.show and show is None:
            print("hive-actors sessions: error: expected `show SESSION_ID` after PATH",
                  file=sys.stderr)
            return EXIT_USAGE
        return list_sessions(args.path, args.store, show)
    if not args.show:
        return sessions_command(args.path, storage=args.storage)
    if len(args.show) != 2 or args.show[0] != "show":
        print(f"hive-actors sessions: error: expected `show SESSION_ID` after PATH, got "
              f"{' '.join(args.show)!r}", file=sys.stderr)
        return EXIT_USAGE
    return session_show_command(args.path, args.show[1], storage=args.storage)


@command(
    "list",
    "list the agents under a storage root with their session counts by status",
    arg("root", nargs="?", default=None, metavar="ROOT",
        help="storage root (default ~/.hive/agents)"),
    example="hive-actors list\nhive-actors list ~/.hive/agents",
)
def _list(args: argparse.Namespace) -> int:
    from hive_actors.runner.commands import list_command

    return list_command(args.root)


# ---------------------------------------------------------------- bench


def _csv(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


@command(
    "bench",
    "run the benchmark workloads (seq, par, durable, events, stop, paused, model-latency)",
    arg("--workloads", default="", help="comma-separated workload names (default: all)"),
    arg("--systems", default="", help="comma-separated: hive, floor, langgraph (default: all)"),
    arg("--concurrency", default="", help="keep only these concurrency levels (1 always kept)"),
    arg("--entry-points", default="", help="keep only these entry-point counts"),
    arg("--reps", type=int, default=None,
        help="repetitions per case (median reported; default 5, 1 with --quick)"),
    arg("--budget", type=float, default=None,
        help="seconds per case before repetitions stop (default 60, 5 with --quick)"),
    arg("--quick", action="store_true",
        help="tiny sizes, one repetition (a smoke test; the targets do not apply)"),
    arg("--out", default="", help="write the JSON report here"),
    arg("--plot", default="", metavar="PNG", help="write a throughput/latency chart here"),
    arg("--storage-dir", default=None, help="where durable workloads write (default: temp)"),
    example="hive-actors bench --quick\nhive-actors bench --workloads seq,par --reps 3 --out b.json",
)
def _bench(args: argparse.Namespace) -> int:
    from hive_actors.bench import STANDARD, BenchOptions, quick, run_benchmarks, select

    from hive_actors.bench.report import plot, print_report, write_json, write_text

    try:
        workloads = select(
            quick(STANDARD) if args.quick else STANDARD, names=_csv(args.workloads),
            systems=_csv(args.systems), concurrency=tuple(int(c) for c in _csv(args.concurrency)),
            entry_points=tuple(int(e) for e in _csv(args.entry_points)))
    except ValueError as exc:
        print(f"hive-actors bench: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    reps = args.reps if args.reps is not None else (1 if args.quick else 5)
    budget = args.budget if args.budget is not None else (5.0 if args.quick else 60.0)
    options = BenchOptions(repetitions=max(1, reps), case_budget_seconds=budget,
                           storage_root=args.storage_dir, quick=args.quick,
                           command="hive-actors " + " ".join(sys.argv[1:]))
    report = run_benchmarks(workloads, options, progress=lambda line: print(line, flush=True))
    print_report(report)
    if args.out:
        print(f"wrote {write_json(report, args.out)}")
        print(f"wrote {write_text(report, Path(args.out).with_suffix('.txt'))}")
    if args.plot:
        print(f"wrote {plot(report, args.plot)}")
    skipped = [r for r in report.results if r.skipped]
    if skipped:
        reasons = sorted({r.skipped for r in skipped if r.skipped})
        print(f"skipped {len(skipped)} case(s): {'; '.join(reasons)}")
    return EXIT_FAILED if any(r.error for r in report.results) else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
