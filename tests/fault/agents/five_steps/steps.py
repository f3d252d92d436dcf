"""The steps of the five_steps agent, with crash-test hooks.

Without $FAULT_CTL the steps are plain functions. With it (a folder):
- every call appends "<step>\\n" to ``calls.log`` there (append-only: reruns are visible);
- if the file ``plan`` there says ``<where> <step>`` (where = enter | mid | exit), that step
  writes ``<where> <step>`` to ``signal.fifo`` and then blocks reading ``hold.fifo`` until the
  test opens and closes it: ``enter`` before the call is logged, ``mid`` after it, ``exit``
  after it too, but the test releases it (and kills right after) instead of killing at once.
"""

import os


def _ctl(name):
    folder = os.environ.get("FAULT_CTL")
    return os.path.join(folder, name) if folder else None


def _hook(where, step):
    plan = _ctl("plan")
    if plan is None or not os.path.exists(plan):
        return
    with open(plan) as f:
        if f.read().split() != [where, step]:
            return
    with open(_ctl("signal.fifo"), "w") as f:
        f.write(f"{where} {step}\n")
    with open(_ctl("hold.fifo")) as f:
        f.read()


def _step(step, value):
    _hook("enter", step)
    log = _ctl("calls.log")
    if log is not None:
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{step}\n".encode())
        finally:
            os.close(fd)
    _hook("mid", step)
    _hook("exit", step)
    return value


def s1(x):
    return _step("s1", {"a": x + 1})


def s2(a):
    return _step("s2", {"b": a * 3})


def s3(b):
    return _step("s3", {"c": b - 2})


def s4(c):
    return _step("s4", {"d": c * c})


def s5(a, d):
    return _step("s5", {"result": f"{a}:{d}"})
