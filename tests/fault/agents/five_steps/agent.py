"""Five function nodes in a line (s1 -> s5), one conditional edge; the crash-matrix agent.

Each step appends its name to a call log and can be told (by files in $FAULT_CTL) to signal
and block at its entry, in its middle, or at its exit; see steps.py.
"""

from hive_actors.graph import EdgeSpec, EdgeCondition, Goal, NodeSpec

goal = Goal(id="five_steps", name="Five steps", description="Carry a number through five steps.")

nodes = [
    NodeSpec(id="s1", node_type="function", function="steps:s1", input_keys=("x",),
             output_keys=("a",)),
    NodeSpec(id="s2", node_type="function", function="steps:s2", input_keys=("a",),
             output_keys=("b",)),
    NodeSpec(id="s3", node_type="function", function="steps:s3", input_keys=("b",),
             output_keys=("c",)),
    NodeSpec(id="s4", node_type="function", function="steps:s4", input_keys=("c",),
             output_keys=("d",)),
    NodeSpec(id="s5", node_type="function", function="steps:s5", input_keys=("a", "d"),
             output_keys=("result",)),
]

edges = [
    EdgeSpec(id="e1", source="s1", target="s2"),
    EdgeSpec(id="e2", source="s2", target="s3"),
    EdgeSpec(id="e3", source="s3", target="s4", condition=EdgeCondition.CONDITIONAL,
             condition_expr="c > 0"),
    EdgeSpec(id="e4", source="s4", target="s5"),
]

terminal_nodes = ["s5"]
max_steps = 20
