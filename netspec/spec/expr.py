"""Safe arithmetic on block parameters: `width * 4`, `2 if i == 0 else 1`, `max(8, c // 2)`,
`rates[i]`, `sum(depths)`.

Expressions are parsed with Python's `ast` and evaluated by walking a small whitelist of node
kinds; anything else (attribute access, slices, lambdas, comprehensions, imports, unknown
functions) is refused before evaluation. `eval` is never used. Lists (written `[a, b]` or
given as parameters) are indexed by an integer (`rates[i]`, `rates[-1]`) and read whole by
`sum`, `len`, `min` and `max`; every number stays within ±10**15.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from netspec import limits
from netspec.errors import did_you_mean, shown
from netspec.symbolic import Sym, concrete

MAX_MAGNITUDE = 10**15  # larger results are certainly mistakes, and bound the work


class ExprError(ValueError):
    """An expression cannot be evaluated; `hint` suggests a fix when one is likely, `code`
    is the diagnostic code to report it under."""

    def __init__(self, message: str, hint: str | None = None, code: str = "bad-expression"):
        super().__init__(message)
        self.hint = hint
        self.code = code


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round `value` to the nearest multiple of `divisor`, never dropping more than 10%.

    The channel-rounding rule of MobileNet-style width multipliers; ValueError for a
    divisor that is not positive.
    """
    if divisor <= 0:
        raise ValueError(f"the divisor must be positive, found {divisor!r}")
    floor = divisor if min_value is None else min_value
    rounded = max(floor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


NDIGITS = 15
"""`round(x, n)` takes n within ±15 (values stay within 10**15): `round(10, -10**15)` would
compute 10**(10**15)."""


def bounded_round(value: float, ndigits: int | None = None) -> float:
    """Python's `round`, with `ndigits` within ±`NDIGITS` (ValueError past it)."""
    if ndigits is not None and not isinstance(ndigits, bool) and abs(ndigits) > NDIGITS:
        raise ValueError(f"ndigits must be within ±{NDIGITS}, found {ndigits!r}")
    return round(value, ndigits)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "min": min,
    "max": max,
    "abs": abs,
    "int": int,
    "float": float,
    "round": bounded_round,
    "floor": math.floor,
    "ceil": math.ceil,
    "sqrt": math.sqrt,
    "exp": math.exp,
    "log": math.log,
    "log2": math.log2,
    "make_divisible": make_divisible,
    "sum": sum,
    "len": len,
}
LIST_FUNCTIONS = {"sum", "len", "min", "max"}
"""Functions that also take one list: `sum(depths)`, `max(rates)`."""

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_REFUSED = {
    ast.Attribute: "attribute access",
    ast.Slice: "slices (index one item: `rates[i]`)",
    ast.Lambda: "lambdas",
    ast.ListComp: "comprehensions",
    ast.GeneratorExp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.NamedExpr: "assignment",
    ast.Starred: "unpacking",
    ast.JoinedStr: "f-strings",
    ast.Set: "`{...}` braces (an expression is written bare: `width * 4`)",
}


class Lazy:
    """A parameter computed the first time an expression reads it (a block input's shape:
    inferring it is work that a block which never reads it should not pay for)."""

    __slots__ = ("compute", "value")

    def __init__(self, compute: Callable[[], Any]):
        self.compute: Callable[[], Any] | None = compute
        self.value: Any = None

    def get(self) -> Any:
        if self.compute is not None:
            self.value, self.compute = self.compute(), None
        return self.value


def resolved(value: Any) -> Any:
    """A parameter's value, computing it if it is `Lazy`."""
    return value.get() if isinstance(value, Lazy) else value


def parse(text: str) -> ast.expr:
    """Parse and vet an expression; raises ExprError for anything outside the language or
    longer than the limit `expression_length`."""
    longest = limits.current().expression_length
    if len(text) > longest:
        raise ExprError(f"expression is longer than {longest} characters "
                        "(limit `expression_length`)", limits.raise_hint("expression_length"),
                        code="limit")
    return _parse(text)


@lru_cache(maxsize=4096)
def _parse(text: str) -> ast.expr:
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        hint = ("YAML splits a `{...}` mapping at commas: quote an expression that has one, "
                "e.g. `out: \"max(8, c // 2)\"`") if text.count("(") > text.count(")") else None
        raise ExprError(f"`{text}` is not a valid expression", hint) from None
    for node in ast.walk(tree):
        kind = _REFUSED.get(type(node))
        if kind:
            raise ExprError(f"`{text}` uses {kind}, which expressions do not allow",
                            "expressions allow numbers, parameters, lists and `list[i]`, "
                            "+ - * / // % **, comparisons, and/or/not, `a if c else b` and "
                            + ", ".join(FUNCTIONS))
    return tree


def names_in(text: str) -> frozenset[str]:
    """The parameter names an expression reads."""
    parse(text)  # the limit `expression_length`, checked on every call
    return _names(text)


@lru_cache(maxsize=4096)
def _names(text: str) -> frozenset[str]:
    return frozenset(n.id for n in ast.walk(_parse(text))
                     if isinstance(n, ast.Name)).difference(FUNCTIONS)


