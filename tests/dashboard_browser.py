"""Playwright's sync API driving Debian's chromium (never a browser Playwright downloads).

The feed runs in the test's trio loop; the page is driven from a worker thread
(``trio.to_thread.run_sync``), as Playwright's sync API runs its own event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
TIMEOUT_MS = 30_000

# Records every data-state change of the graph's nodes, in order: a MutationObserver record
# holds the old value; the new one is the next record's old value (or the current value).
RECORD_STATES = """() => {
  window.__records = [];
  new MutationObserver((records) => {
    for (const r of records) window.__records.push([r.target.dataset.nodeId, r.oldValue]);
  }).observe(document.querySelector('#graph svg'),
             { subtree: true, attributeOldValue: true, attributeFilter: ['data-state'] });
}"""
READ_STATES = """() => {
  const now = (n) => document.querySelector(`#graph [data-node-id="${n}"]`).dataset.state;
  const rs = window.__records;
  return rs.map(([n, old], i) => {
    const next = rs.slice(i + 1).find(([m]) => m === n);
    return [n, old, next ? next[1] : now(n)];
  }).filter(([, old, value]) => old !== value).map(([n, , value]) => [n, value]);
}"""


@contextmanager
def open_page(url: str, width: int = 1200, height: int = 800) -> Iterator[Any]:
    """A fresh headless chromium page at ``url``; closed (with the browser) on exit."""
    from playwright.sync_api import sync_playwright

    # Playwright runs a plain asyncio loop in this thread. Once trio_asyncio is imported (by
    # the litellm tests), the policy set here is this thread's only and keeps its loops out.
    asyncio.set_event_loop_policy(asyncio.DefaultEventLoopPolicy())
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
            try:
                page = browser.new_page(viewport={"width": width, "height": height})
                page.set_default_timeout(TIMEOUT_MS)
                page.goto(url)
                yield page
            finally:
                browser.close()
    finally:
        asyncio.set_event_loop_policy(None)


def shot(page: Any, name: str) -> Path:
    path = ARTIFACTS / name
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path
