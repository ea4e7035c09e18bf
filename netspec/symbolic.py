"""Symbolic sizes: integer expressions of named input sizes, as shape rules compute them.

A `Sym` stands for a size that depends on named input sizes (`H`, `W`, `T`). It is a
polynomial with integer coefficients over *atoms*: the names themselves and floors
`floor(P / d)` of such polynomials, which is what the convolution arithmetic produces. The
ops' shape rules run on it unchanged: `(H + 2*p - k) // s + 1` is a `Sym`, and nested floors
fold as integers allow (`floor(floor(x/a)/b) = floor(x/(ab))`).

Every `Sym` also carries a *hint*, its value at one example size. A comparison whose
answer depends on the sizes (`out < 1`, `a == b` at a merge, `max(0, ...)`) answers as the
hint does and records a *guard*, the condition under which it answers so. A shape pass run
on symbolic inputs is thus exact on the region where all its guards hold: `guarded()`
collects them, and `netspec.sizes` turns them into sets of sizes. A use that needs a plain
int (`range(H)`, `int(H)`) fixes the size to the hint, with the guard `H == hint`.

Nothing here imports torch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from fractions import Fraction
from typing import Any, Literal, NamedTuple, Union

Relation = Literal["ge", "eq", "ne"]
"""A guard's form: its polynomial is >= 0, == 0 or != 0."""


class Guard(NamedTuple):
    """A condition a symbolic pass relied on: `poly >= 0`, `poly == 0` or `poly != 0`."""

    poly: Poly
    relation: Relation


Monomial = tuple["Atom", ...]
Atom = Union[str, "Floor"]


class Unsupported(Exception):
    """A symbolic size is used in a way netspec cannot follow in closed form."""


def _atom_key(atom: Atom) -> tuple[int, str]:
    return (0, atom) if isinstance(atom, str) else (1, atom.text)


