"""What ``from framework.llm.provider import Tool, ToolUse, ToolResult`` gives when Hive is
not installed (see hive_actors/hive_compat.py)."""

from hive_actors.llm.provider import LLMProvider
from hive_actors.tools.hive_contract import ToolResult, ToolUse
from hive_actors.tools.registry import Tool

__all__ = ["LLMProvider", "Tool", "ToolResult", "ToolUse"]
