"""A large state is encoded off the event loop from the first checkpoint on (issue 14, item 9):
checkpoints and state.json of a session whose input holds a 1M-item list."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from hive_actors.bench.graphs import function_line
from hive_actors.graph.executor_config import ExecutorConfig
from hive_actors.jsonsafe import is_large
from hive_actors.runtime.agent_runtime import RuntimeConfig, create_agent_runtime
from hive_actors.storage import checkpoint_store, session_store
from runtime_fakes import GOAL


def test_is_large_walks_a_bounded_number_of_values() -> None:
    assert not is_large({"a": [1, 2, 3], "b": "x" * 100})
    assert is_large({"a": [0] * 1_000_000})
    assert is_large({"a": [[0] * 100] * 200})  # many values, no single large list
    assert is_large({"a": "x" * 300_000})


async def test_a_large_input_is_never_encoded_on_the_event_loop(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    loop_thread = threading.get_ident()
    on_loop: list[str] = []
    encoded: list[str] = []

    def recording(name: str, encode: Any) -> Any:
        def wrapper(value: Any) -> bytes:
            encoded.append(name)
            if threading.get_ident() == loop_thread:
                on_loop.append(name)
            return encode(value)  # type: ignore[no-any-return]
        return wrapper

    monkeypatch.setattr(checkpoint_store, "encode_checkpoint",
                        recording("checkpoint", checkpoint_store.encode_checkpoint))
    # the journal takes checkpoints as deltas (the first one whole, the list in each)
    monkeypatch.setattr(checkpoint_store, "encode_delta",
                        recording("checkpoint", checkpoint_store.encode_delta))
    monkeypatch.setattr(session_store, "encode_record",
                        recording("state.json", session_store.encode_record))

    def f1(items: list[int]) -> dict[str, Any]:
        return {"n": len(items)}

    def f2(n: int) -> dict[str, Any]:
        return {"m": n + 1}

    cfg = RuntimeConfig(executor_config=ExecutorConfig(functions={"f1": f1, "f2": f2},
                                                       sync_functions_in_thread=False))
    rt = create_agent_runtime(graph=function_line("big", ["items", "n", "m"], "f"), goal=GOAL,
                              storage_path=tmp_path, config=cfg)
    async with rt:
        result = await rt.trigger_and_wait("default", {"items": [0] * 1_000_000})
    assert result.success, result.error
    assert result.output["m"] == 1_000_001
    assert "checkpoint" in encoded and "state.json" in encoded
    assert on_loop == []
