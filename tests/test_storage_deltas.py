"""Checkpoints recorded as deltas in the journal: the view's checkpoint files read back as the
states saved, the record of a boundary does not grow with the state it does not change, and
a backend that only knows whole-file writes gets the same files from `materialise_ops`."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import trio

from hive_actors.graph.result import SessionState
from hive_actors.storage.checkpoint_delta import Materialiser, materialise_ops, patch_bytes
from hive_actors.storage.checkpoint_store import CheckpointStore
from hive_actors.storage.commit import FileOp
from hive_actors.storage.journal import Journal

BIG = "x" * 200_000


def states() -> list[SessionState]:
    """A run's states: memory grows and is changed in place, the path and a conversation
    grow, then the conversation is cut back (a retried node) and a key goes away."""
    items = [1]
    msgs = [{"role": "user", "content": "hi"}]
    out = []
    memory: dict[str, object] = {"big": BIG, "items": items}
    for i in range(5):
        items.append(i)  # the same list, changed in place
        memory = {**memory, f"k{i}": i}
        msgs = [*msgs, {"role": "assistant", "content": f"step {i}"}]
        out.append(SessionState(session_id="s", memory=memory,
                                execution_path=tuple(f"n{j}" for j in range(i + 1)),
                                node_visit_counts={f"n{j}": 1 for j in range(i + 1)},
                                next_nodes=(f"n{i + 1}",), conversations={"_shared": msgs},
                                steps_executed=i + 1, total_tokens=10 * i))
    cut = {k: v for k, v in memory.items() if k != "k0"}
    out.append(SessionState(session_id="s", memory=cut, execution_path=("n0", "n9"),
                            conversations={"_shared": msgs[:2], "other": [{"role": "user"}]},
                            paused_at="n9"))
    return out


async def _save_all(journal: Journal, folder: Path) -> tuple[list[dict], list[int]]:
    store = CheckpointStore(folder, journal)
    sizes, seen = [], []
    for i, st in enumerate(states()):
        before = journal.stats.bytes
        kind = "pause" if st.paused_at else "node_complete"
        await store.save(kind, f"n{i}", st)
        seen.append(st.to_dict())  # the state as it was when saved
        sizes.append(journal.stats.bytes - before)
    await journal.settle()
    return seen, sizes


async def test_delta_checkpoints_read_back_as_saved_and_stay_small(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        seen, sizes = await _save_all(journal, tmp_path / "sessions" / "s")
        cps = CheckpointStore(tmp_path / "sessions" / "s").load_all()
        await journal.aclose()
    assert [cp.state.to_dict() for cp in cps] == seen
    # the first record holds the 200 KB value; the next ones only what changed
    assert sizes[0] > 200_000 and max(sizes[1:5]) < 2_000, sizes


async def test_replay_after_a_crash_materialises_deltas_from_files(tmp_path: Path) -> None:
    journal = Journal(tmp_path, view_catch_up_on_stop=False)
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        journal.stopping()  # the view writes nothing more: every record stays in the journal
        seen, _ = await _save_all(journal, tmp_path / "sessions" / "s")
        await journal.aclose()
    assert not (tmp_path / "sessions" / "s" / "checkpoints").exists()
    journal2 = Journal(tmp_path)  # start-up replays the journal into the view
    async with trio.open_nursery() as nursery:
        await nursery.start(journal2.run)
        await journal2.aclose()
    cps = CheckpointStore(tmp_path / "sessions" / "s").load_all()
    assert [cp.state.to_dict() for cp in cps] == seen


async def test_a_whole_file_backend_gets_the_same_files(tmp_path: Path) -> None:
    handed: list[FileOp] = []

    class Recording(Journal):  # records what the store hands over, then commits it
        async def commit(self, ops):  # type: ignore[no-untyped-def]
            handed.extend(ops)
            await super().commit(ops)

    journal = Recording(tmp_path)
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        await _save_all(journal, tmp_path / "sessions" / "s")
        await journal.aclose()
    assert {op.kind for op in handed} == {"delta"}
    writes = materialise_ops(handed)  # what a write/append-only backend would store
    assert [op.kind for op in writes] == ["write"] * len(handed)
    for w in writes:
        assert w.data == w.path.read_bytes()  # the view's file, byte for byte


def test_patches_apply_in_order_and_each_file_is_encoded_once(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_bytes(b'{"status": "running", "current_node": null, "n": 0}')
    m = Materialiser()
    ops = [FileOp.delta(state, patch_bytes({"current_node": "a", "n": 1})),
           FileOp.delta(state, patch_bytes({"current_node": "b"})),
           FileOp.append(tmp_path / "log", b"x\n"),
           FileOp.delta(state, patch_bytes({"status": "completed"}))]
    out = m.prepare(ops)
    assert [op.kind for op in out] == ["append", "write"]
    assert json.loads(out[1].data) == {"status": "completed", "current_node": "b", "n": 1}
    # a whole write earlier in the same batch is the base of the patch after it
    other = tmp_path / "other.json"
    out = Materialiser().prepare([FileOp.write(other, b'{"a": 1}'),
                                  FileOp.delta(other, patch_bytes({"b": 2}))])
    assert [json.loads(op.data) for op in out] == [{"a": 1, "b": 2}]


async def test_runtime_state_json_is_the_same_through_patches(tmp_path: Path) -> None:
    from test_runtime_executions import Work, runtime_for

    def record(storage: Path, engine: str) -> dict:
        return {k: v for k, v in json.loads(
            next((storage / "sessions").iterdir()).joinpath("state.json").read_bytes()).items()
            if k not in ("session_id", "created_at", "updated_at", "owner")}

    results = {}
    for engine in ("journal", "files"):
        rt = runtime_for(tmp_path / engine, Work())
        rt.config = attrs.evolve(rt.config, storage_engine=engine)
        async with rt:
            await rt.trigger_and_wait("default", {"k": 2})  # even: never blocks
        results[engine] = record(tmp_path / engine, engine)
    assert results["journal"] == results["files"]
    assert results["journal"]["status"] == "completed" and results["journal"]["output"]["e"]


async def _stop_with_final_records(root: Path, sessions: int) -> None:
    journal = Journal(root, view_catch_up_limit=512)
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        journal.stopping()  # as at stop(): then the final records of in-flight executions
        async with trio.open_nursery() as finals:  # all at once, as cancelled executions do
            for i in range(sessions):
                finals.start_soon(journal.commit, [
                    FileOp.write(root / "sessions" / f"s{i}" / f"f{j}.json", b"{}")
                    for j in range(6)])
        await journal.aclose()


async def test_stop_leaves_a_big_view_backlog_to_the_replay(tmp_path: Path) -> None:
    from hive_actors.storage.engines import open_reader

    await _stop_with_final_records(tmp_path / "small", 10)  # 60 writes: caught up
    assert len(list((tmp_path / "small" / "sessions").rglob("*.json"))) == 60
    await _stop_with_final_records(tmp_path / "big", 100)  # 600 writes: left to the replay
    assert len(list((tmp_path / "big").rglob("sessions/*/*.json"))) < 600
    open_reader(tmp_path / "big")
    assert len(list((tmp_path / "big" / "sessions").rglob("*.json"))) == 600
