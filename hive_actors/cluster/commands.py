"""The cluster commands of the CLI: ``worker``, ``submit`` and ``sessions --store``.

Each returns an exit code (0 ok, 1 failed, 2 usage); cli.py registers them.
"""

from __future__ import annotations

import json
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import trio

from hive_actors.errors import HiveActorsError

__all__ = ["run_worker", "run_submit", "list_sessions"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _agent_name(path: str) -> str:
    from hive_actors.graph.loader import load_agent

    return str(load_agent(path).name)


def run_worker(path: str, store: str, *, concurrency: int, lease_seconds: float,
               model: str | None = None, scripted: str | None = None,
               cache: str | None = None, mcp_config: Sequence[str] = (),
               out: TextIO = sys.stdout) -> int:
    """Run a worker until SIGTERM or SIGINT (a clean stop: its sessions are free at once).
    ``cache``: the runtime's local folder (its runtime log; sessions it resumes are read
    into it from the store); default a temp folder removed at exit."""
    from hive_actors.runner import AgentRunner
    from hive_actors.runner.runner import cli_llm
    from hive_actors.runtime.config import RuntimeConfig
    from hive_actors.storage.postgres import PgLog

    folder = Path(cache).expanduser() if cache else Path(tempfile.mkdtemp(prefix="hive-worker-"))
    try:
        llm, _note = cli_llm(path, model, scripted)
        config = RuntimeConfig(store=store, worker=True, worker_concurrency=concurrency,
                               lease_seconds=lease_seconds)
        runner = AgentRunner.load(path, llm=llm, storage_path=folder, config=config,
                                  mcp_servers=list(mcp_config))
        runtime = runner.runtime

        async def main() -> None:
            with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async with trio.open_nursery() as nursery:
                    await nursery.start(runtime.run)
                    engine = runtime.storage_engine
                    owner = engine.owner_id if isinstance(engine, PgLog) else "?"
                    out.write(f"worker {owner} running "
                              f"{runtime.agent_name} (concurrency {concurrency}, "
                              f"lease {lease_seconds:g} s)\n")
                    out.flush()
                    async for _ in signals:
                        nursery.cancel_scope.cancel()
                        break

        trio.run(main)
    except (HiveActorsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        if not cache:
            shutil.rmtree(folder, ignore_errors=True)
    return EXIT_OK


def run_submit(path: str, store: str, input_text: str, *, entry_point: str | None,
               key: str | None, wait: bool, out: TextIO = sys.stdout) -> int:
    """Queue one execution; print its session id (and with ``wait`` its status and output)."""
    from hive_actors.cluster.client import StoreClient
    from hive_actors.graph.loader import load_agent

    try:
        data = json.loads(input_text)
    except ValueError as exc:
        print(f"error: --input is not JSON: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not isinstance(data, dict):
        print("error: --input must be a JSON object", file=sys.stderr)
        return EXIT_USAGE
    try:
        agent = load_agent(path)
        eps = [ep.id for ep in agent.entry_points] or ["default"]
        ep = entry_point or eps[0]
        if ep not in eps:
            print(f"error: no entry point {ep!r} (known: {', '.join(eps)})", file=sys.stderr)
            return EXIT_USAGE

        async def main() -> int:
            client = StoreClient(store, agent.name)
            try:
                sid = await client.submit(ep, data, key=key)
                out.write(f"{sid}\n")
                out.flush()
                if not wait:
                    return EXIT_OK
                status = (await client.wait([sid]))[sid]
                record = await client.record(sid, Path("/"))
                out.write(f"status: {status}\n")
                out.write(f"output: {json.dumps(record.output, default=str)}\n")
                if record.error:
                    out.write(f"error: {record.error}\n")
                return EXIT_OK if status == "completed" else EXIT_FAILED
            finally:
                await client.aclose()

        return trio.run(main)
    except HiveActorsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED


def run_resume(path: str, store: str, session_id: str, out: TextIO = sys.stdout) -> int:
    """``resume PATH ID --store URL``: queue the session again; a worker continues it from
    its latest checkpoint; wait and print its status and output."""
    from hive_actors.cluster.client import StoreClient
    from hive_actors.storage.pg_queue import requeue

    try:
        client = StoreClient(store, _agent_name(path))

        async def main() -> int:
            try:
                before = await client.call(lambda conn: requeue(conn, session_id))
                out.write(f"{session_id} ({before}) queued to resume\n")
                out.flush()
                status = (await client.wait([session_id]))[session_id]
                record = await client.record(session_id, Path("/"))
            finally:
                await client.aclose()
            out.write(f"status: {status}\noutput: {json.dumps(record.output, default=str)}\n")
            return EXIT_OK if status == "completed" else EXIT_FAILED

        return trio.run(main)
    except HiveActorsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED


def list_sessions(path: str, store: str, show: str | None, out: TextIO = sys.stdout) -> int:
    """``sessions PATH --store URL [show ID]``: the store's sessions of this agent."""
    from hive_actors.storage.postgres import PgSessionReader

    try:
        name = _agent_name(path)
        reader = PgSessionReader(store, Path("/"))
        try:
            if show is not None:
                rec = reader.read_state(show)
                rows: list[tuple[str, Any]] = [
                    ("session", rec.session_id), ("status", rec.status),
                    ("entry point", rec.entry_point), ("current node", rec.current_node),
                    ("checkpoint", rec.checkpoint_seq), ("owner", reader.owner_of(show)),
                    ("path", " -> ".join(str(d.get("node_id")) for d in
                                         reader.read_details(show))),
                    ("output", json.dumps(rec.output, default=str)), ("error", rec.error)]
                for label, value in rows:
                    out.write(f"{label}: {'' if value is None else value}\n")
                return EXIT_OK
            records = [r for r in reader.list_sessions() if r.agent_name in (name, "")]
        finally:
            reader.close()
    except HiveActorsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    for r in records:
        out.write(f"{r.session_id}  {r.status}  {r.entry_point}  {r.updated_at:%Y-%m-%d %H:%M:%S}\n")
    if not records:
        out.write("(no sessions in the store)\n")
    return EXIT_OK
