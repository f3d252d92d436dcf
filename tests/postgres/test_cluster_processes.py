"""Worker processes sharing one database: exactly once, kill -9, SIGSTOP past the lease.

Slow (make test-pg). Each test starts `hive-actors worker` processes on the five_nodes agent,
whose steps append "<x> <node> <pid>" to a calls file, and submits from this process.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import trio

from hive_actors.cluster.client import StoreClient
from hive_actors.storage.postgres import PgSessionReader

pytestmark = pytest.mark.slow

AGENT = Path(__file__).parent / "agents" / "five_nodes"
NODES = ["n1", "n2", "n3", "n4", "n5"]


class Workers:
    def __init__(self, url: str, calls: Path, tmp: Path) -> None:
        self.url = url
        self.calls = calls
        self.tmp = tmp
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, *, concurrency: int = 8, lease: float = 2.0,
              step_seconds: float = 0.0) -> subprocess.Popen[str]:
        return self.start_agent(AGENT, concurrency=concurrency, lease=lease,
                                step_seconds=step_seconds)

    def start_agent(self, agent: Path, *, concurrency: int = 8, lease: float = 2.0,
                    step_seconds: float = 0.0) -> subprocess.Popen[str]:
        env = {**os.environ, "CLUSTER_CALLS": str(self.calls),
               "CLUSTER_STEP_SECONDS": str(step_seconds)}
        err = open(self.tmp / f"worker{len(self.procs)}.err", "w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "hive_actors.cli", "worker", str(agent), "--store", self.url,
             "--concurrency", str(concurrency), "--lease-seconds", str(lease)],
            stdout=subprocess.PIPE, stderr=err, text=True, env=env)
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "worker ID running ..." once it has joined
        assert line.startswith("worker "), (line, (self.tmp / "worker0.err").read_text())
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGCONT)
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.fixture
def workers(pg_url: str, tmp_path: Path) -> Iterator[Workers]:
    w = Workers(pg_url, tmp_path / "calls.log", tmp_path)
    try:
        yield w
    finally:
        w.stop_all()


def calls_by_x(calls: Path) -> dict[int, list[tuple[str, int]]]:
    out: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for line in calls.read_text().splitlines():
        x, node, pid = line.split()
        out[int(x)].append((node, int(pid)))
    return out


async def submit_all(url: str, n: int, start: int = 0) -> list[str]:
    client = StoreClient(url, "five_nodes")
    try:
        return [await client.submit("default", {"x": i}) for i in range(start, start + n)]
    finally:
        await client.aclose()


async def wait_all(url: str, sids: list[str]) -> dict[str, str]:
    client = StoreClient(url, "five_nodes")
    try:
        with trio.fail_after(600):  # a hang guard, not a speed check
            return await client.wait(sids)
    finally:
        await client.aclose()


def check_outputs(url: str, sids: list[str], start: int = 0) -> None:
    reader = PgSessionReader(url, Path("/"))
    try:
        for i, sid in enumerate(sids, start):
            record = reader.read_state(sid)
            assert record.status == "completed", (sid, record.error)
            assert record.output["result"] == 19 * i + 50
            # every node recorded exactly once: no stale owner's late write got in
            assert [d["node_id"] for d in reader.read_details(sid)] == NODES, sid
    finally:
        reader.close()


async def test_a_thousand_executions_on_three_workers_complete_exactly_once(
        workers: Workers) -> None:
    pids = [workers.start(concurrency=16).pid for _ in range(3)]
    sids = await submit_all(workers.url, 1000)
    statuses = await wait_all(workers.url, sids)
    assert set(statuses.values()) == {"completed"}
    check_outputs(workers.url, sids)
    calls = calls_by_x(workers.calls)
    assert sorted(calls) == list(range(1000))
    for x, seen in calls.items():
        assert [node for node, _ in seen] == NODES, (x, seen)  # each node ran once
    ran = {pid for seen in calls.values() for _, pid in seen}
    assert ran == set(pids)  # every worker took a share


async def wait_for(predicate: object, what: str) -> None:
    with trio.fail_after(120):  # a hang guard
        while not predicate():  # type: ignore[operator]
            await trio.sleep(0.05)  # polling another process's progress


async def test_kill_9_of_a_worker_mid_run_its_sessions_resume_on_the_others(
        workers: Workers) -> None:
    procs = [workers.start(concurrency=8, lease=1.5, step_seconds=0.1) for _ in range(3)]
    victim = procs[0]
    sids = await submit_all(workers.url, 60)

    def victim_busy() -> bool:
        return workers.calls.exists() and sum(
            1 for seen in calls_by_x(workers.calls).values() for _, p in seen
            if p == victim.pid) >= 12
    await wait_for(victim_busy, "the victim running sessions")
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    statuses = await wait_all(workers.url, sids)
    assert set(statuses.values()) == {"completed"}
    check_outputs(workers.url, sids)
    taken_over = 0
    for x, seen in calls_by_x(workers.calls).items():
        by_victim = [node for node, pid in seen if pid == victim.pid]
        after = [node for node, pid in seen if pid != victim.pid]
        if by_victim and after:
            taken_over += 1
            # only the node the victim was in when killed may run again; nodes it
            # completed before (checkpointed) never do
            rerun = set(by_victim) & set(after)
            assert rerun <= {by_victim[-1]}, (x, seen)
        assert sorted(set(by_victim) | set(after)) == NODES
    assert taken_over > 0


async def test_sigstop_past_the_lease_then_sigcont_late_writes_refused_and_it_rejoins(
        workers: Workers) -> None:
    stopped = workers.start(concurrency=4, lease=1.0, step_seconds=0.3)
    other = workers.start(concurrency=4, lease=1.0, step_seconds=0.3)
    sids = await submit_all(workers.url, 16)

    def stopped_busy() -> bool:
        return workers.calls.exists() and any(
            p == stopped.pid for seen in calls_by_x(workers.calls).values() for _, p in seen)
    await wait_for(stopped_busy, "the worker to stop running sessions")
    os.kill(stopped.pid, signal.SIGSTOP)

    def owner_of(sid_list: list[str]) -> set[str]:
        with psycopg.connect(workers.url) as conn:
            rows = conn.execute("SELECT DISTINCT owner_id FROM hive_sessions WHERE id = ANY(%s)"
                                " AND status IN ('queued', 'running')", (sid_list,)).fetchall()
        return {r[0] for r in rows}

    with psycopg.connect(workers.url) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM hive_workers ORDER BY started_at")]
    stopped_id = ids[0]
    # the other worker takes over every session of the stopped one once its lease lapsed
    await wait_for(lambda: stopped_id not in owner_of(sids), "the takeover")
    os.kill(stopped.pid, signal.SIGCONT)
    statuses = await wait_all(workers.url, sids)
    assert set(statuses.values()) == {"completed"}
    check_outputs(workers.url, sids)  # details exactly once each: late writes were refused
    # it noticed and stopped working on the sessions it lost
    await wait_for(lambda: "taken over" in (workers.tmp / "worker0.err").read_text(),
                   "the stopped worker noticing")
    # it rejoins: with the other worker gone, it alone runs new work
    other.terminate()
    other.wait(timeout=60)
    more = await submit_all(workers.url, 4, start=100)
    assert set((await wait_all(workers.url, more)).values()) == {"completed"}
    check_outputs(workers.url, more, start=100)
    calls = calls_by_x(workers.calls)
    assert all({p for _, p in calls[x]} == {stopped.pid} for x in range(100, 104))


TICKER = Path(__file__).parent / "agents" / "ticker"


def _timer_slots(url: str) -> list[tuple[str, str, str | None]]:
    """(submit key, status, output slot) of every timer session, by key."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT submit_key, status, state FROM hive_sessions "
                            "WHERE agent_name = 'ticker' ORDER BY submit_key").fetchall()
    out = []
    for key, status, state in rows:
        output = json.loads(bytes(state))["output"].get("slot") if state is not None else None
        out.append((key, status, output))
    return out


