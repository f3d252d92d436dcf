"""AgentRuntime lifecycle, routing, idempotency and structured stop (with a fake executor)."""

from __future__ import annotations

import json

import pytest
import trio
import trio.testing

from hive_actors.errors import (
    ConfigurationError,
    QueueFullError,
    RuntimeStateError,
    UnknownEntryPointError,
)
from hive_actors.runtime.agent_runtime import AgentRuntime, RuntimeConfig, create_agent_runtime
from hive_actors.events import EventType
from hive_actors.runtime.execution_stream import EntryPointSpec

from runtime_fakes import GOAL, FakeExecutor, Gates, line_graph


@pytest.fixture(autouse=True)
def fresh_gates():
    FakeExecutor.gates = Gates()
    FakeExecutor.started = []
    yield


def make(tmp_path=None, entry_points=None, config=None, graph=None) -> AgentRuntime:
    rt = create_agent_runtime(
        graph=graph or line_graph("a", "b", "c"),
        goal=GOAL,
        storage_path=tmp_path,
        entry_points=entry_points,
        config=config,
    )
    rt.executor_class = FakeExecutor
    return rt


def state(tmp_path, sid) -> dict:
    return json.loads((tmp_path / "sessions" / sid / "state.json").read_text())


async def test_entry_point_registration_checks():
    rt = make()
    assert [e.id for e in rt.get_entry_points()] == ["default"]
    with pytest.raises(ValueError, match="already registered"):
        rt.register_entry_point(EntryPointSpec(id="default", entry_node="a"))
    with pytest.raises(ValueError, match="not found in graph"):
        rt.register_entry_point(EntryPointSpec(id="x", entry_node="nope"))


async def test_start_stop_flags_and_trigger_when_not_running():
    rt = make()
    with pytest.raises(RuntimeStateError, match="not running"):
        await rt.trigger("default", {})
    assert not rt.is_running
    await rt.start()
    assert rt.is_running
    await rt.start()  # idempotent
    await rt.stop()
    assert not rt.is_running
    await rt.stop()  # idempotent
    assert rt.get_stats()["streams"] == {}


