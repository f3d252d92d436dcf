"""The feed server actor: accepts websocket clients (trio-websocket) and serves each one.

``serve_feed`` runs until cancelled and follows trio's ``nursery.start`` protocol;
``open_event_feed`` runs it (and optionally the dashboard page) inside the caller's trio app
for the duration of an ``async with`` block.
"""

from __future__ import annotations

import functools
import hmac
import logging
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs
import trio
from trio_websocket import WebSocketRequest, WebSocketServer, serve_websocket

from hive_actors.errors import ConfigurationError
from hive_actors.feed.config import SAME_PORT, TOKEN_ENV, FeedConfig, is_loopback
from hive_actors.feed.asgi_socket import AsgiSocket, ScopeRequest
from hive_actors.feed.connection import CLOSE_POLICY, Connection

log = logging.getLogger(__name__)


@attrs.frozen
class FeedInfo:
    """Where a running feed listens. ``dashboard_url`` is None without a dashboard."""

    host: str
    port: int
    url: str
    dashboard_port: int | None = None
    dashboard_url: str | None = None


def resolve_config(config: FeedConfig) -> FeedConfig:
    """Fill the token from the environment and check the binding is safe.

    Raises ConfigurationError when a non-loopback host has no token.
    """
    token = config.token or os.environ.get(TOKEN_ENV) or None
    if token is not None and not token.strip():
        raise ConfigurationError("feed: the token is blank; give a real secret or none")
    if not is_loopback(config.host) and not token:
        raise ConfigurationError(
            f"feed: binding {config.host!r} exposes the runtime beyond this machine; "
            f"give a token (--token or the {TOKEN_ENV} environment variable)"
        )
    return attrs.evolve(config, token=token)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def dashboard_origins(host: str, port: int) -> set[str]:
    """The browser origins the dashboard page on ``host:port`` may be loaded from."""
    names = {_url_host(host)}
    if is_loopback(host):
        names |= {"localhost", "127.0.0.1"}
    return {f"http://{name}:{port}" for name in names}


def _header(request: WebSocketRequest, name: str) -> str | None:
    wanted = name.lower().encode()
    for key, value in request.headers:
        if key.lower() == wanted:
            return value.decode("latin-1")
    return None


def _offered_token(request: WebSocketRequest) -> str | None:
    """The token from ``?token=`` or an ``Authorization: Bearer`` header."""
    values = parse_qs(urlsplit(request.path).query).get("token")
    if values:
        return values[0]
    auth = _header(request, "authorization")
    if auth and auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return None


def check_request(request: WebSocketRequest, config: FeedConfig,
                  origins: frozenset[str]) -> tuple[int, str] | None:
    """None if the handshake may be accepted, else the (HTTP status, reason) to reject it.

    With a token, the offered token must match (constant-time compare). Without one (loopback
    only), browser pages from other origins are refused, so a random web page cannot drive the
    runtime through the user's browser.
    """
    if config.token is not None:
        offered = _offered_token(request) or ""
        if not hmac.compare_digest(offered.encode(), config.token.encode()):
            return 401, "missing or wrong token"
        return None
    origin = _header(request, "origin")
    if origin is not None and origin not in origins:
        return 403, f"origin {origin} is not allowed"
    return None


