"""Sets of sizes (positive integers) that repeat with a period: what a network accepts.

A `SizeSet` is exact and closed under union, intersection and difference: with period L,
it holds for each residue r mod L a list of intervals of the sizes that are r mod L. Every
set netspec derives from shape rules has this form (floors of affine maps repeat), and it
describes itself as people read it: "188 and every 16th size above it".
"""

from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import dataclass
from typing import Any

from netspec.symbolic import Guard, Unsupported

PERIOD_LIMIT = 1 << 16
"""The longest period netspec follows (a net with strides 2, 3, 5 and 7 in a row has 210);
past it a set is Unsupported and sizes are checked one by one instead."""

DESCRIBED_PERIOD = 64
"""The longest period a finite set is described with (`SizeSet.simplest`)."""
IRREGULAR_SHOWN = 32
"""Members off the pattern that a description lists (it counts them all)."""

Interval = tuple[int, int | None]
"""`(lo, hi)`: the sizes lo, lo + L, ..., hi of one residue class (hi None: no end)."""


def _up(value: int, r: int, period: int) -> int:
    """The least size >= value that is r mod period."""
    return value + (r - value) % period


def _down(value: int, r: int, period: int) -> int:
    """The largest size <= value that is r mod period."""
    return value - (value - r) % period


def _merge(intervals: list[Interval], period: int) -> tuple[Interval, ...]:
    """Sorted, overlapping or touching intervals of one class joined."""
    out: list[list[Any]] = []
    for lo, hi in sorted(intervals, key=lambda i: i[0]):
        if out and (out[-1][1] is None or lo <= out[-1][1] + period):
            if out[-1][1] is not None and (hi is None or hi > out[-1][1]):
                out[-1][1] = hi
            continue
        out.append([lo, hi])
    return tuple((lo, hi) for lo, hi in out)


def _intersect(a: tuple[Interval, ...], b: tuple[Interval, ...]) -> tuple[Interval, ...]:
    out = []
    for lo1, hi1 in a:
        for lo2, hi2 in b:
            lo = max(lo1, lo2)
            hi = hi2 if hi1 is None else hi1 if hi2 is None else min(hi1, hi2)
            if hi is None or lo <= hi:
                out.append((lo, hi))
    return tuple(out)


