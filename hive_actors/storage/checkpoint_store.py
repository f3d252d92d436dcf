"""Numbered, atomically written checkpoints of one session.

Files live in ``{session_dir}/checkpoints/`` and are named ``cp_{seq:06d}_{kind}.json``
(wider numbers once ``seq`` passes 999999; order is by the parsed number, never by name).
There is no index file to get out of step: the directory listing *is* the index, and each
file appears whole or not at all (atomic rename). Temp files of interrupted writes are ignored.

Sequence numbers continue after reopening a folder, and stores of the same folder in one
process share one counter, so two checkpoints never get the same file. One process owns a
session at a time (see ``SessionRecord.owner``); two processes writing checkpoints into one
folder are not supported.

Damaged files: reading one raises `CorruptFileError` naming it. ``latest(skip_damaged=True)``
and ``load_all(skip_damaged=True)`` instead skip damaged files (falling back to the newest
intact checkpoint); recovery reports what it would skip via `damaged_files()`
(`storage/recovery.py` `damaged_checkpoints`: start-up recovery and `hive-actors sessions`).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import trio

from hive_actors.errors import CorruptFileError
from hive_actors.graph.result import SessionState
from hive_actors.jsonsafe import is_large
from hive_actors.serde import converter
from hive_actors.storage.atomic import is_temp_name
from hive_actors.storage.jsonfile import check_inside, load_json_object
from hive_actors.storage.checkpoint_delta import CHECKPOINT_SCHEMA_VERSION, encode_delta, state_delta
from hive_actors.storage.durable_log import SingleFileOps
from hive_actors.storage.writer import FileOp, commit_files

if TYPE_CHECKING:
    from hive_actors.storage.durable_log import DurableLog

# given the checkpoint about to be saved, the writes that go with it (same group commit); a
# callable is called for its write when the checkpoint is encoded (in a worker thread when
# the state is large), so a companion that encodes a large value does not stall the loop
Companions = Callable[["Checkpoint"], Sequence["FileOp | Callable[[], FileOp]"]]

_KIND = re.compile(r"^[a-z][a-z0-9_]*$")
_FILE = re.compile(r"^cp_(\d{6,})_([a-z][a-z0-9_]*)\.json$")


def _aware(_inst: object, attribute: attrs.Attribute[dt.datetime], value: dt.datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{attribute.name} must be timezone-aware, got {value.isoformat()}")


def _kind(_inst: object, _attribute: attrs.Attribute[str], value: str) -> None:
    if not _KIND.match(value):
        raise ValueError(f"checkpoint kind must match [a-z][a-z0-9_]*, got {value!r}")


@attrs.frozen
class Checkpoint:
    """One saved point of an execution: everything needed to continue from it.

    ``kind`` is ``node_start``, ``node_complete``, ``pause``, ``final``... ``node_id`` is the
    node at whose boundary it was taken (None for whole-execution points).
    """

    seq: int
    kind: str = attrs.field(validator=_kind)
    node_id: str | None
    created_at: dt.datetime = attrs.field(validator=_aware)
    state: SessionState


def checkpoint_file_name(seq: int, kind: str) -> str:
    return f"cp_{seq:06d}_{kind}.json"


def encode_checkpoint(cp: Checkpoint) -> bytes:
    data = {"schema_version": CHECKPOINT_SCHEMA_VERSION, **converter.unstructure(cp)}
    # one line: the C encoder (indent= would take the pure-Python one, 3-4x slower)
    return json.dumps(data, ensure_ascii=False).encode("utf-8")


def decode_checkpoint(path: Path, raw: bytes) -> Checkpoint:
    """Parse one checkpoint file's bytes; raises `CorruptFileError` naming ``path``."""
    data = load_json_object(path, raw)
    version = data.pop("schema_version", None)
    if version != CHECKPOINT_SCHEMA_VERSION:
        raise CorruptFileError(str(path), f"unsupported schema_version {version!r}")
    try:
        state = SessionState.from_dict(data.pop("state"))
        cp = Checkpoint(
            seq=int(data.pop("seq")),
            kind=str(data.pop("kind")),
            node_id=data.pop("node_id"),
            created_at=dt.datetime.fromisoformat(data.pop("created_at")),
            state=state,
        )
    except Exception as exc:  # any shape of damage: KeyError, TypeError, SessionStateError...
        raise CorruptFileError(str(path), f"malformed checkpoint: {exc!r}") from None
    if data:
        raise CorruptFileError(str(path), f"unexpected keys {sorted(data)}")
    return cp


class _SeqCounter:
    """The next sequence number of one checkpoints folder, shared by its live stores."""

    __slots__ = ("next", "__weakref__")

    def __init__(self) -> None:
        self.next = 1


# resolved checkpoints dir -> its counter, while some store of that folder is alive (then a
# new store scans the folder again): one entry per live store, not per session ever seen
_counters: weakref.WeakValueDictionary[str, _SeqCounter] = weakref.WeakValueDictionary()
_seq_lock = threading.Lock()


# A checkpoint whose state `is_large` (a bounded walk: more than ENCODE_IN_THREAD_ITEMS
# values or ENCODE_IN_THREAD_BYTES of text) is encoded in a worker thread, from the first
# one on; so are all after one that encoded to more than ENCODE_IN_THREAD_BYTES (states
# rarely shrink). Smaller ones encode faster than a thread hop.
ENCODE_IN_THREAD_BYTES = 256 * 1024
ENCODE_IN_THREAD_ITEMS = 10_000


