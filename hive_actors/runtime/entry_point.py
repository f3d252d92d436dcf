"""EntryPointSpec: how executions enter the graph (re-exported by execution_stream)."""

from __future__ import annotations

from typing import Any

import attrs

TRIGGER_TYPES = ("manual", "timer", "event")
ISOLATION_LEVELS = ("isolated", "shared", "synchronized")


@attrs.frozen
class EntryPointSpec:
    id: str
    entry_node: str
    name: str = ""
    trigger_type: str = attrs.field(default="manual", validator=attrs.validators.in_(TRIGGER_TYPES))
    # timer: {"interval_seconds": 60} or {"cron": "*/5 * * * *"};
    # event: {"event_types": [...], "stream_id": ..., ...filters}
    trigger_config: dict[str, Any] = attrs.field(factory=dict)
    isolation_level: str = attrs.field(
        default="isolated", validator=attrs.validators.in_(ISOLATION_LEVELS)
    )
    max_concurrent: int = attrs.field(default=100, validator=attrs.validators.ge(1))
    max_queued: int = attrs.field(default=10_000, validator=attrs.validators.ge(0))
