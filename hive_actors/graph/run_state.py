"""The mutable state of one execution, and its snapshot as a SessionState.

Positions are kept per *lane*: the root lane is the sequential walk; a fan-out gives each
branch a child lane and parks the parent until every branch has finished, when the parent's
position becomes the join node. The frontier (the positions of all live lanes) is what a
checkpoint stores as ``next_nodes``: nodes about to run or running. A running node's visit
(its visit count and step) is left out of a snapshot, so a resume runs it again from its start.
"""

from __future__ import annotations

from typing import Any

from hive_actors.graph.result import SessionState


class Lane:
    __slots__ = ("position", "parent", "children", "join", "previous")

    def __init__(self, position: str | None = None, parent: Lane | None = None) -> None:
        self.position = position
        self.parent = parent
        self.children: list[Lane] = []
        self.join: str | None = None
        self.previous: str | None = None  # last node this lane completed

    def fork(self, targets: tuple[str, ...], join: str | None) -> list[Lane]:
        """Park this lane and give each target a child lane."""
        self.position = None
        self.join = join
        self.children = [Lane(t, self) for t in targets]
        for child in self.children:
            child.previous = self.previous
        return self.children

    def finish(self) -> None:
        """This lane has nothing more to run; a parent whose branches all finished moves on
        to its join node."""
        self.position = None
        parent = self.parent
        if parent is not None and self in parent.children:
            parent.children.remove(self)
            if not parent.children:
                parent.position = parent.join

    def frontier(self, out: list[str]) -> list[str]:
        if self.children:
            for child in self.children:
                child.frontier(out)
        elif self.position is not None:
            out.append(self.position)
        return out


class RunState:
    """Counters, buffer, path and conversations of one execution."""

    __slots__ = (
        "session_id", "memory", "path", "visits", "steps", "tokens", "retries", "failures",
        "conversations", "inflight", "root", "paused_at", "waiting_input", "resume_after",
    )

    def __init__(self, session_id: str, previous: SessionState | None = None) -> None:
        self.session_id = session_id
        self.root = Lane()
        self.inflight: dict[Lane, str] = {}
        self.paused_at: str | None = None
        self.waiting_input: str | None = None
        self.resume_after: str | None = None
        self.failures = 0  # failed attempts, routed or not (any makes a success "degraded")
        if previous is None:
            self.memory: dict[str, Any] = {}
            self.path: list[str] = []
            self.visits: dict[str, int] = {}
            self.conversations: dict[str, list[dict[str, Any]]] = {}
            self.steps = self.tokens = self.retries = 0
        else:
            self.memory = dict(previous.memory)
            self.path = list(previous.execution_path)
            self.visits = dict(previous.node_visit_counts)
            self.conversations = {k: list(v) for k, v in previous.conversations.items()}
            self.steps = previous.steps_executed
            self.tokens = previous.total_tokens
            self.retries = previous.total_retries

    def frontier(self) -> tuple[str, ...]:
        return tuple(self.root.frontier([]))

    def snapshot(self) -> SessionState:
        """Everything needed to continue from here (nodes in flight will run again)."""
        visits = self.visits
        steps = self.steps
        if self.inflight:
            visits = dict(visits)
            for node_id in self.inflight.values():
                visits[node_id] = visits.get(node_id, 1) - 1
                steps -= 1
        return SessionState(
            session_id=self.session_id,
            memory=dict(self.memory),
            execution_path=tuple(self.path),
            node_visit_counts=dict(visits),
            next_nodes=self.frontier(),
            paused_at=self.paused_at,
            resume_after=self.resume_after,
            waiting_input=self.waiting_input,
            conversations={k: list(v) for k, v in self.conversations.items()},
            steps_executed=steps,
            total_tokens=self.tokens,
            total_retries=self.retries,
        )
