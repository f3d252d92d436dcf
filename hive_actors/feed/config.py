"""FeedConfig: every knob of the event feed, with documented defaults."""

from __future__ import annotations

import ipaddress

import attrs

TOKEN_ENV = "HIVE_ACTORS_FEED_TOKEN"
# dashboard_port: serve the page and the websocket on the feed's own port (hypercorn serves both)
SAME_PORT = -2


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@attrs.frozen
class FeedConfig:
    """How the feed server behaves. Pass only what you change.

    ``host`` defaults to loopback; any other host requires a ``token``. ``port`` 0 picks a free
    port. ``dashboard_port``: None serves no page, 0 picks a free port, -1 uses ``port + 1``,
    `SAME_PORT` serves page and websocket on ``port`` (one port for a browser and a firewall).
    """

    host: str = "127.0.0.1"
    port: int = attrs.field(default=8765)
    token: str | None = None
    dashboard_port: int | None = None
    # A client frame longer than this (characters) closes the connection with code 1009.
    max_message_size: int = 64 * 1024
    # Events queued per connection before the oldest are dropped (and reported).
    event_buffer_size: int = 1000
    # Replies queued per connection before the server stops reading that client's requests.
    reply_buffer_size: int = 64
    # Buffer of each bus subscription feeding a connection (drained as fast as events arrive).
    bus_buffer_size: int = 1000
    max_subscriptions: int = 32
    max_connections: int = 100
    # The server pings every ``heartbeat_interval`` s; no pong within ``idle_timeout`` s
    # (a dead or stuck client) closes the connection.
    heartbeat_interval: float = 20.0
    idle_timeout: float = 30.0
    # Browser origins allowed to connect besides the dashboard's own (a token lifts the check).
    allowed_origins: tuple[str, ...] = ()

    @port.validator
    def _check_port(self, _attribute: object, port: int) -> None:
        if not 0 <= port <= 65535:
            raise ValueError(f"port {port} is out of range (0-65535; 0 picks a free port)")
