"""Tools of the doubler agent."""

from hive_actors.tools.registry import tool


@tool
def double(x: int) -> int:
    """Twice x.

    Args:
        x: the number to double
    """
    return 2 * x
