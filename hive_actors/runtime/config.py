"""RuntimeConfig: every knob of an AgentRuntime, with documented defaults."""

from __future__ import annotations

from typing import Any

import attrs

QUEUE_FULL_POLICIES = ("error", "wait")
STORAGE_ENGINES = ("journal", "files")
EVENT_HISTORIES = ("lifecycle", "all", "none")


def _store_url(_inst: object, _attr: attrs.Attribute[str | None], value: str | None) -> None:
    if value is not None and not value.startswith(("postgresql://", "postgres://")):
        raise ValueError(f"RuntimeConfig.store must be a postgresql:// URL, got {value[:40]!r}")


@attrs.frozen
class RuntimeConfig:
    """How an `AgentRuntime` behaves. All fields have defaults; pass only what you change.

    Client input: an execution that needs user input waits ``client_input_timeout`` seconds
    (None = forever) when a live client subscribed to ``CLIENT_INPUT_REQUESTED`` for it, and
    pauses at once otherwise.
    """

    client_input_timeout: float | None = None
    # A full entry-point queue: "error" raises QueueFullError, "wait" blocks trigger().
    queue_full: str = attrs.field(default="error", validator=attrs.validators.in_(QUEUE_FULL_POLICIES))
    # Idempotency keys are remembered this long (seconds) and at most this many (oldest go first).
    idempotency_ttl_seconds: float = 300.0
    idempotency_max_keys: int = 10_000
    # Finished results kept per stream for trigger_and_wait / get_result.
    result_retention_max: int = 1000
    # On start, continue sessions a dead process left `running`.
    resume_interrupted: bool = False
    # Write state.json at every node boundary (besides accept and end).
    state_on_node_boundaries: bool = True
    # An actor (bus, writer, stream, trigger) that crashes is restarted up to this many times
    # within ``restart_window_seconds``; one more crash fails the runtime.
    max_actor_restarts: int = 3
    restart_window_seconds: float = 60.0
    # Base ExecutorConfig of every execution (its input_timeout is replaced by the client
    # input policy above); None = ExecutorConfig().
    executor_config: Any = None
    # With a storage path: "journal" (one durable log per runtime; the session files are its
    # view, see docs/storage.md) or "files" (each session file written and synced in place).
    storage_engine: str = attrs.field(default="journal",
                                      validator=attrs.validators.in_(STORAGE_ENGINES))
    # A postgresql:// URL: the storage engine is that database (storage/postgres.py,
    # docs/scale-out.md) instead of ``storage_engine``; paths under storage_path become rows.
    store: str | None = attrs.field(default=None, validator=_store_url)
    # With a store: False = a client (trigger() queues the execution durably, trigger_and_wait()
    # waits for whichever worker runs it); True = a worker, running the store's queue with
    # ``worker_concurrency`` executions at once and a lease of ``lease_seconds``.
    worker: bool = False
    worker_concurrency: int = attrs.field(default=8, validator=attrs.validators.ge(1))
    lease_seconds: float = attrs.field(default=5.0, validator=attrs.validators.gt(0))
    # Journal: stop() waits until the session files show every final record (True), or returns
    # once the records are durable and leaves the files to the next start or `hive-actors
    # sessions`, which replay the journal (False: a fast stop with many executions in flight).
    view_catch_up_on_stop: bool = True
    # ...but only when at most this many view writes are due at stop (the final records of
    # many in-flight executions are not waited for: stop() stays fast; readers replay them)
    view_catch_up_limit: int = attrs.field(default=512, validator=attrs.validators.and_(
        attrs.validators.instance_of(int), attrs.validators.ge(0)))
    # What the event bus keeps for replay (``since=``, ``history()``): "lifecycle" (execution
    # start/end, client input, actor and tool-server events), "all" (also every node, edge,
    # model, tool and state event: each is then built even when nobody subscribes) or "none".
    # The event feed widens it to "all" while it serves. Live subscriptions always get every
    # event of their filter whatever this says.
    event_history: str = attrs.field(default="lifecycle",
                                     validator=attrs.validators.in_(EVENT_HISTORIES))
    # At most this many events are kept for replay (the oldest go first).
    event_history_max: int = attrs.field(default=10_000, validator=attrs.validators.ge(0))
    # Upper bound (seconds) on delivering the final event of a cancelled execution at stop().
    shutdown_event_grace_seconds: float = 5.0
    # Input checked at the door (trigger, resume, the feed, the CLI): plain JSON (no NaN or
    # Infinity, no bytes or other objects), at most this many bytes once encoded, nested at
    # most this deep. Anything else is refused with InputDataError naming the value's path.
    max_input_bytes: int = 8 * 1024 * 1024
    max_input_depth: int = 64
    # OpenTelemetry spans and metrics of executions, nodes, model and tool calls
    # (hive_actors/tracing.py; needs `pip install 'hive-actors[otel]'`). The providers: None =
    # OpenTelemetry's global ones. Prompts, completions and tool arguments/results are
    # recorded only with capture_content.
    tracing: bool = False
    capture_content: bool = False
    tracer_provider: Any = None
    meter_provider: Any = None
