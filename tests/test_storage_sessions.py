"""SessionStore: layout, state.json schema, listing, orphans, logs, path safety."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import attrs
import pytest
import trio
import trio.testing

from hive_actors.errors import CorruptFileError, UnknownSessionError
from hive_actors.storage.owner import OwnerInfo, current_owner, owner_is_alive
from hive_actors.storage.session_store import (
    InvalidSessionIdError,
    SessionRecord,
    SessionStore,
    new_session_id,
)
from hive_actors.storage.writer import open_storage_writer

UTC = dt.timezone.utc


def test_session_ids_use_utc_time_and_random_suffix() -> None:
    when = dt.datetime(2025, 3, 1, 23, 30, 5, tzinfo=dt.timezone(dt.timedelta(hours=-2)))
    sid = new_session_id(when)
    assert re.fullmatch(r"session_20250302_013005_[0-9a-f]{8}", sid)
    assert new_session_id() != new_session_id()


async def test_state_round_trips_with_aware_times(tmp_path: Path) -> None:
    store = SessionStore(tmp_path)
    sid = new_session_id()
    rec = SessionRecord.new(sid, agent_name="bot", input_data={"q": "hi"}, idempotency_key="k1")
    await store.write_state(rec)
    assert (tmp_path / "sessions" / sid / "state.json").is_file()
    back = store.read_state(sid)
    assert back == rec and back.created_at.tzinfo is not None
    assert back.owner == current_owner()
    raw = json.loads((tmp_path / "sessions" / sid / "state.json").read_text())
    assert raw["schema_version"] == 1 and raw["status"] == "running"


def test_record_rejects_naive_times_and_unknown_status() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        SessionRecord("s", created_at=dt.datetime.now(), updated_at=dt.datetime.now(UTC))
    with pytest.raises(ValueError, match="status"):
        SessionRecord.new("s", status="active")


async def test_writes_of_one_session_land_in_call_order(tmp_path: Path) -> None:
    async with open_storage_writer() as writer:
        store = SessionStore(tmp_path, writer)
        rec = SessionRecord.new("s1")
        async with trio.open_nursery() as nursery:
            for node in ["a", "b", "c", "d"]:
                nursery.start_soon(store.write_state, rec.evolve(current_node=node))
                await trio.testing.wait_all_tasks_blocked()
    assert store.read_state("s1").current_node == "d"


async def test_listing_sorts_by_real_instant_across_offsets(tmp_path: Path) -> None:
    store = SessionStore(tmp_path)
    plus5 = dt.timezone(dt.timedelta(hours=5))
    # 10:00+05:00 is 05:00 UTC: earlier than 06:00 UTC although its wall clock reads later
    early = dt.datetime(2025, 1, 1, 10, 0, tzinfo=plus5)
    late = dt.datetime(2025, 1, 1, 6, 0, tzinfo=UTC)
    for sid, t, status in [("b_late", late, "completed"), ("a_early", early, "running")]:
        await store.write_state(SessionRecord(sid, created_at=t, updated_at=t, status=status))
    (tmp_path / "sessions" / "no_state_yet").mkdir()
    assert [r.session_id for r in store.list_sessions()] == ["a_early", "b_late"]
    assert [r.session_id for r in store.list_sessions(status="completed")] == ["b_late"]


async def test_unknown_and_damaged_sessions_are_reported(tmp_path: Path) -> None:
    store = SessionStore(tmp_path)
    with pytest.raises(UnknownSessionError, match="nope"):
        store.read_state("nope")
    await store.write_state(SessionRecord.new("ok"))
    await store.write_state(SessionRecord.new("bad"))
    state = tmp_path / "sessions" / "bad" / "state.json"
    state.write_text('{"schema_version": 1, "session_id": "bad", "status": "runn')
    with pytest.raises(CorruptFileError) as info:
        store.read_state("bad")
    assert info.value.path == str(state)
    assert [r.session_id for r in store.list_sessions()] == ["ok"]
    with pytest.raises(CorruptFileError):
        store.list_sessions(skip_damaged=False)


async def test_state_from_a_newer_schema_is_refused_clearly(tmp_path: Path) -> None:
    store = SessionStore(tmp_path)
    await store.write_state(SessionRecord.new("s"))
    path = store.state_path("s")
    data = json.loads(path.read_text())
    data["schema_version"] = 2
    path.write_text(json.dumps(data))
    with pytest.raises(CorruptFileError, match="schema_version 2"):
        store.read_state("s")


@pytest.mark.parametrize("bad", ["../x", "a/b", "..", ".hidden", "a\\b", "", "a..b", "x\x00"])
def test_unsafe_session_ids_are_rejected(tmp_path: Path, bad: str) -> None:
    store = SessionStore(tmp_path)
    with pytest.raises(InvalidSessionIdError, match="invalid session id"):
        store.session_dir(bad)
    with pytest.raises(ValueError):
        store.read_state(bad)


def dead_owner() -> OwnerInfo:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return attrs.evolve(current_owner(), pid=int(proc.stdout), start_time=None)


def test_owner_liveness() -> None:
    me = current_owner()
    assert owner_is_alive(me)
    assert not owner_is_alive(dead_owner())
    assert not owner_is_alive(attrs.evolve(me, start_time=(me.start_time or 0) + 1))  # pid reused
    assert not owner_is_alive(attrs.evolve(me, boot_id="another-boot"))
    assert owner_is_alive(attrs.evolve(me, host="elsewhere", pid=1))


async def test_running_sessions_of_dead_owners_are_orphaned(tmp_path: Path) -> None:
    store = SessionStore(tmp_path)
    await store.write_state(SessionRecord.new("mine"))
    await store.write_state(SessionRecord.new("dead", owner=dead_owner()))
    await store.write_state(SessionRecord.new("dead_done", owner=dead_owner(), status="completed"))
    await store.write_state(SessionRecord.new("no_owner", owner=None))
    assert [r.session_id for r in store.find_orphaned()] == ["dead", "no_owner"]
    everyone_dead = store.find_orphaned(is_alive=lambda o: False)
    assert sorted(r.session_id for r in everyone_dead) == ["dead", "mine", "no_owner"]


async def test_logs_are_written_and_read_back(tmp_path: Path) -> None:
    async with open_storage_writer() as writer:
        store = SessionStore(tmp_path, writer)
        for i in range(3):
            await store.append_details("s", {"node": f"n{i}", "at": dt.datetime(2025, 1, 1, tzinfo=UTC)})
            await store.append_tool_log("s", {"tool": "t", "i": i})
        await store.write_summary("s", {"steps": 3})
    logs = tmp_path / "sessions" / "s" / "logs"
    assert sorted(p.name for p in logs.iterdir()) == ["details.jsonl", "summary.json", "tool_logs.jsonl"]
    assert store.read_details("s")[2] == {"node": "n2", "at": "2025-01-01T00:00:00+00:00"}
    assert [r["i"] for r in store.read_tool_logs("s")] == [0, 1, 2]
    assert store.read_summary("s") == {"steps": 3}


def test_torn_last_log_line_is_ignored_but_a_bad_middle_line_is_reported(tmp_path: Path) -> None:
    store = SessionStore(tmp_path)
    log = store.logs_dir("s") / "details.jsonl"
    log.parent.mkdir(parents=True)
    log.write_bytes(b'{"a": 1}\n{"b": 2}\n{"c": ')
    assert store.read_details("s") == [{"a": 1}, {"b": 2}]
    log.write_bytes(b'{"a": 1}\n{"b": \n{"c": 3}\n')
    with pytest.raises(CorruptFileError, match="details.jsonl:2"):
        store.read_details("s")


def test_layout_paths(tmp_path: Path) -> None:
    store = SessionStore(tmp_path)
    assert store.session_dir("s") == tmp_path / "sessions" / "s"
    assert store.runtime_logs_dir == tmp_path / "runtime_logs"
    assert os.fspath(store.state_path("s")).endswith("sessions/s/state.json")


async def test_sweeping_removes_only_our_temp_files(tmp_path: Path) -> None:
    store = SessionStore(tmp_path)
    await store.write_state(SessionRecord.new("s"))
    d = store.session_dir("s")
    (d / "checkpoints").mkdir()
    stale = d / "checkpoints" / ".cp_000003_pause.json.0123456789ab.tmp"
    stale.write_bytes(b'{"half')
    keep = d / "notes.tmp"
    keep.write_text("user file")
    assert store.sweep_temp_files("s") == [stale]
    assert not stale.exists() and keep.exists() and store.read_state("s").session_id == "s"


def test_new_session_ids_never_repeat_in_a_process_and_skip_taken_ones():
    import datetime as dt

    from hive_actors.storage.session_store import new_session_id

    now = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.timezone.utc)
    ids = {new_session_id(now) for _ in range(20_000)}
    assert len(ids) == 20_000  # one second, 20k ids: 32 random bits alone would collide
    assert all(i.startswith("session_20260101_120000_") and len(i) == 32 for i in ids)
    seen: list[str] = []

    def taken(session_id: str) -> bool:
        seen.append(session_id)
        return len(seen) < 3  # the first two candidates are "on disk"

    chosen = new_session_id(now, taken=taken)
    assert chosen == seen[2] and chosen not in ids
