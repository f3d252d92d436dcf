"""In-process fixtures of the fault tests: a four-node graph whose steps can block on gates,
and a runtime whose storage writer goes through a `FaultyFileSystem` (the storage fs seam)."""

from __future__ import annotations

import collections
import functools
import hashlib
from pathlib import Path
from typing import Any

import trio

from hive_actors.bench.graphs import function_line
from hive_actors.graph.executor_config import ExecutorConfig
from hive_actors.graph.spec import Goal, GraphSpec
from hive_actors.runtime import agent_runtime
from hive_actors.runtime.agent_runtime import RuntimeConfig, create_agent_runtime
from hive_actors.graph.spec import EntryPointSpec
from hive_actors.storage.fs import FaultyFileSystem
from hive_actors.storage.journal import Journal
from hive_actors.storage.writer import StorageWriter

GOAL = Goal(id="fault_goal", name="survive faults")
KEYS = ("k", "a", "b", "c", "d")


def four_node_graph() -> GraphSpec:
    return function_line("four", KEYS, "f", max_steps=10)


def expected_output(k: int) -> int:
    return ((k + 1) * 2 + 3) * 5


class Work:
    """The node functions. ``n2`` of execution ``k`` blocks while ``k`` is in ``hold`` (or
    while ``hold_all``), counting itself in ``blocked``; calls are counted per (k, node)."""

    def __init__(self, hold_all: bool = False) -> None:
        self.calls: collections.Counter[tuple[int, str]] = collections.Counter()
        self.hold: set[int] = set()
        self.hold_all = hold_all
        self.release = trio.Event()
        self.blocked = 0
        self._changed = trio.Event()

    def functions(self) -> dict[str, Any]:
        async def f1(k):
            self.calls[(k, "n1")] += 1
            return {"a": k + 1}

        async def f2(a):
            k = a - 1
            self.calls[(k, "n2")] += 1
            if (self.hold_all or k in self.hold) and not self.release.is_set():
                self.blocked += 1
                self._changed.set()
                await self.release.wait()
            return {"b": a * 2}

        async def f3(b):
            self.calls[(b // 2 - 1, "n3")] += 1
            return {"c": b + 3}

        async def f4(c):
            self.calls[((c - 3) // 2 - 1, "n4")] += 1
            return {"d": c * 5}

        return {"f1": f1, "f2": f2, "f3": f3, "f4": f4}

    async def wait_blocked(self, n: int) -> None:
        """Return once ``n`` executions are blocked in n2 (fails after 120 s: a hang)."""
        with trio.fail_after(120):
            while self.blocked < n:
                self._changed = trio.Event()
                await self._changed.wait()


def make_runtime(storage: Path | None, work: Work, *, entry_points: int = 1,
                 max_concurrent: int = 100, **config: Any) -> agent_runtime.AgentRuntime:
    specs = [EntryPointSpec(id=f"ep{i}", entry_node="n1", max_concurrent=max_concurrent)
             for i in range(entry_points)]
    cfg = RuntimeConfig(executor_config=ExecutorConfig(functions=work.functions(),
                                                       sync_functions_in_thread=False),
                        **config)
    return create_agent_runtime(graph=four_node_graph(), goal=GOAL, storage_path=storage,
                                entry_points=specs, config=cfg)


def use_fs(monkeypatch: Any, fs: FaultyFileSystem) -> None:
    """Every runtime built from now on in this test writes through ``fs`` (the storage
    engines' seam)."""
    monkeypatch.setattr(agent_runtime, "StorageWriter", functools.partial(StorageWriter, fs=fs))
    monkeypatch.setattr(agent_runtime, "Journal", functools.partial(Journal, fs=fs))


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with a hash of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def all_tasks() -> set[trio.lowlevel.Task]:
    """Every task of this trio run (walked from the root task)."""
    out: set[trio.lowlevel.Task] = set()
    todo = [trio.lowlevel.current_root_task()]
    while todo:
        task = todo.pop()
        out.add(task)
        for nursery in task.child_nurseries:
            todo.extend(nursery.child_tasks)
    return out

