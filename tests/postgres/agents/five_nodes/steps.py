"""The five_nodes steps. With $CLUSTER_CALLS (a file) every call appends "<x> <node> <pid>"
to it (one short O_APPEND write: whole lines, reruns visible). $CLUSTER_STEP_SECONDS makes
each step take that long (so a worker can be killed mid-run)."""

import os
import time


def _step(node, x):
    path = os.environ.get("CLUSTER_CALLS")
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{x} {node} {os.getpid()}\n".encode())
        finally:
            os.close(fd)
    delay = float(os.environ.get("CLUSTER_STEP_SECONDS") or 0)
    if delay:
        time.sleep(delay)


def n1(x):
    _step("n1", x)
    return {"a": x + 1}


def n2(a):
    _step("n2", a - 1)
    return {"b": a * 2}


def n3(b):
    _step("n3", b // 2 - 1)
    return {"c": b + 3}


def n4(c):
    _step("n4", (c - 3) // 2 - 1)
    return {"d": c * 10}


def n5(x, d):
    _step("n5", x)
    return {"result": d - x}