async def test_a_one_second_timer_on_three_workers_fires_once_per_slot_also_through_a_kill(
        workers: Workers) -> None:
    procs = []
    for _ in range(3):
        procs.append(workers.start_agent(TICKER, concurrency=2, lease=1.0))

    def completed(n: int) -> bool:
        return sum(1 for _, status, _ in _timer_slots(workers.url) if status == "completed") >= n
    await wait_for(lambda: completed(3), "three slots")
    procs[0].send_signal(signal.SIGKILL)
    procs[0].wait()
    await wait_for(lambda: completed(8), "five slots more with one worker killed")
    workers.stop_all()
    slots = _timer_slots(workers.url)
    times = [float(key.rsplit(":", 1)[1]) for key, _, _ in slots]
    # one session per slot (the key is unique) and no slot missing, the kill included
    assert times == [times[0] + i for i in range(len(times))], times
    for key, status, output in slots:
        if status == "completed":
            slot = dt.datetime.fromtimestamp(float(key.rsplit(":", 1)[1]), dt.timezone.utc)
            assert output == slot.isoformat()


RESEARCH = Path(__file__).parents[2] / "examples" / "research_assistant"


async def test_a_feed_client_of_one_process_follows_an_execution_on_a_worker_process(
        workers: Workers) -> None:
    from trio_websocket import open_websocket_url

    sys.path.insert(0, str(Path(__file__).parents[1]))
    from feed_support import FeedClient

    worker = subprocess.Popen(
        [sys.executable, "-m", "hive_actors.cli", "worker", str(RESEARCH), "--store",
         workers.url, "--scripted"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True)
    serve = subprocess.Popen(
        [sys.executable, "-m", "hive_actors.cli", "serve", str(RESEARCH), "--store",
         workers.url, "--port", "0", "--no-dashboard"], stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True)
    workers.procs += [worker, serve]
    assert worker.stdout is not None and serve.stdout is not None
    assert worker.stdout.readline().startswith("worker ")
    url = ""
    while not url:
        line = serve.stdout.readline()
        assert line, "serve ended before listening"
        if line.startswith("event feed: "):
            url = line.split(": ", 1)[1].strip()
    with trio.fail_after(120):  # a hang guard
        async with open_websocket_url(url) as ws:
            c = FeedClient(ws)
            await c.call("subscribe")
            execution_id = (await c.call("trigger", entry_point="default", input={})
                            )["result"]["execution_id"]
            asked = await c.next_event("client_input_requested")
            assert asked["event"]["execution_id"] == execution_id
            assert "What topic" in asked["event"]["data"]["prompt"]
            reply = await c.call("inject_input", node_id=asked["event"]["node_id"],
                                 content="structured concurrency in trio",
                                 execution_id=execution_id)
            assert reply["result"] == {"delivered": True}
            while True:
                message = await c.next_event()
                if (message["event"]["execution_id"] == execution_id
                        and message["event"]["type"].startswith("execution_")
                        and message["event"]["type"] != "execution_started"):
                    break
    assert message["event"]["type"] == "execution_completed", message
    reader = PgSessionReader(workers.url, Path("/"))
    try:
        record = reader.read_state(execution_id)
        assert record.status == "completed"
        assert record.output["topic"] == "structured concurrency in trio"
    finally:
        reader.close()
