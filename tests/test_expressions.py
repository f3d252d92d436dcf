"""The safe expression language: what it computes, what it refuses, and how it fails."""

from __future__ import annotations

import dataclasses

import attrs
import pytest

from hive_actors.errors import ExpressionError, ExpressionEvalError
from hive_actors.graph.expressions import (
    MAX_DEPTH,
    MAX_NODES,
    MAX_TEXT_LENGTH,
    ExpressionLimitError,
    compile_expression,
    edge_names,
    evaluate_condition,
)


def ev(text: str, **names):
    return compile_expression(text).evaluate(names)


# ---- values the language computes (the reference checklist) --------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("42", 42),
        ("-1", -1),
        ("3.14", 3.14),
        ("'hello'", "hello"),
        ('"double"', "double"),
        ("True", True),
        ("False", False),
        ("None", None),
        ("[1, [2, [3]], []]", [1, [2, [3]], []]),
        ("(1, 'a')", (1, "a")),
        ("()", ()),
        ("{'a': 1, 'b': {'c': 2}}", {"a": 1, "b": {"c": 2}}),
        ("{}", {}),
        ("{1, 2, 2}", {1, 2}),
    ],
)
def test_literals_evaluate_to_their_values(text, expected):
    assert ev(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2 + 3", 5),
        ("5 - 8", -3),
        ("4 * 2.5", 10.0),
        ("5 / 2", 2.5),
        ("7 // 2", 3),
        ("-7 // 2", -4),
        ("7 % 3", 1),
        ("2 ** 10", 1024),
        ("2 ** -1", 0.5),
        ("(2 + 3) * 4 - 1", 19),
        ("-x", -5),
        ("+x", 5),
        ("not x", False),
        ("~0", -1),
        ("6 & 3", 2),
        ("6 | 3", 7),
        ("6 ^ 3", 5),
        ("1 << 4", 16),
        ("256 >> 4", 16),
        ("'ab' + 'cd'", "abcd"),
        ("[1] + [2]", [1, 2]),
        ("'ab' * 3", "ababab"),
        ("[0] * 3", [0, 0, 0]),
    ],
)
def test_arithmetic_matches_python(text, expected):
    assert ev(text, x=5) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x is None", True),
        ("x is not None", False),
        ("1 == 1.0", True),
        ("1 != 2", True),
        ("'a' in 'cat'", True),
        ("'z' not in ['a', 'b']", True),
        ("'k' in {'k': 1}", True),
        ("1 < 5 < 10", True),
        ("1 < 15 < 10", False),
        ("10 > 5 >= 5 == 5", True),
        ("3 <= 2 < 1", False),
    ],
)
def test_comparisons_match_python(text, expected):
    result = ev(text, x=None)
    assert result is expected


def test_comparison_chains_evaluate_the_middle_operand_once():
    calls = []

    class Counting(dict):
        def __getitem__(self, key):
            calls.append(key)
            return super().__getitem__(key)

    assert compile_expression("1 < m < 10").evaluate(Counting(m=5)) is True
    assert calls == ["m"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 and 3", 3),
        ("1 and 0", 0),
        ("0 or 42", 42),
        ("0 or '' or None", None),
        ("'' or 'default'", "default"),
        ("x is not None and x.get('key')", False),
        ("x or y.get('missing')", "found"),
    ],
)
def test_boolean_operators_return_operand_values_and_short_circuit(text, expected):
    # x is None: x.get would fail if it were evaluated
    assert ev(text, x=None, y={"missing": "found"}) == expected


