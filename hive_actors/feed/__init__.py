"""The websocket event feed and the live dashboard page (see docs/feed.md)."""

from hive_actors.feed.config import SAME_PORT, TOKEN_ENV, FeedConfig
from hive_actors.feed.server import FeedInfo, open_event_feed, serve_feed

__all__ = ["SAME_PORT", "TOKEN_ENV", "FeedConfig", "FeedInfo", "open_event_feed", "serve_feed"]
