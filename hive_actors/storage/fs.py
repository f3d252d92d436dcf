"""The file-system seam: every storage syscall goes through a `FileSystem` object.

Production code uses `REAL_FS`. Tests pass a `FaultyFileSystem` to count operations or to make
the Nth call of an operation fail with ``OSError(ENOSPC)``, ``EIO``... and check what the
storage layer does about it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno as _errno
import os
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import attrs


class FileSystem(Protocol):
    """The few operations the storage layer needs. Each raises ``OSError`` on failure."""

    def open(self, path: Path, flags: int, mode: int = 0o644) -> int: ...
    def write(self, fd: int, data: bytes | memoryview) -> int: ...
    def fsync(self, fd: int) -> None: ...
    def fdatasync(self, fd: int) -> None: ...
    def syncfs(self, fd: int) -> None: ...
    def close(self, fd: int) -> None: ...
    def replace(self, src: Path, dst: Path) -> None: ...
    def fsync_dir(self, path: Path) -> None: ...
    def mkdir(self, path: Path) -> None: ...
    def unlink(self, path: Path) -> None: ...
    def note_target(self, fd: int, target: Path) -> None:
        """``fd`` is a temp file staged away from ``target``, which it will replace (a hint
        for seams that key their behaviour by path; no system call)."""


def _load_syncfs() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    fn = getattr(ctypes.CDLL(name, use_errno=True), "syncfs", None)
    if fn is not None:
        fn.argtypes = [ctypes.c_int]
        fn.restype = ctypes.c_int
    return fn


_libc_syncfs = _load_syncfs()


class RealFileSystem:
    """The operating system's calls, unchanged."""

    def open(self, path: Path, flags: int, mode: int = 0o644) -> int:
        return os.open(path, flags, mode)

    def write(self, fd: int, data: bytes | memoryview) -> int:
        return os.write(fd, data)

    def fsync(self, fd: int) -> None:
        os.fsync(fd)

    def fdatasync(self, fd: int) -> None:
        getattr(os, "fdatasync", os.fsync)(fd)

    def syncfs(self, fd: int) -> None:
        """Flush every dirty page of the file system holding ``fd`` (Linux ``syncfs(2)``).

        Where ``syncfs`` does not exist this falls back to ``fsync(fd)`` alone, which callers
        must not rely on for other files: they check `has_syncfs` first.
        """
        if _libc_syncfs is None:
            os.fsync(fd)
            return
        if _libc_syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))

    @property
    def has_syncfs(self) -> bool:
        return _libc_syncfs is not None

    def close(self, fd: int) -> None:
        os.close(fd)

    def replace(self, src: Path, dst: Path) -> None:
        os.replace(src, dst)

    def fsync_dir(self, path: Path) -> None:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def mkdir(self, path: Path) -> None:
        os.mkdir(path)

    def unlink(self, path: Path) -> None:
        os.unlink(path)

    def note_target(self, fd: int, target: Path) -> None:
        return None


REAL_FS = RealFileSystem()


@attrs.define
class Fault:
    """Make the ``nth`` call (1-based) of ``op`` raise ``OSError(errno)``.

    ``path_contains`` restricts the count to calls whose path (or, for fd operations, the path
    the fd was opened from) contains that text. ``times`` failures in a row (default 1).
    """

    op: str
    nth: int = 1
    errno: int = _errno.EIO
    path_contains: str = ""
    times: int = 1
    seen: int = 0
    fired: int = 0


class FaultyFileSystem:
    """A `FileSystem` that counts calls per operation and injects `Fault`s. Thread-safe."""

    def __init__(self, *faults: Fault, inner: RealFileSystem = REAL_FS) -> None:
        self.inner = inner
        self.faults = list(faults)
        self.calls: Counter[str] = Counter()
        self.log: list[tuple[str, str]] = []  # (operation, path) in call order
        self._fd_paths: dict[int, str] = {}
        self._lock = threading.Lock()

    @property
    def has_syncfs(self) -> bool:
        return self.inner.has_syncfs

    def _check(self, op: str, where: str) -> None:
        with self._lock:
            self.calls[op] += 1
            self.log.append((op, where))
            for f in self.faults:
                if f.op != op or f.path_contains not in where:
                    continue
                f.seen += 1
                if f.seen >= f.nth and f.fired < f.times:
                    f.fired += 1
                    raise OSError(f.errno, f"injected {os.strerror(f.errno)}", where)

    def open(self, path: Path, flags: int, mode: int = 0o644) -> int:
        self._check("open", str(path))
        fd = self.inner.open(path, flags, mode)
        with self._lock:
            self._fd_paths[fd] = str(path)
        return fd

    def write(self, fd: int, data: bytes | memoryview) -> int:
        self._check("write", self._fd_paths.get(fd, ""))
        return self.inner.write(fd, data)

    def fsync(self, fd: int) -> None:
        self._check("fsync", self._fd_paths.get(fd, ""))
        self.inner.fsync(fd)

    def fdatasync(self, fd: int) -> None:
        self._check("fdatasync", self._fd_paths.get(fd, ""))
        self.inner.fdatasync(fd)

    def syncfs(self, fd: int) -> None:
        self._check("syncfs", self._fd_paths.get(fd, ""))
        self.inner.syncfs(fd)

    def close(self, fd: int) -> None:
        with self._lock:
            self._fd_paths.pop(fd, None)
        self.inner.close(fd)

    def replace(self, src: Path, dst: Path) -> None:
        self._check("replace", str(dst))
        self.inner.replace(src, dst)

    def fsync_dir(self, path: Path) -> None:
        self._check("fsync_dir", str(path))
        self.inner.fsync_dir(path)

    def mkdir(self, path: Path) -> None:
        self._check("mkdir", str(path))
        self.inner.mkdir(path)

    def unlink(self, path: Path) -> None:
        self.inner.unlink(path)

    def note_target(self, fd: int, target: Path) -> None:
        """fd operations on a staged temp file also match faults by its target's path."""
        with self._lock:
            self._fd_paths[fd] = f"{self._fd_paths.get(fd, '')} -> {target}"

    @property
    def syncs(self) -> int:
        """How many durability barriers were issued (fsync, fdatasync, syncfs, fsync_dir)."""
        return (self.calls["fsync"] + self.calls["fdatasync"] + self.calls["syncfs"]
                + self.calls["fsync_dir"])