class Poly:
    """A polynomial with integer coefficients over atoms: `{monomial: coefficient}`, the
    empty monomial holding the constant. Immutable and hashable; equal polynomials are
    equal as expressions (the form is canonical)."""

    __slots__ = ("_hash", "_text", "terms")

    def __init__(self, terms: dict[Monomial, int]):
        self.terms = terms
        self._hash: int | None = None
        self._text: str | None = None

    @staticmethod
    def const(value: int) -> Poly:
        return Poly({(): value} if value else {})

    @staticmethod
    def var(name: str) -> Poly:
        return Poly({(name,): 1})

    def constant(self) -> int | None:
        """The value when no atom appears, else None."""
        if not self.terms:
            return 0
        if len(self.terms) == 1 and () in self.terms:
            return self.terms[()]
        return None

    def __add__(self, other: Poly) -> Poly:
        terms = dict(self.terms)
        for mono, c in other.terms.items():
            _accumulate(terms, mono, c)
        return Poly(terms)

    def __sub__(self, other: Poly) -> Poly:
        terms = dict(self.terms)
        for mono, c in other.terms.items():
            _accumulate(terms, mono, -c)
        return Poly(terms)

    def plus(self, c: int) -> Poly:
        """`self + c` for an int c."""
        if not c:
            return self
        terms = dict(self.terms)
        _accumulate(terms, (), c)
        return Poly(terms)

    def scaled(self, factor: int) -> Poly:
        return Poly({m: c * factor for m, c in self.terms.items()} if factor else {})

    def __mul__(self, other: Poly) -> Poly:
        terms: dict[Monomial, int] = {}
        for m1, c1 in self.terms.items():
            for m2, c2 in other.terms.items():
                mono = tuple(sorted(m1 + m2, key=_atom_key)) if m1 and m2 else m1 or m2
                _accumulate(terms, mono, c1 * c2)
        return Poly(terms)

    def floordiv(self, d: int) -> Poly:
        """`floor(self / d)` for a positive int `d`, folded: multiples of `d` come out of
        the floor, a common factor cancels, and a floor of a floor becomes one floor."""
        if d == 1:
            return self
        whole: dict[Monomial, int] = {}
        rest: dict[Monomial, int] = {}
        for mono, c in self.terms.items():  # c = q*d + r: q*atom leaves the floor
            q, r = divmod(c, d)
            if q:
                whole[mono] = q
            if r:
                rest[mono] = r
        if not any(rest.keys() - {()}):
            return Poly(whole)  # floor(r/d) = 0 for 0 <= r < d
        inner = Poly(rest)
        g = math.gcd(d, *rest.values())
        if g > 1:
            inner, d = Poly({m: c // g for m, c in rest.items()}), d // g
        nested = _lone_floor(inner)
        if nested is not None:  # floor((floor(P/e) + r)/d) = floor((P + r*e)/(e*d))
            floor, r = nested
            return Poly(whole) + Poly({(Floor(floor.num + Poly.const(r * floor.div),
                                              floor.div * d),): 1})
        return Poly(whole) + Poly({(Floor(inner, d),): 1})

    def value(self, at: Mapping[str, int]) -> int:
        """The polynomial's value with each name given an int."""
        total = 0
        for mono, c in self.terms.items():
            term = c
            for atom in mono:
                term *= at[atom] if isinstance(atom, str) else atom.value(at)
            total += term
        return total

    def names(self) -> set[str]:
        out: set[str] = set()
        for mono in self.terms:
            for atom in mono:
                out |= {atom} if isinstance(atom, str) else atom.num.names()
        return out

    def linear(self) -> tuple[Fraction, int]:
        """For a polynomial of one name `x` that is quasi-affine (no product of two
        x-dependent atoms), `(slope, period)`: `p(x + period) = p(x) + slope * period` for
        every integer x. Unsupported otherwise."""
        if self.degree() > 1:
            raise Unsupported(f"`{self}` is not affine in the sizes")
        slope, period = Fraction(0), 1
        for mono, c in self.terms.items():
            if mono:
                s, p = _atom_linear(mono[0])
                slope += c * s
                period = math.lcm(period, p)
        return slope, period

    def period(self) -> int:
        """A period of every atom: along `x = r + k*period`, each atom is affine in k, so
        the polynomial is a polynomial in k of its `degree()`. Unsupported when an atom
        is not quasi-affine (a floor of a product)."""
        return math.lcm(1, *(_atom_linear(a)[1] for mono in self.terms for a in mono))

    def degree(self) -> int:
        return max((len(mono) for mono in self.terms), default=0)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Poly) and self.terms == other.terms

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self.terms.items()))
        return self._hash

    def __str__(self) -> str:
        if self._text is None:
            self._text = _text(self)
        return self._text

    __repr__ = __str__


def _accumulate(terms: dict[Monomial, int], mono: Monomial, c: int) -> None:
    """Add `c * mono` to `terms`, dropping a monomial whose coefficient becomes 0."""
    total = terms.get(mono, 0) + c
    if total:
        terms[mono] = total
    else:
        terms.pop(mono, None)


def _atom_linear(atom: Atom) -> tuple[Fraction, int]:
    return (Fraction(1), 1) if isinstance(atom, str) else atom.linear()


def _lone_floor(p: Poly) -> tuple[Floor, int] | None:
    """`(F, r)` when `p` is `F + r` for one floor atom F and an int r."""
    floors = [m for m in p.terms if m]
    if len(floors) != 1 or len(floors[0]) != 1 or p.terms[floors[0]] != 1:
        return None
    atom = floors[0][0]
    return (atom, p.terms.get((), 0)) if isinstance(atom, Floor) else None


class Floor:
    """The atom `floor(num / div)`: `num` a polynomial, `div` an int above 1."""

    __slots__ = ("_linear", "div", "num", "text")

    def __init__(self, num: Poly, div: int):
        self.num = num
        self.div = div
        inner = str(num)
        self.text = f"floor({inner if len(num.terms) == 1 and () not in num.terms else f'({inner})'}/{div})"
        self._linear: tuple[Fraction, int] | None = None

    def value(self, at: Mapping[str, int]) -> int:
        return self.num.value(at) // self.div

    def linear(self) -> tuple[Fraction, int]:
        """Slope and period: `num` has slope s and period p (s*p an int, as num's values
        are); the floor repeats once s*p*m is a multiple of div."""
        if self._linear is None:
            s, p = self.num.linear()
            step = s * p
            assert step.denominator == 1
            m = self.div // math.gcd(self.div, int(step))
            self._linear = (s / self.div, p * m)
        return self._linear

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Floor) and self.div == other.div and self.num == other.num

    def __hash__(self) -> int:
        return hash((self.num, self.div))