def test_ternary_variables_and_subscripts():
    names = {"d": {"a": {"b": [10, 20, 30]}}, "xs": [1, 2, 3], "n": 2}
    expr = compile_expression("d['a']['b'][n] if xs[0] == 1 else -1")
    assert expr.evaluate(names) == 30
    assert ev("'yes' if flag else 'no'", flag=False) == "no"
    assert ev("t[-1]", t=(1, 2)) == 2
    assert ev("s[0]", s="abc") == "a"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("len([1, 2, 3])", 3),
        ("int('42')", 42),
        ("int('ff', 16)", 255),
        ("float('2.5')", 2.5),
        ("str(12)", "12"),
        ("bool(0)", False),
        ("abs(-3)", 3),
        ("min(3, 1, 2)", 1),
        ("max([3, 1, 2])", 3),
        ("min([], default=0)", 0),
        ("sum([1, 2, 3])", 6),
        ("sum([1, 2], 10)", 13),
        ("round(2.567, 2)", 2.57),
        ("round(2.5)", 2),
        ("all([1, True])", True),
        ("any([0, ''])", False),
        ("list('ab')", ["a", "b"]),
        ("dict(a=1)", {"a": 1}),
        ("dict([('a', 1)])", {"a": 1}),
        ("tuple([1, 2])", (1, 2)),
        ("set([1, 1, 2])", {1, 2}),
        ("sorted([3, 1, 2], reverse=True)", [3, 2, 1]),
        ("d.get('missing', 'dflt')", "dflt"),
        ("d.get('a')", 1),
        ("list(d.keys())", ["a"]),
        ("list(d.values())", [1]),
        ("list(d.items())", [("a", 1)]),
        ("'MiXed'.lower()", "mixed"),
        ("'up'.upper()", "UP"),
        ("'  pad '.strip()", "pad"),
        ("'a,b'.split(',')", ["a", "b"]),
        ("'a b c'.split(maxsplit=1)", ["a", "b c"]),
        ("'report.pdf'.endswith('.pdf')", True),
        ("'report.pdf'.startswith(('x', 'r'))", True),
        ("[1, 2, 1].count(1)", 2),
        ("('a', 'b').index('b')", 1),
    ],
)
def test_whitelisted_functions_and_methods(text, expected):
    assert ev(text, d={"a": 1}) == expected


# ---- edge idioms found in Hive agents ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "output", "buffer", "expected"),
    [
        ("output.get('k') is not None", {"k": 0}, {}, True),
        ("output.get('k') is not None", {}, {}, False),
        ("'results' in output and len(output['results']) > 0", {"results": [1]}, {}, True),
        ("'results' in output and len(output['results']) > 0", {}, {}, False),
        ("buffer.get('score', 0) >= 0.8", {}, {"score": 0.9}, True),
        ("'completed' in output.get('status', '')", {"status": "task completed"}, {}, True),
        ("(output.get('a') or output.get('b') or 'default') == 'default'", {}, {}, True),
        ("1 + 1 == 2", {}, {}, True),
        ("str(needs_revision).lower() == 'true'", {}, {"needs_revision": True}, True),
        ("str(needs_revision).lower() == 'true'", {}, {"needs_revision": "False"}, False),
        ("int(confidence) >= 80 and str(severity).lower() != 'critical'", {},
         {"confidence": "85", "severity": "High"}, True),
        ("str(next_action).lower() in ('rerun', 'adjust')", {}, {"next_action": "Rerun"}, True),
        ("str(token).strip() not in ('', 'None', 'null')", {}, {"token": None}, False),
        ("approved == true", {}, {"approved": True}, True),
        ("result == 'ok'", {"result": "ok"}, {}, True),
        ("output.confidence < 0.8", {"confidence": 0.5}, {}, True),
        ("score > 80", {"score": 85}, {"score": 85}, True),
        ("output['score'] > 80", {"score": 30}, {"score": 30}, False),
        ("x > y and y < 100", {}, {"x": 100, "y": 50}, True),
    ],
)
def test_edge_condition_idioms(text, output, buffer, expected):
    assert evaluate_condition(text, edge_names(output, buffer)) is expected


def test_edge_names_give_special_names_priority_over_buffer_keys():
    buffer = {"output": "a key", "buffer": 1, "result": 2, "true": 0, "null": 5, "plain": 7}
    names = edge_names({"result": "r", "label": "x"}, buffer)
    assert names["output"] == {"result": "r", "label": "x"}
    assert names["buffer"] is buffer
    assert names["result"] == "r"
    assert (names["true"], names["false"], names["null"]) == (True, False, None)
    assert names["plain"] == 7
    # the reference let a buffer key "output" break output.get(...); here it does not
    assert evaluate_condition("output.get('label') == 'x'", names)
    assert evaluate_condition("buffer['output'] == 'a key'", names)


def test_edge_names_without_output_or_result():
    names = edge_names(None, {"a": 1})
    assert names["output"] == {} and names["result"] is None
    assert edge_names({"x": 1}, {})["result"] is None


def test_true_false_null_are_available_without_edge_names():
    assert ev("[true, false, null]") == [True, False, None]
    assert ev("true", true="shadowed") == "shadowed"


# ---- defects of the reference that are fixed here ------------------------------------------


def test_dict_attribute_sugar_reads_keys():
    assert ev("output.confidence", output={"confidence": 0.7}) == 0.7
    assert ev("d.a.b", d={"a": {"b": 3}}) == 3
    with pytest.raises(ExpressionEvalError, match="no key 'score'"):
        ev("output.score > 1", output={})


