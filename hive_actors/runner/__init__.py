"""The runner: load an agent folder and run it (AgentRunner), headless on a terminal or pipe."""

from hive_actors.runner.headless import LineReader, run_headless
from hive_actors.runner.runner import AgentRunner, default_storage_path

__all__ = ["AgentRunner", "LineReader", "default_storage_path", "run_headless"]