def evaluate(text: str, env: Mapping[str, Any]) -> Any:
    """Evaluate `text` with the parameters in `env`; integral floats come back as ints."""
    value = _Eval(text, env).visit(parse(text))
    if isinstance(value, float) and value.is_integer() and abs(value) <= MAX_MAGNITUDE:
        return int(value)
    return value


class _Eval:
    def __init__(self, text: str, env: Mapping[str, Any]):
        self.text = text
        self.env = env

    def fail(self, why: str, hint: str | None = None) -> ExprError:
        return ExprError(f"`{self.text}`: {why}", hint)

    def visit(self, node: ast.expr) -> Any:
        method = getattr(self, f"visit_{type(node).__name__}", None)
        if method is None:
            raise self.fail(f"{type(node).__name__} is not allowed in expressions")
        value = method(node)
        if isinstance(value, complex):  # `(-8) ** 0.5`
            raise self.fail("the result is not a real number")
        if isinstance(value, int | float) and not isinstance(value, bool) and abs(value) > MAX_MAGNITUDE:
            raise self.fail(f"the result {_magnitude(value)} is out of range",
                            "results stay within ±10**15")
        return value

    def visit_Constant(self, node: ast.Constant) -> Any:
        if isinstance(node.value, bool | int | float | str) or node.value is None:
            return node.value
        raise self.fail(f"{type(node.value).__name__} constants are not allowed")

    def visit_Name(self, node: ast.Name) -> Any:
        if node.id in self.env:
            return resolved(self.env[node.id])
        names = [*self.env, "True", "False", "None"]
        raise self.fail(f"unknown parameter `{node.id}`", did_you_mean(node.id, names))

    def visit_List(self, node: ast.List) -> list[Any]:
        return [self.visit(e) for e in node.elts]

    visit_Tuple = visit_List

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Any:
        value = self.visit(node.operand)
        if isinstance(node.op, ast.Not):
            return not value
        self.number(value)
        return -value if isinstance(node.op, ast.USub) else +value

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        fn = _BINARY.get(type(node.op))
        if fn is None:
            raise self.fail("only + - * / // % ** are allowed")
        left, right = self.number(self.visit(node.left)), self.number(self.visit(node.right))
        if isinstance(node.op, ast.Pow) and (abs(right) > 64 or abs(left) > MAX_MAGNITUDE):
            raise self.fail("the power is too large")
        try:
            return fn(left, right)
        except ZeroDivisionError:
            raise self.fail("division by zero") from None
        except OverflowError:
            raise self.fail("the result is out of range", "results stay within ±10**15") from None

    def visit_BoolOp(self, node: ast.BoolOp) -> Any:
        is_and = isinstance(node.op, ast.And)
        value: Any = is_and
        for operand in node.values:
            value = self.visit(operand)
            if bool(value) != is_and:
                return value
        return value

    def visit_Compare(self, node: ast.Compare) -> bool:
        left = self.visit(node.left)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            fn = _COMPARE.get(type(op))
            if fn is None:
                raise self.fail("only == != < <= > >= comparisons are allowed")
            right = self.visit(comparator)
            try:
                if not fn(left, right):
                    return False
            except TypeError:
                raise self.fail(f"cannot compare {shown(left)} with {shown(right)}") from None
            left = right
        return True

    def visit_IfExp(self, node: ast.IfExp) -> Any:
        return self.visit(node.body) if self.visit(node.test) else self.visit(node.orelse)

    def visit_Call(self, node: ast.Call) -> Any:
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name not in FUNCTIONS or node.keywords:
            hint = did_you_mean(name, FUNCTIONS) or "functions: " + ", ".join(FUNCTIONS)
            raise self.fail(f"`{name or '?'}` is not an allowed function call", hint)
        values = [self.visit(a) for a in node.args]
        if name in LIST_FUNCTIONS and len(values) == 1 and isinstance(values[0], list):
            args: list[Any] = [[self.number(v) for v in values[0]]]
            if not args[0] and name != "len" and name != "sum":
                raise self.fail(f"{name}() of an empty list")
        else:
            args = [self.number(v) for v in values]
        try:
            return FUNCTIONS[name](*args)
        except ZeroDivisionError:
            raise self.fail(f"{name}(): division by zero") from None
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise self.fail(f"{name}(): {exc}") from None

    def visit_Subscript(self, node: ast.Subscript) -> Any:
        items = self.visit(node.value)
        index = self.visit(node.slice)
        if not isinstance(items, list):
            raise self.fail(f"only a list can be indexed, found {shown(items)}")
        index = concrete(index)
        if isinstance(index, bool) or not isinstance(index, int):
            raise self.fail(f"a list index is an integer, found {shown(index)}")
        if not -len(items) <= index < len(items):
            raise self.fail(f"index {index} is out of range for a list of {len(items)}",
                            f"indices run from 0 to {len(items) - 1} (or -{len(items)} to -1)"
                            if items else "the list is empty")
        return items[index]

    def number(self, value: Any) -> Any:
        if isinstance(value, Sym):  # a size netspec.sizes follows symbolically
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(f"expected a number, found {shown(value)}")
        return value


def _magnitude(value: float) -> str:
    """`1e+16`, or `~10**960` for an integer too large for a float."""
    if isinstance(value, int) and value.bit_length() > 1000:
        return f"~10**{int(math.log10(abs(value)))}"
    return f"{value:.3g}"
