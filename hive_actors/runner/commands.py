"""What ``hive-actors run``, ``resume``, ``sessions`` and ``list`` do (cli.py only parses
arguments).

Each function returns the exit code: 0 when the session completed or paused (a pause is a
normal stop; the resume command is printed), 1 when it failed or could not start, 2 for bad
arguments (printed as one line on stderr).
"""

from __future__ import annotations

import functools
import json
import shlex
import sys
from pathlib import Path
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

import attrs
import trio

from hive_actors.errors import (
    ConfigurationError,
    HiveActorsError,
    SessionStateError,
    UnknownSessionError,
)
from hive_actors.graph.result import ExecutionResult
from hive_actors.runner.headless import run_headless
from hive_actors.runner.runner import AgentRunner, cli_llm
from hive_actors.runtime.config import RuntimeConfig
from hive_actors.status import ExecutionStatus

if TYPE_CHECKING:
    from hive_actors.storage.seam import SessionReader
    from hive_actors.storage.session_store import SessionRecord

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


@attrs.frozen
class RunOptions:
    """What ``run`` and ``resume`` share: the model, the storage and how much to print.

    ``verbosity``: -1 (``-q``: the result line and errors only), 0, 1 (``-v``: also the
    output as JSON and where the session is). ``output``: write the ExecutionResult as JSON
    here. ``mcp_config``: extra mcp_servers.json files. ``trace``: OpenTelemetry traces and
    metrics, set up from the OTEL_* environment variables."""

    model: str | None = None
    scripted: str | None = None
    storage: str | None = None
    verbosity: int = 0
    output: str | None = None
    mcp_config: tuple[str, ...] = ()
    trace: bool = False


class UsageError(HiveActorsError):
    """A wrong command-line argument (exit code 2)."""


def read_input(input_json: str, input_file: str | None) -> dict[str, Any]:
    """The input object of ``--input JSON`` or ``--input-file F``; raises UsageError."""
    source = "--input"
    if input_file is not None:
        source = f"--input-file {input_file}"
        try:
            input_json = Path(input_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"{source}: cannot read: {exc.strerror or exc}") from None
    try:
        data = json.loads(input_json)
    except (ValueError, RecursionError) as exc:
        raise UsageError(f"{source} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{source} must be a JSON object, got {type(data).__name__}")
    return data


def run_command(path: str, input_json: str = "{}", *, entry_point: str | None = None,
                input_file: str | None = None, options: RunOptions = RunOptions(),
                out: TextIO | None = None, **option_fields: Any) -> int:
    """Run the agent at ``path`` once, headless, with the input of ``--input``/``--input-file``.
    ``option_fields`` (``storage=``, ``model=``, ...) replace those of ``options``."""
    options = attrs.evolve(options, **option_fields)
    try:
        input_data = read_input(input_json, input_file)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    async def main(runner: AgentRunner, out: TextIO) -> ExecutionResult:
        known = [e.id for e in runner.get_entry_points()]
        ep = entry_point or known[0]
        if ep not in known and not (ep == "default" and len(known) == 1):
            raise UsageError(f"--entry-point {ep!r}: no such entry point (known: {', '.join(known)})")
        runtime = runner.runtime
        return await run_headless(runtime, lambda: runtime.trigger(ep, input_data),
                                  entry_point_id=ep, out=out, resume_hint=_hint(path, options),
                                  show_output=True if options.verbosity > 0 else None)

    return _with_runner(path, options, main, out or sys.stdout)


def resume_command(path: str, session_id: str, *, checkpoint: int | None = None,
                   fallback: bool = False, options: RunOptions = RunOptions(),
                   out: TextIO | None = None, input_json: str | None = None,
                   **option_fields: Any) -> int:
    """Continue session ``session_id`` of the agent at ``path`` from its latest checkpoint,
    or (``checkpoint``) fork a new session from that earlier one (``input_json``: memory keys
    to change, or the reply at a checkpoint waiting for input). A damaged latest checkpoint
    refuses, naming the choices, unless ``fallback``; going back to an older checkpoint
    prints which nodes run again. ``option_fields`` replace those of ``options``."""
    options = attrs.evolve(options, **option_fields)
    try:
        input_data = read_input(input_json, None) if input_json is not None else None
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    async def main(runner: AgentRunner, out: TextIO) -> ExecutionResult:
        runtime = runner.runtime
        from hive_actors.storage.recovery import choose_checkpoint

        sessions = runtime.sessions
        assert sessions is not None  # the runner always has a storage path
        await runtime.flush_view()
        record = sessions.read_state(session_id)
        point = choose_checkpoint(sessions, session_id, checkpoint=checkpoint, fallback=fallback)
        if point.note:
            print(point.note, file=out, flush=True)
        return await run_headless(
            runtime, lambda: runtime.resume_nowait(session_id, input_data,
                                                   checkpoint=checkpoint, fallback=fallback),
            entry_point_id=record.entry_point, out=out, resume_hint=_hint(path, options),
            show_output=True if options.verbosity > 0 else None)

    return _with_runner(path, options, main, out or sys.stdout)


