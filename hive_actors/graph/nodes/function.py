"""Function nodes: a Python callable called with the node's input keys as keyword arguments.

It returns a dict of output keys (None counts as {}). Sync callables run in a worker thread
(unless ``ExecutorConfig.sync_functions_in_thread`` is off); async ones are awaited in the
execution's task. An exception is a failure of the attempt.
"""

from __future__ import annotations

import functools
from typing import Any

import trio

from hive_actors.graph.nodes.base import NodeContext, NodeImpl, NodeOutcome, register_node_type


@register_node_type
class FunctionNode(NodeImpl):
    node_type = "function"

    async def run(self, ctx: NodeContext) -> NodeOutcome:
        node = ctx.node
        ref = node.function or node.id
        services = ctx.services
        fn, is_async = services.resolve_function(ref, node.id)
        timeout = services.config.function_node_timeout
        if timeout:
            with trio.fail_after(timeout):
                result = await self._call(fn, is_async, ctx)
        elif is_async:  # the common case, without a cancel scope
            result = await fn(**ctx.inputs)
        else:
            result = await self._call(fn, is_async, ctx)
        if result is None:
            result = {}
        elif type(result) is not dict and not isinstance(result, dict):
            return NodeOutcome.fail(
                f"function {ref!r} returned {type(result).__name__}; a function node must "
                f"return a dict of its output keys {list(node.output_keys)}"
            )
        return NodeOutcome(True, result)

    @staticmethod
    async def _call(fn: Any, is_async: bool, ctx: NodeContext) -> Any:
        if is_async:
            return await fn(**ctx.inputs)
        if ctx.services.config.sync_functions_in_thread:
            return await trio.to_thread.run_sync(functools.partial(fn, **ctx.inputs))
        return fn(**ctx.inputs)
