"""The ``model-latency`` workload: `seq` with ``event_loop`` nodes whose model takes 50 ms.

``model="scripted"``: ScriptedLLM with ``delay``. ``model="openai"`` / ``"litellm"``: the fake
OpenAI server (tests/fake_openai.py, started as a subprocess so its CPU is not ours) answers
after ``delay`` through LiteLLMProvider's native transport or through litellm. With five
model calls per execution the ideal throughput is ``concurrency / (5 * delay)``; ``efficiency``
is the measured fraction of it (1.0 = latency fully hidden by concurrency).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import trio

from hive_actors.bench import graphs
from hive_actors.bench.hive_runs import _timed_runtime, make_runtime
from hive_actors.bench.model import Case
from hive_actors.llm.provider import LLMProvider
from hive_actors.llm.scripted import ScriptedLLM

CALLS_PER_EXECUTION = 5


def fake_server_script() -> Path | None:
    """tests/fake_openai.py of a source checkout, or None (installed without the tests)."""
    path = Path(__file__).resolve().parents[2] / "tests" / "fake_openai.py"
    return path if path.is_file() else None


@contextmanager
def fake_openai_server(delay: float) -> Iterator[str]:
    """Run the fake OpenAI server in a subprocess; yields its base URL. Raises RuntimeError
    when the server script is not available."""
    script = fake_server_script()
    if script is None:
        raise RuntimeError("tests/fake_openai.py not found: run from a source checkout")
    config = {"fallback": {"text": "Done.", "first_byte_delay": delay, "chunk_chars": 16}}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(config, f)
    proc = subprocess.Popen([sys.executable, str(script), "--port", "0", "--script", f.name],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http"):
            raise RuntimeError(f"fake OpenAI server did not start (said {url!r})")
        yield url
    finally:
        proc.terminate()
        proc.wait()
        Path(f.name).unlink(missing_ok=True)


def run_model_latency(case: Case) -> dict[str, float]:
    """Metrics: the `seq` metrics plus ideal_throughput and efficiency."""
    delay = float(case.options.get("delay", 0.05))
    model = case.options.get("model", "scripted")
    if model == "scripted":
        metrics = trio.run(_main, case, ScriptedLLM(autopilot=True, delay=delay), False)
    else:
        with fake_openai_server(delay) as url:
            from hive_actors.llm.litellm_provider import LiteLLMProvider

            limiter = trio.CapacityLimiter(max(case.concurrency, 1))
            transport = "litellm" if model == "litellm" else "native"
            llm = LiteLLMProvider("openai/gpt-4o-mini", api_base=url, api_key="sk-bench",
                                  concurrency_limiter=limiter, transport=transport)
            metrics = trio.run(_main, case, llm, True)
    ideal = case.concurrency / (CALLS_PER_EXECUTION * delay)
    metrics["ideal_throughput"] = ideal
    metrics["efficiency"] = metrics["throughput"] / ideal
    return metrics


async def _main(case: Case, llm: LLMProvider, needs_loop: bool) -> dict[str, float]:
    rt = make_runtime(case, graphs.llm_seq_graph(), {}, llm=llm)
    if not needs_loop:
        return await _timed_runtime(case, rt, graphs.SEQ_TRANSITIONS)
    from hive_actors.llm.aio_loop import open_llm_loop

    async with open_llm_loop():
        return await _timed_runtime(case, rt, graphs.SEQ_TRANSITIONS)
