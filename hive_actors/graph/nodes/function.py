"""Function nodes: a Python callable called with the node's input keys as keyword arguments.

It returns a dict of output keys (None counts as {}). Sync callables run in a worker thread
(unless ``ExecutorConfig.sync_functions_in_thread`` is off); async ones are awaited in the
execution's task. An exception is a failure of the attempt.
"""

from __future__ import annotations

import contextlib
import functools

import trio

from hive_actors.graph.nodes.base import NodeContext, NodeImpl, NodeOutcome, register_node_type


@register_node_type
class FunctionNode(NodeImpl):
    node_type = "function"

    async def run(self, ctx: NodeContext) -> NodeOutcome:
        node = ctx.node
        ref = node.function or node.id
        fn, is_async = ctx.services.resolve_function(ref, node.id)
        config = ctx.services.config
        timeout = config.function_node_timeout
        with trio.fail_after(timeout) if timeout else contextlib.nullcontext():
            if is_async:
                result = await fn(**ctx.inputs)
            elif config.sync_functions_in_thread:
                result = await trio.to_thread.run_sync(functools.partial(fn, **ctx.inputs))
            else:
                result = fn(**ctx.inputs)
        if result is None:
            result = {}
        if not isinstance(result, dict):
            return NodeOutcome.fail(
                f"function {ref!r} returned {type(result).__name__}; a function node must "
                f"return a dict of its output keys {list(node.output_keys)}"
            )
        return NodeOutcome.ok(result)

