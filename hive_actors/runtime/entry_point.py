"""Old path of EntryPointSpec (the seed imports it from here); it lives in graph/spec.py."""

from hive_actors.graph.spec import ISOLATION_LEVELS, TRIGGER_TYPES, EntryPointSpec

__all__ = ["EntryPointSpec", "ISOLATION_LEVELS", "TRIGGER_TYPES"]
