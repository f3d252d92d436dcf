"""Tools an agent's nodes can call."""

from hive_actors.tools.registry import Tool, ToolRegistry, result_to_text, tool

__all__ = ["Tool", "ToolRegistry", "result_to_text", "tool"]
