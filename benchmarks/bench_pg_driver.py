"""psycopg under trio: its sync API in worker threads (what hive_actors uses) against its
async API through trio-asyncio, in one run.

Usage: python benchmarks/bench_pg_driver.py [--queries 2000] [--reps 3]
A throwaway PostgreSQL (tests/postgres/pg_server.py). Per way and concurrency (1 task, and 16
tasks each with its own connection; the async API only from the task that opened the
trio-asyncio loop, where it works at all): queries/s of a one-row SELECT and of a durable
one-row INSERT + COMMIT. Medians of ``--reps``. Not a test: compare within one run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
import trio  # noqa: E402
import trio_asyncio  # noqa: E402

from hive_actors.storage.pg_conn import PgConnection  # noqa: E402

SELECT = "SELECT 1"
INSERT = "INSERT INTO t (v) VALUES (%s)"


async def threads(url: str, sql: str, tasks: int, per_task: int) -> None:
    async def one() -> None:
        conn = PgConnection(url)
        for i in range(per_task):
            def q(c: psycopg.Connection, i: int = i) -> None:
                c.execute(sql, (i,) if "%s" in sql else None)
                c.commit()
            await conn.call(q)
        await conn.aclose()

    async with trio.open_nursery() as nursery:
        for _ in range(tasks):
            nursery.start_soon(one)


async def _aio_connect(url: str) -> psycopg.AsyncConnection:
    return await psycopg.AsyncConnection.connect(url)


async def _aio_query(conn: psycopg.AsyncConnection, sql: str, args: tuple[int, ...] | None
                     ) -> None:
    await conn.execute(sql, args)
    await conn.commit()


async def _aio_close(conn: psycopg.AsyncConnection) -> None:
    await conn.close()


async def _aio_all(url: str, sql: str, per_task: int) -> None:
    conn = await psycopg.AsyncConnection.connect(url)
    for i in range(per_task):
        await conn.execute(sql, (i,) if "%s" in sql else None)
        await conn.commit()
    await conn.close()


async def asyncio_api(url: str, sql: str, tasks: int, per_task: int) -> None:
    # the whole loop of queries as one asyncio coroutine on the trio-asyncio loop, awaited from
    # the task that opened it. In this process (hive_actors imported) psycopg's wait finds
    # "no running event loop" even there (a bare script without hive_actors ran it); the
    # benchmark reports that instead of a figure
    if tasks != 1:
        raise RuntimeError("psycopg's async API under trio-asyncio works only in the task "
                           "that opened the loop")
    async with trio_asyncio.open_loop():
        await trio_asyncio.aio_as_trio(_aio_all)(url, sql, per_task)


def rate(way: Callable[[str, str, int, int], Awaitable[None]], url: str, sql: str,
         tasks: int, total: int) -> float:
    t0 = time.perf_counter()
    trio.run(way, url, sql, tasks, total // tasks)
    return total / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--queries", type=int, default=2000)
    p.add_argument("--reps", type=int, default=3)
    args = p.parse_args()
    from tests.postgres.pg_server import throwaway_server

    with throwaway_server() as server:
        with psycopg.connect(server.url) as conn:
            conn.execute("CREATE TABLE t (id bigserial PRIMARY KEY, v int)")
        for label, sql in (("select", SELECT), ("insert+commit", INSERT)):
            for tasks in (1, 16):
                row = []
                ways = [("trio-asyncio", asyncio_api), ("threads", threads)]
                if tasks != 1:
                    print(f"{label}, {tasks} tasks, trio-asyncio: not run (one loop task "
                          "only)", flush=True)
                    ways = ways[1:]
                for name, way in ways:
                    try:
                        runs = [rate(way, server.url, sql, tasks, args.queries)
                                for _ in range(args.reps)]
                    except BaseException as exc:  # a way that fails here is reported, not fatal
                        while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
                            exc = exc.exceptions[0]
                        print(f"{label}, {tasks} task(s), {name}: fails: {exc!r}", flush=True)
                        continue
                    row.append(statistics.median(runs))
                    print(f"{label}, {tasks} task(s), {name}: {row[-1]:.0f}/s "
                          f"(runs {[round(r) for r in runs]})", flush=True)
                if len(row) == 2:
                    print(f"{label}, {tasks} task(s): threads / trio-asyncio = "
                          f"{row[1] / row[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()
