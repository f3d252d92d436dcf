"""Measuring tools of the benchmark harness: clocks, percentiles, memory, disk counters.

Everything here reads the process from the outside (``/proc/self``, the storage fs seam) and
changes nothing in the code under test, except `count_syncs`, which wraps the three
durability calls of the shared `REAL_FS` object for the duration of a block.
"""

from __future__ import annotations

import contextlib
import os
import resource
import statistics
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import attrs

from hive_actors.storage.fs import REAL_FS

T = TypeVar("T")

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


@attrs.frozen
class Summary:
    """Median and spread of one metric over the repetitions of a case."""

    median: float
    min: float
    max: float
    # (max - min) / median in percent: how far apart the repetitions were
    spread_pct: float
    samples: tuple[float, ...]

    @classmethod
    def of(cls, samples: Sequence[float]) -> Summary:
        """Summarise ``samples`` (at least one). Raises ValueError when empty."""
        if not samples:
            raise ValueError("Summary.of needs at least one sample")
        med = statistics.median(samples)
        lo, hi = min(samples), max(samples)
        spread = (hi - lo) / abs(med) * 100.0 if med else 0.0
        return cls(med, lo, hi, round(spread, 1), tuple(samples))


def rss_bytes() -> int:
    """Resident set size of this process now (bytes)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:  # not Linux: the peak is the best we have
        return peak_rss_bytes()


def peak_rss_bytes() -> int:
    """Peak RSS since the last `reset_peak_rss` (VmHWM), or of the whole process."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (Linux ``clear_refs`` 5); False where not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def io_counters() -> dict[str, int]:
    """``/proc/self/io``: wchar (bytes handed to write calls), write_bytes (sent to the
    block device), syscw... Empty where the file does not exist."""
    try:
        with open("/proc/self/io") as f:
            return {k: int(v) for k, v in (line.split(": ") for line in f if ": " in line)}
    except OSError:
        return {}


class SyncCounter:
    """Counts durability barriers (fsync, syncfs, directory fsync) of the storage layer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts = {"fsync": 0, "fdatasync": 0, "syncfs": 0, "fsync_dir": 0}

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def reset(self) -> None:
        with self._lock:
            for name in self.counts:
                self.counts[name] = 0

    def counting(self, name: str, fn: Callable[..., T]) -> Callable[..., T]:
        """``fn``, counting each call under ``name``."""

        def counted(*args: Any) -> T:
            with self._lock:
                self.counts[name] += 1
            return fn(*args)

        return counted


@contextlib.contextmanager
def count_syncs() -> Iterator[SyncCounter]:
    """Count every fsync/syncfs/fsync_dir that goes through the storage fs seam (`REAL_FS`,
    which the runtime's StorageWriter and stores use) while the block runs."""
    counter = SyncCounter()
    names = tuple(counter.counts)
    for name in names:
        bound = getattr(type(REAL_FS), name).__get__(REAL_FS)
        setattr(REAL_FS, name, counter.counting(name, bound))
    try:
        yield counter
    finally:
        for name in names:
            REAL_FS.__dict__.pop(name, None)


def dir_bytes(path: os.PathLike[str] | str) -> tuple[int, int]:
    """(total bytes, file count) of the regular files under ``path``."""
    total = files = 0
    for root, _dirs, names in os.walk(path):
        for n in names:
            try:
                total += os.stat(os.path.join(root, n)).st_size
                files += 1
            except OSError:
                pass
    return total, files
