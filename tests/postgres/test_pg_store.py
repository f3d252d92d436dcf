"""The PostgreSQL backend of the storage seam: group commit into rows, fencing, cancellation,
and a runtime whose storage engine it is."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
import trio
import trio.testing

from hive_actors.bench import graphs
from hive_actors.bench.hive_runs import make_runtime
from hive_actors.bench.model import Case
from hive_actors.errors import StorageError
from hive_actors.storage.commit import FileOp
from hive_actors.storage.pg_conn import PgConnection
from hive_actors.storage.postgres import PgLog, PgSessionReader, StaleOwnerError
from hive_actors.storage.session_store import SessionRecord, SessionStore

ROOT = Path("/srv/hive/agent")


def _state(sid: str, status: str = "running", seq: int | None = None) -> FileOp:
    record = SessionRecord.new(sid, entry_point="start", checkpoint_seq=seq).evolve(status=status)
    return SessionStore(ROOT).state_op(record)


async def test_concurrent_groups_share_transactions_and_read_back(pg_url: str) -> None:
    log = PgLog(pg_url, ROOT, owner_id="w1")
    async with trio.open_nursery() as nursery:
        await nursery.start(log.run)

        async def one(i: int) -> None:
            sid = f"s{i:03d}"
            await log.commit([_state(sid)])
            await log.commit([
                FileOp.write(ROOT / "sessions" / sid / "checkpoints" / "cp_000001_node_complete.json",
                             b"{}"),
                FileOp.append(ROOT / "sessions" / sid / "logs" / "details.jsonl",
                              json.dumps({"i": i}).encode() + b"\n"),
                _state(sid, "completed", seq=1),
            ])
            await log.commit([FileOp.write(ROOT / "sessions" / sid / "logs" / "summary.json",
                                           json.dumps({"n": i}).encode())])

        async with trio.open_nursery() as work:
            for i in range(50):
                work.start_soon(one, i)
        nursery.cancel_scope.cancel()
    # 150 groups committed in far fewer transactions (group commit)
    assert log.stats.requests == 150
    assert log.stats.batches < 150 and log.stats.largest_batch > 1
    reader = PgSessionReader(pg_url, ROOT)
    records = reader.list_sessions()
    assert sorted(r.session_id for r in records) == [f"s{i:03d}" for i in range(50)]
    assert {r.status for r in records} == {"completed"}
    assert reader.read_state("s007").checkpoint_seq == 1
    assert reader.read_details("s007") == [{"i": 7}]
    assert reader.read_summary("s007") == {"n": 7}
    with psycopg.connect(pg_url) as conn:
        (status, seq, owner), = conn.execute(
            "SELECT status, checkpoint_seq, owner_id FROM hive_sessions WHERE id = 's007'")
    assert (status, seq, owner) == ("completed", 1, "w1")
    reader.close()


async def test_a_stale_owners_write_is_refused_and_nothing_of_it_applied(pg_url: str) -> None:
    old, new = PgLog(pg_url, ROOT, owner_id="old"), PgLog(pg_url, ROOT, owner_id="new")
    async with trio.open_nursery() as nursery:
        await nursery.start(old.run)
        await nursery.start(new.run)
        await old.commit([_state("s1")])
        old.fence("s1", 1)
        # another worker takes the session over: owner and epoch move on
        with psycopg.connect(pg_url) as conn:
            conn.execute("UPDATE hive_sessions SET owner_id = 'new', epoch = epoch + 1")
        new.fence("s1", 2)
        late = [FileOp.write(ROOT / "sessions" / "s1" / "checkpoints" / "cp_000002_x.json", b"{}"),
                _state("s1", "completed", seq=2)]
        with pytest.raises(StaleOwnerError, match="'s1' is owned by 'new' at epoch 2"):
            await old.commit(late)
        # the same group from the new owner applies; an unrelated group of the old one too
        await new.commit([_state("s1", "failed")])
        await old.commit([_state("s2")])
        nursery.cancel_scope.cancel()
    reader = PgSessionReader(pg_url, ROOT)
    assert reader.read_state("s1").status == "failed"
    assert reader.checkpoints("s1") == []
    assert reader.owner_of("s2") == "old"
    assert old.stats.refused == 1
    reader.close()


async def test_a_path_outside_the_store_fails_its_group_only(pg_url: str) -> None:
    log = PgLog(pg_url, ROOT, owner_id="w")
    async with trio.open_nursery() as nursery:
        await nursery.start(log.run)
        with pytest.raises(StorageError, match="outside the store's folder"):
            await log.commit([_state("s1"), FileOp.write(Path("/etc/elsewhere"), b"x")])
        await log.commit([_state("s2")])
        nursery.cancel_scope.cancel()
    reader = PgSessionReader(pg_url, ROOT)
    assert [r.session_id for r in reader.list_sessions()] == ["s2"]
    reader.close()


async def test_cancelling_a_task_mid_query_cancels_the_query_on_the_server(pg_url: str) -> None:
    conn = PgConnection(pg_url, application_name="cancel-test")
    started = trio.Event()

    def slow(c: psycopg.Connection) -> None:
        trio.from_thread.run_sync(started.set)
        c.execute("SELECT pg_sleep(600)")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(conn.call, slow)
        await started.wait()
        nursery.cancel_scope.cancel()
    # the server ended the query before the cancelled task returned
    with psycopg.connect(pg_url, autocommit=True) as watch:
        (busy,), = watch.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'cancel-test' "
            "AND state = 'active'")
    assert busy == 0
    # the connection was discarded; the next call opens a new one
    assert await conn.call(lambda c: c.execute("SELECT 41 + 1").fetchone()) == (42,)
    await conn.aclose()


async def test_a_runtime_on_the_store_records_a_five_node_execution(pg_url: str,
                                                                     tmp_path: Path) -> None:
    rt = make_runtime(Case("pg", concurrency=1, executions=1), graphs.seq_graph(),
                      graphs.seq_functions(), storage=tmp_path, store=pg_url, worker=True)
    async with rt:
        with trio.fail_after(120):  # a hang guard
            results = [await rt.trigger_and_wait("ep0", {"k": i}) for i in range(3)]
    assert all(r.success for r in results)
    reader = PgSessionReader(pg_url, tmp_path)
    for r in results:
        state = reader.read_state(r.session_id)
        assert state.status == "completed"
        cps = reader.checkpoints(r.session_id)
        assert len(cps) == 5 and state.checkpoint_seq == cps[-1].seq
        assert [d["node_id"] for d in reader.read_details(r.session_id)] == [
            "n1", "n2", "n3", "n4", "n5"]
        assert reader.read_summary(r.session_id)["status"] == "completed"
    # nothing of the sessions went to files
    assert not (tmp_path / "sessions").exists()
    reader.close()
