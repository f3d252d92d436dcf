"""The dashboard page served over HTTP by hypercorn (the browser tests: test_dashboard_browser)."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

import trio

from feed_support import FakeRuntime, run_bus
from hive_actors.feed import FeedConfig, open_event_feed


def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


async def test_dashboard_is_served_next_to_the_feed() -> None:
    async with trio.open_nursery() as nursery:
        runtime = FakeRuntime(await run_bus(nursery))
        config = FeedConfig(dashboard_port=0)
        async with open_event_feed(runtime, port=0, config=config) as info:
            assert info.dashboard_url == f"http://127.0.0.1:{info.dashboard_port}/"
            status, headers, body = await trio.to_thread.run_sync(_get, info.dashboard_url)
            assert status == 200 and headers["content-type"].startswith("text/html")
            assert b"/dashboard.js" in body and "script-src 'self'" in headers[
                "content-security-policy"]
            # offline: the page loads nothing from elsewhere (no CDN)
            assert re.findall(rb'(?:src|href)="([^"]*)"', body) == [b"/dashboard.css",
                                                                     b"/dashboard.js"]
            base = info.dashboard_url
            _, _, conf = await trio.to_thread.run_sync(_get, base + "config.json")
            assert json.loads(conf) == {"feed_port": info.port, "token_required": False}
            status, headers, _ = await trio.to_thread.run_sync(_get, base + "dashboard.js")
            assert status == 200 and "javascript" in headers["content-type"]
            status, headers, _ = await trio.to_thread.run_sync(_get, base + "dashboard.css")
            assert status == 200 and headers["content-type"].startswith("text/css")
            status, _, _ = await trio.to_thread.run_sync(_get, base + "../../etc/passwd")
            assert status == 404
        nursery.cancel_scope.cancel()
