"""Execution statuses: one vocabulary for results, session records, events and the CLI."""

from __future__ import annotations

import enum


class ExecutionStatus(str, enum.Enum):
    """Where an execution stands. A ``str`` enum: JSON and comparisons with text are unchanged."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    PAUSED = "paused"
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        return self.value

