"""SIGKILL a process that is writing checkpoints: no torn checkpoint file may exist."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hive_actors.storage.atomic import sweep_temp_files
from hive_actors.storage.checkpoint_store import CheckpointStore

CHILD = r"""
import sys, trio
from pathlib import Path
from hive_actors.graph.result import SessionState
from hive_actors.storage.checkpoint_store import CheckpointStore
from hive_actors.storage.writer import open_storage_writer

root, mode = Path(sys.argv[1]), sys.argv[2]
big = {"blob": "x" * 300_000}

async def saver(store, name):
    i = 0
    while True:
        i += 1
        cp = await store.save("node_complete", f"n{i}", SessionState(session_id=name, memory=big, steps_executed=i))
        print(name, cp.seq, flush=True)

async def main():
    if mode == "direct":
        await saver(CheckpointStore(root / "s0"), "s0")
    else:
        async with open_storage_writer() as writer:
            async with trio.open_nursery() as nursery:
                for k in range(3):
                    nursery.start_soon(saver, CheckpointStore(root / f"s{k}", writer), f"s{k}")

trio.run(main)
"""


@pytest.mark.parametrize("mode", ["direct", "writer"])
def test_sigkill_while_saving_leaves_only_whole_checkpoints(tmp_path: Path, mode: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path), mode], stdout=subprocess.PIPE, text=True
    )
    reported: dict[str, int] = {}
    try:
        assert proc.stdout is not None
        while sum(reported.values()) < 12:  # a few durable saves, then kill mid-stream
            line = proc.stdout.readline()
            assert line, "child exited early"
            name, seq = line.split()
            reported[name] = int(seq)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    for name, last_reported in reported.items():
        store = CheckpointStore(tmp_path / name)
        assert store.damaged_files() == []
        seqs = [cp.seq for cp in store.load_all()]
        # nothing reported durable is missing; numbering has no holes
        assert seqs == list(range(1, len(seqs) + 1)) and seqs[-1] >= last_reported
        latest = store.latest()
        assert latest is not None and latest.state.memory["blob"] == "x" * 300_000
        # a new owner continues the numbering
        assert store._allocate_seq() == seqs[-1] + 1
    # temp files of the interrupted writes (if any) are the only leftovers, and sweepable
    for p in sweep_temp_files(tmp_path):
        assert p.name.startswith(".cp_") and p.name.endswith(".tmp")
    assert [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")] == []
