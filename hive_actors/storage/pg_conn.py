"""One psycopg 3 connection driven from trio: its sync API, one call at a time, in a worker thread.

psycopg has no trio API. `PgConnection.call(fn)` runs ``fn(conn)`` in a worker thread while
the calling task waits; calls on one connection are serialised by a trio lock, so the
connection is owned by whoever owns the `PgConnection` (an actor) and never used by two
threads at once.

Cancellation: with ``cancellable=True`` (reads, claims) a trio cancellation while ``fn`` runs
sends the server a cancel request for the running query, abandons the thread and discards the
connection (the thread closes it when ``fn`` returns); the next call opens a new one. An open
transaction is then rolled back by the server, so nothing half-done is kept. With
``cancellable=False`` (a commit) the call always runs to its end: the caller learns whether
the transaction committed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import trio

from hive_actors.errors import StorageError

if TYPE_CHECKING:
    import psycopg

__all__ = ["PgConnection", "pg_error", "import_psycopg"]

T = TypeVar("T")


def import_psycopg() -> None:
    """Raise StorageError saying how to install the driver when psycopg is missing."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise StorageError("a postgresql:// store needs psycopg: "
                           "pip install 'hive-actors[postgres]'") from None


def pg_error(where: str, exc: BaseException) -> StorageError:
    """A StorageError naming the database and what failed."""
    err = StorageError(f"PostgreSQL {where}: {type(exc).__name__}: {exc}".strip())
    err.path = where
    return err


def redact(url: str) -> str:
    """``url`` without a password, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}@{host}"
    return url


class _Job:
    """A call in flight: the thread closes the connection when it ends if it was abandoned."""

    def __init__(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        self.conn = conn
        self._lock = threading.Lock()
        self._finished = False
        self._abandoned = False
        self.ended = threading.Event()

    def run(self, fn: Callable[[psycopg.Connection[tuple[object, ...]]], T]) -> T:
        try:
            return fn(self.conn)
        finally:
            with self._lock:
                self._finished = True
                close = self._abandoned
            self.ended.set()
            if close:
                self.conn.close()

    def abandon(self) -> None:
        with self._lock:
            self._abandoned = True
            close = self._finished
        if close:
            self.conn.close()


class PgConnection:
    """A lazily opened connection to ``url`` (autocommit off: ``fn`` commits or rolls back)."""

    def __init__(self, url: str, *, application_name: str = "hive-actors") -> None:
        import_psycopg()
        self.url = url
        self._app = application_name
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._lock = trio.Lock()

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        import psycopg

        try:
            return psycopg.connect(self.url, application_name=self._app, connect_timeout=10)
        except psycopg.Error as exc:
            raise pg_error(f"connect to {redact(self.url)}", exc) from None

    async def call(self, fn: Callable[[psycopg.Connection[tuple[object, ...]]], T], *,
                   cancellable: bool = True) -> T:
        """``fn(conn)`` in a worker thread. A broken connection is dropped (the next call
        reconnects). Raises what ``fn`` raises, StorageError if the connection fails."""
        async with self._lock:
            if self._conn is None or self._conn.closed:
                self._conn = await trio.to_thread.run_sync(self._connect)
            job = _Job(self._conn)
            try:
                return await trio.to_thread.run_sync(job.run, fn,
                                                     abandon_on_cancel=cancellable)
            except trio.Cancelled:
                conn, self._conn = job.conn, None
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(_cancel_until_ended, job)
                job.abandon()
                raise
            except BaseException:
                if job.conn.broken:
                    self._conn = None
                    job.conn.close()
                raise

    async def aclose(self) -> None:
        """Close the connection (waits for a call in flight)."""
        async with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()


def _cancel_until_ended(job: _Job, tries: int = 10) -> None:
    """Ask the server to cancel the job's query until the call ends (a cancel that arrives
    before the query does is ignored by the server), at most ``tries`` times 0.5 s."""
    for _ in range(tries):
        try:
            job.conn.cancel_safe(timeout=5.0)
        except Exception:  # the connection is discarded either way
            pass
        if job.ended.wait(0.5):
            return
