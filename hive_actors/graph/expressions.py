"""The safe expression language of edge conditions and router expressions.

An expression is a Python expression restricted to a whitelist (docs/expressions.md). It is
parsed and checked whole by `compile_expression`, once, at load time; the checked tree is
turned into a tree of closures, and `Expression.evaluate` runs those closures. Nothing in an
expression can reach an attribute starting with ``_``, call anything outside the whitelist, or
build a huge number or value: every evaluation failure is an `ExpressionEvalError`.
"""

from __future__ import annotations

import ast
import functools
import warnings
from collections.abc import Callable, Mapping
from typing import Any, cast

import attrs

from hive_actors.errors import ExpressionError, ExpressionEvalError
from hive_actors.graph import expression_ops as ops
from hive_actors.graph.expression_ops import ExpressionLimitError

__all__ = [
    "CONSTANT_NAMES",
    "Expression",
    "ExpressionLimitError",
    "MAX_DEPTH",
    "MAX_NODES",
    "MAX_TEXT_LENGTH",
    "compile_expression",
    "edge_names",
    "evaluate_condition",
]

MAX_TEXT_LENGTH = 4000
MAX_NODES = 400
MAX_DEPTH = 48

# Used when the names mapping given to `evaluate` does not define them.
CONSTANT_NAMES: Mapping[str, Any] = {"true": True, "false": False, "null": None}

Run = Callable[[Mapping[str, Any]], Any]


@attrs.frozen
class Expression:
    """A checked expression: its source ``text``, the free ``names`` it reads, and its code."""

    text: str
    names: frozenset[str]
    _run: Run = attrs.field(repr=False, eq=False, alias="run")

    def evaluate(self, names: Mapping[str, Any]) -> Any:
        """Evaluate with ``names`` bound; returns the value.

        Raises `ExpressionEvalError` (and only that, or its subclass `ExpressionLimitError`)
        for an unknown name, a missing key or index, a wrong type, division by zero, a result
        over the size limits, or any other failure.
        """
        try:
            return self._run(names)
        except ExpressionEvalError as exc:
            raise type(exc)(f"{exc} in {_quote(self.text)}") from None
        except Exception as exc:  # anything a whitelisted operation raised
            raise ExpressionEvalError(f"{_describe(exc)} in {_quote(self.text)}") from exc


