"""Session folders: state.json, logs and the layout under a storage path.

    {storage}/sessions/session_YYYYMMDD_HHMMSS_{8 hex}/
        state.json             SessionRecord (versioned)
        checkpoints/           CheckpointStore files
        logs/summary.json      written whole, atomically
        logs/details.jsonl     one JSON object per line, durable appends
        logs/tool_logs.jsonl   one JSON object per line, appends that may lose their tail
    {storage}/runtime_logs/

Whole files are replaced atomically and durably (through the runtime's storage engine, a
`DurableLog`, when one is given). Reads are small and synchronous; async callers with many of them use
``trio.to_thread``. See docs/storage.md.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import attrs
import cattrs
import trio

from hive_actors.errors import CorruptFileError, StorageError, UnknownSessionError
from hive_actors.serde import converter
from hive_actors.status import ExecutionStatus
from hive_actors.storage.atomic import append_bytes, sweep_temp_files
from hive_actors.storage.checkpoint_delta import patch_bytes
from hive_actors.storage.checkpoint_store import Checkpoint, CheckpointStore
from hive_actors.storage.jsonfile import check_inside, load_json_object
from hive_actors.storage.owner import OwnerInfo, current_owner, owner_is_alive
from hive_actors.storage.durable_log import DurableLog, SingleFileOps
from hive_actors.storage.writer import FileOp, commit_files

SESSION_SCHEMA_VERSION = 1
STATUSES = tuple(ExecutionStatus)
_PATH_CACHE_SIZE = 4096  # session ids whose paths are kept (the cache is cleared when full)
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")


class InvalidSessionIdError(StorageError, ValueError):
    """A session id that could escape the sessions folder or is not a plain name."""


def _aware(_inst: object, attribute: attrs.Attribute[Any], value: dt.datetime | None) -> None:
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise ValueError(f"{attribute.name} must be timezone-aware, got {value.isoformat()}")


def _status(value: str) -> ExecutionStatus:
    """``value`` as an ExecutionStatus; ValueError listing the known ones when it is none."""
    try:
        return ExecutionStatus(value)
    except ValueError:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {value!r}") from None


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@attrs.frozen
class SessionRecord:
    """The contents of ``state.json``: where one session stands.

    ``checkpoint_seq`` is the sequence number of its latest durable checkpoint (None before
    the first); ``owner`` is the process running it, so a later process can tell a session
    left ``running`` by a dead one (`SessionStore.find_orphaned`).
    """

    session_id: str
    created_at: dt.datetime = attrs.field(validator=_aware)
    updated_at: dt.datetime = attrs.field(validator=_aware)
    agent_name: str = ""
    entry_point: str = "default"
    status: ExecutionStatus = attrs.field(default=ExecutionStatus.RUNNING, converter=_status)
    current_node: str | None = None
    paused_at: str | None = None
    input_data: dict[str, Any] = attrs.field(factory=dict)
    output: dict[str, Any] = attrs.field(factory=dict)
    error: str | None = None
    checkpoint_seq: int | None = None
    idempotency_key: str | None = None
    owner: OwnerInfo | None = None
    # the session whose state this one started from (a fork, or a session_state from elsewhere)
    forked_from: str | None = None
    schema_version: int = SESSION_SCHEMA_VERSION

    @classmethod
    def new(cls, session_id: str, **fields: Any) -> SessionRecord:
        """A ``running`` record owned by this process, created and updated now."""
        now = utc_now()
        if "owner" not in fields:  # (setdefault would read /proc for every record)
            fields["owner"] = current_owner()
        return cls(session_id=session_id, created_at=now, updated_at=now, **fields)

    def evolve(self, **changes: Any) -> SessionRecord:
        """A copy with ``changes`` and ``updated_at`` set to now."""
        changes.setdefault("updated_at", utc_now())
        return attrs.evolve(self, **changes)


_RECORD_FIELDS = tuple(a.name for a in attrs.fields(SessionRecord))


# Suffixes handed out during the current second, so this process never repeats an id
# (32 random bits would repeat within a second at thousands of executions a second).
_issued: dict[str, set[str]] = {}


_last_stamp: tuple[int, str] = (-1, "")


def _stamp_now() -> str:
    """The UTC time as ``YYYYMMDD_HHMMSS``, formatted once per second."""
    global _last_stamp
    second = int(time.time())
    if second != _last_stamp[0]:
        _last_stamp = (second, time.strftime("%Y%m%d_%H%M%S", time.gmtime(second)))
    return _last_stamp[1]


def new_session_id(now: dt.datetime | None = None, *,
                   taken: Callable[[str], bool] | None = None) -> str:
    """``session_YYYYMMDD_HHMMSS_{8 hex}`` from the UTC time (``now`` must be tz-aware).

    Never the same id twice in one process; ``taken(id) -> bool`` (e.g. "its folder exists")
    rejects ids that are in use elsewhere.
    """
    stamp = _stamp_now() if now is None else f"{now.astimezone(dt.timezone.utc):%Y%m%d_%H%M%S}"
    issued = _issued.get(stamp)
    if issued is None:
        _issued.clear()
        issued = _issued[stamp] = set()
    while True:
        suffix = secrets.token_hex(4)
        session_id = f"session_{stamp}_{suffix}"
        if suffix not in issued and not (taken is not None and taken(session_id)):
            issued.add(suffix)
            return session_id


def check_session_id(session_id: str) -> str:
    """Return ``session_id`` if it is a plain folder name; raise `InvalidSessionIdError`."""
    if (
        not isinstance(session_id, str)
        or not _SAFE_ID.match(session_id)
        or ".." in session_id
    ):
        raise InvalidSessionIdError(
            f"invalid session id {session_id!r}: use letters, digits, '_', '-', '.' "
            "(no path separators, no '..', not starting with '.')"
        )
    return session_id


def encode_record(record: SessionRecord) -> bytes:
    # one line: the C encoder (indent= would take the pure-Python one, 3-4x slower)
    return json.dumps(converter.unstructure(record), ensure_ascii=False).encode()


def decode_record(path: Path, raw: bytes) -> SessionRecord:
    """Parse a state.json; raises `CorruptFileError` naming ``path``."""
    data = load_json_object(path, raw)
    version = data.get("schema_version")
    if version != SESSION_SCHEMA_VERSION:
        raise CorruptFileError(
            str(path), f"schema_version {version!r} (this hive_actors reads {SESSION_SCHEMA_VERSION})"
        )
    try:
        return converter.structure(data, SessionRecord)
    except cattrs.ClassValidationError as exc:
        msgs = "; ".join(cattrs.transform_error(exc, path="state"))
        raise CorruptFileError(str(path), f"malformed state: {msgs}") from None
    except Exception as exc:  # any other shape of damage (wrong types deep inside...)
        raise CorruptFileError(str(path), f"malformed state: {exc!r}") from None


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Records of a JSONL log. A last line without its newline (a crash mid-append) is
    ignored; any other bad line raises `CorruptFileError`. A missing file reads as []."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    lines = raw.split(b"\n")
    lines.pop()  # "" after a final newline, or a torn tail
    out = []
    for n, line in enumerate(lines, 1):
        try:
            out.append(json.loads(line))
        except ValueError as exc:
            raise CorruptFileError(f"{path}:{n}", f"not valid JSON ({exc})") from None
    return out


@attrs.frozen
class DamagedSession:
    """A session folder whose state.json cannot be read; ``error`` names the file and why."""

    session_id: str
    error: CorruptFileError

    @property
    def reason(self) -> str:
        return str(self.error)


class SessionStore:
    """Reads and writes the session folders under ``storage_path``."""

    def __init__(self, storage_path: Path, writer: DurableLog | None = None) -> None:
        self.storage_path = Path(storage_path)
        self.sessions_dir = self.storage_path / "sessions"
        self.runtime_logs_dir = self.storage_path / "runtime_logs"
        self._writer = writer
        self._locks: dict[str, trio.Lock] = {}
        self._path_cache: dict[str, tuple[Path, Path, Path, Path]] = {}

    def session_dir(self, session_id: str) -> Path:
        """The folder of ``session_id``; raises `InvalidSessionIdError` for unsafe ids."""
        return self._paths(session_id)[0]

    def state_path(self, session_id: str) -> Path:
        return self._paths(session_id)[1]

    def logs_dir(self, session_id: str) -> Path:
        return self._paths(session_id)[2]

    def _paths(self, session_id: str) -> tuple[Path, Path, Path, Path]:
        """(folder, state.json, logs/, logs/details.jsonl) of a checked id, built once per
        id: every node boundary writes there, and pathlib joins are not cheap."""
        paths = self._path_cache.get(session_id)
        if paths is None:
            folder = self.sessions_dir / check_session_id(session_id)
            logs = folder / "logs"
            check_inside(self.sessions_dir, folder, logs)  # either may be a planted link
            paths = (folder, folder / "state.json", logs, logs / "details.jsonl")
            if len(self._path_cache) >= _PATH_CACHE_SIZE:
                self._path_cache.clear()
            self._path_cache[session_id] = paths
        return paths

    # ---- writes ------------------------------------------------------------------------

    async def _append(self, path: Path, data: bytes, durable: bool) -> None:
        if self._writer is not None:
            await self._writer.append(path, data, durable=durable)
        else:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(lambda: append_bytes(path, data, durable=durable))

    # whole-file and append ops, for `commit` (several files of one session in one group)

    def state_op(self, record: SessionRecord) -> FileOp:
        """The write of ``record`` as the session's state.json."""
        return FileOp.write(self.state_path(record.session_id), encode_record(record))

    @property
    def accepts_deltas(self) -> bool:
        """Whether the engine takes state.json as a patch (`state_patch_op`)."""
        writer = self._writer
        return isinstance(writer, SingleFileOps) and writer.accepts_deltas

    def state_patch_op(self, on_disk: SessionRecord, record: SessionRecord) -> FileOp:
        """state.json going from ``on_disk`` (what its committed groups hold) to ``record``,
        as a patch of the fields that differ (for an engine that `accepts_deltas`)."""
        u = converter.unstructure
        patch = {name: u(new) for name in _RECORD_FIELDS
                 if (new := getattr(record, name)) is not (old := getattr(on_disk, name))
                 and new != old}
        return FileOp.delta(self.state_path(record.session_id), patch_bytes(patch))

    def summary_op(self, session_id: str, summary: dict[str, Any]) -> FileOp:
        # plain data but for the odd record: unstructured only where JSON needs it
        data = json.dumps(summary, ensure_ascii=False, default=converter.unstructure)
        return FileOp.write(self.logs_dir(session_id) / "summary.json", data.encode())

    def details_op(self, session_id: str, record: dict[str, Any]) -> FileOp:
        return FileOp.append(self._paths(session_id)[3], _line(record))

    async def commit(self, session_id: str, ops: list[FileOp]) -> None:
        """Apply ``ops`` (files of ``session_id``) as one group: one batch of the writer, so one
        set of syncs (see `StorageWriter.commit`, also for the first op as anchor). Durable on
        return. Groups of one session are applied in call order (a later state.json never
        loses to an earlier one). Raises the first `StorageError`."""
        writer = self._writer
        if writer is not None and writer.running:
            await writer.commit(ops)  # its inbox is FIFO: call order is commit order
            return
        lock = self._locks.setdefault(session_id, trio.Lock())
        try:
            async with lock:
                await commit_files(ops, writer)
        finally:
            if not lock.locked() and lock.statistics().tasks_waiting == 0:
                self._locks.pop(session_id, None)

    async def write_state(self, record: SessionRecord) -> None:
        """Replace the session's state.json with ``record``; durable on return.

        Writes of one session are applied in call order (a later call never loses to an
        earlier one). Raises `StorageError`, `InvalidSessionIdError`.
        """
        await self.commit(record.session_id, [self.state_op(record)])

    async def write_summary(self, session_id: str, summary: dict[str, Any]) -> None:
        """Replace ``logs/summary.json``; durable on return."""
        await self.commit(session_id, [self.summary_op(session_id, summary)])

    async def append_details(self, session_id: str, record: dict[str, Any]) -> None:
        """Append one line to ``logs/details.jsonl``; durable on return (node-level, rare)."""
        await self._append(self.logs_dir(session_id) / "details.jsonl", _line(record), True)

    async def append_tool_log(self, session_id: str, record: dict[str, Any]) -> None:
        """Append one line to ``logs/tool_logs.jsonl``. Not synced on its own (tool calls are
        frequent): a crash may lose the last lines, never corrupt earlier ones."""
        await self._append(self.logs_dir(session_id) / "tool_logs.jsonl", _line(record), False)

    # ---- reads -------------------------------------------------------------------------

    def read_state(self, session_id: str) -> SessionRecord:
        """The session's record. Raises `UnknownSessionError` (no state.json),
        `CorruptFileError` (damaged, or a symlink out of the storage folder),
        `InvalidSessionIdError`."""
        path = self.state_path(session_id)
        check_inside(self.sessions_dir, path)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise UnknownSessionError(
                f"no session {session_id!r} in {self.sessions_dir}"
            ) from None
        except OSError as exc:
            raise CorruptFileError(str(path), f"cannot read: {exc.strerror or exc}") from None
        record = decode_record(path, raw)
        if record.session_id != session_id:
            raise CorruptFileError(str(path), f"holds session id {record.session_id!r}")
        return record

    def session_ids(self) -> list[str]:
        """The ids of the session folders. Raises `CorruptFileError` if ``sessions/`` is not
        a folder (nothing under it can be read then)."""
        try:
            names = [p.name for p in self.sessions_dir.iterdir() if p.is_dir()]
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise CorruptFileError(str(self.sessions_dir),
                                   f"cannot list: {exc.strerror or exc}") from None
        return sorted(n for n in names if _SAFE_ID.match(n) and ".." not in n)

    def list_sessions(
        self, *, status: ExecutionStatus | str | None = None, skip_damaged: bool = True
    ) -> list[SessionRecord]:
        """Every session with a state.json, oldest ``created_at`` first (compared as aware
        datetimes). Damaged state files are skipped (`scan` lists them), or raise
        `CorruptFileError` if ``skip_damaged`` is False."""
        records, damaged = self.scan(status=status)
        if damaged and not skip_damaged:
            raise damaged[0].error
        return records

    def scan(self, *, status: ExecutionStatus | str | None = None
             ) -> tuple[list[SessionRecord], list[DamagedSession]]:
        """(the readable sessions as `list_sessions` gives them, the damaged ones with the
        reason). One damaged state.json costs only its own line."""
        records, damaged = [], []
        for sid in self.session_ids():
            try:
                rec = self.read_state(sid)
            except UnknownSessionError:
                continue  # folder created, state not written yet
            except CorruptFileError as exc:
                damaged.append(DamagedSession(sid, exc))
                continue
            if status is None or rec.status == status:
                records.append(rec)
        records.sort(key=lambda r: (r.created_at, r.session_id))
        return records, damaged

    def checkpoint_store(self, session_id: str) -> CheckpointStore:
        """The session's checkpoints (for reads; writes go through the recorder's store)."""
        return CheckpointStore(self.session_dir(session_id))

    def checkpoints(self, session_id: str, *, skip_damaged: bool = False) -> list[Checkpoint]:
        """Every checkpoint in sequence order. Raises `CorruptFileError` naming a damaged
        file unless ``skip_damaged``."""
        return self.checkpoint_store(session_id).load_all(skip_damaged=skip_damaged)

    def latest_checkpoint(self, session_id: str, *,
                          skip_damaged: bool = False) -> Checkpoint | None:
        """The newest checkpoint, None if none. Raises `CorruptFileError` if it is damaged,
        unless ``skip_damaged`` (then the newest intact one)."""
        return self.checkpoint_store(session_id).latest(skip_damaged=skip_damaged)

    def damaged_checkpoints(self, session_id: str) -> list[str]:
        """The session's checkpoint files that cannot be read back; a ``checkpoints`` entry
        that cannot be listed (a file, a symlink out of the folder) is reported as itself."""
        try:
            return [str(p) for p in self.checkpoint_store(session_id).damaged_files()]
        except CorruptFileError as exc:
            return [exc.path or str(self.session_dir(session_id) / "checkpoints")]

    def read_details(self, session_id: str) -> list[dict[str, Any]]:
        return read_jsonl(self.logs_dir(session_id) / "details.jsonl")

    def read_tool_logs(self, session_id: str) -> list[dict[str, Any]]:
        return read_jsonl(self.logs_dir(session_id) / "tool_logs.jsonl")

    def read_summary(self, session_id: str) -> dict[str, Any] | None:
        path = self.logs_dir(session_id) / "summary.json"
        try:
            # JSON is untyped; the summary file is written as an object
            return cast("dict[str, Any]", json.loads(path.read_bytes()))
        except FileNotFoundError:
            return None
        except ValueError as exc:
            raise CorruptFileError(str(path), f"not valid JSON ({exc})") from None

    def sweep_temp_files(self, session_id: str) -> list[Path]:
        """Remove temp files a crash left in the session folder (call only for sessions no
        live process owns, e.g. from `find_orphaned`); return them."""
        return sweep_temp_files(self.session_dir(session_id))

    def find_orphaned(
        self, is_alive: Callable[[OwnerInfo], bool] = owner_is_alive
    ) -> list[SessionRecord]:
        """Sessions whose state says ``running`` but whose owner process is gone (or unknown).

        ``is_alive`` decides per owner; the default checks this host's processes and treats
        owners on other hosts as alive.
        """
        return [
            r
            for r in self.list_sessions(status=ExecutionStatus.RUNNING)
            if r.owner is None or not is_alive(r.owner)
        ]


def _line(record: dict[str, Any]) -> bytes:
    text = json.dumps(converter.unstructure(record), ensure_ascii=False, default=str)
    if "\n" in text:  # json.dumps escapes newlines in strings; this is a safety net
        raise StorageError("a JSONL record must serialise to one line")
    return text.encode() + b"\n"


__all__ = [
    "InvalidSessionIdError",
    "OwnerInfo",
    "SessionRecord",
    "SessionStore",
    "check_session_id",
    "current_owner",
    "new_session_id",
    "owner_is_alive",
    "read_jsonl",
]
