"""One client connection: reads requests, pumps subscribed events, writes through an Outbox.

Tasks per connection (all children of the connection's nursery, all gone when it ends):
the writer (Outbox -> websocket), the heartbeat (ping; no pong in time closes the
connection), and one pump per subscription (bus subscription -> Outbox, never waiting).
The request loop runs in the connection task itself, one request at a time, so replies come
back in request order. When the connection ends, input requests it was sent and that nobody
answered are declined (the execution pauses there, resumable) unless another client listens.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

from hive_actors.feed import protocol as p
from hive_actors.feed.config import FeedConfig
from hive_actors.feed.dispatch import call_runtime, error_for
from hive_actors.feed.outbox import Outbox
from hive_actors.events import AgentEvent, EventType

log = logging.getLogger(__name__)

# websocket close codes
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008

# At most this many executions with unanswered input requests are remembered per connection
# (the oldest is forgotten first).
MAX_PENDING_EXECUTIONS = 256
_ENDED = frozenset({EventType.EXECUTION_COMPLETED, EventType.EXECUTION_FAILED,
                    EventType.EXECUTION_PAUSED, EventType.EXECUTION_CANCELLED})


class Connection:
    """Serves one accepted websocket until the client leaves, goes silent, or the feed stops."""

    def __init__(self, ws: WebSocketConnection, runtime: Any, config: FeedConfig) -> None:
        self.ws = ws
        self.runtime = runtime
        self.config = config
        self.outbox = Outbox(config.event_buffer_size, config.reply_buffer_size)
        self._subscriptions: dict[str, trio.CancelScope] = {}
        self._ids = itertools.count(1)
        self._nursery: trio.Nursery | None = None
        self._close_reason: str | None = None
        # Input requests sent to this client and not seen answered:
        # execution_id -> {node_id: stream_id}. Only changed synchronously (no await between
        # read and write), by this connection's own tasks.
        self._asked: dict[str, dict[str, str]] = {}

    async def serve(self) -> None:
        """Run until the connection closes; never raises for client mistakes."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._until_closed, self._write_loop)
            nursery.start_soon(self._until_closed, self._heartbeat)
            await self._until_closed(self._read_loop)
        self._nursery = None
        # The client left (closed, died, went silent); not reached when the feed itself is
        # cancelled (shutdown cancels the executions too). The pumps, and so this connection's
        # bus subscriptions, are gone by now; this never awaits.
        self._decline_unanswered()
        if self._close_reason is not None:
            with trio.move_on_after(1.0):
                await self.ws.aclose(CLOSE_GOING_AWAY, self._close_reason)

    async def _until_closed(self, task: Any) -> None:
        """Run ``task``; when it ends or the socket closes, end the whole connection."""
        try:
            await task()
        except ConnectionClosed:
            pass
        finally:
            if self._nursery is not None:
                self._nursery.cancel_scope.cancel()

    # -- reading requests -------------------------------------------------------------------

    async def _read_loop(self) -> None:
        while True:
            try:
                frame = await self.ws.get_message()
            except ConnectionClosed:
                return
            await self.outbox.wait_reply_room()
            reply = await self._handle(frame)
            if reply is not None:
                self.outbox.push_reply(reply)

    async def _handle(self, frame: str | bytes) -> p.Reply | None:
        try:
            request = p.parse_request(frame)
        except p.ProtocolError as exc:
            return exc.reply
        except Exception as exc:  # a frame the parser did not foresee costs only its request
            return error_for(None, "frame", exc)
        kind = type(request).__name__
        try:
            if isinstance(request, p.Subscribe):
                return await self._subscribe(request)
            if isinstance(request, p.Unsubscribe):
                return self._unsubscribe(request)
            result = await call_runtime(self.runtime, request)
            if isinstance(request, p.InjectInput) and request.execution_id is not None:
                if isinstance(result, dict) and result.get("delivered"):
                    self._note_answered(request.execution_id, request.node_id)
            if isinstance(request, p.GetStats) and isinstance(result, dict):
                result["connection"] = {"subscriptions": sorted(self._subscriptions),
                                        "events_dropped": self.outbox.total_dropped}
            return p.Result(request.id, result)
        except Exception as exc:  # one bad request never ends the connection
            return error_for(request.id, kind, exc)

    # -- subscriptions ----------------------------------------------------------------------

    async def _subscribe(self, request: p.Subscribe) -> p.Reply | None:
        if len(self._subscriptions) >= self.config.max_subscriptions:
            return p.Error(
                request.id, p.LIMIT,
                f"subscribe: at most {self.config.max_subscriptions} subscriptions per connection",
            )
        bus = self.runtime.event_bus
        bus.retain_history(None)  # a runtime restarted under the feed has a new bus
        sub_id = f"s{next(self._ids)}"
        replied = trio.Event()
        assert self._nursery is not None
        scope = await self._nursery.start(self._pump, bus, sub_id, request, replied)
        self._subscriptions[sub_id] = scope
        self.outbox.activate(sub_id)
        # The reply is queued before the pump may queue events, so it precedes them all.
        self.outbox.push_reply(
            p.Result(request.id, {"subscription": sub_id, "next_seq": bus.next_offset})
        )
        replied.set()
        return None

    def _unsubscribe(self, request: p.Unsubscribe) -> p.Reply:
        scope = self._subscriptions.pop(request.subscription, None)
        if scope is None:
            return p.Error(
                request.id, p.NOT_FOUND, f"unsubscribe: no subscription {request.subscription!r}"
            )
        scope.cancel()
        self.outbox.deactivate(request.subscription)
        return p.Result(request.id, {"subscription": request.subscription})

    async def _pump(self, bus: Any, sub_id: str, request: p.Subscribe, replied: trio.Event, *,
                    task_status: trio.TaskStatus[trio.CancelScope] = trio.TASK_STATUS_IGNORED,
                    ) -> None:
        """Move one bus subscription's events into the outbox; never waits on the client.

        The bus subscription is open once started (nothing published after is missed);
        events flow once ``replied`` is set.
        """
        with trio.CancelScope() as scope:
            async with bus.open_subscription(
                request.event_types,
                stream_id=request.stream_id,
                execution_id=request.execution_id,
                node_id=request.node_id,
                buffer_size=self.config.bus_buffer_size,
                since=request.since,
            ) as sub:
                task_status.started(scope)
                await replied.wait()
                async for event in sub:
                    if _is_marker_of(event, sub.id):
                        self.outbox.push_gap(sub_id, int(event.data.get("count", 0)))
                    else:
                        self._track_input(event)
                        self.outbox.push_event(sub_id, sub.last_offset, event)
        # The bus stopped: the subscription ended without the client asking.
        self._subscriptions.pop(sub_id, None)

    # -- input requests this client may answer ----------------------------------------------

    def _track_input(self, event: AgentEvent) -> None:
        """Remember input requests sent to this client; forget answered or ended ones."""
        if event.type is EventType.CLIENT_INPUT_REQUESTED and event.node_id is not None:
            nodes = self._asked.pop(event.execution_id, {})
            nodes[event.node_id] = event.stream_id
            self._asked[event.execution_id] = nodes  # newest last
            if len(self._asked) > MAX_PENDING_EXECUTIONS:
                del self._asked[next(iter(self._asked))]
        elif event.type is EventType.CLIENT_INPUT_RECEIVED and event.node_id is not None:
            self._note_answered(event.execution_id, event.node_id)
        elif event.type in _ENDED:
            self._asked.pop(event.execution_id, None)

    def _note_answered(self, execution_id: str, node_id: str) -> None:
        nodes = self._asked.get(execution_id)
        if nodes is not None:
            nodes.pop(node_id, None)
            if not nodes:
                del self._asked[execution_id]

    def _decline_unanswered(self) -> None:
        """This client is gone: each input request it was sent, still unanswered and heard by
        no other live subscriber, is declined, so its execution pauses there (resumable with
        the reply) instead of waiting forever. A node no longer waiting is left alone."""
        asked, self._asked = self._asked, {}
        bus = self.runtime.event_bus
        for execution_id, nodes in asked.items():
            for node_id, stream_id in nodes.items():
                if bus.has_subscribers(EventType.CLIENT_INPUT_REQUESTED, stream_id=stream_id,
                                       execution_id=execution_id, node_id=node_id):
                    continue
                try:
                    if self.runtime.decline_input(node_id, execution_id):
                        log.info("feed: client left; execution %s pauses at %s for input",
                                 execution_id, node_id)
                except Exception:  # one failure must not hide the other declines
                    log.exception("feed: declining input of %s at %s failed",
                                  execution_id, node_id)

    # -- writing and liveness ---------------------------------------------------------------

    async def _write_loop(self) -> None:
        while True:
            message = await self.outbox.next_message()
            try:
                text = p.encode(message)
            except Exception as exc:  # a value that cannot be encoded costs only its message
                log.exception("feed: cannot encode a %s message", type(message).__name__)
                reply_id = message.id if isinstance(message, (p.Result, p.Error)) else None
                text = p.encode(p.Error(reply_id, p.INTERNAL, f"cannot encode the reply: "
                                                              f"{type(exc).__name__}"))
            await self.ws.send_message(text)

    async def _heartbeat(self) -> None:
        while True:
            await trio.sleep(self.config.heartbeat_interval)
            with trio.move_on_after(self.config.idle_timeout):
                await self.ws.ping()
                continue
            log.info("feed: closing a connection that did not answer a ping in time")
            self._close_reason = f"no pong within {self.config.idle_timeout} s"
            return


def _is_marker_of(event: AgentEvent, bus_sub_id: str) -> bool:
    """Whether ``event`` is the bus's own drop marker for this subscription."""
    return (
        event.type is EventType.EVENTS_DROPPED
        and event.seq == 0
        and event.data.get("subscription_id") == bus_sub_id
    )
