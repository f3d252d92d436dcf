"""Fuzzing the expression language with hypothesis.

Random text, random token soups and random syntax trees (allowed and forbidden constructs
mixed) must only ever raise `ExpressionError` subclasses, finish promptly, never read an
attribute starting with ``_`` of a value, and only return plain data. Expressions from a safe
subset must evaluate exactly as Python's own ``eval`` does.
"""

from __future__ import annotations

import ast
import contextlib
import signal
import warnings
from collections.abc import ItemsView, KeysView, ValuesView

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hive_actors.errors import ExpressionError, ExpressionEvalError
from hive_actors.graph.expressions import ExpressionLimitError, compile_expression

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HEAVY = settings(max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---- observing what evaluation does --------------------------------------------------------

SEEN_ATTRIBUTES: list[str] = []


class Spy:
    """Records attributes looked up on it by name (but __class__, which isinstance reads)."""

    def __getattribute__(self, name):
        if name != "__class__":
            SEEN_ATTRIBUTES.append(name)
        return object.__getattribute__(self, name)


class SpyDict(dict):
    def __getattribute__(self, name):
        if name != "__class__":
            SEEN_ATTRIBUTES.append(name)
        return dict.__getattribute__(self, name)


@attrs.frozen
class Record:
    score: int = 7
    label: str = "rec"


def make_names() -> dict:
    return {
        "x": 3,
        "y": "ok",
        "n": -2,
        "f": 1.5,
        "s": "a B c",
        "xs": [1, 2, 3],
        "d": {"a": 1, "__class__": 2, "get": 3, "b": [1, 2]},
        "output": {"result": "done", "score": 0.9},
        "none": None,
        "spy": Spy(),
        "sd": SpyDict(a=1),
        "rec": Record(),
        "big": "x" * 5000,
    }


class Hang(BaseException):
    """Raised by the watchdog; a BaseException so evaluate() does not convert it."""


@contextlib.contextmanager
def watchdog(seconds: float = 20.0):
    """Fail loudly if the block hangs (a guard against infinite work, not a timing check)."""

    def alarm(signum, frame):
        raise Hang(f"expression work did not finish within {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


_PLAIN_LEAVES = (type(None), bool, int, float, complex, str)
_PLAIN_CONTAINERS = (list, tuple, set, frozenset, KeysView, ValuesView, ItemsView)


def assert_plain(value, known_ids: set[int], depth: int = 0) -> None:
    """Results are data built from literals and the given names, never code or types."""
    if id(value) in known_ids or depth > 50:
        return
    if isinstance(value, _PLAIN_LEAVES):
        return
    if isinstance(value, dict):
        for k, v in value.items():
            assert_plain(k, known_ids, depth + 1)
            assert_plain(v, known_ids, depth + 1)
        return
    assert isinstance(value, _PLAIN_CONTAINERS), f"non-data result {type(value)!r}: {value!r}"
    for item in value:
        assert_plain(item, known_ids, depth + 1)


def reachable_ids(names: dict) -> set[int]:
    ids: set[int] = set()
    stack = list(names.values())
    while stack:
        item = stack.pop()
        if id(item) in ids:
            continue
        ids.add(id(item))
        if isinstance(item, dict):
            stack.extend(dict.values(item))
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return ids


def exercise(text: str) -> None:
    """Compile and evaluate ``text``; only expression errors may come out."""
    with watchdog():
        try:
            expr = compile_expression(text)
        except ExpressionError:
            return
        assert not any(name.startswith("__") for name in expr.names)
        names = make_names()
        known = reachable_ids(names)
        SEEN_ATTRIBUTES.clear()
        try:
            value = expr.evaluate(names)
        except ExpressionEvalError:
            value = None
        # Python itself may look up plain methods such as `keys` (dict(x), x | y)
        private = [name for name in SEEN_ATTRIBUTES if name.startswith("_")]
        assert not private, private[:10]
        assert_plain(value, known)


# ---- random text and token soups -----------------------------------------------------------

TOKENS = (
    "x y n f s xs d output none spy sd rec big true null result len str int open getattr "
    "type eval __import__ __class__ __globals__ _x mro get keys items lower split format "
    "real 0 1 2 10 100 4096 1.5 1e308 'a' '__class__' '%s' '%999d' \"\" + - * / // % ** << >> "
    "& | ^ ~ not and or in is == != < > <= >= if else lambda for ( ) [ ] { } , : . := * "
    "f'{x}' ... 10**100 -1"
).split()


@FAST
@given(st.text(max_size=120))
def test_random_text_only_raises_expression_errors(text):
    exercise(text)


@FAST
@given(st.lists(st.sampled_from(TOKENS), min_size=1, max_size=25))
def test_token_soups_only_raise_expression_errors(tokens):
    exercise(" ".join(tokens))
    exercise("".join(tokens))


# ---- random syntax trees -------------------------------------------------------------------

NAMES = ("x", "y", "n", "f", "s", "xs", "d", "output", "none", "spy", "sd", "rec", "big")
SAFE_NAMES = ("x", "y", "n", "f", "s", "xs", "d", "e", "tup")


def _name(name: str) -> ast.expr:
    return ast.Name(id=name, ctx=ast.Load())


def _call(func: str, args: list[ast.expr], keywords=()) -> ast.expr:
    return ast.Call(func=_name(func), args=args, keywords=list(keywords))


def _method(target: ast.expr, method: str, args: list[ast.expr]) -> ast.expr:
    return ast.Call(func=ast.Attribute(target, method, ast.Load()), args=args, keywords=[])


def _binop(left: ast.expr, op: type, right: ast.expr) -> ast.expr:
    return ast.BinOp(left, op(), right)


def _no_args() -> ast.arguments:
    return ast.arguments(
        posonlyargs=[], args=[], vararg=None, kwonlyargs=[], kw_defaults=[], kwarg=None,
        defaults=[],
    )


small_ints = st.integers(-3, 12)
short_strs = st.text(alphabet="abAB ,", max_size=3)

safe_leaves = st.one_of(
    small_ints.map(ast.Constant),
    short_strs.map(ast.Constant),
    st.sampled_from([True, False, None]).map(ast.Constant),
    st.sampled_from(SAFE_NAMES).map(_name),
)

ANY_CONSTANTS = st.sampled_from(
    [0, 1, -1, 2, 3, 64, 4096, 10**7, 10**100, 1.5, 1e308, "", "a", "%s", "%999999d", "__class__"]
)
wild_leaves = st.one_of(
    safe_leaves,
    ANY_CONSTANTS.map(ast.Constant),
    st.sampled_from(NAMES + ("true", "false", "null", "len", "open", "__import__")).map(_name),
)

SAFE_BINOPS = [ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod,
               ast.BitAnd, ast.BitOr, ast.BitXor]
ALL_BINOPS = SAFE_BINOPS + [ast.Pow, ast.LShift, ast.RShift, ast.MatMult]
CMP_OPS = [ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn]
UNARY_OPS = [ast.USub, ast.UAdd, ast.Not, ast.Invert]


def safe_extend(inner: st.SearchStrategy[ast.expr]) -> st.SearchStrategy[ast.expr]:
    """Constructs whose Python meaning our language shares exactly."""
    return st.one_of(
        st.builds(_binop, inner, st.sampled_from(SAFE_BINOPS), inner),
        # exponents and shift counts stay small so Python's own answers stay small
        st.builds(_binop, inner, st.just(ast.Pow), st.integers(-1, 3).map(ast.Constant)),
        st.builds(_binop, inner, st.sampled_from([ast.LShift, ast.RShift]),
                  st.integers(0, 8).map(ast.Constant)),
        st.builds(lambda op, a: ast.UnaryOp(op(), a), st.sampled_from(UNARY_OPS), inner),
        st.builds(
            lambda a, rest: ast.Compare(a, [op() for op, _ in rest], [b for _, b in rest]),
            inner,
            st.lists(st.tuples(st.sampled_from(CMP_OPS), inner), min_size=1, max_size=3),
        ),
        st.builds(lambda a, neg: ast.Compare(a, [ast.IsNot() if neg else ast.Is()],
                                             [ast.Constant(None)]), inner, st.booleans()),
        st.builds(lambda op, vs: ast.BoolOp(op(), vs), st.sampled_from([ast.And, ast.Or]),
                  st.lists(inner, min_size=2, max_size=3)),
        st.builds(ast.IfExp, inner, inner, inner),
        st.lists(inner, max_size=3).map(lambda es: ast.List(es, ast.Load())),
        st.lists(inner, max_size=3).map(lambda es: ast.Tuple(es, ast.Load())),
        st.lists(inner, min_size=1, max_size=3).map(ast.Set),
        st.lists(st.tuples(safe_leaves, inner), max_size=3).map(
            lambda kv: ast.Dict([k for k, _ in kv], [v for _, v in kv])),
        st.builds(lambda a, i: ast.Subscript(a, i, ast.Load()), inner, inner),
        st.builds(
            lambda a, lo, hi, step: ast.Subscript(a, ast.Slice(lo, hi, step), ast.Load()),
            inner,
            st.none() | small_ints.map(ast.Constant),
            st.none() | small_ints.map(ast.Constant),
            st.none() | st.sampled_from([-2, -1, 1, 2]).map(ast.Constant),
        ),
        st.builds(lambda fn, a: _call(fn, [a]), st.sampled_from(
            ["len", "abs", "bool", "str", "int", "float", "list", "tuple", "set", "sorted",
             "min", "max", "sum", "all", "any", "round"]), inner),
        st.builds(lambda fn, a, b: _call(fn, [a, b]), st.sampled_from(["min", "max", "round"]),
                  inner, inner),
        st.builds(lambda a, m: _method(a, m, []), inner,
                  st.sampled_from(["keys", "values", "items", "lower", "upper", "strip",
                                   "split"])),
        st.builds(lambda a, m, b: _method(a, m, [b]), inner,
                  st.sampled_from(["get", "split", "startswith", "endswith", "count", "index"]),
                  inner),
        st.builds(lambda a, b, c: _method(a, "get", [b, c]), inner, inner, inner),
    )


def wild_extend(inner: st.SearchStrategy[ast.expr]) -> st.SearchStrategy[ast.expr]:
    """Anything Python can parse in an expression, allowed here or not."""
    attr_names = st.sampled_from(
        ["__class__", "__globals__", "__dict__", "_x", "mro", "real", "get", "keys", "score",
         "result", "label", "format", "evolve", "append"]
    )
    return st.one_of(
        safe_extend(inner),
        st.builds(_binop, inner, st.sampled_from(ALL_BINOPS), inner),
        st.builds(lambda a, at: ast.Attribute(a, at, ast.Load()), inner, attr_names),
        st.builds(lambda a, at, args: _method(a, at, args), inner, attr_names,
                  st.lists(inner, max_size=2)),
        st.builds(lambda fn, args: _call(fn, args), st.sampled_from(
            ["open", "getattr", "type", "vars", "__import__", "eval", "len", "dict", "int",
             "sum", "str", "x"]), st.lists(inner, max_size=3)),
        st.builds(lambda a, kw: _call("dict", [], [ast.keyword(kw, a)]), inner,
                  st.sampled_from(["a", "__class__"])),
        st.builds(lambda a, b: ast.Call(a, [b], []), inner, inner),
        st.builds(lambda a: _call("len", [ast.Starred(a, ast.Load())]), inner),
        st.builds(lambda a: ast.Dict([None], [a]), inner),
        st.builds(lambda a: ast.Lambda(_no_args(), a), inner),
        st.builds(lambda a, b: ast.ListComp(a, [ast.comprehension(
            ast.Name("v", ast.Store()), b, [], 0)]), inner, inner),
        st.builds(lambda a: ast.NamedExpr(ast.Name("w", ast.Store()), a), inner),
        st.builds(lambda a: ast.JoinedStr([ast.FormattedValue(a, -1, None)]), inner),
    )


def to_text(node: ast.expr) -> str:
    return ast.unparse(ast.fix_missing_locations(ast.Expression(node)))


safe_trees = st.recursive(safe_leaves, safe_extend, max_leaves=12)
wild_trees = st.recursive(wild_leaves, wild_extend, max_leaves=16)


@FAST
@given(wild_trees)
def test_random_syntax_trees_only_raise_expression_errors(tree):
    exercise(to_text(tree))


# ---- agreement with Python -----------------------------------------------------------------

SAFE_ENV = {
    "x": 3, "y": "ok", "n": -2, "f": 1.5, "s": "a B c", "xs": [1, 2, 3],
    "d": {"a": 1, "b": [1, 2]}, "e": [], "tup": (1, "a"),
}
PY_FUNCTIONS = {name: __builtins__[name] if isinstance(__builtins__, dict)
                else getattr(__builtins__, name)
                for name in ("len", "abs", "bool", "str", "int", "float", "list", "tuple",
                             "set", "sorted", "min", "max", "sum", "all", "any", "round")}


def python_eval(text: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = compile(text, "<expr>", "eval")
        return eval(code, {"__builtins__": {}, **PY_FUNCTIONS}, dict(SAFE_ENV))  # noqa: S307


def check_agrees_with_python(text: str) -> None:
    with watchdog():
        expr = compile_expression(text)  # the safe subset always compiles
        try:
            ours = expr.evaluate(dict(SAFE_ENV))
        except ExpressionLimitError:
            return  # refused on cost: Python's answer may be huge, don't compute it
        except ExpressionEvalError:
            with pytest.raises(Exception):  # noqa: B017 - any Python error agrees
                python_eval(text)
            return
        theirs = python_eval(text)
        assert type(ours) is type(theirs), (text, ours, theirs)
        assert ours == theirs or repr(ours) == repr(theirs), (text, ours, theirs)


@FAST
@given(safe_trees)
def test_safe_subset_evaluates_like_python(tree):
    check_agrees_with_python(to_text(tree))


# ---- heavier variants (pytest -m slow) -----------------------------------------------------


@pytest.mark.slow
@HEAVY
@given(wild_trees)
def test_random_syntax_trees_only_raise_expression_errors_heavy(tree):
    exercise(to_text(tree))


@pytest.mark.slow
@HEAVY
@given(st.lists(st.sampled_from(TOKENS), min_size=1, max_size=40))
def test_token_soups_only_raise_expression_errors_heavy(tokens):
    exercise(" ".join(tokens))


@pytest.mark.slow
@HEAVY
@given(safe_trees)
def test_safe_subset_evaluates_like_python_heavy(tree):
    check_agrees_with_python(to_text(tree))