def replay_command(path: str, session_id: str, *, options: RunOptions = RunOptions(),
                   out: TextIO | None = None, **option_fields: Any) -> int:
    """Replay session ``session_id`` offline from its records (`AgentRuntime.replay`) and
    print whether the trace is identical, or its first difference (exit 1). ``--model`` /
    ``--scripted`` give a model for turns that were not recorded (none by default)."""
    options = attrs.evolve(options, **option_fields)
    out = out or sys.stdout
    try:
        llm, note = cli_llm(path, options.model, options.scripted)
        runner = AgentRunner.load(path, storage_path=options.storage)
        report = trio.run(functools.partial(runner.runtime.replay, session_id, llm=llm))
    except (ConfigurationError, UnknownSessionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except HiveActorsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if note and options.verbosity >= 0:
        print(note, file=sys.stderr)
    out.write(report.summary() + "\n")
    out.flush()
    return EXIT_OK if report.identical else EXIT_FAILED


def sessions_command(path: str, *, storage: str | None = None, out: TextIO | None = None) -> int:
    """Print a table of the agent's sessions: id, status, current node, updated time."""
    out = out or sys.stdout
    opened = _open_reader(path, storage)
    if opened is None:
        return EXIT_FAILED
    runner, store = opened
    try:
        records, damaged = store.scan()
    except HiveActorsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    rows = [("SESSION", "STATUS", "CURRENT NODE", "UPDATED")]
    for r in records:
        rows.append((r.session_id, r.status, r.current_node or "-",
                     r.updated_at.isoformat(timespec="seconds")))
    for d in damaged:
        rows.append((d.session_id, "damaged", "-", "-"))
    _table(rows, out)
    for d in damaged:
        out.write(f"damaged {d.session_id}: {d.reason}\n")
    _report_damaged_checkpoints(store, records)
    if len(rows) == 1:
        out.write(f"(no sessions in {runner.storage_path / 'sessions'})\n")
    return EXIT_OK


def _report_damaged_checkpoints(store: SessionReader, records: list[SessionRecord]) -> None:
    """A line on stderr for each damaged checkpoint file of a session that may be resumed
    (every status but completed): a resume refuses it as the latest and never uses it."""
    from hive_actors.storage.recovery import damaged_checkpoints

    ids = [r.session_id for r in records if r.status != ExecutionStatus.COMPLETED]
    for path in damaged_checkpoints(store, ids):
        print(f"warning: damaged checkpoint {path} (a resume never continues from it)",
              file=sys.stderr)


def session_show_command(path: str, session_id: str, *, storage: str | None = None,
                         out: TextIO | None = None) -> int:
    """Print one session: its state, folder, checkpoints and files."""
    out = out or sys.stdout
    from hive_actors.storage.session_store import SessionStore

    opened = _open_reader(path, storage)
    if opened is None:
        return EXIT_FAILED
    runner, reader = opened
    try:
        record = reader.read_state(session_id)
    except UnknownSessionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except HiveActorsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    folder = SessionStore(runner.storage_path).session_dir(session_id)
    out.write(f"session     {record.session_id}\nstatus      {record.status}\n"
              f"entry point {record.entry_point}\ncurrent     {record.current_node or '-'}\n"
              f"created     {record.created_at.isoformat(timespec='seconds')}\n"
              f"updated     {record.updated_at.isoformat(timespec='seconds')}\n"
              f"path        {folder}\n")
    if record.paused_at:
        out.write(f"paused at   {record.paused_at}\n")
    if record.error:
        out.write(f"error       {record.error}\n")
    if record.forked_from:
        out.write(f"forked from {record.forked_from}\n")
    out.write(f"input       {json.dumps(record.input_data, ensure_ascii=False, default=str)}\n")
    try:  # the checkpoints and files can fail after the state could be read
        checkpoints = reader.checkpoints(session_id, skip_damaged=True)
        files = sorted((p.relative_to(folder), p.stat().st_size)
                       for p in folder.rglob("*") if p.is_file())
    except HiveActorsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:
        print(f"error: cannot list {folder}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    out.write(f"checkpoints ({len(checkpoints)}):\n")
    for cp in checkpoints:
        out.write(f"  {cp.seq:>4}  {cp.kind:<14} {cp.node_id or '-':<20} "
                  f"{cp.created_at.isoformat(timespec='seconds')}\n")
    out.write("files:\n")
    for name, size in files:
        out.write(f"  {name}  ({size} bytes)\n")
    return EXIT_OK


def list_command(root: str | None, *, out: TextIO | None = None) -> int:
    """Print the agents under a storage root (default ``~/.hive/agents``) with their session
    counts by status."""
    out = out or sys.stdout
    from hive_actors.storage.session_store import SessionStore

    base = Path(root).expanduser() if root else Path("~/.hive/agents").expanduser()
    if root and not base.is_dir():
        print(f"error: list: no such folder {base}", file=sys.stderr)
        return EXIT_USAGE
    rows = [("AGENT", "SESSIONS", "BY STATUS", "PATH")]
    for folder in sorted(p for p in base.iterdir() if (p / "sessions").is_dir()) if base.is_dir() else []:
        records = SessionStore(folder).list_sessions()
        counts: dict[str, int] = {}
        for r in records:
            counts[r.status] = counts.get(r.status, 0) + 1
        by_status = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "-"
        rows.append((folder.name, str(len(records)), by_status, str(folder)))
    _table(rows, out)
    if len(rows) == 1:
        out.write(f"(no agents with sessions in {base})\n")
    return EXIT_OK


def _table(rows: Sequence[tuple[str, ...]], out: TextIO) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() + "\n")


def _load(path: str, storage: str | None) -> AgentRunner | None:
    try:
        return AgentRunner.load(path, storage_path=storage)
    except HiveActorsError as exc:
        print(str(exc), file=sys.stderr)  # the loader's messages say "error:" themselves
        return None


def _open_reader(path: str, storage: str | None) -> tuple[AgentRunner, SessionReader] | None:
    """The agent and a reader of its sessions (a dead runtime's journal tail applied), or
    None once the reason it cannot be opened is on stderr."""
    from hive_actors.storage.engines import open_reader

    runner = _load(path, storage)
    if runner is None:
        return None
    try:
        return runner, open_reader(runner.storage_path)
    except HiveActorsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


class _Quiet:
    """A TextIO that drops what it is given (``-q``)."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def _with_runner(path: str, options: RunOptions, main: Any, out: TextIO) -> int:
    if options.output and not Path(options.output).expanduser().parent.is_dir():
        print(f"error: --output {options.output}: its folder does not exist", file=sys.stderr)
        return EXIT_USAGE
    try:
        llm, note = cli_llm(path, options.model, options.scripted)
    except HiveActorsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if note and options.verbosity >= 0:
        print(note, file=sys.stderr)

    async def body() -> int:
        runner = AgentRunner.load(path, llm=llm, storage_path=options.storage,
                                  mcp_servers=list(options.mcp_config),
                                  config=RuntimeConfig(tracing=True) if options.trace else None)
        async with runner:
            shown: Any = _Quiet() if options.verbosity < 0 else out
            result = await main(runner, shown)
        _report(result, runner, options, out)
        done = result.status in (ExecutionStatus.COMPLETED, ExecutionStatus.PAUSED)
        return EXIT_OK if done else EXIT_FAILED

    shutdown = None
    try:
        if options.trace:
            from hive_actors.tracing import configure_from_env

            shutdown = configure_from_env()
        return trio.run(body)
    except (UsageError, ConfigurationError, UnknownSessionError, SessionStateError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except HiveActorsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        if shutdown is not None:
            shutdown()  # flushes what is still batched


def _report(result: ExecutionResult, runner: AgentRunner, options: RunOptions,
            out: TextIO) -> None:
    """What follows the run: the result line (-q), the output JSON (-v), the --output file."""
    if options.verbosity < 0:
        out.write(f"{result.session_id} {result.status}\n")
    elif options.verbosity > 0:
        out.write(f"session folder: {runner.storage_path / 'sessions' / result.session_id}\n")
    if options.output:
        from hive_actors.serde import dumps
        from hive_actors.storage.atomic import atomic_write_bytes

        atomic_write_bytes(Path(options.output), (dumps(result, indent=1) + "\n").encode())
        if options.verbosity >= 0:
            out.write(f"result written to {options.output}\n")
    out.flush()


def _hint(path: str, options: RunOptions) -> Any:
    def hint(session_id: str) -> str:
        cmd = ["hive-actors", "resume", str(Path(path)), session_id]
        if options.storage:
            cmd += ["--storage", options.storage]
        if options.model:
            cmd += ["--model", options.model]
        if options.scripted is not None:
            cmd += ["--scripted", options.scripted] if options.scripted else ["--scripted"]
        for file in options.mcp_config:
            cmd += ["--mcp-config", file]
        return "Resume with: " + shlex.join(cmd)

    return hint
