"""Run this agent against a real model: python examples/real_model_agent/run.py [TOPIC]

The model comes from HIVE_MODEL (default "openai/gpt-4o-mini"); its key from litellm's usual
variable (OPENAI_API_KEY, ANTHROPIC_API_KEY, ...). Without the key this prints what to set and
exits with status 2. Uses the APIs available today (loader, GraphExecutor, make_provider); the
`hive-actors run` CLI will replace this script.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import trio

from hive_actors.errors import ConfigurationError
from hive_actors.graph.executor import GraphExecutor
from hive_actors.graph.loader import load_agent
from hive_actors.llm import make_provider, open_llm_loop

HERE = Path(__file__).resolve().parent


async def main(topic: str) -> int:
    model = os.environ.get("HIVE_MODEL", "openai/gpt-4o-mini")
    try:
        provider = make_provider(model, max_retries=3, timeout=120)
    except ConfigurationError as exc:
        print(f"cannot run: {exc}", file=sys.stderr)
        print("for example:  export OPENAI_API_KEY=sk-...   (or HIVE_MODEL=anthropic/claude-3-5-haiku-latest"
              " with ANTHROPIC_API_KEY)", file=sys.stderr)
        return 2
    agent = load_agent(HERE)
    async with open_llm_loop():
        result = await GraphExecutor(llm=provider, tools=agent.tools).execute(
            agent.graph, agent.goal, {"topic": topic}
        )
    print(f"status: {result.status}  tokens: {result.total_tokens}")
    for key, value in result.output.items():
        print(f"{key}: {value}")
    if result.error:
        print(f"error: {result.error}", file=sys.stderr)
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(trio.run(main, " ".join(sys.argv[1:]) or "the trio async library for Python"))
