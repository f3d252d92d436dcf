"""MCP tool-call overhead: a call through the MCPClient actor and the registry Tool (context
parameters, result conversion) vs a bare SDK ``ClientSession.call_tool`` from a trio script
(not a test).

Both sides talk to the same kind of server (tests/mcp_servers/fake_tools.py, tool ``add``):
over stdio (a subprocess each) and over streamable HTTP (one server on 127.0.0.1, a session
each). Per-call latency at 1 call at a time and at N concurrent calls on one session; medians
of rounds, the two sides alternating which goes first. Prints the ratio actor / bare (target: within 1.2x).

    .venv/bin/python -W ignore benchmarks/bench_mcp_overhead.py [--calls 300] [--concurrency 100]
        [--rounds 4]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import trio
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hive_actors.tools.mcp_client import MCPClient  # noqa: E402
from hive_actors.tools.mcp_config import MCPServerConfig  # noqa: E402
from hive_actors.tools.mcp_tools import mcp_tool  # noqa: E402

SERVER = ROOT / "tests" / "mcp_servers" / "fake_tools.py"
Call = Callable[[], Awaitable[Any]]


@contextlib.asynccontextmanager
async def bare(transport: str, url: str) -> AsyncIterator[Call]:
    async with contextlib.AsyncExitStack() as stack:
        if transport == "stdio":
            params = StdioServerParameters(command=sys.executable, args=[str(SERVER), "stdio"])
            r, w = await stack.enter_async_context(stdio_client(params))
        else:
            r, w = await stack.enter_async_context(streamable_http_client(url))
        session = await stack.enter_async_context(ClientSession(r, w))
        await session.initialize()
        yield lambda: session.call_tool("add", {"a": 1, "b": 2})


@contextlib.asynccontextmanager
async def actor(transport: str, url: str) -> AsyncIterator[Call]:
    config = (MCPServerConfig("bench", "stdio", command=sys.executable,
                              args=(str(SERVER), "stdio"))
              if transport == "stdio" else MCPServerConfig("bench", "http", url=url))
    client = MCPClient(config)
    async with trio.open_nursery() as nursery:
        await nursery.start(client.run)
        spec = next(t for t in client.tools if t.name == "add")
        fn = mcp_tool(client, spec).fn
        assert fn is not None
        yield lambda: fn(a=1, b=2)
        nursery.cancel_scope.cancel()


async def latencies(call: Call, calls: int, concurrency: int) -> list[float]:
    out: list[float] = []

    async def one() -> None:
        t0 = time.perf_counter()
        await call()
        out.append(time.perf_counter() - t0)

    for _ in range(20):  # warm-up
        await call()
    done = 0
    while done < calls:
        async with trio.open_nursery() as nursery:
            for _ in range(concurrency):
                nursery.start_soon(one)
        done += concurrency
    return out


async def main(args: argparse.Namespace) -> None:
    proc = subprocess.Popen([sys.executable, str(SERVER), "http"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split(" ", 1)[1].strip()
        print(f"{'transport':9} {'conc':>4} {'bare ms':>8} {'actor ms':>9} {'ratio':>6}")
        for transport in ("stdio", "http"):
            for conc in (1, args.concurrency):
                medians: dict[str, list[float]] = {"bare": [], "actor": []}
                for i in range(args.rounds):  # the order alternates: the server warms up
                    order = (("bare", bare), ("actor", actor))
                    for name, opener in order if i % 2 == 0 else order[::-1]:
                        async with opener(transport, url) as call:
                            lat = await latencies(call, args.calls if conc == 1 else
                                                  max(args.calls, conc * 3), conc)
                        medians[name].append(statistics.median(lat) * 1000)
                b, a = statistics.median(medians["bare"]), statistics.median(medians["actor"])
                print(f"{transport:9} {conc:>4} {b:>8.3f} {a:>9.3f} {a / b:>6.2f}", flush=True)
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=4)
    trio.run(main, parser.parse_args())