class FeedServer:
    """Accepts websocket clients and runs one Connection per client."""

    def __init__(self, runtime: Any, config: FeedConfig) -> None:
        self.runtime = runtime
        self.config = config
        self.connections = 0
        self._origins = frozenset(config.allowed_origins)
        # clients replay from the bus history (``since``): it must keep every event type
        runtime.event_bus.retain_history(None)

    def allow_origin(self, origin: str) -> None:
        self._origins = self._origins | {origin}

    def _refusal(self, request: Any) -> tuple[int, str] | None:
        refusal = check_request(request, self.config, self._origins)
        if refusal is None and self.connections >= self.config.max_connections:
            refusal = 503, "too many connections"
        if refusal is not None:
            log.info("feed: refused a connection: %s", refusal[1])
        return refusal

    async def _serve_client(self, accept: Any) -> None:
        """Take a connection slot (before the first await: the limit holds), accept, serve.
        Whatever goes wrong with this client ends its connection only: nothing but
        cancellation leaves this method, so the server's nursery never sees it."""
        self.connections += 1
        try:
            ws = await accept()
            await Connection(ws, self.runtime, self.config).serve()
        except Exception:
            log.exception("feed: a connection failed; the server goes on")
        finally:
            self.connections -= 1

    async def handle(self, request: WebSocketRequest) -> None:
        """Serve one client of trio-websocket's server."""
        try:
            refusal = self._refusal(request)
            if refusal is not None:
                await request.reject(refusal[0], body=refusal[1].encode())
                return
        except Exception:
            log.exception("feed: a handshake failed; the server goes on")
            return
        await self._serve_client(request.accept)

    async def handle_asgi(self, scope: Mapping[str, Any], receive: Any, send: Any) -> None:
        """A websocket that reached the dashboard's port (`SAME_PORT`): the same checks,
        then the same Connection."""
        if (await receive())["type"] != "websocket.connect":
            return
        refusal = self._refusal(ScopeRequest(scope))
        if refusal is not None:
            await send({"type": "websocket.close", "code": CLOSE_POLICY, "reason": refusal[1]})
            return

        async def accept() -> AsgiSocket:
            await send({"type": "websocket.accept"})
            return AsgiSocket(receive, send)

        await self._serve_client(accept)

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen until cancelled; ``task_status.started`` gets the bound port."""

        async def listen(task_status: trio.TaskStatus[WebSocketServer]) -> None:
            await serve_websocket(
                self.handle, self.config.host, self.config.port, None,
                max_message_size=self.config.max_message_size, task_status=task_status,
            )

        async with trio.open_nursery() as nursery:
            ws_server = await nursery.start(listen)
            task_status.started(ws_server.port)


async def serve_feed(runtime: Any, host: str | None = None, port: int | None = None,
                     token: str | None = None, *, config: FeedConfig | None = None,
                     task_status: trio.TaskStatus[FeedInfo] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve the event feed (and the dashboard if ``config.dashboard_port`` is set) until
    cancelled. ``await nursery.start(serve_feed, runtime, ...)`` returns a FeedInfo.

    ``host``/``port``/``token`` override ``config``; the token also comes from the
    HIVE_ACTORS_FEED_TOKEN environment variable. Raises ConfigurationError for a
    non-loopback host without a token, OSError when a port cannot be bound.
    """
    config = config or FeedConfig()
    config = resolve_config(attrs.evolve(
        config,
        host=config.host if host is None else host,
        port=config.port if port is None else port,
        token=config.token if token is None else token,
    ))
    server = FeedServer(runtime, config)
    if config.dashboard_port == SAME_PORT:
        await _serve_on_one_port(server, config, task_status)
        return
    async with trio.open_nursery() as nursery:
        try:
            feed_port = await nursery.start(server.run)
        except (OSError, BaseExceptionGroup) as exc:
            _raise_bind_error(exc, "event feed", config.host, config.port)
            raise
        host_part = _url_host(config.host)
        info = FeedInfo(host=config.host, port=feed_port, url=f"ws://{host_part}:{feed_port}/")
        if config.dashboard_port is not None:
            from hive_actors.feed.http import serve_dashboard

            wanted = feed_port + 1 if config.dashboard_port == -1 else config.dashboard_port
            try:
                dash_port = await nursery.start(
                    serve_dashboard, config.host, wanted, feed_port, config.token is not None
                )
            except (OSError, BaseExceptionGroup) as exc:
                _raise_bind_error(exc, "dashboard", config.host, wanted)
                raise
            for origin in dashboard_origins(config.host, dash_port):
                server.allow_origin(origin)
            info = attrs.evolve(info, dashboard_port=dash_port,
                                dashboard_url=f"http://{host_part}:{dash_port}/")
        log.info("feed: listening on %s", info.url)
        task_status.started(info)


async def _serve_on_one_port(server: FeedServer, config: FeedConfig,
                             task_status: trio.TaskStatus[FeedInfo]) -> None:
    """The page and the websocket on ``config.port``, both served by hypercorn."""
    from hive_actors.feed.http import serve_dashboard

    async with trio.open_nursery() as nursery:
        try:
            port = await nursery.start(functools.partial(
                serve_dashboard, config.host, config.port, 0, config.token is not None,
                websocket=server.handle_asgi, max_message_size=config.max_message_size))
        except (OSError, BaseExceptionGroup) as exc:
            _raise_bind_error(exc, "event feed and dashboard", config.host, config.port)
            raise
        for origin in dashboard_origins(config.host, port):
            server.allow_origin(origin)
        host_part = _url_host(config.host)
        info = FeedInfo(host=config.host, port=port, url=f"ws://{host_part}:{port}/",
                        dashboard_port=port, dashboard_url=f"http://{host_part}:{port}/")
        log.info("feed and dashboard: listening on %s", info.dashboard_url)
        task_status.started(info)


def _raise_bind_error(exc: BaseException, what: str, host: str, port: int) -> None:
    """If ``exc`` is (a group of one) OSError from binding, raise one naming what could not
    listen where; otherwise return."""
    real = exc
    while isinstance(real, BaseExceptionGroup) and len(real.exceptions) == 1:
        real = real.exceptions[0]
    if isinstance(real, OSError):
        raise OSError(f"{what} cannot listen on {host}:{port}: {real.strerror or real} "
                      "(choose another --port, or 0 for any free one)") from exc


@asynccontextmanager
async def open_event_feed(runtime: Any, host: str | None = None, port: int | None = None,
                          token: str | None = None, *,
                          config: FeedConfig | None = None) -> AsyncIterator[FeedInfo]:
    """Run the feed beside the caller's own tasks for the duration of the block.

    Yields the FeedInfo (bound port, URLs); leaving the block stops the server and closes
    every client connection. Raises as :func:`serve_feed`.
    """
    async with trio.open_nursery() as nursery:
        info = await nursery.start(
            lambda task_status: serve_feed(runtime, host, port, token, config=config,
                                           task_status=task_status)
        )
        try:
            yield info
        finally:
            nursery.cancel_scope.cancel()
