"""One function node fired by a 1 s timer entry point (the cluster's once-per-slot test)."""

from hive_actors.graph import Goal, NodeSpec
from hive_actors.graph.spec import EntryPointSpec

goal = Goal(id="ticker", name="Ticker", description="Record each timer slot.")

nodes = [NodeSpec(id="tick", node_type="function", function="steps:tick",
                  input_keys=("event",), output_keys=("slot",))]
edges = []
terminal_nodes = ["tick"]

entry_points = [EntryPointSpec(id="tick", entry_node="tick", trigger_type="timer",
                               trigger_config={"interval_seconds": 1})]
