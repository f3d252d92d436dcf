"""The one cattrs converter through which every record goes to and from JSON-able data."""

from __future__ import annotations

import datetime as _dt
import json
from typing import Any, TypeVar

import cattrs
from cattrs.preconf.json import make_converter

from hive_actors.status import ExecutionStatus

T = TypeVar("T")

converter: cattrs.Converter = make_converter(forbid_extra_keys=True)
converter.register_unstructure_hook(_dt.datetime, lambda d: d.isoformat())
converter.register_structure_hook(_dt.datetime, lambda v, _: _dt.datetime.fromisoformat(v))
# the plain text ("completed"), as before statuses were an enum; structuring takes the text back
converter.register_unstructure_hook(ExecutionStatus, lambda s: s.value)


def to_data(obj: object) -> Any:
    """A record as plain JSON-able data (dicts, lists, str, numbers): Any, as JSON is."""
    return converter.unstructure(obj)


def from_data(data: object, cls: type[T]) -> T:
    """Build a record of type ``cls`` from plain data; raises cattrs' ClassValidationError."""
    return converter.structure(data, cls)


def dumps(obj: object, **kw: Any) -> str:  # kw: json.dumps options
    return json.dumps(to_data(obj), ensure_ascii=False, **kw)
