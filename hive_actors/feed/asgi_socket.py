"""AsgiSocket: an ASGI websocket (hypercorn's) with the few methods `Connection` uses of a
trio-websocket connection, so the feed can share the dashboard's port.

``get_message`` / ``send_message`` raise trio-websocket's ``ConnectionClosed`` once the client
has gone, as trio-websocket does. ``ping`` returns at once: hypercorn pings the client itself
(``websocket_ping_interval``), as ASGI gives the application no ping of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trio_websocket import CloseReason, ConnectionClosed


class AsgiSocket:
    def __init__(self, receive: Any, send: Any) -> None:
        self._receive = receive
        self._send = send
        self.closed = False

    def _gone(self, code: int = 1006, reason: str | None = None) -> ConnectionClosed:
        self.closed = True
        return ConnectionClosed(CloseReason(code, reason))

    async def get_message(self) -> str | bytes:
        while not self.closed:
            message = await self._receive()
            if message["type"] == "websocket.receive":
                text = message.get("text")
                return text if text is not None else bytes(message.get("bytes") or b"")
            if message["type"] == "websocket.disconnect":
                raise self._gone(int(message.get("code", 1005)))
        raise self._gone()

    async def send_message(self, text: str) -> None:
        if self.closed:
            raise self._gone()
        try:
            await self._send({"type": "websocket.send", "text": text})
        except Exception as exc:  # hypercorn refuses to send on a closed connection
            raise self._gone() from exc

    async def ping(self) -> None:
        return

    async def aclose(self, code: int = 1000, reason: str | None = None) -> None:
        if not self.closed:
            self.closed = True
            try:
                await self._send({"type": "websocket.close", "code": code, "reason": reason or ""})
            except Exception:  # noqa: BLE001 - already gone: nothing to close
                pass


class ScopeRequest:
    """An ASGI websocket scope seen as a handshake request: ``path`` (with its query) and
    ``headers`` as (name, value) byte pairs, what the feed's access check reads."""

    def __init__(self, scope: Mapping[str, Any]) -> None:
        query = scope.get("query_string", b"").decode("latin-1")
        self.path = scope.get("path", "/") + (f"?{query}" if query else "")
        self.headers = [(bytes(k), bytes(v)) for k, v in scope.get("headers", ())]
