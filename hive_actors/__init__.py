"""hive_actors: run Hive-style LLM agent graphs on an actor-model runtime built on trio."""

__version__ = "0.1.0"
