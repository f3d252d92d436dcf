"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def hive_fixtures_dir() -> Path:
    """The corpus of real Hive agent exports (shared/ sits beside the repository)."""
    return Path(__file__).parents[1] / ".." / "shared" / "fixtures" / "hive-agents"
