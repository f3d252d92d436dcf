"""The fan_llm agent's tool and join function."""

from hive_actors import tool


@tool
def note(text: str) -> str:
    """Take a note.

    Args:
        text: what to note
    """
    return f"noted {text}"


def join(l, r):
    return {"done": f"{l}+{r}"}
