"""Shared helpers of the fault tests: the figures they collect and the session-folder check."""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from hive_actors.storage.atomic import is_temp_name
from hive_actors.storage.checkpoint_store import CheckpointStore
from hive_actors.storage.session_store import decode_record, read_jsonl

AGENTS = Path(__file__).parent / "agents"


class Stats:
    """Counters written to test-artifacts/fault-stats.json at the end of the session."""

    FIELDS = ("kills", "sessions_recovered", "files_checked", "temp_files_left",
              "fuzz_examples", "executions_stopped", "faults_injected")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counts[name] += n

    def as_dict(self) -> dict[str, int]:
        return {k: self.counts.get(k, 0) for k in self.FIELDS} | dict(self.counts)


STATS = Stats()


def check_session_folder(session_dir: Path, stage: str = "") -> dict[str, Any]:
    """Assert that nothing in ``session_dir`` is torn or half-written, as its readers see it.

    Every ``.json`` file parses (state.json as a SessionRecord, each checkpoint as a
    Checkpoint); every ``.jsonl`` log parses line by line (a last line without its newline is
    a torn append, which `read_jsonl` ignores); a temp file of an interrupted atomic write is
    allowed only because every reader skips it (it is counted and reported). Unknown files fail.
    Returns ``{"files": n, "temp": [...], "checkpoints": [...]}``; temp files are also
    counted under ``temp_files_{stage}`` when ``stage`` is given.
    """
    files = temps = 0
    temp_names: list[str] = []
    for path in sorted(p for p in session_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(session_dir)
        if is_temp_name(path.name):
            temps += 1
            temp_names.append(str(rel))
            continue
        files += 1
        raw = path.read_bytes()
        if rel == Path("state.json"):
            decode_record(path, raw)
        elif rel.parts[0] == "checkpoints":
            assert path.suffix == ".json", f"unexpected file {rel}"
        elif path.suffix == ".json":
            json.loads(raw)
        elif path.suffix == ".jsonl":
            read_jsonl(path)  # raises CorruptFileError on a bad line before the last
        else:
            raise AssertionError(f"unexpected file in session folder: {rel}")
    # every checkpoint file reads back whole (CheckpointStore skips temp names itself)
    checkpoints = CheckpointStore(session_dir).load_all()
    STATS.add("files_checked", files)
    STATS.add("temp_files_left", temps)
    if stage:
        STATS.add(f"temp_files_{stage}", temps)
    return {"files": files, "temp": temp_names, "checkpoints": checkpoints}
