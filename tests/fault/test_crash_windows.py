"""Crash windows too narrow to hit reliably with a kill, rebuilt on disk exactly as a crash
leaves them, then resumed with ``hive-actors resume``."""

from __future__ import annotations

import json
import subprocess

import trio

from fault.crash_harness import AGENT, INPUT, STEPS, Control, cli, env_for, list_sessions
from fault.support import STATS, check_session_folder
from hive_actors.storage.session_store import SessionStore, decode_record, encode_record


async def _run(tmp_path, ctl, *args):
    return await trio.run_process(cli(*args), env=env_for(ctl), stdin=b"", capture_stdout=True,
                                  capture_stderr=True, check=False)


async def test_crash_after_last_checkpoint_before_final_state_reruns_nothing(tmp_path):
    """The last node's checkpoint is durable, state.json still says running (the process died
    before writing the final one): resume finishes the session without running any node."""
    ctl = Control(tmp_path / "ctl")
    storage = tmp_path / "store"
    try:
        done = await _run(tmp_path, ctl, "run", str(AGENT), "--input", json.dumps(INPUT),
                          "--storage", str(storage))
        assert done.returncode == 0, done.stderr.decode()
        store = SessionStore(storage)
        (sid,) = store.session_ids()
        final = store.read_state(sid)
        # state.json as the last node boundary left it: running, no output yet
        path = store.state_path(sid)
        crashed = final.evolve(status="running", output={}, error=None)
        path.write_bytes(encode_record(crashed))
        (store.logs_dir(sid) / "summary.json").unlink()
        STATS.add("sessions_simulated")
        assert ctl.calls() == list(STEPS)

        again = await _run(tmp_path, ctl, "resume", str(AGENT), sid, "--storage", str(storage))
        assert again.returncode == 0, again.stderr.decode()
        record = decode_record(path, path.read_bytes())
        assert record.status == "completed" and record.output == final.output
        assert ctl.calls() == list(STEPS)  # nothing ran again
        check_session_folder(store.session_dir(sid))
        STATS.add("sessions_recovered")
    finally:
        await ctl.aclose()


async def test_resume_after_a_torn_details_line_keeps_the_log_readable(tmp_path):
    """A crash (power cut) mid-append leaves details.jsonl with a last line without its
    newline; readers ignore it. The resumed session appends after it: the log must stay
    readable (the torn line must not become a bad line in the middle)."""
    # kill in the middle of s3, then add a torn append at the end of details.jsonl
    ctl = Control(tmp_path / "ctl")
    storage = tmp_path / "store"
    try:
        ctl.plan("mid", "s3")
        proc = await trio.lowlevel.open_process(
            cli("run", str(AGENT), "--input", json.dumps(INPUT), "--storage", str(storage)),
            env=env_for(ctl), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        with trio.fail_after(60):
            assert await ctl.next_signal() == "mid s3"
        proc.kill()
        await proc.wait()
        STATS.add("kills")
        await list_sessions(storage)  # replays the journal's tail into the session files
        store = SessionStore(storage)
        (sid,) = store.session_ids()
        details = store.logs_dir(sid) / "details.jsonl"
        with details.open("ab") as f:
            f.write(b'{"node_id": "s3", "succ')  # cut by the crash
        assert [d["node_id"] for d in store.read_details(sid)] == ["s1", "s2"]
        ctl.plan(None)
        again = await _run(tmp_path, ctl, "resume", str(AGENT), sid, "--storage", str(storage))
        assert again.returncode == 0, again.stderr.decode()
        assert store.read_state(sid).status == "completed"
        nodes = [d["node_id"] for d in store.read_details(sid)]
        assert nodes == ["s1", "s2", "s3", "s4", "s5"]
        check_session_folder(store.session_dir(sid))
        STATS.add("sessions_recovered")
    finally:
        await ctl.aclose()
