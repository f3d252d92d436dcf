"""A durable execution costs one group commit per node boundary (checkpoint + details line +
state.json pointing at it), one at acceptance and one at the end (state + summary)."""

from __future__ import annotations

import json
from pathlib import Path

from hive_actors.bench import graphs
from hive_actors.bench.hive_runs import make_runtime
from hive_actors.bench.model import Case
from hive_actors.runtime import agent_runtime
from hive_actors.storage.fs import FaultyFileSystem
from hive_actors.storage.session_store import SessionStore
from hive_actors.storage.writer import StorageWriter


async def test_one_execution_is_seven_group_commits_with_every_file_in_place(
        tmp_path: Path, monkeypatch) -> None:
    fs = FaultyFileSystem()
    writers: list[StorageWriter] = []

    def make_writer(**options) -> StorageWriter:
        writers.append(StorageWriter(fs=fs, **options))
        return writers[-1]

    monkeypatch.setattr(agent_runtime, "StorageWriter", make_writer)
    rt = make_runtime(Case("durable", concurrency=1, executions=1), graphs.seq_graph(),
                      graphs.seq_functions(), storage=tmp_path, storage_engine="files")
    async with rt:
        result = await rt.trigger_and_wait("ep0", {"k": 1})
    assert result.success
    (writer,) = writers
    # accepted, five node boundaries, the end
    assert writer.stats.batches == 7
    # .staging/ (temp files), sessions/, the session, checkpoints/, logs/
    assert fs.calls["mkdir"] == 5
    assert list((tmp_path / ".staging").iterdir()) == []
    store = SessionStore(tmp_path)
    sid = result.session_id
    state = store.read_state(sid)
    checkpoints = sorted((store.session_dir(sid) / "checkpoints").iterdir())
    assert state.status == "completed" and len(checkpoints) == 5
    assert state.checkpoint_seq == json.loads(checkpoints[-1].read_bytes())["seq"]
    assert [d["node_id"] for d in store.read_details(sid)] == ["n1", "n2", "n3", "n4", "n5"]
    assert store.read_summary(sid)["status"] == "completed"
    assert not [p for p in store.session_dir(sid).rglob("*") if p.name.startswith(".")]
