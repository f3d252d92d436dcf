"""Subscribers that raise, block, or never read: the bus and the executions go on, and
stop() still returns."""

from __future__ import annotations

import trio
import trio.testing

from fault.runtime_support import Work, expected_output, make_runtime
from hive_actors.events import EventType


async def test_raising_blocking_and_unread_subscribers_do_not_hold_up_executions():
    work = Work()
    completed: list[str] = []
    async with make_runtime(None, work) as rt:
        bus = rt.event_bus

        def explode(event):
            raise RuntimeError(f"handler bug on {event.type.value}")

        async def block(event):
            await trio.sleep_forever()

        rt.subscribe_to_events(None, explode)
        rt.subscribe_to_events(None, block, buffer_size=4)
        rt.subscribe_to_events([EventType.EXECUTION_COMPLETED],
                               lambda e: completed.append(e.execution_id), lossless=True)
        async with bus.open_subscription(None, buffer_size=8) as never_read:
            results = {}
            async with trio.open_nursery() as nursery:
                async def run(k):
                    results[k] = await rt.trigger_and_wait("ep0", {"k": k})

                for k in range(50):
                    nursery.start_soon(run, k)
            await trio.testing.wait_all_tasks_blocked()
            assert all(r.status == "completed" and r.output["d"] == expected_output(k)
                       for k, r in results.items())
            assert len(results) == 50
            stats = bus.stats()
            assert stats.handler_errors >= 50 * 8  # every event made `explode` raise
            assert stats.dropped > 0  # the blocked and the unread subscriptions dropped
            # the unread one gets a marker saying how many it lost, then the newest events
            first = await never_read.__anext__()
            assert first.type is EventType.EVENTS_DROPPED and first.data["count"] > 0
        assert sorted(completed) == sorted(r.session_id for r in results.values())
    # leaving the block stopped the runtime despite the handler that never returns


async def test_lossless_subscriber_that_never_reads_cannot_stop_stop(autojump_clock):
    """A lossless subscription applies backpressure (by design); a client that stops reading
    stalls executions, but stop() still ends them, bounded by shutdown_event_grace_seconds."""
    work = Work()
    rt = make_runtime(None, work, shutdown_event_grace_seconds=5.0)
    await rt.start()
    results = {}
    async with rt.event_bus.open_subscription(None, buffer_size=2, lossless=True):
        async with trio.open_nursery() as nursery:
            async def run(k):
                results[k] = await rt.trigger_and_wait("ep0", {"k": k})

            for k in range(3):
                nursery.start_soon(run, k)
            await trio.testing.wait_all_tasks_blocked()
            assert not results  # stalled by the full lossless buffer
            with trio.fail_after(60):
                await rt.stop()
    assert not rt.is_running
    assert sorted(r.status for r in results.values()) == ["cancelled"] * 3