class CheckpointStore:
    """Saves and reads the checkpoints of one session folder.

    With a `DurableLog` (the runtime's storage engine) the files go through it (group commit); without one each save is
    done directly. Either way `save` returns only once the file is durable. ``companions``
    (optional) gives, for each checkpoint, writes that go with it (e.g. the state.json that
    points at it): they share the checkpoint's group commit and are applied only if the
    checkpoint is saved. ``new_session=True`` skips scanning a folder known to be empty.
    """

    def __init__(self, session_dir: Path, writer: DurableLog | None = None, *,
                 companions: Companions | None = None, new_session: bool = False) -> None:
        self.session_dir = Path(session_dir)
        self.dir = self.session_dir / "checkpoints"
        self._writer = writer
        self._companions = companions
        self._large = False  # once a checkpoint was large, the next ones encode in a thread
        # an engine that takes deltas gets each checkpoint as a change to the last one saved
        self._deltas = isinstance(writer, SingleFileOps) and writer.accepts_deltas
        self._last: tuple[int, str, SessionState] | None = None  # seq, file name, state
        check_inside(self.session_dir, self.dir)  # a planted symlink is refused, not followed
        self._key = str(self.dir.resolve())
        scanned = 1 if new_session else max((seq for seq, _ in self._entries()), default=0) + 1
        with _seq_lock:
            counter = _counters.get(self._key)
            if counter is None:
                counter = _counters[self._key] = _SeqCounter()
            counter.next = max(counter.next, scanned)
        self._seq = counter

    def _allocate_seq(self) -> int:
        with _seq_lock:
            seq = self._seq.next
            self._seq.next = seq + 1
            return seq

    def _entries(self) -> list[tuple[int, Path]]:
        """(seq, path) of every checkpoint file, ascending; temp and foreign files skipped."""
        try:
            names = [p.name for p in self.dir.iterdir()]
        except FileNotFoundError:
            return []
        except OSError as exc:  # e.g. a file where the folder should be
            raise CorruptFileError(str(self.dir), f"cannot list: {exc.strerror or exc}") from None
        found = []
        for name in names:
            if is_temp_name(name):
                continue
            m = _FILE.match(name)
            if m:
                found.append((int(m.group(1)), self.dir / name))
        found.sort()
        return found

    async def save(self, kind: str, node_id: str | None, state: SessionState) -> Checkpoint:
        """Write the next checkpoint; return it once it is durable.

        The write cannot be torn by cancellation: once started it finishes under a shield.
        Raises `StorageError` if the disk refuses it (nothing saved before is touched) or a
        companion write fails (the checkpoint itself is then saved).
        """
        cp = Checkpoint(
            seq=self._allocate_seq(),
            kind=kind,
            node_id=node_id,
            created_at=dt.datetime.now(dt.timezone.utc),
            state=state,
        )
        name = checkpoint_file_name(cp.seq, kind)
        path = self.dir / name
        extra = self._companions(cp) if self._companions is not None else ()
        delta: dict[str, Any] | None = None
        if self._deltas:
            # a pause (what a resume usually continues from) is recorded whole
            base = self._last[1:] if self._last is not None and kind != "pause" else None
            delta = state_delta(cp.seq, kind, node_id, cp.created_at, state, base)

        def encode() -> list[FileOp]:
            if delta is not None:
                op = FileOp.delta(path, encode_delta(delta))
            else:
                op = FileOp.write(path, encode_checkpoint(cp))
            self._large = self._large or len(op.data) > ENCODE_IN_THREAD_BYTES
            return [op, *(op if isinstance(op, FileOp) else op() for op in extra)]

        if self._large or is_large(state if delta is None else delta,
                                   max_items=ENCODE_IN_THREAD_ITEMS,
                                   max_bytes=ENCODE_IN_THREAD_BYTES):
            # a state this big would stall every execution while encoded
            ops = await trio.to_thread.run_sync(encode)
        else:
            ops = encode()
        await commit_files(ops, self._writer)
        if self._deltas and (self._last is None or self._last[0] < cp.seq):
            self._last = (cp.seq, name, state)  # durable: a base for the next delta
        return cp

    def _read(self, path: Path, seq: int) -> Checkpoint:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise CorruptFileError(str(path), f"cannot read: {exc.strerror or exc}") from None
        cp = decode_checkpoint(path, raw)
        if cp.seq != seq:
            raise CorruptFileError(str(path), f"holds seq {cp.seq}, its name says {seq}")
        return cp

    def latest(self, *, skip_damaged: bool = False) -> Checkpoint | None:
        """The checkpoint with the highest sequence number, or None if there is none.

        Raises `CorruptFileError` if that file is damaged, unless ``skip_damaged`` (then the
        newest intact one is returned).
        """
        for seq, path in reversed(self._entries()):
            try:
                return self._read(path, seq)
            except CorruptFileError:
                if not skip_damaged:
                    raise
        return None

    def load_all(self, *, skip_damaged: bool = False) -> list[Checkpoint]:
        """Every checkpoint in sequence order. Raises `CorruptFileError` on a damaged file
        unless ``skip_damaged``."""
        out = []
        for seq, path in self._entries():
            try:
                out.append(self._read(path, seq))
            except CorruptFileError:
                if not skip_damaged:
                    raise
        return out

    def damaged_files(self) -> list[Path]:
        """Checkpoint files that exist but cannot be read back."""
        bad = []
        for seq, path in self._entries():
            try:
                self._read(path, seq)
            except CorruptFileError:
                bad.append(path)
        return bad
