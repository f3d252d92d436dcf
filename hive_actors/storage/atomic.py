"""Atomic, durable file replacement.

A file written here is, after a crash at any instant, either the old file or the new one,
never a mix, and once the call returns the new file survives a power cut:

1. write the bytes to a unique temp file in the same directory (``.{name}.{random}.tmp``),
2. ``fsync`` it,
3. ``os.replace`` it onto the target,
4. ``fsync`` the directory so the rename itself is on disk.

Missing parent directories are created, and each one's own parent is synced. On any error the
temp file is removed and `StorageError` (with ``path`` and ``errno``) is raised.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

import trio

from hive_actors.errors import StorageError
from hive_actors.storage.fs import REAL_FS, FileSystem

TEMP_SUFFIX = ".tmp"
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def temp_path_for(path: Path) -> Path:
    """A fresh temp name next to ``path``; readers skip it (see `is_temp_name`)."""
    return path.with_name(f".{path.name}.{secrets.token_hex(6)}{TEMP_SUFFIX}")


def is_temp_name(name: str) -> bool:
    """True for names of temp files left by an interrupted write (dot files, ``*.tmp``)."""
    return name.startswith(".") or name.endswith(TEMP_SUFFIX)


_TEMP_NAME = re.compile(r"^\..+\.[0-9a-f]{12}\.tmp$")


def sweep_temp_files(directory: Path) -> list[Path]:
    """Remove temp files left under ``directory`` (recursively) by writes a crash interrupted;
    return them. Only call this when no writer is active there (e.g. recovering a session
    whose owner died): a live writer's temp file would be removed under it."""
    removed = []
    for p in Path(directory).rglob("*.tmp"):
        if _TEMP_NAME.match(p.name) and p.is_file():
            remove_quietly(p)
            removed.append(p)
    return removed


def storage_error(action: str, path: Path, exc: OSError) -> StorageError:
    """A `StorageError` saying what failed where; carries ``path`` and ``errno``."""
    reason = exc.strerror or str(exc)
    err = StorageError(f"{path}: could not {action}: {reason} (errno {exc.errno})")
    err.path = str(path)
    err.errno = exc.errno
    return err


def make_dirs(path: Path, fs: FileSystem = REAL_FS) -> list[Path]:
    """Create ``path`` and missing parents, without syncing; return the folders created, top
    first (a folder someone else created meanwhile is not listed). Raises OSError."""
    missing: list[Path] = []
    p = path
    while not p.is_dir():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    created = []
    for d in reversed(missing):
        try:
            fs.mkdir(d)
        except FileExistsError:
            continue  # created by someone else meanwhile; they sync it
        created.append(d)
    return created


def ensure_dir(path: Path, fs: FileSystem = REAL_FS) -> None:
    """Create ``path`` and missing parents; sync each new directory's parent. Raises OSError."""
    for d in make_dirs(path, fs):
        fs.fsync_dir(d.parent)


def write_all(fd: int, data: bytes, fs: FileSystem) -> None:
    view = memoryview(data)
    while view:
        n = fs.write(fd, view)
        view = view[n:]


def write_temp(path: Path, data: bytes, fs: FileSystem, *, sync: bool) -> Path:
    """Write ``data`` to a new temp file next to ``path`` (fsync'd if ``sync``); return it.

    On error the temp file is removed and the ``OSError`` propagates.
    """
    tmp = temp_path_for(path)
    fd = fs.open(tmp, _WRITE_FLAGS, 0o644)
    try:
        try:
            write_all(fd, data, fs)
            if sync:
                fs.fsync(fd)
        finally:
            fs.close(fd)
    except BaseException:
        remove_quietly(tmp, fs)
        raise
    return tmp


def remove_quietly(path: Path, fs: FileSystem = REAL_FS) -> None:
    try:
        fs.unlink(path)
    except OSError:
        pass


