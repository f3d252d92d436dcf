"""Supervision of the runtime's child actors: report a crash, restart, give up loudly.

An actor is an ``async run(*, task_status)`` that calls ``task_status.started()`` once ready;
``make_run()`` gives the one to run on each attempt (a fresh actor when actors cannot be rerun).
A crash before ``started()`` is a start failure and propagates (the runtime rolls back). A crash
after it is reported through ``on_crash`` and the actor is run again, at most ``max_restarts``
times within ``window`` seconds; the next crash raises `ActorFailedError`.

Also here: `single_errors` (a nursery's lone real error raised as itself) and
`start_in_system_task` (how ``AgentRuntime.start()`` hosts a runtime without a nursery).
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import trio

from hive_actors.errors import HiveActorsError

log = logging.getLogger(__name__)

ActorRun = Callable[..., Awaitable[Any]]
CrashReport = Callable[[str, BaseException, int], None]


class ActorFailedError(HiveActorsError):
    """An actor crashed more often than its restart budget allows; the runtime stops."""


class _Status:
    """Forwards the first ``started()`` to the real task status and remembers it happened."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.done = False

    def started(self, value: Any = None) -> None:
        if not self.done:
            self.done = True
            self.inner.started(value)


async def supervise(
    name: str,
    make_run: Callable[[], ActorRun],
    on_crash: CrashReport,
    *,
    max_restarts: int,
    window: float,
    shielded_scope: trio.CancelScope | None = None,
    task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,  # the actor's own value
) -> None:
    """Run ``make_run()`` under supervision until it returns or is cancelled.

    With ``shielded_scope`` (a ``CancelScope(shield=True)`` the caller keeps), the actor is
    immune to outer cancellation and ends only when that scope is cancelled: the runtime uses
    this for infrastructure actors (bus, storage writer) that must outlive the executions.
    Raises the start failure, or `ActorFailedError` once the restart budget is spent.
    """
    scope = shielded_scope if shielded_scope is not None else trio.CancelScope()
    with scope:
        status = _Status(task_status)
        crashes: collections.deque[float] = collections.deque()
        while True:
            try:
                await make_run()(task_status=status)
                return
            except Exception as exc:
                if not status.done:
                    raise
                now = trio.current_time()
                crashes.append(now)
                while crashes and crashes[0] < now - window:
                    crashes.popleft()
                log.error("actor %s crashed (%d in %.0fs)", name, len(crashes), window, exc_info=exc)
                if len(crashes) > max_restarts:
                    raise ActorFailedError(
                        f"actor {name!r} crashed {len(crashes)} times within {window:g}s "
                        f"(restart budget {max_restarts}); last error: {exc!r}"
                    ) from exc
                on_crash(name, exc, len(crashes))
                status = _Status(trio.TASK_STATUS_IGNORED)
                status.done = True


@contextlib.asynccontextmanager
async def single_errors() -> AsyncIterator[None]:
    """Re-raise a nursery error group holding one real error as that error (so a failed
    start raises, say, ConfigurationError rather than a nested ExceptionGroup)."""
    try:
        yield
    except BaseExceptionGroup as group:
        leaves = _leaves(group)
        real = [e for e in leaves if not isinstance(e, trio.Cancelled)]
        if len(real) == 1:
            raise real[0] from group
        raise


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in _leaves(sub)]
    return [exc]


async def start_in_system_task(run: ActorRun, name: str,
                               on_failure: Callable[[BaseException], None],
                               done: trio.Event) -> None:
    """Run ``run`` (started like ``nursery.start(run)``) in a trio system task named ``name``
    and return once it has started; ``done`` is set when the task ends.

    Raises what a failed start raised. A failure after the start (not a cancellation) goes
    to ``on_failure``, since a system task must not raise.
    """
    started = trio.Event()
    box: dict[str, BaseException] = {}

    async def host() -> None:
        try:
            async with single_errors(), trio.open_nursery() as n:
                await n.start(run)
                started.set()
        except BaseException as exc:  # noqa: BLE001 - a system task must not raise
            if started.is_set() and not isinstance(exc, trio.Cancelled):
                on_failure(exc)
            box["error"] = exc
        finally:
            started.set()
            done.set()

    trio.lowlevel.spawn_system_task(host, name=name, context=contextvars.copy_context())
    await started.wait()
    if "error" in box:
        raise box["error"]
