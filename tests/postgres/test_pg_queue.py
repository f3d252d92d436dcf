"""The durable queue, leases and takeover on PostgreSQL, and a Worker in this process."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
import trio

from hive_actors.cluster.client import StoreClient
from hive_actors.runner import AgentRunner
from hive_actors.runtime.config import RuntimeConfig
from hive_actors.storage.commit import FileOp
from hive_actors.storage.pg_queue import claim, heartbeat, submit
from hive_actors.storage.postgres import PgLog, PgSessionReader, StaleOwnerError, ensure_schema
from hive_actors.storage.session_store import SessionRecord, SessionStore

AGENT = Path(__file__).parent / "agents" / "five_nodes"
ROOT = Path("/srv/hive/agent")


def _db(url: str) -> psycopg.Connection:
    conn = psycopg.connect(url)
    ensure_schema(conn)
    return conn


def test_concurrent_claimers_never_take_the_same_session(pg_url: str) -> None:
    with _db(pg_url) as conn:
        for i in range(40):
            submit(conn, f"s{i:02d}", "a", "default", {"x": i})
        heartbeat(conn, "w1", "a", 30)
        heartbeat(conn, "w2", "a", 30)
    with psycopg.connect(pg_url) as c1, psycopg.connect(pg_url) as c2:
        # c1 holds its claim's row locks (an open transaction) while c2 claims: SKIP LOCKED
        c1.execute("BEGIN")
        held = c1.execute("SELECT id FROM hive_sessions ORDER BY id LIMIT 10 FOR UPDATE"
                          ).fetchall()
        second = claim(c2, "w2", "a", 15)
        c1.rollback()
        first = claim(c1, "w1", "a", 100)
    assert {h[0] for h in held}.isdisjoint(c.session_id for c in second)
    assert len(second) == 15 and len(first) == 25
    assert {c.session_id for c in first}.isdisjoint(c.session_id for c in second)
    assert {c.epoch for c in first + second} == {1}


def test_the_same_key_queues_one_session(pg_url: str) -> None:
    with _db(pg_url) as conn:
        a = submit(conn, "s1", "a", "default", {"x": 1}, key="order-7")
        b = submit(conn, "s2", "a", "default", {"x": 2}, key="order-7")
        (n,), = conn.execute("SELECT count(*) FROM hive_sessions")
    assert a == b == "s1" and n == 1


async def test_a_lapsed_lease_hands_the_session_over_and_fences_the_old_owner(
        pg_url: str) -> None:
    with _db(pg_url) as conn:
        submit(conn, "s1", "a", "default", {"x": 1})
        heartbeat(conn, "old", "a", 30)
        heartbeat(conn, "new", "a", 30)
        (mine,) = claim(conn, "old", "a", 10)
        assert claim(conn, "new", "a", 10) == []  # a live owner keeps it
    old = PgLog(pg_url, ROOT, owner_id="old")
    new = PgLog(pg_url, ROOT, owner_id="new")
    record = SessionRecord.new("s1", agent_name="a")
    state = SessionStore(ROOT).state_op(record)
    async with trio.open_nursery() as nursery:
        await nursery.start(old.run)
        await nursery.start(new.run)
        old.fence("s1", mine.epoch)
        await old.commit([state])
        with psycopg.connect(pg_url) as conn:
            # the old owner's lease lapses (as after kill -9 or SIGSTOP)
            conn.execute("UPDATE hive_workers SET lease_until = now() - interval '1 s' "
                         "WHERE id = 'old'")
            conn.commit()
            (taken,) = claim(conn, "new", "a", 10)
        assert (taken.session_id, taken.epoch, taken.status) == ("s1", 2, "running")
        new.fence("s1", taken.epoch)
        late = FileOp.write(ROOT / "sessions" / "s1" / "checkpoints" / "cp_000001_n.json", b"{}")
        with pytest.raises(StaleOwnerError):
            await old.commit([late, state])
        await new.commit([SessionStore(ROOT).state_op(record.evolve(status="completed"))])
        nursery.cancel_scope.cancel()
    reader = PgSessionReader(pg_url, ROOT)
    assert reader.read_state("s1").status == "completed"
    assert reader.checkpoints("s1") == [] and reader.owner_of("s1") == "new"
    reader.close()


async def test_a_worker_runtime_runs_what_a_client_submits_with_the_right_outputs(
        pg_url: str, tmp_path: Path) -> None:
    config = RuntimeConfig(store=pg_url, worker=True, worker_concurrency=4, lease_seconds=30)
    runner = AgentRunner.load(AGENT, storage_path=tmp_path, config=config)
    client = StoreClient(pg_url, "five_nodes")
    async with trio.open_nursery() as nursery:
        await nursery.start(runner.runtime.run)
        sids = [await client.submit("default", {"x": i}) for i in range(12)]
        with trio.fail_after(120):  # a hang guard, not a speed check
            statuses = await client.wait(sids)
        nursery.cancel_scope.cancel()
    await client.aclose()
    assert set(statuses.values()) == {"completed"}
    reader = PgSessionReader(pg_url, tmp_path)
    for i, sid in enumerate(sids):
        record = reader.read_state(sid)
        assert record.output["result"] == 19 * i + 50
        assert [d["node_id"] for d in reader.read_details(sid)] == ["n1", "n2", "n3", "n4", "n5"]
    # the local cache of sessions it ran is gone (it would grow with every session)
    assert not list((tmp_path / "sessions").glob("*"))
    # a clean stop leaves the cluster: nothing of this worker is left as a live owner
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM hive_workers").fetchone() == (0,)
        # no client runtime followed its events: none were written to the store
        assert conn.execute("SELECT count(*) FROM hive_events").fetchone() == (0,)
    reader.close()


def test_timer_slots_are_the_same_wall_clock_grid_for_every_worker() -> None:
    from hive_actors.cluster.timers import next_slot, slot_key
    from hive_actors.graph.spec import EntryPointSpec
    from hive_actors.runtime.triggers import TimerTrigger

    async def fire(_ep: str, _data: dict) -> str:
        return ""

    every5 = TimerTrigger(EntryPointSpec(id="t", entry_node="n", trigger_type="timer",
                                         trigger_config={"interval_seconds": 5}), fire)
    # two workers that look at different moments of one slot agree on the next one
    assert next_slot(every5, 1000.2) == next_slot(every5, 1004.9) == 1005.0
    assert next_slot(every5, 1005.0) == 1010.0
    hourly = TimerTrigger(EntryPointSpec(id="h", entry_node="n", trigger_type="timer",
                                         trigger_config={"cron": "0 * * * *"}), fire)
    assert next_slot(hourly, 3600 * 5 + 7) == 3600 * 6
    assert slot_key("a", "t", 1005.0) == "timer:a:t:1005.000"


async def test_a_client_runner_queues_and_a_worker_runner_runs_it(pg_url: str) -> None:
    client = AgentRunner.load(AGENT, store=pg_url)
    worker = AgentRunner.load(AGENT, store=pg_url, worker=True)
    async with client:
        # trigger() queues durably and returns: nothing runs it yet
        queued = await client.trigger(input_data={"x": 5})
        with psycopg.connect(pg_url) as conn:
            assert conn.execute("SELECT status FROM hive_sessions WHERE id = %s",
                                (queued,)).fetchone() == ("queued",)
        async with worker:
            with trio.fail_after(120):  # a hang guard
                result = await client.run({"x": 3})
                first = await client.runtime.trigger_and_wait("default", {"x": 0})
        assert result.success and result.output["result"] == 19 * 3 + 50
        assert first.output["result"] == 50
    reader = PgSessionReader(pg_url, Path("/"))
    assert reader.read_state(queued).output["result"] == 19 * 5 + 50  # the worker ran it
    reader.close()


async def test_resume_with_a_store_queues_a_failed_session_for_a_worker(pg_url: str) -> None:
    from hive_actors.errors import SessionStateError, UnknownSessionError
    from hive_actors.storage.pg_queue import requeue

    client = AgentRunner.load(AGENT, store=pg_url)
    worker = AgentRunner.load(AGENT, store=pg_url, worker=True)
    async with client, worker:
        with trio.fail_after(120):  # a hang guard
            bad = await client.run({"x": "not a number"})  # n1 fails: str + int
            good = await client.run({"x": 1})
    assert bad.status == "failed" and good.status == "completed"
    with _db(pg_url) as conn:
        with pytest.raises(SessionStateError, match="is completed"):
            requeue(conn, good.session_id)
        with pytest.raises(UnknownSessionError):
            requeue(conn, "session_nope")
    rc = await trio.to_thread.run_sync(lambda: _cli("resume", str(AGENT), bad.session_id,
                                                     "--store", pg_url, "--scripted"))
    assert rc[0] == 2 and "--scripted cannot go with --store" in rc[2]
    async with worker:
        rc = await trio.to_thread.run_sync(lambda: _cli("resume", str(AGENT), bad.session_id,
                                                         "--store", pg_url))
    # a worker took it again (and it failed again: the same input)
    assert rc[0] == 1 and "queued to resume" in rc[1] and "status: failed" in rc[1]
    with _db(pg_url) as conn:
        assert conn.execute("SELECT epoch FROM hive_sessions WHERE id = %s",
                            (bad.session_id,)).fetchone() == (2,)


def _cli(*args: str) -> tuple[int, str, str]:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "hive_actors.cli", *args],
                          capture_output=True, text=True, timeout=120)
    return done.returncode, done.stdout, done.stderr


async def test_sessions_with_a_store_lists_and_shows_what_workers_ran(pg_url: str) -> None:
    client = AgentRunner.load(AGENT, store=pg_url)
    worker = AgentRunner.load(AGENT, store=pg_url, worker=True)
    async with client, worker:
        with trio.fail_after(120):  # a hang guard
            done = await client.run({"x": 2})
    listed = await trio.to_thread.run_sync(
        lambda: _cli("sessions", str(AGENT), "--store", pg_url))
    assert listed[0] == 0 and done.session_id in listed[1] and "completed" in listed[1]
    shown = await trio.to_thread.run_sync(
        lambda: _cli("sessions", str(AGENT), "show", done.session_id, "--store", pg_url))
    assert shown[0] == 0, shown[2]
    assert "status: completed" in shown[1] and "path: n1 -> n2 -> n3 -> n4 -> n5" in shown[1]
    assert '"result": 88' in shown[1]
    missing = await trio.to_thread.run_sync(
        lambda: _cli("sessions", str(AGENT), "show", "session_nope", "--store", pg_url))
    assert missing[0] == 1 and "no session 'session_nope'" in missing[2]