def _complement(parts: tuple[Interval, ...], r: int, period: int) -> tuple[Interval, ...]:
    """The sizes of class r (from its least positive member) outside `parts`."""
    out: list[Interval] = []
    start: int | None = _up(1, r, period)
    for lo, hi in parts:
        if start is not None and lo > start:
            out.append((start, lo - period))
        start = None if hi is None else hi + period
    if start is not None:
        out.append((start, None))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class SizeSet:
    """Positive integers, as `parts[r]`: intervals of the sizes that are r mod `period`."""

    period: int
    parts: tuple[tuple[Interval, ...], ...]

    @staticmethod
    def every() -> SizeSet:
        return SizeSet(1, (((1, None),),))

    @staticmethod
    def empty() -> SizeSet:
        return SizeSet(1, ((),))

    @staticmethod
    def upto(size: int) -> SizeSet:
        """The sizes 1 to `size`."""
        return SizeSet(1, (((1, size),) if size >= 1 else (),))

    @staticmethod
    def of(sizes: list[int]) -> SizeSet:
        """A finite set."""
        return SizeSet(1, (_merge([(s, s) for s in sizes if s >= 1], 1),))

    def lifted(self, period: int) -> tuple[tuple[Interval, ...], ...]:
        """The same set described with a period that is a multiple of this one's."""
        if period == self.period:
            return self.parts
        if period > PERIOD_LIMIT:
            raise Unsupported(f"the sizes repeat only every {period:,} (more than "
                              f"{PERIOD_LIMIT:,} netspec follows)")
        out = []
        for r in range(period):
            mine = []
            for lo, hi in self.parts[r % self.period]:
                lo2 = _up(lo, r, period)
                hi2 = None if hi is None else _down(hi, r, period)
                if hi2 is None or lo2 <= hi2:
                    mine.append((lo2, hi2))
            out.append(_merge(mine, period))
        return tuple(out)

    def _combine(self, other: SizeSet, how: str) -> SizeSet:
        period = math.lcm(self.period, other.period)
        a, b = self.lifted(period), other.lifted(period)
        parts = []
        for r in range(period):
            if how == "and":
                parts.append(_merge(list(_intersect(a[r], b[r])), period))
            elif how == "or":
                parts.append(_merge([*a[r], *b[r]], period))
            else:
                parts.append(_merge(list(_intersect(a[r], _complement(b[r], r, period))), period))
        return SizeSet(period, tuple(parts))

    def __and__(self, other: SizeSet) -> SizeSet:
        return self._combine(other, "and")

    def __or__(self, other: SizeSet) -> SizeSet:
        return self._combine(other, "or")

    def __sub__(self, other: SizeSet) -> SizeSet:
        return self._combine(other, "minus")

    def reduced(self) -> SizeSet:
        """The same set with the shortest period that describes it."""
        for p in sorted(d for d in range(1, self.period) if self.period % d == 0):
            candidate = SizeSet(p, tuple(
                _merge([i for r in range(s, self.period, p) for i in self.parts[r]], p)
                for s in range(p)))
            if candidate.lifted(self.period) == self.parts:
                return candidate
        return self

    def __bool__(self) -> bool:
        return any(self.parts)

    def __contains__(self, size: int) -> bool:
        return any(lo <= size and (hi is None or size <= hi)
                   for lo, hi in self.parts[size % self.period])

    def min(self) -> int | None:
        return min((p[0][0] for p in self.parts if p), default=None)

    def max(self) -> int | None:
        """The largest member; None when empty or endless."""
        ends = [p[-1][1] for p in self.parts if p]
        return None if not ends or None in ends else max(ends)  # type: ignore[type-var]

    def members(self, upto: int, most: int | None = None) -> list[int]:
        """The members up to `upto` in order, the first `most` of them."""
        runs = [range(lo, (upto if hi is None else min(hi, upto)) + 1, self.period)
                for part in self.parts for lo, hi in part]
        return list(itertools.islice(heapq.merge(*runs), most))

    def count(self, upto: int) -> int:
        """How many members are at most `upto`."""
        return sum(len(range(lo, (upto if hi is None else min(hi, upto)) + 1, self.period))
                   for part in self.parts for lo, hi in part)

    def below(self, size: int) -> int | None:
        """The largest member below `size`."""
        best = None
        for part in self.parts:
            for lo, hi in part:
                if lo < size:
                    top = size - 1 if hi is None else min(hi, size - 1)
                    value = _down(top, lo % self.period, self.period)
                    best = value if best is None or value > best else best
        return best

    def above(self, size: int) -> int | None:
        """The least member above `size`."""
        best = None
        for part in self.parts:
            for lo, hi in part:
                if hi is None or hi > size:
                    value = max(lo, _up(size + 1, lo % self.period, self.period))
                    best = value if best is None or value < best else best
        return best

    def simplest(self) -> SizeSet:
        """The same set with the period (up to DESCRIBED_PERIOD) that gives the fewest runs:
        {2, 4, ..., 124} is one run of period 2, though 62 of period 1."""
        best, runs = self, sum(map(len, self.parts))
        for p in range(self.period * 2, DESCRIBED_PERIOD + 1, self.period):
            lifted = self.lifted(p)
            if sum(map(len, lifted)) < runs:
                best, runs = SizeSet(p, lifted), sum(map(len, lifted))
        return best

    def describe(self) -> dict[str, Any]:
        """The closed form. From `regular` on, the members are the sizes up to `max` (None:
        no end) that are `min + offset` mod `period` for one of the `offsets`; `irregular`
        lists the members below `regular` (a finite head off the pattern)."""
        if self.max() is not None and sum(map(len, self.parts)) > 1:
            simplest = self.simplest()
            if simplest is not self:
                return simplest.describe()
        low, high = self.min(), self.max()
        if low is None:
            return {"min": None, "max": None, "period": 1, "offsets": [], "regular": None,
                    "irregular": [], "irregular_count": 0}
        top = None if high is None else high - self.period + 1
        pattern = {r for r, p in enumerate(self.parts)
                   if p and (p[-1][1] is None or (top is not None and p[-1][1] >= top))}
        regular = low
        for r, part in enumerate(self.parts):
            if r in pattern:  # the gap before the class' last run is off the pattern
                regular = max(regular, part[-1][0] - self.period + 1)
            elif part:  # a class off the pattern lies wholly below `regular`
                regular = max(regular, part[-1][1] + 1)  # type: ignore[operator]
        offsets = {(r - low) % self.period for r in pattern}
        period = min(p for p in range(1, self.period + 1) if self.period % p == 0
                     and {o % p for o in offsets} == {o for o in offsets if o < p}
                     and len(offsets) == len({o % p for o in offsets}) * (self.period // p))
        return {"min": low, "max": high, "period": period,
                "offsets": sorted(o for o in offsets if o < period), "regular": regular,
                "irregular": self.members(regular - 1, IRREGULAR_SHOWN),
                "irregular_count": self.count(regular - 1)}


def solve(guard: Guard, name: str) -> SizeSet:
    """The sizes of `name` (every other name fixed) for which `guard` holds.

    Along each residue class `x = r + k*P` of a period P of its atoms, the guard's
    polynomial is an ordinary polynomial in k (floors are affine there), of degree 2 at
    most here (a size times a size: attention's weights at a width); where it is >= 0,
    == 0 or != 0 is read off its real roots, checked exactly at the integers around them."""
    poly, relation = guard
    if poly.names() - {name}:
        raise Unsupported(f"`{poly}` depends on more than one size")
    if poly.degree() > 2:
        raise Unsupported(f"`{poly}` is of degree {poly.degree()} in the size")
    period = poly.period()
    if period > PERIOD_LIMIT:
        raise Unsupported(f"`{poly}` repeats only every {period:,}")
    parts = []
    affine = poly.degree() <= 1
    step = int(poly.linear()[0] * period) if affine else 0  # along a class: q(k) = q0 + step*k
    for r in range(period):
        base = r or period
        q0 = poly.value({name: base})
        values = [q0, q0 + step, q0 + 2 * step] if affine else \
            [q0, *(poly.value({name: base + k * period}) for k in (1, 2))]
        ks = _holds(values, relation)
        parts.append(tuple((base + lo * period, None if hi is None else base + hi * period)
                           for lo, hi in ks))
    return SizeSet(period, tuple(parts)).reduced()


def _holds(values: list[int], relation: str) -> list[tuple[int, int | None]]:
    """The k >= 0 where q(k) >= 0 (== 0, != 0), for the polynomial q of degree <= 2 with
    q(0), q(1), q(2) = `values`, as intervals (hi None: no end)."""
    q0, q1, q2 = values
    a2, a1, a0 = q2 - 2 * q1 + q0, 4 * q1 - q2 - 3 * q0, 2 * q0  # 2q(k) = a2 k^2 + a1 k + a0
    if a2 == 0:
        return _holds_affine(q0, q1 - q0, relation)

    def q(k: int) -> int:
        return a2 * k * k + a1 * k + a0

    cuts = {0}
    for root in _roots(a2, a1, a0):
        if root > -2:
            base = math.floor(root)
            cuts |= {max(0, c) for c in range(base - 1, base + 3)}
    starts = sorted(cuts)
    test = {"ge": lambda v: v >= 0, "eq": lambda v: v == 0, "ne": lambda v: v != 0}[relation]
    out: list[tuple[int, int | None]] = []
    for i, lo in enumerate(starts):
        # Every real root lies between two cuts one apart: a longer segment holds none,
        # so q keeps the sign of its first integer throughout.
        hi = starts[i + 1] - 1 if i + 1 < len(starts) else None
        if test(q(lo)):
            if out and out[-1][1] == lo - 1:
                out[-1] = (out[-1][0], hi)
            else:
                out.append((lo, hi))
    return out


def _holds_affine(q0: int, step: int, relation: str) -> list[tuple[int, int | None]]:
    """`_holds` for q(k) = q0 + step*k, in closed form."""
    if step == 0:
        holds = {"ge": q0 >= 0, "eq": q0 == 0, "ne": q0 != 0}[relation]
        return [(0, None)] if holds else []
    if relation == "ge":
        if step > 0:
            return [(max(0, -(q0 // step)), None)]  # k >= ceil(-q0 / step)
        return [(0, q0 // -step)] if q0 >= 0 else []
    k, rest = divmod(-q0, step)
    zero = k if rest == 0 and k >= 0 else None
    if relation == "eq":
        return [(zero, zero)] if zero is not None else []
    if zero is None:
        return [(0, None)]
    return [*([(0, zero - 1)] if zero > 0 else []), (zero + 1, None)]


def _roots(a: int, b: int, c: int) -> list[float]:
    """The real roots of a*k^2 + b*k + c (approximately: the callers check around them)."""
    if a == 0:
        return [] if b == 0 else [-c / b]
    disc = b * b - 4 * a * c
    if disc < 0:
        return []
    root = math.isqrt(disc)
    return [(-b - root) / (2 * a), (-b + root) / (2 * a)]
