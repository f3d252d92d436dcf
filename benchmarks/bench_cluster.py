"""Worker processes on PostgreSQL against the embedded journal, in one run.

Usage: python benchmarks/bench_cluster.py [--reps 3] [--workers 1,2,4] [--executions 1000]

Starts a throwaway PostgreSQL (tests/postgres/pg_server.py: a socket in a temp folder, fsync
on). Per graph (`seq`: 5 function nodes; `model`: 5 event_loop nodes whose ScriptedLLM takes
50 ms a call) and worker count: a fresh database, N worker processes (``--concurrency``
each) started and idle, then all executions queued in one transaction; the clock runs from
that commit until the last session is completed. The embedded journal runs the same graph in
this process with the same concurrency. Also measured: trigger-to-start (queued row's commit
to its first node's details timestamp, one at a time, idle workers), failover (kill -9 of a
worker owning 100 running sessions until another has claimed all of them), WAL bytes per
execution (pg_current_wal_lsn before and after a run). Medians of ``--reps``.
Not a test: figures depend on the machine and its load; compare ratios within one run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
import trio  # noqa: E402

from hive_actors.bench import graphs  # noqa: E402
from hive_actors.bench.hive_runs import _timed_runtime, make_runtime  # noqa: E402
from hive_actors.bench.model import Case  # noqa: E402
from hive_actors.llm.scripted import ScriptedLLM  # noqa: E402
from hive_actors.storage.postgres import ensure_schema  # noqa: E402

AGENTS = {"seq": "bench_seq", "model": "bench_llm_seq"}


def _runtime(graph: str, concurrency: int, storage: Path, store: str | None,
             delay: float, lease: float = 2.0) -> Any:
    case = Case("cluster", concurrency=concurrency, executions=concurrency)
    cluster = ({"store": store, "worker": True, "worker_concurrency": concurrency,
                "lease_seconds": lease} if store else {})
    if graph == "seq":
        return make_runtime(case, graphs.seq_graph(), graphs.seq_functions(), storage=storage,
                            **cluster)
    return make_runtime(case, graphs.llm_seq_graph(), {}, storage=storage,
                        llm=ScriptedLLM(autopilot=True, delay=delay), **cluster)


def worker_main(url: str, graph: str, concurrency: int, lease: float, delay: float) -> None:
    cache = Path(tempfile.mkdtemp(prefix="hive-bench-worker-"))
    runtime = _runtime(graph, concurrency, cache, url, delay, lease)

    async def main() -> None:
        with trio.open_signal_receiver(signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                await nursery.start(runtime.run)
                print("ready", flush=True)
                async for _ in signals:
                    nursery.cancel_scope.cancel()
                    break

    try:
        trio.run(main)
    finally:
        shutil.rmtree(cache, ignore_errors=True)


class Cluster:
    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        name = f"b_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.url = server_url.replace("/postgres?", f"/{name}?")
        with psycopg.connect(self.url) as conn:
            ensure_schema(conn)
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, graph: str, concurrency: int, lease: float = 2.0,
              delay: float = 0.05) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, __file__, "--worker", self.url, "--graph", graph,
             "--concurrency", str(concurrency), "--lease", str(lease), "--delay", str(delay)],
            stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            p.wait()

    def queue(self, graph: str, n: int, start: int = 0) -> None:
        rows = [(f"s_{uuid.uuid4().hex}", AGENTS[graph], "ep0",
                 json.dumps({"k": i}).encode()) for i in range(start, start + n)]
        with psycopg.connect(self.url) as conn:
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO hive_sessions (id, agent_name, entry_point, status, "
                                "input) VALUES (%s, %s, %s, 'queued', %s)", rows)
            conn.commit()

    def count(self, status: str) -> int:
        with psycopg.connect(self.url) as conn:
            (n,), = conn.execute("SELECT count(*) FROM hive_sessions WHERE status = %s",
                                 (status,))
        return int(n)

    def wait_completed(self, n: int, limit: float = 900) -> None:
        deadline = time.monotonic() + limit
        while self.count("completed") < n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {self.count('completed')} of {n} completed")
            time.sleep(0.02)

    def wal(self) -> int:
        with psycopg.connect(self.url) as conn:
            (lsn,), = conn.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')")
        return int(lsn)


def throughput(server: str, graph: str, workers: int, concurrency: int,
               n: int) -> tuple[float, float]:
    """(executions/s, WAL bytes per execution)."""
    cluster = Cluster(server)
    try:
        for _ in range(workers):
            cluster.start(graph, concurrency)
        cluster.queue(graph, min(50, n), start=10**6)  # warm-up: imports, connections
        cluster.wait_completed(min(50, n))
        wal0 = cluster.wal()
        t0 = time.perf_counter()
        cluster.queue(graph, n)
        cluster.wait_completed(n + min(50, n))
        elapsed = time.perf_counter() - t0
        return n / elapsed, (cluster.wal() - wal0) / n
    finally:
        cluster.stop()


def journal_throughput(graph: str, concurrency: int, n: int, delay: float = 0.05) -> float:
    base = Path(tempfile.mkdtemp(prefix="hive-bench-journal-"))
    try:
        rt = _runtime(graph, concurrency, base, None, delay)
        case = Case("durable", concurrency=concurrency, executions=n, warmup=50)
        metrics = trio.run(_timed_runtime, case, rt, graphs.SEQ_TRANSITIONS)
        return float(metrics["throughput"])
    finally:
        shutil.rmtree(base, ignore_errors=True)


def trigger_to_start(server: str, samples: int = 20) -> list[float]:
    cluster = Cluster(server)
    try:
        cluster.start("seq", 8)
        out = []
        for i in range(samples):
            cluster.queue("seq", 1, start=i)
            cluster.wait_completed(i + 1)
        with psycopg.connect(cluster.url) as conn:
            rows = conn.execute(
                "SELECT s.created_at, convert_from(l.data, 'UTF8') FROM hive_sessions s "
                "JOIN hive_lines l ON l.session_id = s.id AND l.name = 'details.jsonl' "
                "WHERE convert_from(l.data, 'UTF8') LIKE '%%\"n1\"%%'").fetchall()
        for created, line in rows:
            first = dt.datetime.fromisoformat(json.loads(line)["timestamp"])
            out.append((first - created).total_seconds())
        return sorted(out)
    finally:
        cluster.stop()


def failover(server: str, lease: float) -> float:
    """Seconds from kill -9 of a worker owning 100 running sessions until another worker
    has claimed all of them."""
    cluster = Cluster(server)
    try:
        victim = cluster.start("model", 100, lease=lease, delay=5.0)
        cluster.queue("model", 100)
        while cluster.count("running") < 100:  # all accepted and mid-run on the victim
            time.sleep(0.02)
        cluster.start("model", 100, lease=lease, delay=5.0)
        with psycopg.connect(cluster.url) as conn:
            (victim_id,), = conn.execute("SELECT DISTINCT owner_id FROM hive_sessions")
        t0 = time.perf_counter()
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        while True:
            with psycopg.connect(cluster.url) as conn:
                (left,), = conn.execute("SELECT count(*) FROM hive_sessions WHERE owner_id = %s",
                                        (victim_id,))
            if left == 0:
                return time.perf_counter() - t0
            time.sleep(0.01)
    finally:
        cluster.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--graph", default="seq", help=argparse.SUPPRESS)
    p.add_argument("--lease", type=float, default=2.0, help=argparse.SUPPRESS)
    p.add_argument("--delay", type=float, default=0.05, help=argparse.SUPPRESS)
    p.add_argument("--concurrency", type=int, default=32, help="executions at once per process")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--workers", default="1,2,4")
    p.add_argument("--executions", type=int, default=1000)
    p.add_argument("--graphs", default="seq,model")
    args = p.parse_args()
    if args.worker:
        worker_main(args.worker, args.graph, args.concurrency, args.lease, args.delay)
        return
    from tests.postgres.pg_server import throwaway_server

    with throwaway_server() as server:
        counts = [int(w) for w in args.workers.split(",")]
        for graph in args.graphs.split(","):
            n = args.executions if graph == "seq" else max(args.executions // 2, 1)
            journal = [journal_throughput(graph, args.concurrency, n) for _ in range(args.reps)]
            print(f"{graph}: embedded journal, 1 process, c={args.concurrency}: "
                  f"{statistics.median(journal):.0f} exec/s (runs {[round(x) for x in journal]})",
                  flush=True)
            for w in counts:
                runs = [throughput(server.url, graph, w, args.concurrency, n)
                        for _ in range(args.reps)]
                rate = statistics.median(r[0] for r in runs)
                wal = statistics.median(r[1] for r in runs)
                print(f"{graph}: {w} worker(s), c={args.concurrency} each: {rate:.0f} exec/s "
                      f"(runs {[round(r[0]) for r in runs]}), x{rate / statistics.median(journal):.2f} "
                      f"of the journal, WAL {wal / 1024:.1f} KiB/exec", flush=True)
        lat = trigger_to_start(server.url)
        print(f"trigger-to-start (queued commit -> first node done, idle worker, 20 samples): "
              f"p50 {lat[len(lat) // 2] * 1000:.1f} ms, max {lat[-1] * 1000:.1f} ms", flush=True)
        for lease in (2.0,):
            times = [failover(server.url, lease) for _ in range(args.reps)]
            print(f"failover, kill -9 of a worker owning 100 sessions, lease {lease:g} s: "
                  f"median {statistics.median(times):.2f} s (runs "
                  f"{[round(t, 2) for t in times]})", flush=True)


if __name__ == "__main__":
    main()
