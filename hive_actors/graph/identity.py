"""IdentityMap: values kept per live object, keyed by identity, for records that cannot be
hashed (a GraphSpec has dict fields) or whose equal copies are still different things.

An entry goes when its object is collected (the weak reference's callback); the identity check
on lookup guards against an id reused by a new object.
"""

from __future__ import annotations

import functools
import weakref
from typing import Any, Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class IdentityMap(Generic[K, V]):
    def __init__(self) -> None:
        self._entries: dict[int, tuple[weakref.ref[K], V]] = {}

    def get(self, key: K) -> V | None:
        hit = self._entries.get(id(key))
        if hit is not None and hit[0]() is key:
            return hit[1]
        return None

    def set(self, key: K, value: V) -> None:
        ident = id(key)
        self._entries[ident] = (weakref.ref(key, functools.partial(_forget, self._entries, ident)),
                                value)


def _forget(entries: dict[int, Any], ident: int, ref: weakref.ref[Any]) -> None:
    # ``entries`` is bound in the partial: the callback may run while the interpreter shuts down
    hit = entries.get(ident)
    if hit is not None and hit[0] is ref:
        del entries[ident]
