"""The exception hierarchy: one base class, then one class per kind of mistake.

Every message says what went wrong and where (file, JSON path, node, entry point).
"""

from __future__ import annotations

import attrs


class HiveActorsError(Exception):
    """Base class of every error hive_actors raises on purpose."""


@attrs.frozen
class Problem:
    """One finding of validation: where it is and what is wrong."""

    file: str
    path: str
    message: str
    severity: str = "error"  # "error" | "warning"

    def __str__(self) -> str:
        where = f"{self.file}: {self.path}" if self.path else self.file
        return f"{where}: {self.severity}: {self.message}"


class AgentDefinitionError(HiveActorsError):
    """An agent folder or file cannot be loaded or does not validate.

    ``problems`` lists every error found (warnings are not errors and are not here).
    """

    def __init__(self, problems: list[Problem] | str, file: str = "") -> None:
        if isinstance(problems, str):
            problems = [Problem(file=file, path="", message=problems)]
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class ExpressionError(HiveActorsError):
    """A condition expression is malformed or uses something not allowed."""


class ExpressionEvalError(ExpressionError):
    """A well-formed expression failed while being evaluated (unknown name, bad index...)."""


class InputDataError(HiveActorsError, TypeError):
    """Input data for an execution is not a JSON object (a dict with string keys)."""


class SessionStateError(HiveActorsError):
    """A ``session_state`` passed in to resume is malformed."""


class UnknownEntryPointError(HiveActorsError, KeyError):
    """No entry point has this id."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want the message
        return str(self.args[0]) if self.args else ""


class UnknownNodeError(HiveActorsError, KeyError):
    """No node has this id."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class UnknownSessionError(HiveActorsError, KeyError):
    """No session with this id exists in the storage folder."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class NodeError(HiveActorsError):
    """A node failed; ``node_id`` names it."""

    def __init__(self, message: str, node_id: str = "") -> None:
        self.node_id = node_id
        super().__init__(f"node {node_id!r}: {message}" if node_id else message)


class NodeDefinitionError(NodeError):
    """A node cannot run as defined (a function that does not resolve, a router whose routes
    match nothing): retrying cannot help, so the node fails at once."""


class ToolError(HiveActorsError):
    """A tool is unknown, got bad arguments, failed or timed out."""


class ToolArgumentsError(ToolError, ValueError):
    """The arguments of a tool call do not fit the tool's schema; ``problems`` name the fields
    (``"query: Field required"``, ``"filter.limit: Input should be a valid integer"``)."""

    def __init__(self, tool: str, problems: list[str]) -> None:
        super().__init__(f"invalid arguments for tool {tool!r}: " + "; ".join(problems))
        self.tool = tool
        self.problems = problems
class MCPServerError(ToolError):
    """An MCP tool server failed to start or to answer (names the server, its command or URL,
    and the tail of its stderr when there is one)."""


class LLMError(HiveActorsError):
    """A model call failed for good (after any retries)."""


class ConfigurationError(HiveActorsError):
    """The runtime or a provider is configured wrongly (missing API key, bad option...)."""


class MCPConfigError(ConfigurationError):
    """An MCP server declaration is malformed or names a missing ``${VAR}`` (the message
    names the file and the server)."""


class StorageError(HiveActorsError):
    """A file could not be written or read; ``path`` and ``errno`` say which file and why,
    when known."""

    path: str | None = None
    errno: int | None = None


class CorruptFileError(StorageError):
    """A stored file exists but cannot be parsed; ``path`` names it."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        super().__init__(f"{path}: damaged or unreadable file: {reason}")


class RuntimeStateError(HiveActorsError):
    """The runtime is not in a state that allows this call (not started, stopping...)."""


class QueueFullError(HiveActorsError):
    """An entry point's queue is full and it was configured not to wait."""
