"""Worker: one process's share of a PostgreSQL-backed cluster (docs/scale-out.md).

A runtime with ``RuntimeConfig(store=URL, worker=True)`` (its storage engine is the store, a
`PgLog`) runs one `Worker` as an actor, which runs in its nursery:

1. one `ClusterTimer` per timer entry point (cluster/timers.py), the `EventRelay` of its
   runtime's events and the delivery of client input left in the store (cluster/relay.py),
   and a listener that wakes the claimer when `submit` queues work (NOTIFY hive_queue);
2. the lease keeper: renews this worker's lease every ``lease_seconds / 3`` (by the database's
   clock) and cancels the local executions of sessions another worker took over meanwhile
   (their writes are already refused by the epoch fence: nothing of a stale owner applies);
3. the claimer: while fewer than ``concurrency`` executions run here, claims sessions (queued,
   or left by a worker whose lease lapsed) with ``FOR UPDATE SKIP LOCKED`` and runs each.

Running a claimed session: fence it in the log at its new epoch, read its state.json and
latest checkpoint (or its queued input) from the store into the runtime's local folder, which
is only a cache the runtime reads at resume, then ``resume`` it: a taken-over session
continues from its latest checkpoint, so a node completed before never runs again; a queued
one starts from its input. Every write goes to the store through the fenced log.

Stop (cancellation, with the runtime): the worker removes its lease row so the others may take
at once what it still owned; the runtime's executions end ``cancelled`` (resumable).
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import trio

from hive_actors.errors import HiveActorsError, RuntimeStateError, StorageError
from hive_actors.graph.result import ExecutionResult
from hive_actors.graph.spec import EntryPointSpec
from hive_actors.cluster.relay import EventRelay, take_inputs
from hive_actors.cluster.timers import ClusterTimer
from hive_actors.storage.checkpoint_store import checkpoint_file_name
from hive_actors.storage.commit import FileOp
from hive_actors.storage.pg_conn import PgConnection, pg_error
from hive_actors.storage.pg_queue import (
    TERMINAL,
    Claim,
    SessionLoad,
    claim,
    heartbeat,
    leave,
    load_session,
    lost,
)
from hive_actors.storage.postgres import PgLog, StaleOwnerError
from hive_actors.storage.session_store import SessionRecord, SessionStore

if TYPE_CHECKING:
    import psycopg

__all__ = ["Worker"]

log = logging.getLogger(__name__)


class WorkerRuntime(Protocol):
    """What a Worker uses of its AgentRuntime (not imported: the runtime starts its Worker)."""

    config: Any
    storage_path: Path | None
    agent_name: str
    storage_engine: Any

    def get_entry_points(self) -> list[EntryPointSpec]: ...

    async def resume_nowait(self, session_id: str) -> str: ...

    async def wait_for_result(self, execution_id: str) -> ExecutionResult: ...

    def cancel_execution(self, execution_id: str) -> bool: ...

    def subscribe_to_events(self, event_types: Any, handler: Any) -> str: ...

    def unsubscribe_from_events(self, subscription_id: str) -> bool: ...

    async def inject_input(self, node_id: str, content: str,
                           execution_id: str | None = None) -> bool: ...


class Worker:
    """Runs the store's executions with ``runtime`` (which must have ``config.store`` and a
    ``storage_path``: a local cache folder). Started by the runtime itself when its config
    says ``worker=True``; ``worker_concurrency`` and ``lease_seconds`` come from there."""

    def __init__(self, runtime: WorkerRuntime, *, poll_seconds: float = 0.05) -> None:
        config = runtime.config
        if config.store is None or runtime.storage_path is None:
            raise RuntimeStateError("a Worker needs a runtime with RuntimeConfig(store=URL) "
                                    "and a storage_path (its local cache folder)")
        self.runtime = runtime
        self.url: str = config.store
        self.concurrency: int = config.worker_concurrency
        self.lease_seconds: float = config.lease_seconds
        self.poll_seconds = poll_seconds
        self._claims = PgConnection(self.url, application_name="hive-actors claims")
        self._lease = PgConnection(self.url, application_name="hive-actors lease")
        self._running: set[str] = set()
        self._slot_freed = trio.Event()
        self.worker_id = ""
        self.completed = 0

    @property
    def running_sessions(self) -> frozenset[str]:
        return frozenset(self._running)

    async def serve(self, *, task_status: trio.TaskStatus[Worker] = trio.TASK_STATUS_IGNORED
                    ) -> None:
        """Join the cluster and run claimed sessions until cancelled, then leave (the runtime
        runs this as one of its actors when ``RuntimeConfig(store=URL, worker=True)``)."""
        rt = self.runtime
        sub = ""
        try:
            engine = rt.storage_engine
            if not isinstance(engine, PgLog):
                raise RuntimeStateError("the runtime's storage engine is not the store")
            self.worker_id = engine.owner_id
            await self._renew()
            async with trio.open_nursery() as work:
                work.start_soon(self._keep_lease, engine)
                work.start_soon(self._listen)
                relay = EventRelay(self.url, rt.agent_name)
                sub = rt.subscribe_to_events(None, relay.handler)
                work.start_soon(relay.run)
                work.start_soon(self._deliver_inputs)
                for spec in rt.get_entry_points():
                    if spec.trigger_type == "timer":
                        timer = ClusterTimer(spec, rt.agent_name, self.url)
                        work.start_soon(timer.run, name=f"cluster timer {spec.id}")
                task_status.started(self)
                await self._claim_loop(work, engine)
        finally:
            if sub:
                rt.unsubscribe_from_events(sub)
            with trio.CancelScope(shield=True):
                if self.worker_id:
                    try:
                        await self._lease.call(lambda conn: leave(conn, self.worker_id))
                    except StorageError as exc:
                        log.warning("worker %s: could not leave the cluster: %s",
                                    self.worker_id, exc)
                await self._claims.aclose()
                await self._lease.aclose()

    async def _renew(self) -> None:
        agent, lease = self.runtime.agent_name, self.lease_seconds
        await self._lease.call(lambda conn: heartbeat(conn, self.worker_id, agent, lease))

    async def _keep_lease(self, engine: PgLog) -> None:
        while True:
            await trio.sleep(self.lease_seconds / 3)
            try:
                await self._renew()
                mine = sorted(self._running)
                gone = await self._lease.call(lambda conn: lost(conn, self.worker_id, mine))
            except StorageError as exc:  # the fence still protects every write
                log.warning("worker %s: lease renewal failed: %s", self.worker_id, exc)
                continue
            for sid in gone:
                self._taken_over(sid, engine)
                self.runtime.cancel_execution(sid)

    async def _listen(self) -> None:
        """Wake the claimer when a session is queued for this agent (NOTIFY hive_queue from
        `submit`), so an idle worker starts it without waiting for its next poll."""
        agent = self.runtime.agent_name
        conn = PgConnection(self.url, application_name="hive-actors listen")

        def wait(c: psycopg.Connection[tuple[object, ...]]) -> bool:
            import psycopg

            try:
                c.execute("LISTEN hive_queue")
                c.commit()
                return any(n.payload == agent for n in c.notifies(timeout=0.25, stop_after=1))
            except psycopg.Error as exc:
                raise pg_error("listen", exc) from None

        try:
            while True:
                try:
                    if await conn.call(wait):
                        self._slot_freed.set()
                except StorageError as exc:  # polling still finds the work
                    log.warning("worker %s: listen failed: %s", self.worker_id, exc)
                    await trio.sleep(self.lease_seconds)
        finally:
            with trio.CancelScope(shield=True):
                await conn.aclose()

    async def _deliver_inputs(self) -> None:
        """Client input left in the store for sessions running here goes to their executions
        (checked every poll_seconds; a node not waiting takes it when it asks, see
        AgentRuntime.inject_input)."""
        while True:
            await trio.sleep(self.poll_seconds)
            mine = sorted(self._running)
            if not mine:
                continue
            try:
                inputs = await self._claims.call(lambda conn: take_inputs(conn, mine))
            except StorageError as exc:
                log.warning("worker %s: reading client input failed: %s", self.worker_id, exc)
                continue
            for sid, node_id, content in inputs:
                if not await self.runtime.inject_input(node_id, content, execution_id=sid):
                    log.warning("worker %s: input for %s at %s found no waiting node",
                                self.worker_id, sid, node_id)

    def _taken_over(self, sid: str, engine: PgLog) -> None:
        log.warning("worker %s: session %s was taken over; stopping it here",
                    self.worker_id, sid)
        engine.fence(sid, -1)  # never write it again from here

    async def _claim_loop(self, work: trio.Nursery, engine: PgLog) -> None:
        agent = self.runtime.agent_name
        # a claim is one durable transaction: while busy, claim in batches of a quarter of
        # the slots (or whatever is free once no slot freed for poll_seconds)
        batch = max(1, self.concurrency // 4)
        timed_out = True
        while True:
            free = self.concurrency - len(self._running)
            claims: list[Claim] = []
            if free > 0 and (free >= batch or timed_out or not self._running):
                try:
                    claims = await self._claims.call(
                        lambda conn: claim(conn, self.worker_id, agent, free))
                except StorageError as exc:
                    log.warning("worker %s: claim failed: %s", self.worker_id, exc)
            for c in claims:
                self._running.add(c.session_id)
                engine.fence(c.session_id, c.epoch)
                work.start_soon(self._execute, c, engine, name=f"claimed {c.session_id}")
            if claims and len(claims) == free:
                continue  # the queue may hold more
            with trio.move_on_after(self.poll_seconds) as waited:
                await self._slot_freed.wait()
            timed_out = waited.cancelled_caught
            self._slot_freed = trio.Event()

    async def _execute(self, c: Claim, engine: PgLog) -> None:
        sid = c.session_id
        try:
            load = await self._claims.call(lambda conn: load_session(conn, sid))
            if load.status in TERMINAL:
                return
            if load.state is None:  # never ran: its first state.json, fenced and durable
                await engine.commit([self._first_state(load)])
            await trio.to_thread.run_sync(self._hydrate, load)
            await self.runtime.resume_nowait(sid)
            result = await self.runtime.wait_for_result(sid)
            if result.success:
                self.completed += 1
            elif await self._lease.call(lambda conn: lost(conn, self.worker_id, [sid])):
                self._taken_over(sid, engine)  # its writes were refused, it ended here
        except StaleOwnerError:
            self._taken_over(sid, engine)
        except HiveActorsError as exc:
            log.error("worker %s: session %s could not run: %s", self.worker_id, sid, exc)
        finally:
            engine.release(sid)
            self._running.discard(sid)
            self._slot_freed.set()
            with trio.CancelScope(shield=True):  # the cache of a session that ended here
                await trio.to_thread.run_sync(self._forget, sid)

    def _first_state(self, load: SessionLoad) -> FileOp:
        """The state.json of a queued session that never ran."""
        storage = self.runtime.storage_path
        assert storage is not None
        now = dt.datetime.now(dt.timezone.utc)
        return SessionStore(storage).state_op(SessionRecord(
            session_id=load.session_id, created_at=load.created_at, updated_at=now,
            agent_name=self.runtime.agent_name, entry_point=load.entry_point,
            input_data=load.input))

    def _forget(self, session_id: str) -> None:
        storage = self.runtime.storage_path
        assert storage is not None
        shutil.rmtree(SessionStore(storage).session_dir(session_id), ignore_errors=True)

    def _hydrate(self, load: SessionLoad) -> None:
        """Write the session's state.json and latest checkpoint into the local cache folder
        (read by the runtime's resume; never written back: the store has them)."""
        storage = self.runtime.storage_path
        assert storage is not None
        folder = SessionStore(storage).session_dir(load.session_id)
        shutil.rmtree(folder, ignore_errors=True)
        (folder / "checkpoints").mkdir(parents=True)
        state = load.state if load.state is not None else self._first_state(load).data
        (folder / "state.json").write_bytes(state)
        if load.checkpoint is not None:
            seq, kind, data = load.checkpoint
            (folder / "checkpoints" / checkpoint_file_name(seq, kind)).write_bytes(data)
