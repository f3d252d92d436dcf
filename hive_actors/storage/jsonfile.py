"""Reading back the JSON files storage wrote, treating every file as possibly damaged.

Any damage (bad JSON, nesting deeper than `MAX_FILE_DEPTH`, not an object, a symlink that
leads out of the storage folder) is a `CorruptFileError` naming the file; nothing else
escapes, so one damaged file costs only the read that met it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from hive_actors.errors import CorruptFileError
from hive_actors.jsonsafe import too_deep

__all__ = ["MAX_FILE_DEPTH", "check_inside", "load_json_object"]

# Stored files hold inputs (at most RuntimeConfig.max_input_depth deep) inside a few levels
# of their own; deeper means damaged (or planted), and is refused before decoding.
MAX_FILE_DEPTH = 200


def load_json_object(path: Path, raw: bytes) -> dict[str, Any]:
    """The JSON object in ``raw`` (the bytes of ``path``).

    Raises `CorruptFileError` naming ``path`` if ``raw`` is not valid JSON, nests deeper than
    `MAX_FILE_DEPTH` or is not an object.
    """
    if too_deep(raw, MAX_FILE_DEPTH):
        raise CorruptFileError(str(path), f"nested more than {MAX_FILE_DEPTH} levels deep")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise CorruptFileError(str(path), f"not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise CorruptFileError(str(path), "not a JSON object")
    return data


def check_inside(root: Path, *paths: Path) -> None:
    """Raise `CorruptFileError` naming the path if one of ``paths`` is a symlink leading out
    of ``root`` (a planted or stray link must not make storage read or write elsewhere).

    Costs one ``lstat`` per path; only a symlink is resolved.
    """
    for path in paths:
        if not os.path.islink(path):
            continue
        try:
            real, real_root = os.path.realpath(path), os.path.realpath(root)
        except (OSError, ValueError) as exc:
            raise CorruptFileError(str(path), f"cannot resolve: {exc}") from None
        if os.path.commonpath([real, real_root]) != real_root:
            raise CorruptFileError(str(path), f"a symlink leading out of {root} (to {real})")
