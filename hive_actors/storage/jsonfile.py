"""Parsing the JSON files storage reads back, with damage reported as `CorruptFileError`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hive_actors.errors import CorruptFileError

__all__ = ["load_json_object"]


def load_json_object(path: Path, raw: bytes) -> dict[str, Any]:
    """The JSON object in ``raw`` (the bytes of ``path``).

    Raises `CorruptFileError` naming ``path`` if ``raw`` is not valid JSON or not an object.
    """
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise CorruptFileError(str(path), f"not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise CorruptFileError(str(path), "not a JSON object")
    return data
