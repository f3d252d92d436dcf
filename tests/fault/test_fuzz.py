"""Hypothesis fuzzing of every input a user or a client controls: agent definitions,
condition expressions, session states, event filters and feed messages. Only the project's
typed errors may come out; the expression evaluator stays within its bounds and never
touches an attribute starting with ``_``.

Fast set: a few hundred examples in all; full set (``-m slow``): thousands.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fault.support import STATS
from hive_actors.errors import (
    AgentDefinitionError,
    ExpressionError,
    HiveActorsError,
    SessionStateError,
)
from hive_actors.feed.protocol import ProtocolError, parse_request
from hive_actors.graph.expression_ops import MAX_INT_BITS, MAX_SIZE, weight
from hive_actors.graph.expressions import compile_expression, edge_names
from hive_actors.graph.loader import load_agent, validate_agent
from hive_actors.graph.result import SessionState
from hive_actors.runtime.event_bus import EventBus
from hive_actors.events import EventType

FAST = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FULL = settings(max_examples=1500, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

json_scalar = (st.none() | st.booleans() | st.integers(-10**6, 10**6)
               | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12))
json_value = st.recursive(
    json_scalar,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=16,
)


def both(strategy):
    """A fast test (default run) and a slow one with many more examples, same body."""
    def make(body):
        fast = pytest.mark.fast_sample(FAST(given(strategy)(body)))
        slow = pytest.mark.slow(FULL(given(strategy)(body)))
        return fast, slow
    return make


# ---- agent definitions -----------------------------------------------------------------

ids = st.sampled_from(["a", "b", "c", "start", "", "a b", "../x", "é"]) | st.text(max_size=6)
node = st.fixed_dictionaries(
    {"id": ids},
    optional={
        "node_type": st.sampled_from(["event_loop", "function", "router", "llm_generate",
                                      "human_input", "bogus"]) | json_scalar,
        "input_keys": st.lists(ids, max_size=3) | json_scalar,
        "output_keys": st.lists(ids, max_size=3) | json_scalar,
        "function": st.sampled_from(["tools:double", "nope:nope", "x"]) | json_scalar,
        "routes": st.dictionaries(ids, ids, max_size=2) | json_scalar,
        "max_retries": st.integers(-3, 5) | json_scalar,
        "client_facing": json_scalar,
        "tools": st.lists(ids, max_size=2) | json_scalar,
        "extra_key": json_value,
    },
)
edge = st.fixed_dictionaries(
    {"source": ids, "target": ids},
    optional={
        "id": ids,
        "condition": st.sampled_from(["on_success", "on_failure", "always", "conditional",
                                      "llm_decide", "weird"]) | json_scalar,
        "condition_expr": st.sampled_from(["x > 1", "output.get('k')", "__import__('os')",
                                           "a.__class__", "(", ""]) | json_scalar,
        "priority": st.integers(-5, 5) | json_scalar,
    },
)
agent_json = st.one_of(
    json_value,
    st.fixed_dictionaries(
        {"graph": st.fixed_dictionaries(
            {"nodes": st.lists(node, max_size=4) | json_value,
             "edges": st.lists(edge, max_size=4) | json_value},
            optional={"id": ids, "entry_node": ids, "terminal_nodes": st.lists(ids, max_size=2),
                      "pause_nodes": st.lists(ids, max_size=2) | json_scalar,
                      "max_steps": st.integers(-2, 50) | json_scalar,
                      "entry_points": st.dictionaries(ids, ids, max_size=2) | json_scalar}),
         "goal": st.fixed_dictionaries({}, optional={"id": ids, "name": json_scalar,
                                                     "success_criteria": json_value})
         | json_value},
        optional={"agent": json_value, "metadata": json_value, "required_tools": json_value},
    ),
)


@both(agent_json)
def _agent_definitions_only_raise_agent_definition_errors(data):
    STATS.add("fuzz_examples")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "agent"
        folder.mkdir()
        (folder / "agent.json").write_text(json.dumps(data))
        problems = validate_agent(folder)  # never raises
        try:
            load_agent(folder)
        except AgentDefinitionError as exc:
            assert exc.problems and all(p.message for p in exc.problems)
            assert any(p.severity == "error" for p in problems)
        else:
            assert not any(p.severity == "error" for p in problems)


(test_agent_definitions_only_raise_agent_definition_errors,
 test_agent_definitions_only_raise_agent_definition_errors_full) = \
    _agent_definitions_only_raise_agent_definition_errors


# ---- expressions -------------------------------------------------------------------------

atoms = st.sampled_from([
    "x", "y", "output", "buffer", "result", "true", "None", "1", "0", "-1", "2.5", "'s'",
    "[1, 2]", "{'k': 1}", "(1,)", "10**9", "'ab' * 3", "_x", "__class__", "__builtins__",
    "range(10)", "len", "str", "__import__",
])
binops = st.sampled_from(["+", "-", "*", "/", "//", "%", "**", "and", "or", "==", "!=", "<",
                          ">=", "in", "not in", "is", "&", "|", "<<"])
expression_text = st.recursive(
    atoms,
    lambda e: st.one_of(
        st.tuples(e, binops, e).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(e, st.sampled_from(["get('k')", "__class__", "_private", "upper()", "keys()",
                                      "__dict__", "mro()", "format(1)"]))
          .map(lambda t: f"{t[0]}.{t[1]}"),
        st.tuples(e, e).map(lambda t: f"{t[0]}[{t[1]}]"),
        st.tuples(st.sampled_from(["len", "str", "int", "min", "max", "sorted", "any", "abs",
                                   "getattr", "eval", "type", "range"]), e)
          .map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(e, e).map(lambda t: f"[v for v in {t[0]} if {t[1]}]"),
        st.tuples(e, e, e).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"),
        e.map(lambda t: f"not {t}"),
    ),
    max_leaves=12,
) | st.text(max_size=40)


class Spy:
    """A value whose every attribute access is recorded (except ``__class__``, which
    ``isinstance`` itself looks up on any object that is not of the class asked about)."""

    touched: list[str] = []

    def __getattribute__(self, name):
        if name != "__class__":
            Spy.touched.append(name)
        return object.__getattribute__(self, name)


names = st.fixed_dictionaries({"x": json_value, "y": json_value,
                               "output": st.dictionaries(st.text(max_size=3), json_value,
                                                         max_size=3)})


@both(st.tuples(expression_text, names))
def _expressions_raise_only_expression_errors_and_stay_bounded(case):
    text, data = case
    STATS.add("fuzz_examples")
    try:
        expr = compile_expression(text)
    except ExpressionError:
        return
    Spy.touched = []
    values = edge_names(data["output"], {"x": data["x"], "y": data["y"], "spy": Spy()})
    try:
        value = expr.evaluate(values)
    except ExpressionError:
        assert not [n for n in Spy.touched if n.startswith("_")]
        return
    assert not [n for n in Spy.touched if n.startswith("_")]
    # within the size bounds the evaluator promises
    if isinstance(value, int) and not isinstance(value, bool):
        assert value.bit_length() <= MAX_INT_BITS
    elif isinstance(value, (str, bytes, list, tuple, dict, set, frozenset)):
        assert weight(value, MAX_SIZE + 1) <= MAX_SIZE


(test_expressions_raise_only_expression_errors_and_stay_bounded,
 test_expressions_raise_only_expression_errors_and_stay_bounded_full) = \
    _expressions_raise_only_expression_errors_and_stay_bounded


@pytest.mark.parametrize("text", [
    "[v for v in range(10**9)]", "'a' * 10**9", "2 ** 10 ** 10", "[[1] * 10**4] * 10**4",
    "[(a, b) for a in range(10**5) for b in range(10**5)]", "x.__class__.__mro__",
    "spy.__class__", "getattr(spy, '__dict__')", "output.__init__", "().__class__",
    "str.__dict__", "'{0.__class__}'.format(x)", "(lambda: 1)()", "__import__('os')",
])
def test_known_expensive_or_dunder_expressions_are_refused(text):
    Spy.touched = []
    with pytest.raises(ExpressionError):
        compile_expression(text).evaluate(edge_names({}, {"x": 1, "spy": Spy()}))
    assert not [n for n in Spy.touched if n.startswith("_")]


# ---- session states ----------------------------------------------------------------------

state_field = st.sampled_from(["session_id", "memory", "execution_path", "node_visit_counts",
                               "next_nodes", "paused_at", "resume_after", "waiting_input",
                               "conversations", "steps_executed", "total_tokens",
                               "total_retries", "version", "data_buffer", "junk"])
session_state = st.one_of(
    json_value,
    st.dictionaries(state_field, json_value, max_size=8),
    st.dictionaries(state_field, json_value, max_size=8).map(json.dumps),
    st.text(max_size=30),
)


@both(session_state)
def _session_states_raise_only_session_state_errors(data):
    STATS.add("fuzz_examples")
    try:
        state = SessionState.from_dict(data)
    except SessionStateError as exc:
        assert str(exc)
        return
    assert SessionState.from_dict(json.loads(json.dumps(state.to_dict()))) == state


(test_session_states_raise_only_session_state_errors,
 test_session_states_raise_only_session_state_errors_full) = \
    _session_states_raise_only_session_state_errors


# ---- event filters -----------------------------------------------------------------------

type_names = st.sampled_from([e.value for e in EventType]) | st.text(max_size=10)
event_filter = st.fixed_dictionaries({
    "event_types": st.none() | type_names | st.lists(type_names | st.sampled_from(list(EventType)),
                                                      max_size=3),
    "stream_id": st.none() | st.text(max_size=5),
    "execution_id": st.none() | st.text(max_size=5),
    "node_id": st.none() | st.text(max_size=5),
})


@both(event_filter)
def _event_filters_raise_only_typed_errors(f):
    STATS.add("fuzz_examples")
    bus = EventBus()
    try:
        sub = bus.subscribe(f["event_types"], lambda e: None, stream_id=f["stream_id"],
                            execution_id=f["execution_id"], node_id=f["node_id"])
    except HiveActorsError:
        return
    assert bus.unsubscribe(sub)
    bus.history(0, event_types=f["event_types"], stream_id=f["stream_id"],
                node_id=f["node_id"])


(test_event_filters_raise_only_typed_errors, test_event_filters_raise_only_typed_errors_full) = \
    _event_filters_raise_only_typed_errors


# ---- feed messages -----------------------------------------------------------------------

frame = st.one_of(
    st.text(max_size=60),
    st.binary(max_size=40),
    json_value.map(json.dumps),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["subscribe", "unsubscribe", "trigger", "inject_input",
                                  "get_stats", "list_sessions", "list_entry_points", "nope"])
         | json_scalar},
        optional={"id": json_scalar, "event_types": json_value, "since": json_scalar,
                  "entry_point": json_scalar, "input": json_value, "node_id": json_scalar,
                  "content": json_value, "subscription": json_scalar, "limit": json_scalar,
                  "session_state": json_value, "status": json_scalar},
    ).map(json.dumps),
)


@both(frame)
def _feed_frames_raise_only_protocol_errors(data):
    STATS.add("fuzz_examples")
    try:
        parse_request(data)
    except ProtocolError as exc:
        assert exc.reply.message


(test_feed_frames_raise_only_protocol_errors, test_feed_frames_raise_only_protocol_errors_full) = \
    _feed_frames_raise_only_protocol_errors