def atomic_write_bytes(path: Path, data: bytes, *, fs: FileSystem = REAL_FS) -> None:
    """Replace ``path`` with ``data`` atomically and durably (see the module docstring).

    Blocking; call it from a thread (`write_atomic` does). Raises `StorageError`.
    """
    path = Path(path)
    try:
        ensure_dir(path.parent, fs)
    except OSError as exc:
        raise storage_error("create directory", path.parent, exc) from exc
    try:
        tmp = write_temp(path, data, fs, sync=True)
    except OSError as exc:
        raise storage_error("write temp file for", path, exc) from exc
    try:
        fs.replace(tmp, path)
    except OSError as exc:
        remove_quietly(tmp, fs)
        raise storage_error("rename temp file onto", path, exc) from exc
    try:
        fs.fsync_dir(path.parent)
    except OSError as exc:
        # The new file is in place but its directory entry may not be durable yet.
        raise storage_error("sync directory of", path, exc) from exc


async def write_atomic(path: Path, data: bytes, *, fs: FileSystem = REAL_FS) -> None:
    """`atomic_write_bytes` in a worker thread, inside a shielded cancel scope.

    Once called, the write always runs to its end, even if the caller is cancelled meanwhile
    (the cancellation is then delivered at the caller's next checkpoint). Raises `StorageError`.
    """
    with trio.CancelScope(shield=True):
        await trio.to_thread.run_sync(lambda: atomic_write_bytes(path, data, fs=fs))


# read-write so a torn last line can be found (pread) and cut before appending
_APPEND_FLAGS = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)


def open_for_append(path: Path, fs: FileSystem) -> tuple[int, int, bool]:
    """Open ``path`` for appending (creating it and its parents); returns (fd, size, created).

    A last line without its newline (an append a crash cut short, which readers ignore) is
    cut off first, so the next record does not glue onto it and make a bad line mid-file.
    """
    ensure_dir(path.parent, fs)
    return open_log(path, fs)


def open_log(path: Path, fs: FileSystem) -> tuple[int, int, bool]:
    """`open_for_append` in a folder that exists (nothing synced here). Raises OSError."""
    created = not os.path.exists(path)
    fd = fs.open(path, _APPEND_FLAGS, 0o644)
    size = os.fstat(fd).st_size
    if size and os.pread(fd, 1, size - 1) != b"\n":
        size = _end_of_last_line(fd, size)
        os.ftruncate(fd, size)
    return fd, size, created


def _end_of_last_line(fd: int, size: int) -> int:
    """The offset just past the last newline of the file (0 if it has none)."""
    end = size
    while end > 0:
        start = max(0, end - 65536)
        chunk = os.pread(fd, end - start, start)
        nl = chunk.rfind(b"\n")
        if nl >= 0:
            return start + nl + 1
        end = start
    return 0


def append_staged(fd: int, size: int, data: bytes, fs: FileSystem) -> None:
    """Append ``data`` to an fd from `open_for_append`; on error cut the file back to ``size``
    so no partial record is left behind (best effort), then re-raise."""
    try:
        write_all(fd, data, fs)
    except OSError:
        try:
            os.ftruncate(fd, size)
        except OSError:
            pass
        raise


def append_bytes(path: Path, data: bytes, *, durable: bool = True, fs: FileSystem = REAL_FS) -> None:
    """Append ``data`` to ``path``; if ``durable``, fsync it (and its directory when the file
    is new) before returning. Blocking. Raises `StorageError`."""
    path = Path(path)
    try:
        fd, size, created = open_for_append(path, fs)
    except OSError as exc:
        raise storage_error("open for append", path, exc) from exc
    try:
        append_staged(fd, size, data, fs)
        if durable:
            fs.fsync(fd)
    except OSError as exc:
        raise storage_error("append to", path, exc) from exc
    finally:
        fs.close(fd)
    if durable and created:
        try:
            fs.fsync_dir(path.parent)
        except OSError as exc:
            raise storage_error("sync directory of", path, exc) from exc
