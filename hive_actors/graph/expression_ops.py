"""The operations the expression language may perform, each with its cost bounded.

`expressions.py` compiles an expression into calls of these functions only. They refuse
(with `ExpressionLimitError`) anything that could build a huge value: integers over
`MAX_INT_BITS` bits, strings or containers over `MAX_SIZE` characters/items (nested items
counted), printf-style ``%`` formatting; other failures are ordinary Python exceptions that
`Expression.evaluate` turns into `ExpressionEvalError`.

Time is bounded by a budget per evaluation: every operation whose cost grows with its values
(a function or method working through a string or container, a slice, ``+``/``*`` of
sequences, ``in``) charges the items it reads and builds, *before* doing the work, against
`MAX_WORK`. An expression has no loops and at most a few hundred parts, so everything else
is bounded by its size. The running total lives in one meter that `metered` resets per evaluation.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, ItemsView, KeysView, Mapping, ValuesView
from typing import Any, TypeVar

import attrs

from hive_actors.errors import ExpressionEvalError

MAX_INT_BITS = 4096
MAX_SIZE = 1_000_000
MAX_ROUND_DIGITS = 1000
# Items read or built by one evaluation (about three passes over a value of MAX_SIZE).
MAX_WORK = 3_000_000


class ExpressionLimitError(ExpressionEvalError):
    """Evaluation was refused because a value would be too large or too costly to build."""


# ---- the work budget ------------------------------------------------------------------------


class _Meter:
    """Work done by the running evaluation. Evaluations are synchronous and the runtime runs
    them on its one trio thread; threads evaluating at the same time would share one count
    (a plain object: a thread-local one cost about 4x per use)."""

    used = 0


_METER = _Meter()
_SIZED = (str, bytes, list, tuple, set, frozenset, dict, Mapping)


def charge(units: int) -> None:
    """Count ``units`` of work for the running evaluation; raise once past `MAX_WORK`."""
    meter = _METER
    meter.used += units
    if meter.used > MAX_WORK:
        _over_budget()


def _over_budget() -> None:
    raise ExpressionLimitError(
        f"evaluation exceeds its budget of {MAX_WORK} items handled "
        f"(by functions, methods, slices, + and * of sequences, 'in')"
    )


def metered(run: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``run`` with a fresh work budget for each call."""

    def run_metered(names: Any) -> Any:
        _METER.used = 0
        return run(names)

    return run_metered


_EXACT_SIZED = frozenset({str, bytes, list, tuple, set, frozenset, dict})
_UNSIZED = frozenset({int, float, bool, type(None)})


def _size(value: Any) -> int:
    """The items ``value`` holds at its top level; 0 for a number (fast for plain types)."""
    kind = type(value)
    if kind in _EXACT_SIZED:
        return len(value)
    if kind in _UNSIZED:
        return 0
    return len(value) if isinstance(value, _SIZED) else 0


