"""Shared pytest fixtures."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def hive_fixtures_dir() -> Path:
    """The corpus of real Hive agent exports (shared/ sits beside the repository)."""
    return Path(__file__).parents[1] / ".." / "shared" / "fixtures" / "hive-agents"


@pytest.fixture
def devnull_stdin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A real (empty) stdin for the headless runner, which reads client input from it."""
    with open(os.devnull) as devnull:
        monkeypatch.setattr(sys, "stdin", devnull)
        yield