def _text(p: Poly) -> str:
    """`2*H - 3`, `floor((H+1)/2)`: monomials by degree, then in atom order; the
    constant last."""
    if not p.terms:
        return "0"
    parts = []
    for mono, c in sorted(p.terms.items(),
                          key=lambda t: (-len(t[0]), [_atom_key(a) for a in t[0]])):
        body = "*".join(a if isinstance(a, str) else a.text for a in mono)
        if not mono:
            text = str(abs(c))
        elif abs(c) == 1:
            text = body
        else:
            text = f"{abs(c)}*{body}"
        parts.append(("-" if c < 0 else "+", text))
    first_sign, first = parts[0]
    out = ("-" if first_sign == "-" else "") + first
    compact = len(parts) <= 2 and all(len(t) <= 12 for _, t in parts)
    for sign, text in parts[1:]:
        out += f"{sign}{text}" if compact else f" {sign} {text}"
    return out


_LOG: ContextVar[list[Guard] | None] = ContextVar("netspec_guards", default=None)


@contextmanager
def guarded() -> Iterator[list[Guard]]:
    """Collect the guards recorded while the block runs (into the list it yields)."""
    log: list[Guard] = []
    token = _LOG.set(log)
    try:
        yield log
    finally:
        _LOG.reset(token)


def guards_log() -> list[Guard] | None:
    """The list `guarded()` is collecting into, if any."""
    return _LOG.get()


def _record(poly: Poly, relation: Relation) -> None:
    log = _LOG.get()
    if log is not None:
        log.append(Guard(poly, relation))


Number = Union[int, "Sym"]


