"""The dashboard page: served over HTTP by hypercorn, and driven in headless Chromium."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import trio

from feed_browser import CHROMIUM, open_page
from feed_support import FakeRuntime, interview_graph, interview_llm, run_bus
from hive_actors.feed import SAME_PORT, FeedConfig, open_event_feed
from hive_actors.graph.spec import Goal
from hive_actors.runtime.agent_runtime import open_agent_runtime

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


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
            base = info.dashboard_url
            _, _, conf = await trio.to_thread.run_sync(_get, base + "config.json")
            assert json.loads(conf) == {"feed_port": info.port, "token_required": False}
            status, headers, _ = await trio.to_thread.run_sync(_get, base + "dashboard.js")
            assert status == 200 and "javascript" in headers["content-type"]
            status, _, _ = await trio.to_thread.run_sync(_get, base + "../../etc/passwd")
            assert status == 404
        nursery.cancel_scope.cancel()


@pytest.mark.skipif(not CHROMIUM.exists(),
                    reason="needs Debian's chromium at /usr/bin/chromium "
                           "(apt-get install -y chromium)")
@pytest.mark.parametrize("dashboard_port", [0, SAME_PORT], ids=["own-port", "same-port"])
async def test_dashboard_in_chromium_triggers_answers_input_and_sees_completion(
        tmp_path: Path, dashboard_port: int) -> None:
    agent: dict[str, Any] = dict(graph=interview_graph(), goal=Goal(id="goal"), llm=interview_llm())
    async with open_agent_runtime(**agent) as runtime:
        config = FeedConfig(dashboard_port=dashboard_port)
        async with open_event_feed(runtime, port=0, config=config) as info:
            assert info.dashboard_url is not None
            async with open_page(info.dashboard_url, tmp_path / "profile") as page:
                with trio.fail_after(30):
                    await page.wait_for("document.querySelector('[data-trigger=default]')",
                                        "the entry point list")
                    await page.evaluate("document.querySelector('[data-trigger=default]').click()")
                    await page.wait_for("document.querySelector('#input-form.visible')",
                                        "the input box")
                    prompt = await page.evaluate(
                        "document.querySelector('#input-prompt').textContent")
                    assert prompt == "Which topic shall I research?"
                    await page.evaluate(
                        "document.querySelector('#input-text').value = 'honey bees';"
                        "document.querySelector('#input-send').click()")
                    await page.wait_for("document.querySelector('tr[data-status=completed]')",
                                        "the execution to complete")
                    output = await page.evaluate("document.querySelector('#output').textContent")
                    current = await page.evaluate(
                        "document.querySelector('tr[data-status=completed] td:last-child')"
                        ".textContent")
                    await page.screenshot(ARTIFACTS / "dashboard.png")
    assert "Which topic shall I research?" in output and "> honey bees" in output
    assert '"topic":"bees"' in output  # the scripted intake node's output
    assert current == "work"
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 1000