async def test_trigger_and_wait_returns_result_and_writes_session_files(tmp_path):
    rt = make(tmp_path)
    async with rt:
        result = await rt.trigger_and_wait("default", {"q": 1})
    assert result.success and result.status == "completed"
    assert result.output["q"] == 1
    sid = result.session_id
    assert sid.startswith("session_") and len(sid.split("_")[-1]) == 8
    st = state(tmp_path, sid)
    assert st["status"] == "completed" and st["input_data"] == {"q": 1}
    logs = tmp_path / "sessions" / sid / "logs"
    summary = json.loads((logs / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["path"] == ["a", "b", "c"]
    assert "usage" in summary
    details = [json.loads(x) for x in (logs / "details.jsonl").read_text().splitlines()]
    assert [d["node_id"] for d in details] == ["a", "b", "c"]


async def test_state_json_says_running_once_trigger_returned_and_the_view_is_flushed(tmp_path):
    rt = make(tmp_path)
    async with rt:
        sid = await rt.trigger("default", {"block": "g1"})
        await rt.flush_view()
        assert state(tmp_path, sid)["status"] == "running"
        FakeExecutor.gates.gate("g1").set()
        result = await rt.trigger_and_wait("default", {})
        assert result.success


async def test_unknown_entry_point_is_a_clear_error():
    async with make() as rt:
        with pytest.raises(UnknownEntryPointError, match="nope"):
            await rt.trigger("nope", {})


async def test_new_trigger_never_cancels_a_running_execution(tmp_path):
    rt = make(tmp_path)
    async with rt:
        first = await rt.trigger("default", {"block": "slow"})
        await FakeExecutor.gates.entered_event("slow").wait()
        second = await rt.trigger_and_wait("default", {"x": 2})
        assert second.success
        stats = rt.get_stats()["streams"]["default"]
        assert stats["running"] == 1 and stats["cancelled"] == 0
        FakeExecutor.gates.gate("slow").set()
        with trio.fail_after(5):
            while rt.get_stats()["streams"]["default"]["completed"] < 2:
                await trio.sleep(0.01)
    assert state(tmp_path, first)["status"] == "completed"


async def test_concurrency_limit_and_queue_full_error():
    spec = EntryPointSpec(id="default", entry_node="a", max_concurrent=1, max_queued=1)
    async with make(entry_points=[spec]) as rt:
        await rt.trigger("default", {"block": "g"})
        await rt.trigger("default", {})
        await trio.testing.wait_all_tasks_blocked()
        s = rt.get_stats()["streams"]["default"]
        assert (s["running"], s["queued"]) == (1, 1)
        with pytest.raises(QueueFullError, match="max_queued=1"):
            await rt.trigger("default", {})
        FakeExecutor.gates.gate("g").set()


async def test_queue_full_wait_policy_waits_for_room():
    spec = EntryPointSpec(id="default", entry_node="a", max_concurrent=1, max_queued=0)
    cfg = RuntimeConfig(queue_full="wait")
    async with make(entry_points=[spec], config=cfg) as rt:
        await rt.trigger("default", {"block": "g"})
        ids = []

        async def late():
            ids.append(await rt.trigger("default", {}))

        async with trio.open_nursery() as n:
            n.start_soon(late)
            await trio.testing.wait_all_tasks_blocked()
            assert ids == []
            FakeExecutor.gates.gate("g").set()
        assert len(ids) == 1


async def test_same_idempotency_key_gives_one_execution_even_concurrently(tmp_path):
    async with make(tmp_path) as rt:
        ids = []

        async def fire():
            ids.append(await rt.trigger("default", {}, idempotency_key="k1"))

        async with trio.open_nursery() as n:
            for _ in range(5):
                n.start_soon(fire)
        assert len(set(ids)) == 1
        other = await rt.trigger("default", {}, idempotency_key="k2")
        assert other != ids[0]
        result = await rt.trigger_and_wait("default", {}, idempotency_key="k1")
        assert result.session_id == ids[0]
    assert FakeExecutor.started.count(ids[0]) == 1
    assert len(list((tmp_path / "sessions").iterdir())) == 2


async def test_failed_accept_does_not_claim_the_key():
    async with make() as rt:
        with pytest.raises(UnknownEntryPointError):
            await rt.trigger("nope", {}, idempotency_key="k")
        assert rt.get_stats()["idempotency_keys"] == 0


async def test_crashing_execution_fails_alone_and_stream_keeps_going():
    async with make() as rt:
        bad = await rt.trigger_and_wait("default", {"fail": True})
        assert not bad.success and bad.status == "failed" and "boom" in bad.error
        good = await rt.trigger_and_wait("default", {})
        assert good.success
        s = rt.get_stats()["streams"]["default"]
        assert (s["failed"], s["completed"]) == (1, 1)


async def test_stop_cancels_inflight_as_cancelled_not_paused(tmp_path):
    rt = make(tmp_path)
    events = []
    await rt.start()
    rt.subscribe_to_events([EventType.EXECUTION_CANCELLED, EventType.EXECUTION_PAUSED],
                           events.append)
    sid = await rt.trigger("default", {"block": "never"})
    await FakeExecutor.gates.entered_event("never").wait()
    await rt.stop()
    st = state(tmp_path, sid)
    assert st["status"] == "cancelled"
    assert all(e.type is not EventType.EXECUTION_PAUSED for e in events)


async def test_stop_leaves_no_tasks_behind(tmp_path):
    async with trio.open_nursery() as nursery:
        rt = make(tmp_path)
        await nursery.start(rt.run)
        for i in range(5):
            await rt.trigger("default", {"block": "never"})
        await rt.stop()
        assert rt.get_stats()["streams"] == {}
    # the runtime's task ended with stop(): the nursery had nothing left to wait for
    assert len(nursery.child_tasks) == 0


async def test_partial_start_failure_rolls_back_and_start_can_retry(tmp_path):
    bad = EntryPointSpec(id="t", entry_node="a", trigger_type="timer",
                         trigger_config={"cron": "not a schedule"})
    rt = make(tmp_path, entry_points=[EntryPointSpec(id="default", entry_node="a"), bad])
    with pytest.raises(ConfigurationError, match="not a valid cron expression"):
        await rt.start()
    assert not rt.is_running
    with pytest.raises(RuntimeStateError):
        await rt.trigger("default", {})
    await rt.stop()  # a no-op, not a hang


async def test_unknown_event_type_in_event_trigger_fails_start():
    bad = EntryPointSpec(id="e", entry_node="a", trigger_type="event",
                         trigger_config={"event_types": ["no_such_event"]})
    rt = make(entry_points=[bad])
    with pytest.raises(Exception, match="no_such_event"):
        await rt.start()
    assert not rt.is_running


async def test_get_stats_reports_streams_events_uptime(autojump_clock):
    async with make() as rt:
        await rt.trigger_and_wait("default", {})
        await trio.sleep(10)
        stats = rt.get_stats()
    assert stats["streams"]["default"]["completed"] == 1
    assert stats["events"]["published"] > 0 and stats["events"]["dropped"] == 0
    assert stats["uptime_seconds"] >= 10


async def test_slow_subscriber_does_not_slow_executions():
    never = trio.Event()

    async def stuck(event):
        await never.wait()

    async with make() as rt:
        rt.subscribe_to_events(None, stuck, buffer_size=4)
        for _ in range(20):
            result = await rt.trigger_and_wait("default", {})
            assert result.success
        assert rt.get_stats()["events"]["dropped"] > 0


async def test_idempotency_key_expires_after_its_ttl(autojump_clock):
    async with make(config=RuntimeConfig(idempotency_ttl_seconds=60)) as rt:
        first = await rt.trigger("default", {}, idempotency_key="k")
        assert await rt.trigger("default", {}, idempotency_key="k") == first
        await trio.sleep(61)
        assert await rt.trigger("default", {}, idempotency_key="k") != first


async def test_no_writes_after_stop_returns(tmp_path):
    rt = make(tmp_path)
    await rt.start()
    ids = [await rt.trigger("default", {"block": "never"}) for _ in range(10)]
    writer = rt._svc.writer
    await rt.stop()
    requests = writer.stats.requests
    snapshot = {sid: state(tmp_path, sid) for sid in ids}
    await trio.testing.wait_all_tasks_blocked()  # any stray task would have written by now
    assert writer.stats.requests == requests
    assert {sid: state(tmp_path, sid) for sid in ids} == snapshot
    assert all(s["status"] == "cancelled" for s in snapshot.values())
