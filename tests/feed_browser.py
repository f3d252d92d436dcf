"""A tiny headless-Chromium driver over the Chrome DevTools Protocol (CDP), on trio-websocket.

Enough for the dashboard test: open a page, evaluate JavaScript (awaiting promises), take a
screenshot. No third-party driver: CDP is JSON over one websocket, which trio-websocket speaks.
"""

from __future__ import annotations

import base64
import itertools
import json
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio
from trio_websocket import WebSocketConnection, open_websocket_url

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--remote-debugging-address=127.0.0.1",
         "--remote-debugging-port=0", "--window-size=1200,800")


class CDPError(Exception):
    """A CDP command failed or a page script threw."""


class Page:
    """One browser tab, attached through a flat CDP session."""

    def __init__(self, ws: WebSocketConnection, session_id: str) -> None:
        self.ws = ws
        self.session_id = session_id
        self._ids = itertools.count(1)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        return await _command(self.ws, self._ids, method, params, self.session_id)

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (promises are awaited)."""
        reply = await self.send("Runtime.evaluate", expression=expression, awaitPromise=True,
                                returnByValue=True)
        if "exceptionDetails" in reply:
            raise CDPError(f"{expression!r} threw: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    async def wait_for(self, condition: str, what: str) -> None:
        """Wait (in the page, polling every 50 ms) until ``condition`` is truthy."""
        script = ("new Promise((resolve) => { const t = setInterval(() => {"
                  f" if ({condition}) {{ clearInterval(t); resolve(true); }} }}, 50); }})")
        try:
            await self.evaluate(script)
        except CDPError as exc:
            raise CDPError(f"while waiting for {what}: {exc}") from None

    async def screenshot(self, path: Path) -> None:
        reply = await self.send("Page.captureScreenshot", format="png")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(reply["data"]))


async def _command(ws: WebSocketConnection, ids: Any, method: str, params: dict[str, Any],
                   session_id: str | None = None) -> dict[str, Any]:
    """Send one command and return its result; events arriving meanwhile are skipped.

    Commands are sent one at a time per connection, so the next reply with our id is ours.
    """
    message: dict[str, Any] = {"id": next(ids), "method": method, "params": params}
    if session_id is not None:
        message["sessionId"] = session_id
    await ws.send_message(json.dumps(message))
    while True:
        reply = json.loads(await ws.get_message())
        if reply.get("id") == message["id"] and reply.get("sessionId") == session_id:
            if "error" in reply:
                raise CDPError(f"{method}: {reply['error']}")
            return reply["result"]


async def _devtools_url(profile: Path, process: trio.Process) -> str:
    """The browser websocket URL Chromium writes to DevToolsActivePort once it listens."""
    port_file = profile / "DevToolsActivePort"
    while not port_file.exists() or len(port_file.read_text().splitlines()) < 2:
        if process.returncode is not None:
            raise CDPError(f"chromium exited with code {process.returncode} before listening")
        await trio.sleep(0.05)  # waiting on another process: nothing to wait on but the file
    port, path = port_file.read_text().splitlines()[:2]
    return f"ws://127.0.0.1:{port}{path}"


@asynccontextmanager
async def open_page(url: str, profile: Path) -> AsyncIterator[Page]:
    """Start headless Chromium with ``profile`` as its user data dir, open ``url``, yield the
    Page; the browser is killed on exit."""
    command = [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", "about:blank"]
    async with trio.open_nursery() as nursery:
        process = await nursery.start(lambda task_status: trio.run_process(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
            task_status=task_status))
        try:
            with trio.fail_after(20):
                browser_url = await _devtools_url(profile, process)
            async with open_websocket_url(browser_url, max_message_size=64 * 1024 * 1024) as ws:
                ids = itertools.count(1)
                target = await _command(ws, ids, "Target.createTarget", {"url": "about:blank"})
                attached = await _command(ws, ids, "Target.attachToTarget",
                                          {"targetId": target["targetId"], "flatten": True})
                page = Page(ws, attached["sessionId"])
                await page.send("Page.enable")
                await page.send("Page.navigate", url=url)
                await page.wait_for("document.readyState === 'complete'", "the page to load")
                yield page
        finally:
            process.kill()
