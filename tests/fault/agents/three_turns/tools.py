"""The three_turns agent's tool, with crash-test hooks (as five_steps/steps.py).

``bump(n)`` appends ``bump<n>`` to ``$FAULT_CTL/calls.log`` (its side effect, append-only so
reruns are visible) and returns ``bumped <n>`` with the fake server's marker ``after<n>``. If ``$FAULT_CTL/plan`` says ``tool <n>``, the
call first writes that line to ``signal.fifo`` and blocks reading ``hold.fifo``.
"""

import os

from hive_actors import tool


def _ctl(name):
    folder = os.environ.get("FAULT_CTL")
    return os.path.join(folder, name) if folder else None


def _hook(point):
    plan = _ctl("plan")
    if plan is None or not os.path.exists(plan):
        return
    with open(plan) as f:
        if f.read().split() != point.split():
            return
    with open(_ctl("signal.fifo"), "w") as f:
        f.write(point + "\n")
    with open(_ctl("hold.fifo")) as f:
        f.read()


@tool
def bump(n: int) -> str:
    """Bump the counter.

    Args:
        n: which bump this is
    """
    _hook(f"tool {n}")
    log = _ctl("calls.log")
    if log is not None:
        with open(log, "a") as f:  # one write of one short line: appends stay whole
            f.write(f"bump{n}\n")
    return f"bumped {n} [[fake:after{n}]]"  # the marker lets the fake server answer by turn
