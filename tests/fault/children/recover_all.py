"""Child process: start a runtime that resumes every interrupted session of STORAGE and print
``{"session_id": {"status": ..., "output": ...}}`` once all of them have ended.

usage: recover_all.py AGENT STORAGE
"""

import json
import sys

import trio

from hive_actors.runner import AgentRunner
from hive_actors.runtime.config import RuntimeConfig


async def main(agent: str, storage: str) -> None:
    runner = AgentRunner.load(agent, storage_path=storage,
                              config=RuntimeConfig(resume_interrupted=True))
    async with runner:
        runtime = runner.runtime
        out = {}
        for sid in runtime.interrupted_sessions:
            with trio.fail_after(60):
                while True:
                    try:
                        result = await runtime.wait_for_result(sid)
                        break
                    except KeyError:  # its resume has not been accepted yet
                        await trio.sleep(0)
            out[sid] = {"status": result.status, "output": result.output}
    print(json.dumps(out))


if __name__ == "__main__":
    trio.run(main, sys.argv[1], sys.argv[2])
