"""The dashboard page: a tiny ASGI app served by hypercorn's trio worker in the same process.

Routes (GET/HEAD only): ``/`` the page, ``/dashboard.js`` and ``/dashboard.css``,
``/config.json`` where the feed listens (port, whether a token is needed). Everything else is
404. The page itself talks to the runtime only through the websocket feed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from importlib import resources
from typing import Any

import trio

log = logging.getLogger(__name__)

# An ASGI callable: (scope, receive, send).
AsgiHandler = Callable[[Mapping[str, Any], Any, Any], Awaitable[None]]

_STATIC = resources.files("hive_actors.feed") / "static"
_FILES = {
    "/": ("dashboard.html", "text/html; charset=utf-8"),
    "/dashboard.js": ("dashboard.js", "text/javascript; charset=utf-8"),
    "/dashboard.css": ("dashboard.css", "text/css; charset=utf-8"),
}
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "connect-src 'self' ws: wss:; img-src 'self' data:; base-uri 'none'; form-action 'none'"
)


class DashboardApp:
    """ASGI 3 application serving the dashboard for a feed on ``feed_port``."""

    def __init__(self, feed_port: int, token_required: bool,
                 websocket: AsgiHandler | None = None) -> None:
        self.token_required = token_required
        self.set_feed_port(feed_port)
        self._cache: dict[str, bytes] = {}
        self._websocket = websocket

    def set_feed_port(self, feed_port: int) -> None:
        """Where the page connects (set once bound when it is this app's own port)."""
        self.config_json = json.dumps(
            {"feed_port": feed_port, "token_required": self.token_required}
        ).encode()

    async def __call__(self, scope: Mapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, send)
        elif scope["type"] == "websocket" and self._websocket is not None:
            await self._websocket(scope, receive, send)  # the feed, on this same port

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Mapping[str, Any], send: Any) -> None:
        method, path = scope["method"], scope["path"]
        if method not in ("GET", "HEAD"):
            status, body, ctype = 405, b"method not allowed\n", "text/plain"
        elif path == "/config.json":
            status, body, ctype = 200, self.config_json, "application/json"
        elif path in _FILES:
            name, ctype = _FILES[path]
            status, body = 200, self._read(name)
        else:
            status, body, ctype = 404, b"not found\n", "text/plain"
        headers = [
            (b"content-type", ctype.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"),
            (b"x-content-type-options", b"nosniff"),
            (b"content-security-policy", _CSP.encode()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})

    def _read(self, name: str) -> bytes:
        if name not in self._cache:
            self._cache[name] = (_STATIC / name).read_bytes()
        return self._cache[name]


async def serve_dashboard(host: str, port: int, feed_port: int, token_required: bool, *,
                          websocket: AsgiHandler | None = None, max_message_size: int = 0,
                          task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve the dashboard over HTTP until cancelled; ``task_status.started`` gets the port.
    With ``websocket``, websocket connections on the same port go to it (``feed_port`` is then
    0: the page's own port).

    Raises OSError when the port cannot be bound.
    """
    from hypercorn.config import Config
    from hypercorn.trio import serve

    config = Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.errorlog = logging.getLogger("hive_actors.feed.http.server")
    config.accesslog = None
    config.graceful_timeout = 1.0
    if max_message_size:
        config.websocket_max_message_size = max_message_size
    app = DashboardApp(feed_port, token_required, websocket)

    async def _serve(task_status: trio.TaskStatus[list[str]]) -> None:
        await serve(app, config, task_status=task_status, mode="asgi")

    async with trio.open_nursery() as nursery:
        binds = await nursery.start(_serve)
        bound = int(binds[0].rsplit(":", 1)[1])
        if websocket is not None:
            app.set_feed_port(bound)
        task_status.started(bound)
