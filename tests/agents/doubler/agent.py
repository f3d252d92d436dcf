"""A two-node agent in code form: a function node that doubles `x`, then an LLM report."""

from hive_actors.graph import EdgeSpec, Goal, NodeSpec, SuccessCriterion

goal = Goal(
    id="double",
    name="Double a number",
    description="Double the input and report it.",
    success_criteria=(SuccessCriterion(id="doubled", description="y is twice x"),),
)

nodes = [
    NodeSpec(
        id="double",
        name="Double",
        description="Doubles x into y",
        node_type="function",
        function="tools:double",
        input_keys=("x",),
        output_keys=("y",),
    ),
    NodeSpec(
        id="report",
        name="Report",
        description="Reports the doubled number",
        input_keys=("y",),
        output_keys=("summary",),
        tools=("double",),
        max_retries=1,
    ),
]

edges = [EdgeSpec(id="double-report", source="double", target="report")]

terminal_nodes = ["report"]
entry_points = {"start": "double"}
identity_prompt = "You double numbers."
conversation_mode = "isolated"
max_steps = 10