def test_attribute_reads_declared_fields_of_records_only():
    @attrs.frozen
    class Rec:
        score: int

    @dataclasses.dataclass
    class Data:
        label: str

    assert ev("r.score + 1", r=Rec(4)) == 5
    assert ev("d.label", d=Data("x")) == "x"
    with pytest.raises(ExpressionEvalError, match="no field 'real'"):
        ev("n.real", n=3)
    with pytest.raises(ExpressionEvalError, match="no field 'evolve'"):
        ev("r.evolve", r=Rec(4))


def test_slices_work_and_are_bounded_by_their_input():
    assert ev("xs[1:3]", xs=[0, 1, 2, 3]) == [1, 2]
    assert ev("s[::-1]", s="abc") == "cba"
    assert ev("s[:2]", s="abc") == "ab"
    with pytest.raises(ExpressionEvalError, match="ValueError"):
        ev("s[::0]", s="abc")


def test_a_buffer_key_named_like_a_function_is_still_a_value():
    assert ev("max > 3 and max(max, 10) == 10", max=5) is True
    assert compile_expression("len(list)").names == {"list"}


def test_names_lists_the_free_names_read():
    expr = compile_expression("len(a) > b.c and d['e'] in f.get('g', h)")
    assert expr.names == {"a", "b", "d", "f", "h"}


def test_dict_unpacking_is_rejected_not_silently_dropped():
    with pytest.raises(ExpressionError, match=r"unpacking with \*\* is not allowed"):
        compile_expression("{**a, 'b': 1}")


def test_bad_argument_counts_are_found_at_compile_time():
    with pytest.raises(ExpressionError, match=r"len\(\) takes 1 argument, not 2"):
        compile_expression("len(a, b)")
    with pytest.raises(ExpressionError, match=r"\.get\(\) takes 1 to 2 arguments, not 3"):
        compile_expression("d.get(1, 2, 3)")
    with pytest.raises(ExpressionError, match="has no keyword argument 'key'"):
        compile_expression("max(a, key=b)")


# ---- what is refused at compile time -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("open(x)", r"call to 'open' is not allowed in 'open\(x\)'"),
        ("__import__('os')", "call to '__import__' is not allowed"),
        ("eval('1')", "call to 'eval' is not allowed"),
        ("exec('1')", "call to 'exec' is not allowed"),
        ("type(x)", "call to 'type' is not allowed"),
        ("getattr(x, 'a')", "call to 'getattr' is not allowed"),
        ("x.__class__", "attribute '__class__' is not allowed"),
        ("x.__dict__", "attribute '__dict__' is not allowed"),
        ("x._internal", "attribute '_internal' is not allowed"),
        ("x._private()", "attribute '_private' is not allowed"),
        ("__builtins__", "name '__builtins__' is not allowed"),
        ("x.format(1)", "method 'format' is not allowed"),
        ("x.get.__self__", "attribute '__self__' is not allowed"),
        ("(lambda: 1)()", "only named functions and methods can be called"),
        ("lambda: 1", "lambda is not allowed"),
        ("[a for a in b]", "list comprehension is not allowed"),
        ("{a for a in b}", "set comprehension is not allowed"),
        ("{a: 1 for a in b}", "dict comprehension is not allowed"),
        ("any(a for a in b)", "generator expression is not allowed"),
        ("f'{x}'", "f-string is not allowed"),
        ("(y := 1)", r"assignment \(:=\) is not allowed"),
        ("len(*xs)", r"unpacking with \* is not allowed"),
        ("dict(**kw)", r"unpacking with \*\* is not allowed"),
        ("a @ b", "operator MatMult is not allowed"),
        ("x[0](1)", "only named functions and methods can be called"),
        ("b'bytes'", "constant b'bytes' is not allowed"),
        ("...", "constant Ellipsis is not allowed"),
        ("1j", "constant 1j is not allowed"),
        ("x = 1", "invalid syntax"),
        ("1 +", "invalid syntax"),
        ("import os", "invalid syntax"),
        ("a; b", "invalid syntax"),
    ],
)
def test_disallowed_text_is_rejected_with_a_message_naming_it(text, message):
    with pytest.raises(ExpressionError, match=message) as info:
        compile_expression(text)
    assert not isinstance(info.value, ExpressionEvalError)
    assert repr(text) in str(info.value)


@pytest.mark.parametrize("text", ["", "   ", "\n"])
def test_empty_text_is_rejected(text):
    with pytest.raises(ExpressionError, match="cannot be empty"):
        compile_expression(text)


