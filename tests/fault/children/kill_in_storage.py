"""Child process: run one execution of AGENT with the journal engine and SIGKILL itself at
the NTH call of storage operation OP (through the fs seam), in the middle of it:

- ``segment_write``: half of a group commit's bytes reach the segment, then the kill;
- ``fdatasync``: the batch is written, the kill comes before its barrier returns;
- ``view_replace``: the view has written some files of its batch, not this one;
- ``materialise_write``: half of a checkpoint file the view materialises from a delta
  record is written (to its temp file), then the kill;
- ``retire_unlink``: the view synced and moved its mark, the old segment is not deleted yet.

Segments are tiny here (every batch starts a new one), so every batch is followed by a
retirement. Exits 0 if the run ends before the NTH call (the test then knows the count).

usage: kill_in_storage.py AGENT STORAGE OP NTH
"""

import functools
import json
import os
import signal
import sys
from pathlib import Path

import trio

from hive_actors.runner import AgentRunner
from hive_actors.runtime import agent_runtime
from hive_actors.storage.fs import RealFileSystem
from hive_actors.storage.journal import Journal


class KillingFileSystem(RealFileSystem):
    def __init__(self, op: str, nth: int) -> None:
        self.op, self.nth, self.seen = op, nth, 0
        self.paths: dict[int, str] = {}

    def _hit(self, op: str) -> bool:
        if op != self.op:
            return False
        self.seen += 1
        return self.seen == self.nth

    def open(self, path, flags, mode=0o644):
        fd = super().open(path, flags, mode)
        self.paths[fd] = str(path)
        return fd

    def write(self, fd, data):
        path = self.paths.get(fd, "")
        if (("/journal/seg_" in path and self._hit("segment_write"))
                or ("/journal/tmp/.cp_" in path and self._hit("materialise_write"))):
            os.write(fd, bytes(data[: max(1, len(data) // 2)]))
            os.kill(os.getpid(), signal.SIGKILL)
        return super().write(fd, data)

    def fdatasync(self, fd):
        if self._hit("fdatasync"):
            os.kill(os.getpid(), signal.SIGKILL)
        super().fdatasync(fd)

    def replace(self, src, dst):
        if "/sessions/" in str(dst) and self._hit("view_replace"):
            os.kill(os.getpid(), signal.SIGKILL)
        super().replace(src, dst)

    def unlink(self, path):
        if "/journal/seg_" in str(path) and self._hit("retire_unlink"):
            os.kill(os.getpid(), signal.SIGKILL)
        super().unlink(path)


async def main(agent: str, storage: str, op: str, nth: int) -> None:
    fs = KillingFileSystem(op, nth)
    agent_runtime.Journal = functools.partial(Journal, fs=fs, segment_bytes=1)
    runner = AgentRunner.load(agent, storage_path=storage)
    async with runner:
        result = await runner.run({"x": 1})
    print(json.dumps({"status": result.status, "calls": fs.seen}))


if __name__ == "__main__":
    a = sys.argv[1:]
    trio.run(main, a[0], str(Path(a[1])), a[2], int(a[3]))
