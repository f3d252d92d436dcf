"""Bounds on JSON that comes from outside: how deep a text nests, checked before decoding.

Pure and dependency-free, so the feed, storage readers and the input check share it.
"""

from __future__ import annotations

import re

__all__ = ["too_deep"]

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