def test_non_string_text_is_rejected():
    with pytest.raises(ExpressionError, match="must be a string"):
        compile_expression(None)  # type: ignore[arg-type]


def test_size_of_text_and_tree_is_bounded():
    with pytest.raises(ExpressionError, match="characters long"):
        compile_expression("1" * (MAX_TEXT_LENGTH + 1))
    with pytest.raises(ExpressionError, match=f"more than {MAX_NODES} parts"):
        compile_expression("[" + ", ".join(["x"] * MAX_NODES) + "]")
    with pytest.raises(ExpressionError, match=f"more than {MAX_DEPTH} levels"):
        compile_expression("-" * (MAX_DEPTH + 1) + "1")
    with pytest.raises(ExpressionError):
        compile_expression("-" * (MAX_TEXT_LENGTH - 1) + "1")
    with pytest.raises(ExpressionError):
        compile_expression("(" * 1000 + "1" + ")" * 1000)


def test_huge_integer_literals_are_rejected():
    with pytest.raises(ExpressionError, match="larger than 4096 bits"):
        compile_expression("9" * 1300)


# ---- how evaluation fails ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("missing_name", "unknown name 'missing_name'"),
        ("d['nope']", "missing key 'nope'"),
        ("xs[10]", "IndexError"),
        ("1 + 'a'", "TypeError"),
        ("1 / 0", "ZeroDivisionError"),
        ("1 % 0", "ZeroDivisionError"),
        ("int('x')", "ValueError"),
        ("[].index(1)", "ValueError"),
        ("min([])", "ValueError"),
        ("2.0 ** 10000", "OverflowError"),
        ("int(float('inf'))", "OverflowError"),
        ("len(5)", "TypeError"),
        ("d[[1]]", "TypeError"),
        ("xs < 3", "TypeError"),
        ("n[0]", "int value cannot be indexed"),
        ("n.get('a')", "int value has no method 'get'"),
        ("d.lower()", "dict value has no method 'lower'"),
        ("list(n)", r"list\(\) needs a string, list, tuple, set or dict"),
        ("sum(['a'])", "TypeError"),
        ("sum(xs, 'a')", "adds numbers only"),
        ("sorted([1, 'a'])", "TypeError"),
        ("1 << -1", "ValueError"),
    ],
)
def test_every_evaluation_failure_is_an_expression_eval_error(text, message):
    with pytest.raises(ExpressionEvalError, match=message) as info:
        ev(text, d={"a": 1}, xs=[1, 2], n=3)
    assert repr(text) in str(info.value)


def test_evaluation_failure_inside_data_objects_is_still_an_eval_error():
    class Hostile:
        def __eq__(self, other):
            raise RuntimeError("boom")

        def __bool__(self):
            raise RuntimeError("no truth")

        __hash__ = object.__hash__

    with pytest.raises(ExpressionEvalError, match="RuntimeError: boom"):
        ev("h == 1", h=Hostile())
    with pytest.raises(ExpressionEvalError, match="no truth"):
        evaluate_condition("h", {"h": Hostile()})


def test_self_referencing_data_fails_cleanly():
    loop: list = []
    loop.append(loop)
    with pytest.raises(ExpressionEvalError):
        ev("str(xs)", xs=loop)
    other: list = []
    other.append(other)
    with pytest.raises(ExpressionEvalError, match="nested too deeply"):
        ev("xs == ys", xs=loop, ys=other)


@pytest.mark.parametrize(
    "text",
    [
        "2 ** 100000",
        "10 ** 10 ** 10",
        "1 << 100000",
        "(1 << 4000) * (1 << 4000)",
        "'a' * 10 ** 7",
        "[0] * 10 ** 7",
        "[[0] * 1000] * 1000",
        "[[0] * 1000] * 10 * 100",
        "str([big] * 100)",
        "str({'a': [[0] * 1000] * 999, 'b': [[0] * 1000] * 999}.items())",
        "big + big",
        "'%999999999d' % 1",
        "'%s' % 'x'",
        "round(10, -10 ** 9)",
        "sum([1 << 4095] * 4)",
        "int('1' * 2000, 2) * 2 ** 3000",
    ],
)
def test_costly_results_are_refused(text):
    with pytest.raises(ExpressionLimitError):
        ev(text, big="x" * 600_000)


def test_values_within_limits_are_computed():
    assert ev("len('ab' * 1000)") == 2000
    assert ev("2 ** 4000 > 0") is True
    assert ev("0 << 10 ** 100") == 0
    assert ev("1 >> 10 ** 100") == 0
    assert ev("(-8) ** (1 / 3) != 0") is True


