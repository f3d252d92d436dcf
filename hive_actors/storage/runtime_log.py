"""RuntimeLog: ``{storage}/runtime_logs/runtime.jsonl``, the runtime's cross-session log.

One JSON object a line, ``{"time", "event", "pid", ...}``: the runtime starting and stopping,
sessions found interrupted and resumed, actors crashing and restarting. Each line is appended
whole (a failed append is cut back, never left torn) and fsynced before `write` returns.
When the file passes ``max_bytes`` it is rotated: ``runtime.jsonl`` becomes ``runtime.1.jsonl``
(``.1`` becomes ``.2``, ...), keeping ``keep`` old files. The log is a diagnostic: a failed write
is logged with `logging` and never fails the runtime.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from hive_actors.errors import CorruptFileError, StorageError
from hive_actors.storage.atomic import append_bytes, ensure_dir
from hive_actors.storage.session_store import utc_now

__all__ = ["RuntimeLog"]

log = logging.getLogger(__name__)


class RuntimeLog:
    def __init__(self, storage_path: Path, *, max_bytes: int = 1 << 20, keep: int = 3) -> None:
        self.dir = Path(storage_path) / "runtime_logs"
        self.path = self.dir / "runtime.jsonl"
        self.max_bytes = max_bytes
        self.keep = keep

    def write(self, event: str, **data: Any) -> None:
        """Append one line (blocking: a small fsynced append). Never raises."""
        line = {"time": utc_now().isoformat(), "event": event, "pid": os.getpid(), **data}
        raw = (json.dumps(line, ensure_ascii=False, default=str) + "\n").encode()
        try:
            ensure_dir(self.dir)
            self._rotate_if_full()
            append_bytes(self.path, raw)
        except (StorageError, OSError) as exc:
            log.warning("runtime log %s: %s", self.path, exc)

    def read(self) -> list[dict[str, Any]]:
        """The lines of the current file (not the rotated ones), oldest first. Raises
        `CorruptFileError` naming the file and line if one is not JSON."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        out = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except (ValueError, RecursionError) as exc:
                raise CorruptFileError(str(self.path), f"line {n} is not JSON ({exc})") from None
        return out

    def _rotate_if_full(self) -> None:
        try:
            if self.path.stat().st_size < self.max_bytes:
                return
        except FileNotFoundError:
            return
        for i in range(self.keep - 1, 0, -1):
            older = self.dir / f"runtime.{i}.jsonl"
            if older.exists():
                os.replace(older, self.dir / f"runtime.{i + 1}.jsonl")
        os.replace(self.path, self.dir / "runtime.1.jsonl")
