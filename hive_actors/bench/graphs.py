"""The graphs every system runs: the same shapes for hive_actors, the trio floor and LangGraph.

``seq``: five nodes in a line, each one dict update (``k -> a -> b -> c -> d -> e``).
``par``: a start node fans out to five branches that join in one node.
Steps cost nothing on purpose: what is measured is the runtime around them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import trio

from hive_actors.graph.spec import EdgeSpec, Goal, GraphSpec, NodeSpec

# A function node's callable: the node's input keys as keyword arguments, its output updates back.
StepFn = Callable[..., Awaitable[dict[str, int]]]

GOAL = Goal(id="bench", name="benchmark")
SEQ_KEYS = ("k", "a", "b", "c", "d", "e")
BRANCHES = ("p1", "p2", "p3", "p4", "p5")
SEQ_TRANSITIONS = 5
PAR_TRANSITIONS = 7


def step(i: int) -> StepFn:
    """The i-th `seq` step (1..5): reads key i-1, writes key i."""
    src, dst = SEQ_KEYS[i - 1], SEQ_KEYS[i]

    async def run(**inputs: int) -> dict[str, int]:
        return {dst: inputs[src] + 1}

    run.__name__ = f"s{i}"
    return run


SEQ_STEPS = tuple(step(i) for i in range(1, 6))


async def par_start(k: int) -> dict[str, int]:
    return {"a": k + 1}


def branch(name: str) -> StepFn:
    async def run(a: int) -> dict[str, int]:
        return {name: a + 1}

    run.__name__ = name
    return run


async def par_join(**inputs: int) -> dict[str, int]:
    return {"e": sum(inputs[b] for b in BRANCHES)}


def function_line(graph_id: str, keys: Sequence[str], function_prefix: str,
                  **graph_fields: Any) -> GraphSpec:  # GraphSpec's own fields, as it types them
    """Function nodes n1 -> n2 -> ... in a line: node ``ni`` calls ``{prefix}i`` with
    ``keys[i-1]`` and writes ``keys[i]`` (so ``len(keys) - 1`` nodes)."""
    count = len(keys) - 1
    nodes = tuple(
        NodeSpec(id=f"n{i}", node_type="function", function=f"{function_prefix}{i}",
                 input_keys=(keys[i - 1],), output_keys=(keys[i],))
        for i in range(1, count + 1)
    )
    edges = tuple(EdgeSpec(id=f"e{i}", source=f"n{i}", target=f"n{i + 1}")
                  for i in range(1, count))
    return GraphSpec(id=graph_id, entry_node="n1", nodes=nodes, edges=edges, **graph_fields)


def seq_graph() -> GraphSpec:
    """The 5-node function `seq` graph."""
    return function_line("bench_seq", SEQ_KEYS, "s", terminal_nodes=("n5",))


def seq_functions() -> dict[str, StepFn]:
    return {f"s{i}": fn for i, fn in enumerate(SEQ_STEPS, start=1)}


def par_graph() -> GraphSpec:
    """Start -> five parallel branches -> join."""
    nodes = [NodeSpec(id="start", node_type="function", function="par_start",
                      input_keys=("k",), output_keys=("a",))]
    nodes += [NodeSpec(id=b, node_type="function", function=b, input_keys=("a",),
                       output_keys=(b,)) for b in BRANCHES]
    nodes.append(NodeSpec(id="join", node_type="function", function="par_join",
                          input_keys=BRANCHES, output_keys=("e",)))
    edges = [EdgeSpec(id=f"start-{b}", source="start", target=b) for b in BRANCHES]
    edges += [EdgeSpec(id=f"{b}-join", source=b, target="join") for b in BRANCHES]
    return GraphSpec(id="bench_par", entry_node="start", nodes=tuple(nodes), edges=tuple(edges),
                     terminal_nodes=("join",))


def par_functions() -> dict[str, StepFn]:
    fns: dict[str, StepFn] = {"par_start": par_start, "par_join": par_join}
    fns.update({b: branch(b) for b in BRANCHES})
    return fns


def llm_seq_graph() -> GraphSpec:
    """`seq` with model-driven ``event_loop`` nodes: one model call per node (a text turn
    ends a node that has no required output keys)."""
    nodes = tuple(
        NodeSpec(id=f"n{i}", node_type="event_loop", input_keys=("k",),
                 system_prompt=f"Step {i}.")
        for i in range(1, 6)
    )
    edges = tuple(EdgeSpec(id=f"e{i}", source=f"n{i}", target=f"n{i + 1}") for i in range(1, 5))
    return GraphSpec(id="bench_llm_seq", entry_node="n1", nodes=nodes, edges=edges,
                     terminal_nodes=("n5",), conversation_mode="isolated")


def waiting_graph() -> GraphSpec:
    """One client-facing ``event_loop`` node: it greets, then waits for client input."""
    node = NodeSpec(id="ask", node_type="event_loop", client_facing=True,
                    input_keys=("k",), output_keys=("answer",), system_prompt="Ask the user.")
    return GraphSpec(id="bench_wait", entry_node="ask", nodes=(node,), terminal_nodes=("ask",))


def blocking_seq_functions(gate: trio.Event) -> dict[str, StepFn]:
    """`seq` steps whose third step waits for ``gate`` (a trio.Event) before returning."""
    fns = seq_functions()
    inner = fns["s3"]

    async def s3(**inputs: int) -> dict[str, int]:
        await gate.wait()
        return await inner(**inputs)

    fns["s3"] = s3
    return fns
