"""The journal's on-disk format: framed records in numbered segment files. Pure, no trio.

    {storage}/journal/seg_{n:012d}.log    records, appended; one file per segment
    {storage}/journal/view.mark           {"segment": n, "offset": o}: the view holds (and has
                                          synced) every record before this position

A record is a frame: ``length`` (u32 LE) and ``crc32(payload)`` (u32 LE), then ``payload``.
The payload is one commit group: a list of file ops, each ``kind`` (u8: 0 write, 1 durable
append, 2 append that may lose its tail, 3 checkpoint delta), path length (u16), data length (u32), the path
(UTF-8, relative to the storage folder unless absolute), the data.

Reading a segment (`scan_segment`) stops at the first frame that does not check out. If no
valid frame follows it, that is the torn tail of a write a crash interrupted (``torn_at``);
if one does, the bytes between are damage in the middle, which is never skipped silently
(`JournalCorruptError` names the segment and offset).
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import attrs

from hive_actors.errors import CorruptFileError
from hive_actors.storage.commit import FileOp

HEADER = struct.Struct("<II")
_OP = struct.Struct("<BHI")
MAX_RECORD = 1 << 30
_KINDS = {0: ("write", True), 1: ("append", True), 2: ("append", False), 3: ("delta", True)}
_CODES = {"write": 0, "delta": 3}
SEGMENT_NAME = re.compile(r"^seg_(\d{12})\.log$")


class JournalCorruptError(CorruptFileError):
    """A damaged record in the middle of a journal segment; ``offset`` is where it starts."""

    def __init__(self, segment: Path, offset: int, reason: str) -> None:
        super().__init__(str(segment), f"damaged record at offset {offset}: {reason}")
        self.offset = offset


def segment_name(n: int) -> str:
    return f"seg_{n:012d}.log"


def list_segments(folder: Path) -> list[tuple[int, Path]]:
    """(number, path) of every segment in ``folder``, ascending."""
    try:
        names = [p.name for p in folder.iterdir()]
    except FileNotFoundError:
        return []
    found = [(int(m.group(1)), folder / n) for n in names if (m := SEGMENT_NAME.match(n))]
    return sorted(found)


def encode_ops(ops: Sequence[FileOp], root: Path) -> bytes:
    """One frame holding ``ops``; paths under ``root`` are stored relative to it."""
    parts = []
    root_s = str(root) + "/"
    for op in ops:
        p = str(op.path)
        if p.startswith(root_s):
            p = p[len(root_s):]
        pb = p.encode()
        kind = _CODES.get(op.kind, 1 if op.durable else 2)
        parts.append(_OP.pack(kind, len(pb), len(op.data)))
        parts.append(pb)
        parts.append(op.data)
    payload = b"".join(parts)
    return HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def decode_ops(payload: bytes, root: Path) -> list[FileOp]:
    """The ops of one checked payload. Raises ValueError if it does not parse."""
    ops = []
    pos = 0
    view = memoryview(payload)
    while pos < len(payload):
        kind, plen, dlen = _OP.unpack_from(payload, pos)
        pos += _OP.size
        path = bytes(view[pos:pos + plen]).decode()
        pos += plen
        data = bytes(view[pos:pos + dlen])
        pos += dlen
        if pos > len(payload) or kind not in _KINDS:
            raise ValueError("op runs past its record")
        name, durable = _KINDS[kind]
        target = Path(path) if path.startswith("/") else root / path
        ops.append(FileOp(name, target, data, durable))  # type: ignore[arg-type]
    return ops


def _frame_at(data: bytes, pos: int) -> int | None:
    """End offset of a valid frame starting at ``pos``, or None."""
    if pos + HEADER.size > len(data):
        return None
    length, crc = HEADER.unpack_from(data, pos)
    end: int = pos + HEADER.size + length
    if length == 0 or length > MAX_RECORD or end > len(data):
        return None
    if zlib.crc32(data[pos + HEADER.size:end]) != crc:
        return None
    return end


@attrs.frozen
class Scan:
    """What `scan_segment` found: records as (offset, end, payload) and where a torn tail
    starts (None: the segment ends on a whole record)."""

    records: list[tuple[int, int, bytes]]
    torn_at: int | None


def scan_segment(path: Path, data: bytes, start: int = 0) -> Scan:
    """Every record of a segment's bytes from ``start``. Raises `JournalCorruptError` for a
    bad frame that a valid one follows (damage in the middle)."""
    records: list[tuple[int, int, bytes]] = []
    pos = start
    while pos < len(data):
        end = _frame_at(data, pos)
        if end is None:
            for later in range(pos + 1, len(data) - HEADER.size):
                if _frame_at(data, later) is not None:
                    raise JournalCorruptError(path, pos, f"valid record follows at {later}")
            return Scan(records, pos)
        records.append((pos, end, data[pos + HEADER.size:end]))
        pos = end
    return Scan(records, None)


def iter_ops(path: Path, scan: Scan, root: Path) -> Iterator[tuple[int, list[FileOp]]]:
    """(end offset, ops) of each scanned record. Raises `JournalCorruptError` for a record
    whose checksum holds but whose contents do not parse."""
    for offset, end, payload in scan.records:
        try:
            yield end, decode_ops(payload, root)
        except (ValueError, struct.error, UnicodeDecodeError) as exc:
            raise JournalCorruptError(path, offset, f"unreadable ops ({exc})") from None
