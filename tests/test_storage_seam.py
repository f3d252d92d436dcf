"""The storage seam's read side: recovery, resume and the CLI read through a `SessionReader`,
so a backend that is not the seed's files (PostgreSQL) serves them as well."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from hive_actors.errors import CorruptFileError, UnknownSessionError
from hive_actors.graph.result import SessionState
from hive_actors.status import ExecutionStatus
from hive_actors.storage.checkpoint_store import Checkpoint
from hive_actors.storage.engines import open_reader
from hive_actors.storage.owner import OwnerInfo, owner_is_alive
from hive_actors.storage.recovery import choose_checkpoint, damaged_checkpoints
from hive_actors.storage.seam import SessionReader
from hive_actors.storage.session_store import DamagedSession, SessionRecord, SessionStore
from test_runtime_executions import Work, runtime_for

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def _cp(seq: int, node: str) -> Checkpoint:
    return Checkpoint(seq=seq, kind="node_complete", node_id=node, created_at=NOW,
                      state=SessionState(session_id="s1", execution_path=(node,),
                                         next_nodes=("n9",)))


class RowsReader:
    """A reader over rows in memory (no files): what a database backend would give."""

    def __init__(self, damaged_seq: int | None = None) -> None:
        self.cps = [_cp(1, "n1"), _cp(2, "n2"), _cp(3, "n3")]
        self.damaged_seq = damaged_seq

    def _row(self, cp: Checkpoint) -> Checkpoint:
        if cp.seq == self.damaged_seq:
            raise CorruptFileError(f"checkpoints row {cp.seq}", "bad row")
        return cp

    def read_state(self, session_id: str) -> SessionRecord:
        raise UnknownSessionError(session_id)

    def scan(self, *, status: ExecutionStatus | str | None = None
             ) -> tuple[list[SessionRecord], list[DamagedSession]]:
        return [], []

    def list_sessions(self, *, status: ExecutionStatus | str | None = None,
                      skip_damaged: bool = True) -> list[SessionRecord]:
        return []

    def find_orphaned(self, is_alive: Callable[[OwnerInfo], bool] = owner_is_alive
                      ) -> list[SessionRecord]:
        return []

    def checkpoints(self, session_id: str, *, skip_damaged: bool = False) -> list[Checkpoint]:
        return [cp for cp in self.cps if not (skip_damaged and cp.seq == self.damaged_seq)
                and self._row(cp)]

    def latest_checkpoint(self, session_id: str, *,
                          skip_damaged: bool = False) -> Checkpoint | None:
        intact = self.checkpoints(session_id, skip_damaged=True)
        return intact[-1] if skip_damaged else self._row(self.cps[-1])

    def damaged_checkpoints(self, session_id: str) -> list[str]:
        return [] if self.damaged_seq is None else [f"checkpoints row {self.damaged_seq}"]

    def read_details(self, session_id: str) -> list[dict[str, Any]]:
        return []

    def read_tool_logs(self, session_id: str) -> list[dict[str, Any]]:
        return []

    def read_summary(self, session_id: str) -> dict[str, Any] | None:
        return None


def test_resume_point_and_damage_report_come_from_any_reader() -> None:
    reader: SessionReader = RowsReader()
    assert choose_checkpoint(reader, "s1").checkpoint == _cp(3, "n3")
    assert choose_checkpoint(reader, "s1", checkpoint=2).checkpoint == _cp(2, "n2")

    damaged: SessionReader = RowsReader(damaged_seq=3)
    with pytest.raises(CorruptFileError, match="--checkpoint N .intact: 1, 2"):
        choose_checkpoint(damaged, "s1")
    point = choose_checkpoint(damaged, "s1", fallback=True)
    assert point.checkpoint == _cp(2, "n2") and "n9" in (point.note or "")
    assert damaged_checkpoints(damaged, ["s1", "s2"]) == ["checkpoints row 3"] * 2


async def test_runtime_reads_its_sessions_through_one_reader(tmp_path: Any) -> None:
    work = Work()
    rt = runtime_for(tmp_path, work)
    assert rt.sessions is None  # not running
    async with rt:
        result = await rt.trigger_and_wait("default", {"k": 2})
        await rt.flush_view()
        reader = rt.sessions
        assert isinstance(reader, SessionStore)
        assert reader.read_state(result.session_id).status == ExecutionStatus.COMPLETED
        latest = reader.latest_checkpoint(result.session_id)
        assert latest is not None and latest.state.execution_path[-1] == "n5"
        assert [cp.seq for cp in reader.checkpoints(result.session_id)][-1] == latest.seq
        assert reader.damaged_checkpoints(result.session_id) == []
        assert reader.read_summary(result.session_id) is not None
    assert rt.sessions is None
    files = open_reader(tmp_path)  # the folder, no runtime
    assert [r.session_id for r in files.list_sessions()] == [result.session_id]
