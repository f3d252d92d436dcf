"""Durable writes per second: StorageWriter (group commit) vs one-by-one atomic_write_bytes.

Usage: python benchmarks/bench_storage.py [--dir DIR] [--sizes 1,10,100,1000]
Each round starts N concurrent 2 KB writes (distinct files in one session-like folder) and
waits until every one is durable. Not a test: numbers depend on the disk and its load.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import trio

from hive_actors.storage.atomic import write_atomic
from hive_actors.storage.fs import FaultyFileSystem
from hive_actors.storage.writer import open_storage_writer

PAYLOAD = b"x" * 2048


async def naive(root: Path, n: int) -> int:
    """One write at a time, each with its own fsyncs (what a lock-per-file store does)."""
    for i in range(n):
        await write_atomic(root / f"f{i}.json", PAYLOAD)
    return 2 * n


async def naive_concurrent(root: Path, n: int) -> int:
    """N concurrent write_atomic calls, each in its own thread (trio's default limit: 40)."""
    async with trio.open_nursery() as nursery:
        for i in range(n):
            nursery.start_soon(write_atomic, root / f"f{i}.json", PAYLOAD)
    return 2 * n


def grouped(mode: str):
    async def run(root: Path, n: int) -> int:
        fs = FaultyFileSystem()  # no faults: only counts syncs
        async with open_storage_writer(fs=fs, sync_mode=mode) as writer:
            async with trio.open_nursery() as nursery:
                for i in range(n):
                    nursery.start_soon(writer.write, root / f"f{i}.json", PAYLOAD)
        return fs.syncs

    return run


async def main(base: Path, sizes: list[int], repeat: int) -> None:
    variants = {
        "naive one-by-one": naive,
        "naive concurrent": naive_concurrent,
        "writer fsync": grouped("fsync"),
        "writer syncfs": grouped("syncfs"),
        "writer auto": grouped("auto"),
    }
    print(f"{'variant':<18} {'N':>5} {'writes/s':>10} {'syncs':>7}")
    for n in sizes:
        for name, fn in variants.items():
            best = 0.0
            syncs = 0
            for r in range(repeat):
                root = base / f"{name.replace(' ', '_')}_{n}_{r}"
                root.mkdir(parents=True)
                t0 = time.perf_counter()
                syncs = await fn(root, n)
                best = max(best, n / (time.perf_counter() - t0))
            print(f"{name:<18} {n:>5} {best:>10.0f} {syncs:>7}")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--dir", type=Path, default=None)
    p.add_argument("--sizes", default="1,10,100,1000")
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()
    with tempfile.TemporaryDirectory(dir=a.dir) as d:
        trio.run(main, Path(d), [int(s) for s in a.sizes.split(",")], a.repeat)
