"""Micro-benchmark of EventBus publishing: events/s with 1, 10 and 100 subscribers.

One subscriber in every run never reads (its buffer stays full and drops the oldest), the
others are sync handlers. Publishing goes through an execution's emitter, as the executor does.
Run: ``.venv/bin/python benchmarks/bench_event_bus.py [events]``.
"""

from __future__ import annotations

import sys
import time

import trio

from hive_actors.runtime.event_bus import EventType, open_event_bus


async def run_case(subscribers: int, events: int, *, nowait: bool) -> tuple[float, float, int]:
    """Return (publish-only events/s, end-to-end events/s, events dropped)."""
    async with open_event_bus(max_history=10_000) as bus:
        counter = [0]

        def count(event):
            counter[0] += 1

        for _ in range(subscribers - 1):
            bus.subscribe(None, count)
        async with bus.open_subscription(buffer_size=1_000):  # the one that never reads
            emitter = bus.emitter("stream", "exec-1")
            start = time.perf_counter()
            published = 0
            # publish in bursts of 1000, letting the delivery tasks drain between bursts
            publish_time = 0.0
            while published < events:
                t0 = time.perf_counter()
                for i in range(1_000):
                    if nowait:
                        emitter.emit_nowait(EventType.LLM_TEXT_DELTA, "node", content="x")
                    else:
                        await emitter.emit(EventType.LLM_TEXT_DELTA, "node", content="x")
                publish_time += time.perf_counter() - t0
                published += 1_000
                await trio.testing.wait_all_tasks_blocked()
            total = time.perf_counter() - start
            assert counter[0] == events * (subscribers - 1)
            dropped = bus.stats().dropped
        return events / publish_time, events / total, dropped


async def main(events: int) -> None:
    print(f"{'subs':>5} {'mode':>8} {'publish ev/s':>14} {'end-to-end ev/s':>16} {'dropped':>9}")
    for subs in (1, 10, 100):
        for nowait in (True, False):
            n = events if subs < 100 else events // 5
            pub, e2e, dropped = await run_case(subs, n, nowait=nowait)
            mode = "nowait" if nowait else "await"
            print(f"{subs:>5} {mode:>8} {pub:>14,.0f} {e2e:>16,.0f} {dropped:>9,}")


if __name__ == "__main__":
    import trio.testing  # noqa: F401  (wait_all_tasks_blocked)

    trio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
