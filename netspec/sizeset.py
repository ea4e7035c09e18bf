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
from fractions import Fraction
from typing import Any

from netspec.symbolic import Guard, Unsupported

PERIOD_LIMIT = 1 << 16
"""The longest period netspec follows (a net with strides 2, 3, 5 and 7 in a row has 210);
past it a set is Unsupported and sizes are checked one by one instead."""

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
            out.append(tuple(mine))
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
        return SizeSet(period, tuple(parts)).reduced()

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

    def describe(self) -> dict[str, Any]:
        """The closed form. From `regular` on, the members are the sizes up to `max` (None:
        no end) that are `min + offset` mod `period` for one of the `offsets`; `irregular`
        lists the members below `regular` (a finite head off the pattern)."""
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
    """The sizes of `name` (every other name fixed) for which `guard` holds."""
    poly, relation = guard
    if poly.names() - {name}:
        raise Unsupported(f"`{poly}` depends on more than one size")
    slope, period = poly.linear()
    step = slope * period
    assert step.denominator == 1
    parts = []
    for r in range(period):
        base = r or period
        parts.append(_solve_class(poly.value({name: base}), int(step), base, period, relation))
    return SizeSet(period, tuple(parts)).reduced()


def _solve_class(v0: int, step: int, base: int, period: int, relation: str
                 ) -> tuple[Interval, ...]:
    """Which sizes `base + k*period` (k >= 0) satisfy the relation for the value
    `v0 + k*step`."""
    if relation == "ge":
        if step == 0:
            return ((base, None),) if v0 >= 0 else ()
        if step > 0:
            k = max(0, math.ceil(Fraction(-v0, step)))
            return ((base + k * period, None),)
        if v0 < 0:
            return ()
        return ((base, base + (v0 // -step) * period),)
    # eq / ne: the value is zero at most once along the class (or everywhere)
    if step == 0:
        zero = v0 == 0
        return ((base, None),) if zero == (relation == "eq") else ()
    k, rem = divmod(-v0, step)
    hit = base + k * period if rem == 0 and k >= 0 else None
    if relation == "eq":
        return ((hit, hit),) if hit is not None else ()
    if hit is None:
        return ((base, None),)
    head = ((base, hit - period),) if hit > base else ()
    return (*head, (hit + period, None))