def test_evaluate_condition_coerces_to_bool_and_accepts_text():
    expr = compile_expression("xs")
    assert evaluate_condition(expr, {"xs": [1]}) is True
    assert evaluate_condition(expr, {"xs": []}) is False
    assert evaluate_condition("count", {"count": 0}) is False
    with pytest.raises(ExpressionError):
        evaluate_condition("open(f)", {})


def test_expressions_are_records_with_text_and_names():
    a, b = compile_expression("x > 1"), compile_expression("x > 1")
    assert a == b and a.text == "x > 1" and a.names == frozenset({"x"})
    assert "x > 1" in repr(a)


def test_examples_in_the_user_docs_compile_and_evaluate():
    from pathlib import Path

    doc = (Path(__file__).parent.parent / "docs" / "expressions.md").read_text()
    block = doc.split("## Examples", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    lines = [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]
    assert len(lines) >= 10
    output = {"score": 90, "label": "positive", "confidence": 0.5, "results": [1],
              "summary": " s ", "result": "r"}
    buffer = {"score": 90, "needs_revision": True, "next_action": "Rerun", "confidence": "85",
              "severity": "low", "approved": True, "retries": 1}
    names = edge_names(output, buffer)
    for line in lines:
        assert evaluate_condition(line, names) is True, line


def test_error_messages_stay_short_with_huge_values():
    with pytest.raises(ExpressionEvalError) as info:
        ev("d[big]", d={}, big="k" * 100_000)
    assert len(str(info.value)) < 400


# -- the work budget (issue 14 item 2) ----------------------------------------------------


def test_repeated_sorting_of_a_large_string_exceeds_the_budget_quickly() -> None:
    from hive_actors.graph.expression_ops import MAX_WORK

    text = "len([" + ", ".join(["sorted('ba' * 500000)"] * 56) + "]) > 0"
    with pytest.raises(ExpressionLimitError, match="larger than"):  # the first result is
        compile_expression(text).evaluate({})
    text = "len([" + ", ".join(["sorted(items)"] * 56) + "]) > 0"
    with pytest.raises(ExpressionLimitError, match=f"budget of {MAX_WORK}"):
        compile_expression(text).evaluate({"items": list(range(500_000))})


def test_method_and_function_results_on_buffer_values_are_charged_and_checked() -> None:
    from hive_actors.graph.expression_ops import MAX_SIZE

    big = "a " * (MAX_SIZE // 2)
    for text in ("len([s.split(), s.split(), s.split(), s.split()]) > 0",
                 "len([s.upper(), s.upper(), s.upper(), s.upper()]) > 0",
                 "len([s[1:], s[1:], s[1:], s[1:]]) > 0",
                 "len([sorted(items), sorted(items), sorted(items), sorted(items)]) > 0"):
        with pytest.raises(ExpressionLimitError, match="budget"):
            compile_expression(text).evaluate({"s": big, "items": list(range(450_000))})
    assert compile_expression("len(s.split()) == n").evaluate({"s": big, "n": MAX_SIZE // 2})


def test_each_evaluation_gets_a_fresh_budget() -> None:
    from hive_actors.graph.expression_ops import MAX_SIZE

    expr = compile_expression("len(sorted(items)) > 0")
    for _ in range(10):
        assert expr.evaluate({"items": list(range(MAX_SIZE // 3))})


def test_a_constant_repetition_over_the_size_limit_is_refused_at_validation() -> None:
    with pytest.raises(ExpressionError, match="repetition"):
        compile_expression("len('ba' * 600000) > 0")


def test_an_edge_over_the_budget_fails_naming_the_edge_and_the_limit() -> None:
    from hive_actors.graph.expression_ops import MAX_WORK
    from hive_actors.graph.routing import RoutingTable
    from hive_actors.graph.spec import EdgeCondition, EdgeSpec, GraphSpec, NodeSpec

    text = "len([sorted(items), sorted(items), sorted(items), sorted(items)]) > 0"
    graph = GraphSpec(
        id="g", entry_node="a", nodes=(NodeSpec(id="a"), NodeSpec(id="b")),
        edges=(EdgeSpec(id="heavy", source="a", target="b",
                        condition=EdgeCondition.CONDITIONAL, condition_expr=text),),
        terminal_nodes=("b",))
    decision = RoutingTable(graph).decide("a", True, {}, {"items": list(range(450_000))})
    assert decision.edges == ()
    [(edge_id, problem)] = decision.errors
    assert edge_id == "heavy" and str(MAX_WORK) in problem
