"""Who owns a running session: enough to tell later whether that process is still alive.

A pid alone is not enough (pids are reused, machines reboot), so an owner also records the
host, the kernel's boot id and the process's start time (Linux ``/proc``; elsewhere only the
pid is checked).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import attrs


@attrs.frozen
class OwnerInfo:
    pid: int
    host: str
    boot_id: str = ""
    # process start time in clock ticks after boot (/proc/<pid>/stat field 22); None = unknown
    start_time: int | None = None


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def process_start_time(pid: int) -> int | None:
    """Start time of ``pid`` in ticks after boot, or None if unknown or no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after the last ')'
    fields = stat[stat.rindex(")") + 2 :].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def current_owner() -> OwnerInfo:
    pid = os.getpid()
    return OwnerInfo(pid=pid, host=socket.gethostname(), boot_id=_boot_id(),
                     start_time=process_start_time(pid))


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owner_is_alive(owner: OwnerInfo) -> bool:
    """Whether ``owner`` may still be running. Owners on another host count as alive (we
    cannot tell); on this host a different boot, a missing pid or a pid reused by a process
    that started at another time mean it is gone."""
    if owner.host != socket.gethostname():
        return True
    boot = _boot_id()
    if owner.boot_id and boot and owner.boot_id != boot:
        return False
    if not _pid_exists(owner.pid):
        return False
    if owner.start_time is not None:
        now = process_start_time(owner.pid)
        if now is not None and now != owner.start_time:
            return False
    return True
