"""Fault tests: which run in which set, and the figures they collect.

``make test`` (``-m 'not slow'``) runs every fault test not marked ``slow``: the fast
samples and the small tests. ``make test-fault`` (``-m slow tests/fault``) runs the full set:
the ``slow`` tests plus every small test, but not the ``fast_sample`` variants the slow ones
replace. The figures go to test-artifacts/fault-stats.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fault.support import STATS

ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "fast_sample: a fast stand-in for a slow fault test (not in make test-fault)")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    if (config.getoption("markexpr", "") or "").strip() != "slow":
        return
    here = Path(__file__).parent
    for item in items:
        in_fault = here in Path(str(item.fspath)).parents
        if in_fault and not item.get_closest_marker("slow") and not item.get_closest_marker(
                "fast_sample"):
            item.add_marker(pytest.mark.slow)  # a small test: part of the full set too


def pytest_sessionfinish(session, exitstatus):  # noqa: ARG001
    if not STATS.counts:
        return
    ARTIFACTS.mkdir(exist_ok=True)
    markexpr = session.config.getoption("markexpr", "") or ""
    figures = {"selection": markexpr or "all", "exit_status": int(exitstatus), **STATS.as_dict()}
    (ARTIFACTS / "fault-stats.json").write_text(json.dumps(figures, indent=1) + "\n")


def pytest_terminal_summary(terminalreporter):
    if STATS.counts:
        line = ", ".join(f"{k}={v}" for k, v in STATS.as_dict().items())
        terminalreporter.write_line(f"fault figures: {line}")
