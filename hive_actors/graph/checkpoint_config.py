"""When the executor writes checkpoints."""

from __future__ import annotations

import attrs


@attrs.frozen
class CheckpointConfig:
    enabled: bool = True
    checkpoint_on_node_start: bool = False
    checkpoint_on_node_complete: bool = True
    # keep at most this many checkpoint files per session (None = keep all)
    keep_last: int | None = None
