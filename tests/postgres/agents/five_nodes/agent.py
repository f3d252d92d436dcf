"""Five function nodes in a line (n1 -> n5) for the cluster tests; steps.py logs every call."""

from hive_actors.graph import EdgeSpec, Goal, NodeSpec

goal = Goal(id="five_nodes", name="Five nodes", description="Carry a number through five nodes.")

nodes = [
    NodeSpec(id="n1", node_type="function", function="steps:n1", input_keys=("x",),
             output_keys=("a",)),
    NodeSpec(id="n2", node_type="function", function="steps:n2", input_keys=("a",),
             output_keys=("b",)),
    NodeSpec(id="n3", node_type="function", function="steps:n3", input_keys=("b",),
             output_keys=("c",)),
    NodeSpec(id="n4", node_type="function", function="steps:n4", input_keys=("c",),
             output_keys=("d",)),
    NodeSpec(id="n5", node_type="function", function="steps:n5", input_keys=("x", "d"),
             output_keys=("result",)),
]

edges = [EdgeSpec(id=f"e{i}", source=f"n{i}", target=f"n{i + 1}") for i in range(1, 5)]

terminal_nodes = ["n5"]
max_steps = 20
