"""Bounds on JSON that comes from outside: how deep a text nests (checked before decoding)
and whether a value is plain JSON within size and depth bounds (the input check at the door).

Pure, so the feed, storage readers and the runtime share it.
"""

from __future__ import annotations

import re
from typing import Any, NoReturn

import attrs

from hive_actors.errors import InputDataError

__all__ = ["InputCheck", "is_large", "too_deep"]

# A JSON string (skipped whole, escapes included) or one bracket.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]')


def too_deep(text: str | bytes, limit: int) -> bool:
    """Whether the JSON ``text`` nests arrays/objects more than ``limit`` levels deep.

    Linear in the length of ``text``, and a single C-speed count when it holds few brackets.
    Malformed text is measured as well as it can be (the decoder will refuse it anyway).
    """
    if isinstance(text, bytes):
        # latin-1 maps bytes 1:1; in UTF-8 the ASCII quote, backslash and brackets never
        # occur inside a multi-byte character, so the scan sees the same structure
        text = text.decode("latin-1")
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            if depth > limit:
                return True
        elif token in ("]", "}"):
            depth -= 1
    return False


def is_large(value: object, *, max_items: int = 10_000, max_bytes: int = 256 * 1024) -> bool:
    """Whether encoding ``value`` as JSON may take long enough to stall an event loop: it
    holds more than ``max_items`` values, or its strings (and byte strings) pass
    ``max_bytes`` characters. Walks at most ``max_items`` values (no recursion, never
    raises), so it is cheap whatever the size; attrs instances, sets and other containers
    are counted through their items or fields."""
    stack, items, size = [value], 0, 0
    while stack:
        items += 1
        if items > max_items:
            return True
        v = stack.pop()
        if isinstance(v, (str, bytes, bytearray)):
            size += len(v)
            if size > max_bytes:
                return True
        elif isinstance(v, (dict, list, tuple, set, frozenset)):
            if len(v) > max_items:
                return True
            if isinstance(v, dict):
                stack.extend(v.keys())
                stack.extend(v.values())
            else:
                stack.extend(v)
        elif attrs.has(type(v)):
            stack.extend(getattr(v, a.name) for a in attrs.fields(type(v)))  # type: ignore[arg-type]
    return False


class InputCheck:
    """Checks that a value (an execution's input) is plain JSON within bounds.

    Plain JSON: dicts with string keys, lists (tuples too), strings encodable as UTF-8,
    finite floats, ints, bools and None; at most ``max_depth`` containers deep and about
    ``max_bytes`` once encoded. `step` walks without recursion (a self-referencing value
    hits the depth bound) and can stop after a number of items, so a caller on an event
    loop checks small values at once and hands a large one's remainder to a thread.
    Each failure raises `InputDataError` naming ``where`` and the path of the value.
    """

    def __init__(self, value: object, *, where: str, max_bytes: int, max_depth: int) -> None:
        self.where = where
        self.max_bytes = max_bytes
        self.max_depth = max_depth
        self.size = 0  # bytes the encoded JSON is estimated to take so far
        # (value, depth, parent link): a parent link is (key, its parent link) or None
        self._stack: list[tuple[object, int, tuple[object, Any] | None]] = [(value, 0, None)]

    def step(self, items: int | None = None) -> bool:
        """Check up to ``items`` values (None: all that are left); True once all are checked.
        Raises `InputDataError` at the first value that is not plain JSON or over a bound."""
        stack, budget = self._stack, items
        while stack:
            if budget is not None:
                if budget <= 0:
                    return False
                budget -= 1
            value, depth, link = stack.pop()
            if isinstance(value, str):
                self.size += len(value) + 2
                if not value.isascii():
                    self._check_text(value, link)
            elif isinstance(value, (dict, list, tuple)):
                if depth >= self.max_depth:
                    self._fail(link, f"is nested more than {self.max_depth} levels deep")
                self.size += 2
                if isinstance(value, dict):
                    for key, item in value.items():
                        if not isinstance(key, str):
                            self._fail(link, f"has a key of type {type(key).__name__} "
                                             f"({key!r:.40}); JSON keys are strings")
                        self.size += len(key) + 4
                        stack.append((item, depth + 1, (key, link)))
                else:
                    self.size += len(value)
                    stack.extend((item, depth + 1, (i, link)) for i, item in enumerate(value))
            elif isinstance(value, float):
                if value != value or value in (_INF, -_INF):
                    self._fail(link, f"is {value!r}, which JSON cannot hold")
                self.size += 8
            elif isinstance(value, int):  # bool too
                self.size += 1 + value.bit_length() // 3
            elif value is not None:
                self._fail(link, _not_json(value))
            if self.size > self.max_bytes:
                self._fail(link, f"takes the input over max_input_bytes ({self.max_bytes} bytes)")
        return True

    def _check_text(self, text: str, link: tuple[object, Any] | None) -> None:
        try:
            self.size += len(text.encode("utf-8")) - len(text)
        except UnicodeEncodeError as exc:
            self._fail(link, f"holds a lone surrogate at character {exc.start}, "
                             "which UTF-8 cannot encode")

    def _fail(self, link: tuple[object, Any] | None, problem: str) -> NoReturn:
        raise InputDataError(f"{self.where}{_path(link)} {problem}")


_INF = float("inf")


def _path(link: tuple[object, Any] | None) -> str:
    parts = []
    while link is not None:
        key, link = link
        parts.append(f"[{key!r:.60}]")
    return "".join(reversed(parts))


def _not_json(value: object) -> str:
    kind = type(value).__name__
    if isinstance(value, (bytes, bytearray)):
        return f"is {kind}, which JSON cannot hold (decode it to a string first)"
    return f"is a {kind}, which JSON cannot hold"