class Sym:
    """A size that depends on named input sizes (see the module docstring): arithmetic
    with ints and other Syms, floor division and remainder by ints; comparisons answer as
    the hint does and record a guard."""

    __slots__ = ("hint", "poly")

    def __init__(self, poly: Poly, hint: int):
        self.poly = poly
        self.hint = hint

    @staticmethod
    def named(name: str, hint: int) -> Sym:
        return Sym(Poly.var(name), hint)

    @staticmethod
    def of(poly: Poly, hint: int) -> Number:
        c = poly.constant()
        return c if c is not None else Sym(poly, hint)

    def _fix(self) -> int:
        """The hint as a plain int, guarded `self == hint` (the size is fixed from here)."""
        _record(self.poly.plus(-self.hint), "eq")
        return self.hint

    # arithmetic ----------------------------------------------------------------------

    def __add__(self, other: Any) -> Any:
        if isinstance(other, Sym):
            return Sym.of(self.poly + other.poly, self.hint + other.hint)
        if isinstance(other, int):
            return Sym.of(self.poly.plus(other), self.hint + other)
        return self._fix() + other if isinstance(other, float) else NotImplemented

    __radd__ = __add__

    def __neg__(self) -> Sym:
        return Sym(self.poly.scaled(-1), -self.hint)

    def __pos__(self) -> Sym:
        return self

    def __sub__(self, other: Any) -> Any:
        if isinstance(other, Sym):
            return Sym.of(self.poly - other.poly, self.hint - other.hint)
        if isinstance(other, int):
            return Sym.of(self.poly.plus(-other), self.hint - other)
        return self._fix() - other if isinstance(other, float) else NotImplemented

    def __rsub__(self, other: Any) -> Any:
        return (-self) + other

    def __mul__(self, other: Any) -> Any:
        if isinstance(other, Sym):
            return Sym.of(self.poly * other.poly, self.hint * other.hint)
        if isinstance(other, int):
            return Sym.of(self.poly.scaled(other), self.hint * other)
        return self._fix() * other if isinstance(other, float) else NotImplemented

    __rmul__ = __mul__

    def __floordiv__(self, other: Any) -> Any:
        if isinstance(other, Sym):
            other = other._fix()
        if isinstance(other, int) and other > 0:
            return Sym.of(self.poly.floordiv(other), self.hint // other)
        return self._fix() // other

    def __rfloordiv__(self, other: Any) -> Any:
        return other // self._fix()

    def __mod__(self, other: Any) -> Any:
        if isinstance(other, Sym):
            other = other._fix()
        if isinstance(other, int) and other > 0:
            return self - (self // other) * other
        return self._fix() % other

    def __rmod__(self, other: Any) -> Any:
        return other % self._fix()

    def __divmod__(self, other: Any) -> tuple[Any, Any]:
        return self // other, self % other

    def __truediv__(self, other: Any) -> Any:
        return self._fix() / other

    def __rtruediv__(self, other: Any) -> Any:
        return other / self._fix()

    def __pow__(self, other: Any) -> Any:
        if isinstance(other, int) and 0 <= other <= 4:
            return math.prod([self] * other) if other else 1
        return self._fix() ** other

    def __abs__(self) -> Any:
        return self if self >= 0 else -self

    def __int__(self) -> int:
        return self._fix()

    __index__ = __int__

    def __float__(self) -> float:
        return float(self._fix())

    def __round__(self, ndigits: int | None = None) -> int:
        return self._fix()

    # comparisons ---------------------------------------------------------------------

    def _diff(self, other: Any) -> Poly | None:
        if isinstance(other, Sym):
            return self.poly - other.poly
        if isinstance(other, int):
            return self.poly.plus(-other)
        return None

    def _hint_of(self, other: Any) -> int:
        return other.hint if isinstance(other, Sym) else other

    def __eq__(self, other: object) -> bool:
        diff = self._diff(other)
        if diff is None:
            return NotImplemented
        c = diff.constant()
        if c is not None:
            return c == 0
        equal = self.hint == self._hint_of(other)
        _record(diff, "eq" if equal else "ne")
        return equal

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def _at_least(self, diff: Poly, hint_diff: int, threshold: int) -> bool:
        """Whether `diff >= threshold`, recorded as a guard."""
        c = diff.constant()
        if c is not None:
            return c >= threshold
        holds = hint_diff >= threshold
        _record(diff.plus(-threshold) if holds else diff.scaled(-1).plus(threshold - 1), "ge")
        return holds

    def __ge__(self, other: Any) -> bool:
        diff = self._diff(other)
        if diff is None:
            return NotImplemented
        return self._at_least(diff, self.hint - self._hint_of(other), 0)

    def __gt__(self, other: Any) -> bool:
        diff = self._diff(other)
        if diff is None:
            return NotImplemented
        return self._at_least(diff, self.hint - self._hint_of(other), 1)

    def __le__(self, other: Any) -> bool:
        diff = self._diff(other)
        if diff is None:
            return NotImplemented
        return self._at_least(diff.scaled(-1), self._hint_of(other) - self.hint, 0)

    def __lt__(self, other: Any) -> bool:
        diff = self._diff(other)
        if diff is None:
            return NotImplemented
        return self._at_least(diff.scaled(-1), self._hint_of(other) - self.hint, 1)

    def __bool__(self) -> bool:
        return self != 0

    def __hash__(self) -> int:
        return hash(self.poly)

    def __str__(self) -> str:
        return str(self.poly)

    def __repr__(self) -> str:
        return f"Sym({self.poly}, hint={self.hint})"

    def __format__(self, spec: str) -> str:
        return str(self.poly)


def concrete(value: Any) -> Any:
    """`value` with every Sym fixed to its hint (guarded), through lists and mappings:
    for code that needs plain numbers (a layer's arguments computed from shapes)."""
    if isinstance(value, Sym):
        return int(value)
    if isinstance(value, list | tuple):
        return type(value)(concrete(v) for v in value)
    if isinstance(value, dict):
        return {k: concrete(v) for k, v in value.items()}
    return value
