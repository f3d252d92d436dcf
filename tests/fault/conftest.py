"""Fault tests: write the figures they collected to test-artifacts/fault-stats.json."""

from __future__ import annotations

import json
from pathlib import Path

from fault.support import STATS

ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"


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