def _linear(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` charging the sizes of its arguments first, then checking and charging its
    result (for work that grows with the values: sorting, splitting, copying...)."""

    def call(*args: Any, **kwargs: Any) -> Any:
        units = _METER.used
        for arg in args:
            units += len(arg) if type(arg) in _EXACT_SIZED else _size(arg)
        _METER.used = units
        if units > MAX_WORK:
            _over_budget()
        result = function(*args, **kwargs)
        if type(result) is str:  # the common case, checked inline
            if len(result) > MAX_SIZE:
                check_result(result)
            _METER.used = units = units + len(result)
            if units > MAX_WORK:
                _over_budget()
        elif _size(result):
            charge(_size(result))
            check_result(result)
        return result

    return call


# ---- size limits ----------------------------------------------------------------------------

_SEQUENCES = (str, bytes, list, tuple)
_CONTAINERS = (list, tuple, set, frozenset)
_VIEWS = (KeysView, ValuesView, ItemsView)


def weight(value: Any, budget: int = MAX_SIZE) -> int:
    """Characters plus items of ``value``, nested items counted each time they appear.

    Stops counting once past ``budget`` (so it costs at most ``budget`` steps).
    """
    total = 0
    stack = [value]
    while stack and total <= budget:
        item = stack.pop()
        if isinstance(item, (str, bytes)):
            total += len(item)
        elif isinstance(item, _CONTAINERS) or isinstance(item, _VIEWS):
            total += len(item)
            stack.extend(item)
        elif isinstance(item, Mapping):
            total += len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        else:
            total += 1
    return total


_T = TypeVar("_T")


def check_result(value: _T) -> _T:
    """Return ``value`` if it is within the limits; raise `ExpressionLimitError` if not."""
    if isinstance(value, int):
        if value.bit_length() > MAX_INT_BITS:
            raise ExpressionLimitError(f"integer result larger than {MAX_INT_BITS} bits")
    elif isinstance(value, (str, bytes)):
        if len(value) > MAX_SIZE:
            raise ExpressionLimitError(f"result longer than {MAX_SIZE} characters")
    elif isinstance(value, _CONTAINERS) and weight(value) > MAX_SIZE:
        raise ExpressionLimitError(f"result larger than {MAX_SIZE} items")
    return value


def _check_repeat(seq: Any, times: Any) -> None:
    if isinstance(seq, _SEQUENCES) and isinstance(times, int) and times > 0:
        if weight(seq, MAX_SIZE // times + 1) * times > MAX_SIZE:
            raise ExpressionLimitError(f"repetition would be larger than {MAX_SIZE} items")


# ---- operators ------------------------------------------------------------------------------


def add(a: Any, b: Any) -> Any:
    if isinstance(a, _SEQUENCES) and isinstance(b, _SEQUENCES):
        if len(a) + len(b) > MAX_SIZE:
            raise ExpressionLimitError(f"concatenation would be longer than {MAX_SIZE}")
        charge(len(a) + len(b))
    return check_result(a + b)


def sub(a: Any, b: Any) -> Any:
    return check_result(a - b)


def mul(a: Any, b: Any) -> Any:
    if isinstance(a, int) and isinstance(b, int):
        if a.bit_length() + b.bit_length() > MAX_INT_BITS + 1:
            raise ExpressionLimitError(f"integer result larger than {MAX_INT_BITS} bits")
    else:
        _check_repeat(a, b)
        _check_repeat(b, a)
        if isinstance(a, _SEQUENCES) and isinstance(b, int) and b > 0:
            charge(len(a) * b)
        elif isinstance(b, _SEQUENCES) and isinstance(a, int) and a > 0:
            charge(len(b) * a)
    return check_result(a * b)


def truediv(a: Any, b: Any) -> Any:
    return a / b


def floordiv(a: Any, b: Any) -> Any:
    return check_result(a // b)


def mod(a: Any, b: Any) -> Any:
    if isinstance(a, (str, bytes)):
        raise ExpressionLimitError("%-formatting of strings is not allowed")
    return a % b


def power(a: Any, b: Any) -> Any:
    if isinstance(a, int) and isinstance(b, int) and b > 0 and abs(a) > 1:
        # the result has at least (bits(a) - 1) * b + 1 bits
        if (abs(a).bit_length() - 1) * b + 1 > MAX_INT_BITS:
            raise ExpressionLimitError(f"integer result larger than {MAX_INT_BITS} bits")
    return check_result(a**b)


def lshift(a: Any, b: Any) -> Any:
    if isinstance(a, int) and isinstance(b, int) and a and b > 0:
        if a.bit_length() + b > MAX_INT_BITS:
            raise ExpressionLimitError(f"integer result larger than {MAX_INT_BITS} bits")
    return a << b


def rshift(a: Any, b: Any) -> Any:
    return a >> b


def bit_or(a: Any, b: Any) -> Any:
    return check_result(a | b)


bit_xor = operator.xor
bit_and = operator.and_
neg = operator.neg
pos = operator.pos
not_ = operator.not_
invert = operator.invert
eq = operator.eq
ne = operator.ne
lt = operator.lt
le = operator.le
gt = operator.gt
ge = operator.ge
is_ = operator.is_
is_not = operator.is_not


def contains(a: Any, b: Any) -> bool:
    if isinstance(b, _SIZED):
        charge(len(b))
    return a in b


def not_contains(a: Any, b: Any) -> bool:
    return not contains(a, b)


# ---- reading values -------------------------------------------------------------------------


def subscript(target: Any, key: Any) -> Any:
    """``target[key]`` for mappings, lists, tuples and strings only."""
    if isinstance(target, (Mapping, list, tuple, str)):
        return target[key]
    raise ExpressionEvalError(f"a {type(target).__name__} value cannot be indexed")


def slice_of(target: Any, key: slice) -> Any:
    """``target[a:b:c]``: a copy, so its size is charged to the budget."""
    result = subscript(target, key)
    charge(_size(result))
    return result


def field(target: Any, name: str) -> Any:
    """``target.name``: a key of a mapping, or a declared field of an attrs/dataclass record."""
    if isinstance(target, Mapping):
        try:
            return target[name]
        except KeyError:
            raise ExpressionEvalError(f"no key {name!r} for '.{name}'") from None
    cls = type(target)
    if attrs.has(cls):
        if name in attrs.fields_dict(cls):
            return getattr(target, name)
    elif dataclasses.is_dataclass(cls):
        if any(f.name == name for f in dataclasses.fields(cls)):
            return getattr(target, name)
    raise ExpressionEvalError(f"a {cls.__name__} value has no field {name!r}")


# ---- functions and methods ------------------------------------------------------------------

_ITERABLES = (str, bytes, list, tuple, set, frozenset, Mapping, *_VIEWS)


def _iterable(value: Any, function: str) -> Any:
    if not isinstance(value, _ITERABLES):
        raise ExpressionEvalError(
            f"{function}() needs a string, list, tuple, set or dict, not {type(value).__name__}"
        )
    return value


def _collection(kind: Callable[..., Any], name: str) -> Callable[..., Any]:
    def make(*args: Any, **kwargs: Any) -> Any:
        return kind(*(_iterable(a, name) for a in args), **kwargs)

    return make


def _extreme(kind: Callable[..., Any], name: str) -> Callable[..., Any]:
    def pick(*args: Any, **kwargs: Any) -> Any:
        if len(args) == 1:
            args = (_iterable(args[0], name),)
        return kind(*args, **kwargs)

    return pick


def _int(*args: Any, **kwargs: Any) -> int:
    return check_result(int(*args, **kwargs))


_SCALARS = (str, bool, int, float, type(None))


def _str(*args: Any) -> str:
    if args and not isinstance(args[0], _SCALARS) and weight(args[0]) > MAX_SIZE:
        raise ExpressionLimitError(f"str() of a value larger than {MAX_SIZE} items")
    return check_result(str(*args))


def _sum(values: Any, start: Any = 0) -> Any:
    if not isinstance(start, (int, float)):
        raise ExpressionEvalError("sum() adds numbers only")
    return check_result(sum(_iterable(values, "sum"), start))


def _round(number: Any, ndigits: Any = None) -> Any:
    if isinstance(ndigits, int) and abs(ndigits) > MAX_ROUND_DIGITS:
        raise ExpressionLimitError(f"round() to more than {MAX_ROUND_DIGITS} digits")
    return round(number, ndigits)


@attrs.frozen
class Callee:
    """A callable the language allows and the arguments it accepts."""

    function: Callable[..., Any]
    min_args: int
    max_args: int
    keywords: frozenset[str] | None = frozenset()  # None: any keyword
    linear: bool = False  # whether ``function`` charges the work budget (see `_linear`)

    @classmethod
    def charged(cls, function: Callable[..., Any], min_args: int, max_args: int,
                keywords: frozenset[str] | None = frozenset()) -> Callee:
        """A callee whose work grows with its values: it charges the budget."""
        return cls(_linear(function), min_args, max_args, keywords, linear=True)

    def check_arguments(self, positional: int, keywords: tuple[str, ...]) -> str:
        """Return what is wrong with a call's argument shape, or "" if nothing."""
        if not self.min_args <= positional <= self.max_args:
            if self.min_args == self.max_args:
                plural = "" if self.min_args == 1 else "s"
                return f"takes {self.min_args} argument{plural}, not {positional}"
            if self.max_args >= _MANY:
                return f"takes at least {self.min_args} argument, not {positional}"
            return f"takes {self.min_args} to {self.max_args} arguments, not {positional}"
        for kw in keywords:
            if self.keywords is not None and kw not in self.keywords:
                return f"has no keyword argument {kw!r}"
            if kw.startswith("__"):
                return f"has no keyword argument {kw!r}"
        return ""


_MANY = 1000

FUNCTIONS: dict[str, Callee] = {
    "len": Callee(len, 1, 1),
    "int": Callee.charged(_int, 0, 2, frozenset({"base"})),
    "float": Callee.charged(float, 0, 1),
    "str": Callee.charged(_str, 0, 1),
    "bool": Callee(bool, 0, 1),
    "list": Callee.charged(_collection(list, "list"), 0, 1),
    "tuple": Callee.charged(_collection(tuple, "tuple"), 0, 1),
    "set": Callee.charged(_collection(set, "set"), 0, 1),
    "dict": Callee.charged(_collection(dict, "dict"), 0, 1, None),
    "sorted": Callee.charged(_collection(sorted, "sorted"), 1, 1, frozenset({"reverse"})),
    "min": Callee.charged(_extreme(min, "min"), 1, _MANY, frozenset({"default"})),
    "max": Callee.charged(_extreme(max, "max"), 1, _MANY, frozenset({"default"})),
    "sum": Callee.charged(_sum, 1, 2, frozenset({"start"})),
    "abs": Callee(abs, 1, 1),
    "round": Callee(_round, 1, 2, frozenset({"ndigits"})),
    "all": Callee.charged(_collection(all, "all"), 1, 1),
    "any": Callee.charged(_collection(any, "any"), 1, 1),
}

# method name -> {receiver type: the unbound method}; receivers are tried in this order
_RECEIVERS: tuple[type, ...] = (str, dict, Mapping, list, tuple)
# Methods whose work does not grow with the receiver (the others are charged: `_linear`).
_CONSTANT_TIME = frozenset({"get", "keys", "values", "items"})
_METHOD_TABLE: dict[str, tuple[tuple[type, ...], int, int, frozenset[str]]] = {
    "get": ((dict, Mapping), 1, 2, frozenset()),
    "keys": ((dict, Mapping), 0, 0, frozenset()),
    "values": ((dict, Mapping), 0, 0, frozenset()),
    "items": ((dict, Mapping), 0, 0, frozenset()),
    "lower": ((str,), 0, 0, frozenset()),
    "upper": ((str,), 0, 0, frozenset()),
    "strip": ((str,), 0, 1, frozenset()),
    "lstrip": ((str,), 0, 1, frozenset()),
    "rstrip": ((str,), 0, 1, frozenset()),
    "split": ((str,), 0, 2, frozenset({"sep", "maxsplit"})),
    "startswith": ((str,), 1, 3, frozenset()),
    "endswith": ((str,), 1, 3, frozenset()),
    "count": ((str, list, tuple), 1, 3, frozenset()),
    "index": ((str, list, tuple), 1, 3, frozenset()),
}


def _method(name: str, receivers: tuple[type, ...]) -> Callable[..., Any]:
    unbound = [(cls, getattr(cls, name)) for cls in _RECEIVERS if cls in receivers]

    def call(target: Any, *args: Any, **kwargs: Any) -> Any:
        for cls, function in unbound:
            if isinstance(target, cls):
                return function(target, *args, **kwargs)
        raise ExpressionEvalError(f"a {type(target).__name__} value has no method {name!r}")

    return call


METHODS: dict[str, Callee] = {
    name: (Callee(_method(name, receivers), low, high, keywords) if name in _CONSTANT_TIME
           else Callee.charged(_method(name, receivers), low, high, keywords))
    for name, (receivers, low, high, keywords) in _METHOD_TABLE.items()
}
