"""Timer and event entry points, crash supervision, recovery of interrupted sessions."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest
import trio

from hive_actors.errors import ConfigurationError
from hive_actors.runtime.agent_runtime import RuntimeConfig, create_agent_runtime
from hive_actors.events import EventType
from hive_actors.storage.runtime_log import RuntimeLog
from hive_actors.runtime.execution_stream import EntryPointSpec
from hive_actors.runtime.supervisor import ActorFailedError, supervise
from hive_actors.storage.owner import OwnerInfo
from hive_actors.storage.session_store import SessionRecord, SessionStore

from runtime_fakes import GOAL, FakeExecutor, Gates, line_graph


@pytest.fixture(autouse=True)
def fresh_gates():
    FakeExecutor.gates = Gates()
    FakeExecutor.started = []


def make(entry_points, storage=None, config=None):
    rt = create_agent_runtime(graph=line_graph("a", "b"), goal=GOAL, storage_path=storage,
                              entry_points=entry_points, config=config)
    rt.executor_class = FakeExecutor
    return rt


async def test_interval_timer_fires_on_schedule(autojump_clock):
    timer = EntryPointSpec(id="tick", entry_node="a", trigger_type="timer",
                           trigger_config={"interval_seconds": 10})
    async with make([timer]) as rt:
        assert rt._triggers["tick"].next_fire == pytest.approx(trio.current_time() + 10)
        await trio.sleep(35)
        assert rt.get_stats()["streams"]["tick"]["completed"] == 3
    assert FakeExecutor.started and len(FakeExecutor.started) == 3


async def test_cron_timer_fires_at_each_matching_minute(autojump_clock):
    cron = EntryPointSpec(id="cron", entry_node="a", trigger_type="timer",
                          trigger_config={"cron": "* * * * *"})
    async with make([cron]) as rt:
        first = rt._triggers["cron"].next_fire - trio.current_time()
        assert 0 <= first <= 60  # the next wall-clock minute
        await trio.sleep(first + 3 * 60 - 1)  # that slot and the three after it, minus 1 s
        assert rt.get_stats()["streams"]["cron"]["completed"] == 3
    assert len(FakeExecutor.started) == 3


async def test_timer_without_interval_or_with_bad_cron_is_a_clear_error():
    for cfg in ({}, {"interval_seconds": 0}, {"cron": "every tuesday"}, {"cron": 5}):
        spec = EntryPointSpec(id="t", entry_node="a", trigger_type="timer", trigger_config=cfg)
        with pytest.raises(ConfigurationError, match="entry point 't'"):
            await make([spec]).start()


async def test_event_entry_point_fires_on_other_streams_events_not_its_own():
    default = EntryPointSpec(id="default", entry_node="a")
    follow = EntryPointSpec(id="follow", entry_node="a", trigger_type="event",
                            trigger_config={"event_types": ["execution_completed"]})
    async with make([default, follow]) as rt:
        first = await rt.trigger_and_wait("default", {"q": 1})
        done = await rt.event_bus.wait_for(EventType.EXECUTION_COMPLETED, stream_id="follow",
                                           timeout=10, since=0)
        assert done.data["output"]["event"]["execution_id"] == first.session_id
        await trio.testing.wait_all_tasks_blocked()
        # its own completion did not trigger it again
        assert rt.get_stats()["streams"]["follow"]["completed"] == 1


async def test_event_firing_does_not_block_or_cancel_the_publisher():
    default = EntryPointSpec(id="default", entry_node="a")
    follow = EntryPointSpec(id="follow", entry_node="a", trigger_type="event", max_concurrent=1,
                            trigger_config={"event_types": ["node_completed"],
                                            "stream_id": "default"})
    async with make([default, follow]) as rt:
        # follow's executions block; the publisher still completes
        FakeExecutor.gates.gate("x")
        result = await rt.trigger_and_wait("default", {})
        assert result.success


async def test_crashing_trigger_actor_is_reported_and_restarted(tmp_path):
    default = EntryPointSpec(id="default", entry_node="a")
    follow = EntryPointSpec(id="follow", entry_node="a", trigger_type="event",
                            trigger_config={"event_types": ["execution_completed"],
                                            "stream_id": "default"})
    async with make([default, follow], storage=tmp_path) as rt:
        real = rt.trigger
        calls = []

        async def flaky(ep, data=None, *a, **kw):
            if ep == "follow" and not calls:
                calls.append(1)
                raise RuntimeError("trigger bug")
            return await real(ep, data, *a, **kw)

        rt.trigger = flaky
        await rt.trigger_and_wait("default", {})
        crash = await rt.event_bus.wait_for(EventType.ACTOR_CRASHED, timeout=10, since=0)
        assert crash.data["actor"] == "trigger:follow" and "trigger bug" in crash.data["error"]
        await rt.trigger_and_wait("default", {})
        await rt.event_bus.wait_for(EventType.EXECUTION_COMPLETED, stream_id="follow",
                                    timeout=10, since=0)
        assert rt.is_running
    logged = [(line["event"], line.get("actor")) for line in RuntimeLog(tmp_path).read()]
    assert logged == [("start", None), ("actor_crashed", "trigger:follow"), ("stop", None)]


async def test_supervisor_gives_up_loudly_after_its_restart_budget():
    crashes = []

    async def actor(*, task_status=trio.TASK_STATUS_IGNORED):
        task_status.started()
        await trio.sleep(0)
        raise ValueError("broken")

    with pytest.raises(ActorFailedError, match="crashed 3 times"):
        await supervise("a", lambda: actor, lambda n, e, c: crashes.append(c),
                        max_restarts=2, window=60)
    assert crashes == [1, 2]


async def test_interrupted_sessions_resume_on_start_when_asked(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    store = SessionStore(tmp_path)
    record = SessionRecord.new("session_20250101_000000_deadbeef", entry_point="default",
                               input_data={"q": 7},
                               owner=OwnerInfo(pid=dead.pid, host=socket.gethostname()))
    await store.write_state(record)
    cfg = RuntimeConfig(resume_interrupted=True)
    async with make([EntryPointSpec(id="default", entry_node="a")], tmp_path, cfg) as rt:
        assert rt.interrupted_sessions == [record.session_id]
        done = await rt.event_bus.wait_for(EventType.EXECUTION_COMPLETED, timeout=10, since=0,
                                           execution_id=record.session_id)
        assert done.data["output"]["q"] == 7
    state = json.loads((tmp_path / "sessions" / record.session_id / "state.json").read_text())
    assert state["status"] == "completed"
    [found] = [line for line in RuntimeLog(tmp_path).read() if line["event"] == "interrupted_sessions"]
    assert found["sessions"] == [record.session_id] and found["resuming"] is True
