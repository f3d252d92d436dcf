"""The asyncio loop (trio-asyncio) that litellm's asyncio code runs on, one per runtime,
and the HTTP connection pool of native OpenAI-compatible calls (openai_native.py).

``async with open_llm_loop():`` opens a trio-asyncio loop for the body of the block, or reuses
the one the embedding application already opened, and fixes its default executor (below).
Tasks started from nurseries opened inside the block see the loop; a ``LiteLLMProvider`` used
outside such a block raises ``ConfigurationError``. When the block ends, the loop closes and
no asyncio task outlives it.

The executor fix: litellm's ``acompletion`` runs ``completion(..., acompletion=True)`` through
``loop.run_in_executor(None, ...)`` and awaits the coroutine that call returns.
trio-asyncio's ``TrioExecutor`` runs the function with ``trio.to_thread.run_sync``, which
refuses any function whose result is a coroutine ("appears to be asynchronous"), so every call
would fail. ``_CoroutineTolerantExecutor`` hands the result back in a 1-tuple so trio does not
see a coroutine, then unwraps it.
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, cast

import trio

if TYPE_CHECKING:
    from asyncio import AbstractEventLoop


def _executor_class() -> type:
    import trio_asyncio

    class _CoroutineTolerantExecutor(trio_asyncio.TrioExecutor):
        async def submit(self, func: Callable[..., Any], *args: Any) -> Any:
            def boxed() -> tuple[Any]:
                return (func(*args),)

            (result,) = await trio.to_thread.run_sync(boxed, limiter=self._limiter)
            return result

    return _CoroutineTolerantExecutor


def current_llm_loop() -> AbstractEventLoop | None:
    """The trio-asyncio loop visible to the calling task, or None."""
    import trio_asyncio

    # trio_asyncio has no type hints; current_loop holds the task's asyncio loop or None
    return cast("AbstractEventLoop | None", trio_asyncio.current_loop.get())


# Loops given the executor already; asyncio has no public way to read a loop's executor back.
_PREPARED: weakref.WeakSet[AbstractEventLoop] = weakref.WeakSet()


def prepare_loop(loop: AbstractEventLoop) -> None:
    """Give ``loop`` an executor that accepts litellm's coroutine-returning jobs (idempotent:
    once per loop)."""
    if loop in _PREPARED:
        return
    loop.set_default_executor(_executor_class_cached()())
    _PREPARED.add(loop)


_EXECUTOR_CLASS: type | None = None


def _executor_class_cached() -> type:
    global _EXECUTOR_CLASS
    if _EXECUTOR_CLASS is None:
        _EXECUTOR_CLASS = _executor_class()
    return _EXECUTOR_CLASS


@asynccontextmanager
async def open_llm_loop() -> AsyncIterator[Any]:
    """Open a trio-asyncio loop for litellm for the body of the block (or reuse an open one).

    Yields the loop. Must be entered from a trio task; the runtime enters it around its
    nursery so every execution's model calls share one loop.
    """
    import trio_asyncio

    from .openai_native import native_http_scope

    loop = trio_asyncio.current_loop.get()
    async with native_http_scope():
        if loop is not None:
            prepare_loop(loop)
            yield loop
            return
        async with trio_asyncio.open_loop() as loop:
            prepare_loop(loop)
            yield loop
