"""Model-call overhead: LiteLLMProvider vs a raw streamed HTTP request (not a test).

Starts tests/fake_openai.py as a subprocess (so the server's CPU is not counted here) with a
fixed streamed reply, then measures per-call latency (request sent -> last chunk parsed):
  raw       httpx.AsyncClient on trio (anyio backend), SSE lines + json.loads per chunk
  native    LiteLLMProvider.stream(), default transport for openai/ models (httpx on trio)
  litellm   LiteLLMProvider(transport="litellm"): litellm under trio-asyncio
at 1 call at a time and at N concurrent calls. Prints medians and the added latency.

    .venv/bin/python -W ignore benchmarks/bench_llm_overhead.py [--calls 40] [--concurrency 100]
        [--rounds 3] [--long] [--transports native,litellm]

Before/after a change of the native path: run this script from both checkouts in turn (it
imports hive_actors from the tree it lies in), a few times each, and compare medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import trio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hive_actors.llm import LLMRequest  # noqa: E402
from hive_actors.llm.aio_loop import open_llm_loop  # noqa: E402
from hive_actors.llm.litellm_provider import LiteLLMProvider  # noqa: E402

REPLY_TEXT = "The answer to your question is forty-two, as computed carefully by the model. " * 2
CHUNK_CHARS = 12
REQUEST = LLMRequest(messages=({"role": "user", "content": "question"},), system="be brief")


def start_server() -> tuple[subprocess.Popen, str]:
    script = {"fallback": {"text": REPLY_TEXT, "chunk_chars": CHUNK_CHARS}}
    path = Path(tempfile.mkdtemp()) / "script.json"
    path.write_text(json.dumps(script))
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "fake_openai.py"), "--port", "0", "--script", str(path)],
        stdout=subprocess.PIPE, text=True,
    )
    return proc, proc.stdout.readline().strip()


async def raw_call(client: httpx.AsyncClient, base_url: str) -> float:
    body = {"model": "gpt-4o-mini", "stream": True, "stream_options": {"include_usage": True},
            "messages": [{"role": "system", "content": REQUEST.system}, *REQUEST.messages]}
    start = time.perf_counter()
    text = []
    async with client.stream("POST", f"{base_url}/chat/completions", json=body,
                             headers={"authorization": "Bearer sk-bench"}) as response:
        async for line in response.aiter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                for choice in json.loads(line[6:])["choices"]:
                    text.append(choice["delta"].get("content") or "")
    assert "".join(text) == REPLY_TEXT
    return time.perf_counter() - start


async def litellm_call(provider: LiteLLMProvider) -> float:
    start = time.perf_counter()
    text = [c.text async for c in provider.stream(REQUEST) if hasattr(c, "text")]
    assert "".join(text) == REPLY_TEXT
    return time.perf_counter() - start


async def measure(call, calls: int, concurrency: int, rounds: int) -> tuple[list[float], float]:
    """Latency samples and CPU seconds per call (after a warm-up call)."""
    await call()  # warm-up (imports, connection pool)
    cpu0 = time.process_time()
    samples: list[float] = []
    if concurrency == 1:
        for _ in range(calls):
            samples.append(await call())
        return samples, (time.process_time() - cpu0) / len(samples)

    async def one() -> None:
        samples.append(await call())

    for _ in range(rounds):
        async with trio.open_nursery() as nursery:
            for _ in range(concurrency):
                nursery.start_soon(one)
    return samples, (time.process_time() - cpu0) / len(samples)


async def main(args: argparse.Namespace) -> None:
    global REPLY_TEXT, CHUNK_CHARS
    if args.long:
        REPLY_TEXT, CHUNK_CHARS = "word " * 400, 4  # ~500 chunks: a 400-token answer
    chunks = -(-len(REPLY_TEXT) // CHUNK_CHARS)
    proc, base_url = start_server()
    try:
        limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
        limiter = trio.CapacityLimiter(args.concurrency)
        providers = {
            t: LiteLLMProvider("openai/gpt-4o-mini", api_base=base_url, api_key="sk-bench",
                               concurrency_limiter=limiter, transport=t)
            for t in args.transports.split(",")
        }
        async with httpx.AsyncClient(limits=limits, timeout=60) as client, open_llm_loop():
            for conc in (1, args.concurrency):
                raw, raw_cpu = await measure(lambda: raw_call(client, base_url), args.calls, conc, args.rounds)
                r = statistics.median(raw) * 1000
                print(f"{chunks} chunks, {conc:>3} concurrent: raw     median {r:7.1f} ms"
                      f"                  CPU/call {raw_cpu * 1000:6.1f} ms", flush=True)
                for name, provider in providers.items():
                    lat, cpu = await measure(lambda p=provider: litellm_call(p), args.calls, conc, args.rounds)
                    m = statistics.median(lat) * 1000
                    print(f"{chunks} chunks, {conc:>3} concurrent: {name:<7} median {m:7.1f} ms  "
                          f"added {m - r:7.1f} ms  CPU/call {cpu * 1000:6.1f} ms  (n={len(lat)})", flush=True)
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--long", action="store_true", help="a 500-chunk reply instead of 14")
    parser.add_argument("--transports", default="native,litellm", help="which provider transports")
    trio.run(main, parser.parse_args())
