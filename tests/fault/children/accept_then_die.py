"""Child process: trigger executions of an agent and SIGKILL itself right after the
``stop_after``-th trigger has returned its execution id (each id is written to ``ids_file``
before the kill, so the test knows which executions were accepted).

usage: accept_then_die.py AGENT STORAGE IDS_FILE COUNT STOP_AFTER
"""

import json
import os
import signal
import sys

import trio

from hive_actors.runner import AgentRunner


async def main(agent: str, storage: str, ids_file: str, count: int, stop_after: int) -> None:
    runner = AgentRunner.load(agent, storage_path=storage)
    await runner.start()
    returned = 0
    fd = os.open(ids_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    async def one(k: int) -> None:
        nonlocal returned
        eid = await runner.trigger(input_data={"x": k})
        os.write(fd, (json.dumps({"k": k, "id": eid}) + "\n").encode())
        returned += 1
        if returned == stop_after:
            os.kill(os.getpid(), signal.SIGKILL)  # no checkpoint between return and death

    async with trio.open_nursery() as nursery:
        for k in range(count):
            nursery.start_soon(one, k)


if __name__ == "__main__":
    a = sys.argv[1:]
    trio.run(main, a[0], a[1], a[2], int(a[3]), int(a[4]))