def _quote(text: str, limit: int = 120) -> str:
    """``text`` quoted for an error message, cut short if long."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "..."


def _describe(exc: Exception) -> str:
    """A short account of an exception raised during evaluation (it may hold huge values)."""
    if isinstance(exc, RecursionError):
        return "value nested too deeply"
    try:
        if isinstance(exc, KeyError) and exc.args:
            text = f"missing key {exc.args[0]!r}"
        else:
            detail = str(exc)
            text = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    except Exception:  # a data object whose repr fails
        text = type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "..."


def compile_expression(text: str) -> Expression:
    """Parse and check ``text`` whole; return the `Expression`.

    Raises `ExpressionError` naming the text and the problem for empty text, text longer
    than `MAX_TEXT_LENGTH`, a syntax error, a tree over `MAX_NODES` nodes or `MAX_DEPTH`
    levels, or any construct, name, function, method or argument the language does not allow.
    """
    if not isinstance(text, str):
        raise ExpressionError(f"an expression must be a string, not {type(text).__name__}")
    if not text.strip():
        raise ExpressionError("an expression cannot be empty")
    if len(text) > MAX_TEXT_LENGTH:
        raise ExpressionError(
            f"expression is {len(text)} characters long, more than {MAX_TEXT_LENGTH}: "
            f"{_quote(text, 60)}"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. SyntaxWarning for `1if x else 2`
            tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        where = f" (column {exc.offset})" if exc.offset else ""
        raise ExpressionError(f"invalid syntax in {_quote(text)}: {exc.msg}{where}") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        problem = str(exc) or type(exc).__name__
        raise ExpressionError(f"cannot parse {_quote(text)}: {problem}") from None
    _check_size(tree.body, text)
    compiler = _Compiler(text)
    run = compiler.compile(tree.body)
    if compiler.metered:  # only expressions with charged operations pay for the meter
        run = ops.metered(run)
    return Expression(text=text, names=frozenset(compiler.names), run=run)


@functools.lru_cache(maxsize=1024)
def _cached_compile(text: str) -> Expression:
    return compile_expression(text)


def evaluate_condition(expr: Expression | str, names: Mapping[str, Any]) -> bool:
    """Evaluate a condition and return its truth value.

    ``expr`` is an `Expression` or its text (compiled once and cached). Raises
    `ExpressionError` for bad text and `ExpressionEvalError` if evaluation fails.
    """
    if isinstance(expr, str):
        expr = _cached_compile(expr)
    value = expr.evaluate(names)
    try:
        return bool(value)
    except Exception as exc:
        raise ExpressionEvalError(f"{_describe(exc)} in {_quote(expr.text)}") from exc


def edge_names(output: Mapping[str, Any] | None, buffer: Mapping[str, Any]) -> dict[str, Any]:
    """The names an edge condition sees.

    Every buffer key, then these special names, which win over buffer keys of the same name:
    ``output`` (the source node's output), ``buffer`` (the whole buffer), ``result``
    (``output.get("result")``), ``true``, ``false`` and ``null``.
    """
    out = output if output is not None else {}
    names = dict(buffer)
    names["output"] = out
    names["buffer"] = buffer
    names["result"] = out.get("result") if isinstance(out, Mapping) else None
    names.update(CONSTANT_NAMES)
    return names


def _check_size(root: ast.AST, text: str) -> None:
    """Bound node count and nesting depth without recursing (the tree may be very deep)."""
    count = 0
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise ExpressionError(
                f"expression has more than {MAX_NODES} parts: {_quote(text, 60)}"
            )
        if depth > MAX_DEPTH:
            raise ExpressionError(
                f"expression is nested more than {MAX_DEPTH} levels deep: {_quote(text, 60)}"
            )
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def _check_constant_repeat(node: ast.BinOp, fail: Callable[[str], ExpressionError]) -> None:
    """Refuse ``'ab' * 600000`` (constants only) when its result is over the size limit."""
    if not isinstance(node.op, ast.Mult):
        return
    left, right = node.left, node.right
    if isinstance(left, ast.Constant) and isinstance(left.value, int):
        left, right = right, left
    if (isinstance(left, ast.Constant) and isinstance(left.value, str)
            and isinstance(right, ast.Constant) and type(right.value) is int
            and len(left.value) * right.value > ops.MAX_SIZE):
        raise fail(f"the repetition builds more than {ops.MAX_SIZE} characters")


# What the error message calls a construct the language does not have.
_FORBIDDEN = {
    ast.Lambda: "lambda",
    ast.ListComp: "a list comprehension",
    ast.SetComp: "a set comprehension",
    ast.DictComp: "a dict comprehension",
    ast.GeneratorExp: "a generator expression",
    ast.JoinedStr: "an f-string",
    ast.FormattedValue: "an f-string",
    ast.NamedExpr: "assignment (:=)",
    ast.Starred: "unpacking with *",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
}

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: ops.add,
    ast.Sub: ops.sub,
    ast.Mult: ops.mul,
    ast.Div: ops.truediv,
    ast.FloorDiv: ops.floordiv,
    ast.Mod: ops.mod,
    ast.Pow: ops.power,
    ast.LShift: ops.lshift,
    ast.RShift: ops.rshift,
    ast.BitOr: ops.bit_or,
    ast.BitXor: ops.bit_xor,
    ast.BitAnd: ops.bit_and,
}

_UNARY: dict[type, Callable[[Any], Any]] = {
    ast.USub: ops.neg,
    ast.UAdd: ops.pos,
    ast.Not: ops.not_,
    ast.Invert: ops.invert,
}

_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: ops.eq,
    ast.NotEq: ops.ne,
    ast.Lt: ops.lt,
    ast.LtE: ops.le,
    ast.Gt: ops.gt,
    ast.GtE: ops.ge,
    ast.Is: ops.is_,
    ast.IsNot: ops.is_not,
    ast.In: ops.contains,
    ast.NotIn: ops.not_contains,
}


_LITERAL_IN: dict[type, Callable[[Any, Any], Any]] = {
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}


def _is_literal(node: ast.expr) -> bool:
    """A constant, or a tuple/list/set of constants, written in the expression itself."""
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return all(isinstance(e, ast.Constant) for e in node.elts)
    return isinstance(node, ast.Constant)


class _Compiler:
    """Checks each node of a parsed expression and builds its closure."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.names: set[str] = set()
        self.metered = False  # whether any operation charges the work budget

    def fail(self, problem: str) -> ExpressionError:
        return ExpressionError(f"{problem} in {_quote(self.text)}")

    def compile(self, node: ast.AST) -> Run:
        method = getattr(self, f"_{type(node).__name__}", None)
        if method is None:
            what = _FORBIDDEN.get(type(node), f"{type(node).__name__}")
            raise self.fail(f"{what} is not allowed")
        return cast(Run, method(node))  # every _<NodeType> method returns a Run

    def _Constant(self, node: ast.Constant) -> Run:
        value = node.value
        if value is not None and type(value) not in (bool, int, float, str):
            raise self.fail(f"the constant {value!r} is not allowed")
        if isinstance(value, int) and value.bit_length() > ops.MAX_INT_BITS:
            raise self.fail(f"the number {value} is larger than {ops.MAX_INT_BITS} bits")
        return lambda ns: value

    def _Name(self, node: ast.Name) -> Run:
        name = node.id
        if name.startswith("__"):
            raise self.fail(f"the name {name!r} is not allowed (names starting with '__')")
        self.names.add(name)

        def run(ns: Mapping[str, Any]) -> Any:
            try:
                return ns[name]
            except KeyError:
                if name in CONSTANT_NAMES:
                    return CONSTANT_NAMES[name]
                raise ExpressionEvalError(f"unknown name {name!r}") from None

        return run

    def _BinOp(self, node: ast.BinOp) -> Run:
        op = _BINARY.get(type(node.op))
        if op is None:
            raise self.fail(f"the operator {type(node.op).__name__} is not allowed")
        if op in (ops.add, ops.mul):
            self.metered = True
            _check_constant_repeat(node, self.fail)
        left, right = self.compile(node.left), self.compile(node.right)
        return lambda ns: op(left(ns), right(ns))

    def _UnaryOp(self, node: ast.UnaryOp) -> Run:
        op = _UNARY[type(node.op)]
        operand = self.compile(node.operand)
        return lambda ns: op(operand(ns))

    def _BoolOp(self, node: ast.BoolOp) -> Run:
        parts = [self.compile(v) for v in node.values]
        if isinstance(node.op, ast.And):

            def run_and(ns: Mapping[str, Any]) -> Any:
                for part in parts:
                    value = part(ns)
                    if not value:
                        return value
                return value

            return run_and

        def run_or(ns: Mapping[str, Any]) -> Any:
            for part in parts:
                value = part(ns)
                if value:
                    return value
            return value

        return run_or

    def _Compare(self, node: ast.Compare) -> Run:
        left = self.compile(node.left)
        steps = [(self._compare_op(o, c), self.compile(c))
                 for o, c in zip(node.ops, node.comparators)]
        if len(steps) == 1:
            op, right = steps[0]
            if isinstance(node.comparators[0], ast.Constant):  # the common `x > 3`
                constant = node.comparators[0].value
                return lambda ns: op(left(ns), constant)
            return lambda ns: op(left(ns), right(ns))

        def run_chain(ns: Mapping[str, Any]) -> Any:
            a = left(ns)
            for op, right in steps:
                b = right(ns)
                result = op(a, b)
                if not result:
                    return result
                a = b
            return result

        return run_chain

    def _compare_op(self, op: ast.cmpop, right: ast.expr) -> Callable[[Any, Any], Any]:
        """The comparison function; ``in`` a value read at run time charges the budget, ``in``
        a literal written in the expression (`x in ('a', 'b')`) is small and does not."""
        if isinstance(op, (ast.In, ast.NotIn)):
            if _is_literal(right):
                return _LITERAL_IN[type(op)]
            self.metered = True
        return _COMPARE[type(op)]

    def _IfExp(self, node: ast.IfExp) -> Run:
        test, body, orelse = map(self.compile, (node.test, node.body, node.orelse))
        return lambda ns: body(ns) if test(ns) else orelse(ns)

    def _List(self, node: ast.List) -> Run:
        items = [self.compile(e) for e in node.elts]
        return lambda ns: [item(ns) for item in items]

    def _Tuple(self, node: ast.Tuple) -> Run:
        items = [self.compile(e) for e in node.elts]
        if all(isinstance(e, ast.Constant) for e in node.elts):  # `x in ('a', 'b')`
            constant = tuple(e.value for e in node.elts)  # type: ignore[attr-defined]
            return lambda ns: constant
        return lambda ns: tuple([item(ns) for item in items])

    def _Set(self, node: ast.Set) -> Run:
        items = [self.compile(e) for e in node.elts]
        return lambda ns: {item(ns) for item in items}

    def _Dict(self, node: ast.Dict) -> Run:
        keys = [k for k in node.keys if k is not None]  # None marks a ** unpacking
        if len(keys) != len(node.keys):
            raise self.fail("unpacking with ** is not allowed")
        pairs = [(self.compile(k), self.compile(v)) for k, v in zip(keys, node.values)]
        return lambda ns: {k(ns): v(ns) for k, v in pairs}

    def _Subscript(self, node: ast.Subscript) -> Run:
        target = self.compile(node.value)
        index = node.slice
        if isinstance(index, ast.Slice):
            lower, upper, step = (
                self.compile(part) if part is not None else (lambda ns: None)
                for part in (index.lower, index.upper, index.step)
            )
            self.metered = True
            return lambda ns: ops.slice_of(target(ns), slice(lower(ns), upper(ns), step(ns)))
        key = self.compile(index)
        return lambda ns: ops.subscript(target(ns), key(ns))

    def _Attribute(self, node: ast.Attribute) -> Run:
        attr = self._attr_name(node)
        target = self.compile(node.value)
        return lambda ns: ops.field(target(ns), attr)

    def _attr_name(self, node: ast.Attribute) -> str:
        if node.attr.startswith("_"):
            raise self.fail(
                f"the attribute {node.attr!r} is not allowed (names starting with '_' are private)"
            )
        return node.attr

    def _Call(self, node: ast.Call) -> Run:
        args = [self.compile(a) for a in node.args]
        kwargs = {}
        for kw in node.keywords:
            if kw.arg is None:
                raise self.fail("unpacking with ** is not allowed")
            kwargs[kw.arg] = self.compile(kw.value)
        if isinstance(node.func, ast.Name):
            name = node.func.id
            spec = ops.FUNCTIONS.get(name)
            if spec is None:
                raise self.fail(f"call to {name!r} is not allowed")
            label = f"{name}()"
        elif isinstance(node.func, ast.Attribute):
            name = self._attr_name(node.func)
            spec = ops.METHODS.get(name)
            if spec is None:
                raise self.fail(f"the method {name!r} is not allowed")
            label = f".{name}()"
        else:
            raise self.fail("only named functions and methods can be called")
        self.metered = self.metered or spec.linear
        problem = spec.check_arguments(len(args), tuple(kwargs))
        if problem:
            raise self.fail(f"{label} {problem}")
        fn = spec.function
        if isinstance(node.func, ast.Name):
            if not kwargs:
                return lambda ns: fn(*[a(ns) for a in args])
            return lambda ns: fn(*[a(ns) for a in args], **{k: v(ns) for k, v in kwargs.items()})
        target = self.compile(node.func.value)
        return lambda ns: fn(
            target(ns), *[a(ns) for a in args], **{k: v(ns) for k, v in kwargs.items()}
        )
