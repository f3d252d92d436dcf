"""Idempotency keys of one runtime: the same key yields the same execution, never a second.

A key is claimed before its execution is submitted; a concurrent trigger with that key waits
until the first is accepted (and gets its execution) or fails (and then claims the key itself).
Accepted keys are forgotten oldest first, after ``ttl`` seconds or beyond ``max_keys``.
"""

from __future__ import annotations

import collections
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import attrs
import trio

__all__ = ["IdempotencyClaims"]

E = TypeVar("E")  # the accepted execution


@attrs.define(eq=False)
class _Claim(Generic[E]):
    """An idempotency key: pending until its execution is accepted."""

    stream_id: str
    execution: E | None = None
    settled: trio.Event = attrs.field(factory=trio.Event)
    at: float = 0.0


class IdempotencyClaims(Generic[E]):
    """The keys a runtime has seen, oldest first."""

    def __init__(self) -> None:
        self._claims: collections.OrderedDict[str, _Claim[E]] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._claims)

    async def submit_once(self, key: str, stream_id: str,
                          submit: Callable[[], Awaitable[E]],
                          *, ttl: float, max_keys: int) -> E:
        """The execution already accepted for ``key``, else the one ``submit()`` accepts.

        Raises what ``submit()`` raises (and then forgets the claim, so a retry may claim it).
        """
        while True:
            self._prune(ttl, max_keys)
            seen = self._claims.get(key)
            if seen is None:
                break
            if seen.execution is not None:
                return seen.execution
            await seen.settled.wait()  # accepted or failed meanwhile; look again
        claim: _Claim[E] = _Claim(stream_id=stream_id, at=trio.current_time())
        self._claims[key] = claim
        try:
            execution = claim.execution = await submit()
        except BaseException:
            self._claims.pop(key, None)
            raise
        finally:
            claim.settled.set()
        return execution

    def _prune(self, ttl: float, cap: int) -> None:
        horizon = trio.current_time() - ttl
        claims = self._claims
        while claims:
            key, oldest = next(iter(claims.items()))
            if oldest.execution is not None and (oldest.at < horizon or len(claims) > cap):
                claims.popitem(last=False)
            else:
                break
