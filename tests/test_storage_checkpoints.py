"""CheckpointStore: numbering, reopening, damaged files, writes through the writer."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import trio

from hive_actors.errors import CorruptFileError
from hive_actors.graph.result import SessionState
from hive_actors.storage import checkpoint_store as cs
from hive_actors.storage.checkpoint_store import Checkpoint, CheckpointStore
from hive_actors.storage.fs import FaultyFileSystem
from hive_actors.storage.writer import open_storage_writer


def state(n: int) -> SessionState:
    return SessionState(session_id="s", memory={"n": n}, execution_path=tuple(f"n{i}" for i in range(n)))


async def test_checkpoints_are_numbered_in_order(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    assert store.latest() is None and store.load_all() == []
    saved = [await store.save("node_complete", f"n{i}", state(i)) for i in range(3)]
    assert [c.seq for c in saved] == [1, 2, 3]
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == [f"cp_00000{i}_node_complete.json" for i in (1, 2, 3)]
    assert store.latest() == saved[-1]
    assert store.load_all() == saved
    assert saved[0].created_at.tzinfo is not None


async def test_numbering_continues_after_reopening(tmp_path: Path) -> None:
    first = CheckpointStore(tmp_path)
    for i in range(3):
        await first.save("node_start", "a", state(i))
    cs._counters.clear()  # forget the in-process counter, as a fresh process would
    reopened = CheckpointStore(tmp_path)
    cp = await reopened.save("pause", "b", state(9))
    assert cp.seq == 4 and reopened.latest() == cp


async def test_two_stores_of_one_folder_never_share_a_number(tmp_path: Path) -> None:
    a, b = CheckpointStore(tmp_path), CheckpointStore(tmp_path)
    seqs: list[int] = []

    async def save(store: CheckpointStore, i: int) -> None:
        seqs.append((await store.save("node_complete", "x", state(i))).seq)

    async with trio.open_nursery() as nursery:
        for i in range(10):
            nursery.start_soon(save, a if i % 2 else b, i)
    assert sorted(seqs) == list(range(1, 11))
    assert len(a.load_all()) == 10


async def test_the_process_forgets_a_folder_counter_once_no_store_of_it_is_left(
        tmp_path: Path) -> None:
    # before: one entry per session folder ever opened, for the life of the process
    kept = len(cs._counters)
    for i in range(50):
        store = CheckpointStore(tmp_path / f"s{i}", new_session=True)
        await store.save("node_complete", "a", state(i))
    del store
    assert len(cs._counters) == kept
    reopened = CheckpointStore(tmp_path / "s7")  # a new store scans the folder again
    assert (await reopened.save("pause", "b", state(1))).seq == 2


async def test_order_is_numeric_past_six_digits(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    await store.save("node_start", "a", state(1))
    cs._counters[store._key].next = 1_000_000
    big = await store.save("node_start", "a", state(2))
    assert (tmp_path / "checkpoints" / "cp_1000000_node_start.json").exists()
    assert store.latest() == big


async def test_temp_and_foreign_files_are_ignored(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    cp = await store.save("node_complete", "a", state(1))
    d = tmp_path / "checkpoints"
    (d / ".cp_000002_node_complete.json.1a2b3c.tmp").write_bytes(b'{"torn')
    (d / "notes.txt").write_text("hi")
    assert store.latest() == cp
    assert store.load_all() == [cp]


async def test_damaged_checkpoint_is_named_and_can_be_skipped(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    good = await store.save("node_complete", "a", state(1))
    await store.save("node_complete", "b", state(2))
    bad = tmp_path / "checkpoints" / "cp_000002_node_complete.json"
    bad.write_bytes(bad.read_bytes()[:40])
    with pytest.raises(CorruptFileError) as info:
        store.latest()
    assert info.value.path == str(bad) and str(bad) in str(info.value)
    with pytest.raises(CorruptFileError):
        store.load_all()
    assert store.latest(skip_damaged=True) == good
    assert store.load_all(skip_damaged=True) == [good]
    assert store.damaged_files() == [bad]


@pytest.mark.parametrize(
    "content",
    [b"[]", b'{"schema_version": 99}', b'{"schema_version": 1, "seq": 1}', b"\xff\xfe"],
)
def test_malformed_contents_raise_corrupt_file_error(tmp_path: Path, content: bytes) -> None:
    d = tmp_path / "checkpoints"
    d.mkdir()
    (d / "cp_000001_pause.json").write_bytes(content)
    with pytest.raises(CorruptFileError, match="cp_000001_pause.json"):
        CheckpointStore(tmp_path).latest()


async def test_file_whose_seq_disagrees_with_its_name_is_damaged(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    await store.save("pause", None, state(1))
    d = tmp_path / "checkpoints"
    (d / "cp_000001_pause.json").rename(d / "cp_000007_pause.json")
    with pytest.raises(CorruptFileError, match="name says 7"):
        store.latest()


def test_checkpoint_record_rejects_naive_time_and_odd_kinds() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Checkpoint(seq=1, kind="pause", node_id=None, created_at=dt.datetime.now(), state=state(0))
    with pytest.raises(ValueError, match="kind"):
        Checkpoint(seq=1, kind="../x", node_id=None,
                   created_at=dt.datetime.now(dt.timezone.utc), state=state(0))


async def test_save_in_a_cancelled_scope_still_lands_whole(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    with trio.CancelScope() as scope:
        scope.cancel()
        await store.save("node_complete", "a", state(5))
    assert store.latest().state == state(5)  # type: ignore[union-attr]


async def test_saves_through_the_writer_share_syncs(tmp_path: Path) -> None:
    fs = FaultyFileSystem()
    async with open_storage_writer(fs=fs, sync_mode="fsync") as writer:
        stores = [CheckpointStore(tmp_path / f"s{i}", writer) for i in range(8)]
        async with trio.open_nursery() as nursery:
            for i, store in enumerate(stores):
                nursery.start_soon(store.save, "node_complete", "n", state(i))
    assert fs.calls["replace"] == 8
    assert writer.stats.requests == 8
    for i, store in enumerate(stores):
        assert store.latest().state == state(i)  # type: ignore[union-attr]


async def test_large_checkpoints_are_encoded_in_a_worker_thread(tmp_path, monkeypatch):
    import threading

    from hive_actors.graph.result import SessionState
    from hive_actors.storage import checkpoint_store as cs

    threads = []

    def encode(cp):
        threads.append(threading.current_thread() is threading.main_thread())
        return real(cp)

    real = cs.encode_checkpoint
    monkeypatch.setattr(cs, "encode_checkpoint", encode)
    store = cs.CheckpointStore(tmp_path / "s1")
    big = SessionState(memory={"items": list(range(100_000))})
    for _ in range(3):
        await store.save("node_complete", "a", big)
    # a bounded walk shows the state is large: every one, the first too, leaves the event loop
    assert threads == [False, False, False]
    await cs.CheckpointStore(tmp_path / "s2").save("node_complete", "a",
                                                   SessionState(memory={"items": [1, 2]}))
    assert threads[-1] is True  # a small state encodes faster than a thread hop
    assert store.latest().state.memory == big.memory
