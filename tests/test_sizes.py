"""Valid input sizes in closed form (netspec.sizes), proved against brute force.

Every claim `netspec.sizes` makes (this size works, this one reads every row, these are the
output shapes and MACs) is checked size by size: by the concrete per-layer pass for every
size up to 1,024, by `netspec.check` itself on a sample, and by torch on a few. The set
algebra and the symbolic arithmetic under it are checked against plain Python sets and ints.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import strategies
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import netspec
from netspec import sizes
from netspec.errors import SpecError
from netspec.sizeset import SizeSet, solve
from netspec.symbolic import Guard, Sym, guarded

ZOO = sorted(Path(__file__).parent.parent.glob("specs/*.yaml"))
UPTO = 1024


# -- the set algebra -------------------------------------------------------------------

def random_set(rng: random.Random) -> SizeSet:
    """A SizeSet with a random period and random intervals per residue class."""
    period = rng.choice([1, 2, 3, 4, 6, 8])
    parts = []
    for r in range(period):
        points = sorted(rng.sample(range(1, 200), rng.choice([0, 2, 4])))
        runs = []
        for lo, hi in zip(points[::2], points[1::2], strict=True):
            lo += (r - lo) % period
            hi -= (hi - r) % period
            if lo <= hi:
                runs.append((lo, hi))
        if rng.random() < 0.4:
            start = 250 + (r - 250) % period
            runs.append((start, None))
        parts.append(tuple(runs))
    return SizeSet(period, tuple(parts))


def members(s: SizeSet, upto: int = 400) -> set[int]:
    return {n for n in range(1, upto + 1) if n in s}


def from_description(d: dict, n: int) -> bool:
    """Membership by `describe()`'s closed form, read as its docstring says."""
    if d["min"] is None:
        return False
    if n < d["regular"]:
        return n in d["irregular"]
    return (n >= d["min"] and (d["max"] is None or n <= d["max"])
            and (n - d["min"]) % d["period"] in d["offsets"])


@pytest.mark.parametrize("seed", range(40))
def test_set_algebra_is_python_set_algebra(seed):
    rng = random.Random(seed)
    a, b = random_set(rng), random_set(rng)
    ma, mb = members(a), members(b)
    assert members(a & b) == ma & mb
    assert members(a | b) == ma | mb
    assert members(a - b) == ma - mb
    assert members(a.reduced()) == ma
    for s, m in ((a, ma), (a - b, ma - mb)):
        assert s.min() == (min(m) if m else None)
        assert s.count(300) == len([n for n in m if n <= 300])
        assert s.members(300, 5) == sorted(n for n in m if n <= 300)[:5]
        d = s.describe()
        if d["irregular_count"] <= len(d["irregular"]):
            assert {n for n in range(1, 401) if from_description(d, n)} == m
        for probe in (1, 57, 199, 251, 300):
            below = [n for n in m if n < probe]
            above = [n for n in m if n > probe]
            assert s.below(probe) == (max(below) if below else None)
            if above:
                assert s.above(probe) == min(above)


# -- symbolic arithmetic ----------------------------------------------------------------

STEPS = [("add", lambda v, k: v + k), ("sub", lambda v, k: v - k),
         ("mul", lambda v, k: v * k), ("floordiv", lambda v, k: v // k),
         ("mod", lambda v, k: v % k)]


@st.composite
def expressions(draw):
    """A chain of the arithmetic shape rules do: + - * // % by small ints, and a sum with
    the input (a skip connection) now and then."""
    chain = []
    for _ in range(draw(st.integers(1, 6))):
        name = draw(st.sampled_from([s[0] for s in STEPS] + ["skip"]))
        k = draw(st.integers(1, 5)) if name in ("floordiv", "mod", "mul") else \
            draw(st.integers(-6, 6))
        chain.append((name, k))
    return chain


def apply(chain, x, base):
    value = x
    for name, k in chain:
        value = value + base if name == "skip" else dict(STEPS)[name](value, k)
    return value


@settings(max_examples=150, deadline=None)
@given(expressions())
def test_symbolic_values_equal_int_values(chain):
    h = Sym.named("H", 10)
    expr = apply(chain, h, h)
    for n in range(-40, 120):
        want = apply(chain, n, n)
        got = expr.poly.value({"H": n}) if isinstance(expr, Sym) else expr
        assert got == want, (str(expr), n)
    if isinstance(expr, Sym):
        slope, period = expr.poly.linear()
        for n in range(-20, 60):
            assert expr.poly.value({"H": n + period}) == \
                expr.poly.value({"H": n}) + slope * period


@settings(max_examples=150, deadline=None)
@given(expressions(), st.integers(-30, 30), st.sampled_from(["ge", "eq", "ne"]))
def test_solving_a_guard_is_trying_every_size(chain, shift, relation):
    assert_solved(apply(chain, Sym.named("H", 10), Sym.named("H", 10)) + shift, relation)


def assert_solved(expr, relation):
    """`solve` of `expr relation 0` holds at exactly the sizes 1..299 where it does."""
    if not isinstance(expr, Sym):
        return
    holds = {"ge": lambda v: v >= 0, "eq": lambda v: v == 0, "ne": lambda v: v != 0}[relation]
    solved = solve(Guard(expr.poly, relation), "H")
    for n in range(1, 300):
        assert (n in solved) == holds(expr.poly.value({"H": n})), (str(expr), relation, n)


def test_a_comparison_answers_as_its_hint_and_records_why():
    h = Sym.named("H", 50)
    with guarded() as guards:
        assert (h // 2 - 3 >= 1) is True
        assert (h % 2 == 1) is False
        assert (h - 50 == 0) is True
    regions = [solve(g, "H") for g in guards]
    assert [50 in r for r in regions] == [True, True, True]
    assert 7 not in regions[0] and 8 in regions[0]   # H // 2 - 3 >= 1 from 8
    assert 51 not in regions[1] and 52 in regions[1]  # even sizes
    assert members(regions[2]) == {50}


def test_floors_of_floors_fold():
    h = Sym.named("H", 100)
    assert str(((h - 4) // 2 - 4) // 2) == "floor(H/4)-3"
    assert ((h + 2 - 3) // 2 + 1) == ((h - 1) // 2 + 1)   # same rule, one formula
    assert str((h + 1) // 2) == "floor((H+1)/2)"


# -- networks: the closed form against every size ----------------------------------------

def shapes_at(graph, places, size):
    """The input shapes (by name) with these dimensions set to `size`."""
    shapes = {n: list(graph.nodes[n].op.shape) for n in graph.inputs}
    for name, dim in places:
        shapes[name][dim] = size
    return {n: tuple(s) for n, s in shapes.items()}


def concrete(spec, graph, places, size):
    """The per-layer pass with a plain int size, expanding the spec again when a block
    reads a shape: (ok, reads every row, outputs, MACs, params)."""
    shapes = shapes_at(graph, places, size)
    if graph.shape_reads:
        try:
            graph = netspec.api.graph_for(spec, shapes)
        except SpecError:
            return False, False, None, None, None
    out = sizes.trace(graph, dict.fromkeys(places, size))
    if not out.ok:
        return False, False, None, None, None
    lossless = all(s >= 0 for _, s in out.slacks)
    return True, lossless, {o: out.shapes[o] for o in graph.outputs}, out.macs, out.params


def by_check(spec, graph, places, size):
    """What `netspec.check` says at this size: (ok, no row dropped, outputs, MACs, params)."""
    try:
        report = netspec.check(spec, shapes_at(graph, places, size))
    except SpecError:
        return False, False, None, None, None
    dropped = any(w.code == "floor-drops-input" for w in report.warnings)
    return True, not dropped, report.outputs, report.macs, report.params


def assert_sizes_hold(spec, upto=UPTO, sample=12, seed=0):
    """Every size 1..upto (or as far as the sizes were classified) agrees with the
    concrete pass; a sample (boundaries and random sizes) agrees with `check`."""
    graph = spec._graph
    rng = random.Random(seed)
    params = netspec.check(spec).params
    for found in sizes.of(spec, graph):
        top = min(upto, found.checked_up_to or upto)
        edges = {found.valid.min(), found.lossless.min(), found.valid.above(top // 2),
                 found.lossless.above(top // 2), found.valid.below(top // 2),
                 found.same_weights.min(), found.same_weights.max()}
        picks = {s for e in edges if e for s in (e - 1, e, e + 1)}
        picks |= {rng.randint(1, top) for _ in range(sample)}
        every = {size: concrete for size in range(1, top + 1)}
        every.update({size: by_check for size in picks if 1 <= size <= top})
        for size, oracle in every.items():
            ok, lossless, outputs, macs, held = oracle(spec, graph, found.places, size)
            assert (size in found.valid) == ok, (found.name, size)
            assert (size in found.lossless) == lossless, (found.name, size)
            assert (size in found.same_weights) == (ok and held == params), (found.name, size)
            if ok and found.regions:
                assert found.at(size) == (outputs, macs), (found.name, size)
        assert found.regions or found.checked_up_to  # no formulas: said to be one by one
        for size in found.valid.members(upto):  # above checked_up_to: those classified
            if size > top:
                assert concrete(spec, graph, found.places, size)[0], (found.name, size)


def test_unet_works_from_188_and_reads_every_row_every_16th():
    """The U-Net of Ronneberger et al.: going down, two unpadded 3x3 convs (c = h - 4) then
    a 2x2 pool (h = c // 2, reading every row when c is even), four times, and two convs at
    the bottom; going up, a 2x2 up-convolution doubles, the skip `c` of that level is
    cropped to it (so c >= 2u), and two convs take 4 again."""
    spec = netspec.load("specs/unet.yaml")
    out_name = spec._graph.outputs[0]
    found = {d.name: d for d in sizes.of(spec, spec._graph)}

    def unet(h):
        skips = []
        for _ in range(4):
            skips.append(h - 4)
            h = (h - 4) // 2
        u = h - 4
        fits = min(skips) >= 2 and u >= 1
        for c in reversed(skips):
            fits = fits and c >= 2 * u and 2 * u - 4 >= 1
            u = 2 * u - 4
        return fits, all(c % 2 == 0 for c in skips), u

    for axis, name in ((1, "H"), (2, "W")):
        d = found[name]
        for h in range(1, 700):
            works, even, out = unet(h)
            assert (h in d.valid) == works, h
            assert (h in d.lossless) == (works and even), h
            if works:
                assert d.at(h)[0][out_name][axis] == out
                assert out == h - 184 or not even
        assert d.valid.min() == 188 and d.lossless.min() == 188
        assert d.lossless.describe()["period"] == 16


@pytest.mark.parametrize("name", ["lenet5", "unet", "resnet18", "gpt_tiny", "vit_tiny"])
def test_sizes_hold_for_every_size(name):
    assert_sizes_hold(netspec.load(f"specs/{name}.yaml"), upto=256, sample=6)


@pytest.mark.slow
@pytest.mark.parametrize("path", ZOO, ids=[p.stem for p in ZOO])
def test_zoo_sizes_hold_for_every_size_to_1024(path):
    assert_sizes_hold(netspec.load(path))


def test_declared_size_is_classified_first():
    """The first pass runs at the declared size: its formulas hold there."""
    spec = netspec.load("specs/lenet5.yaml")
    for d in sizes.of(spec, spec._graph):
        assert 32 in d.valid and d.at(32)[0] == netspec.check(spec).outputs


# -- random networks: every op alone, chains and forks -----------------------------------

def random_settings(examples: int) -> settings:
    return settings(deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                    max_examples=examples)


@pytest.mark.parametrize("op", sorted(netspec.ops.OPS))
@random_settings(4)
@given(data=st.data())
def test_every_op_alone(op, data):
    case = data.draw(strategies.single_op_specs(op))
    assert_sizes_hold(netspec.load(case.spec), upto=96, sample=2)


@random_settings(15)
@given(st.one_of(strategies.chain_specs(), strategies.fork_specs()))
def test_random_networks(case):
    assert_sizes_hold(netspec.load(case.spec), upto=128, sample=3)


@pytest.mark.slow
@random_settings(300)
@given(st.one_of(strategies.chain_specs(), strategies.fork_specs()))
def test_random_networks_to_1024(case):
    assert_sizes_hold(netspec.load(case.spec), sample=6)


@settings(max_examples=150, deadline=None)
@given(expressions(), expressions(), st.integers(-3000, 3000),
       st.sampled_from(["ge", "eq", "ne"]))
def test_solving_a_quadratic_guard_is_trying_every_size(a, b, shift, relation):
    """A size times a size (attention's weights at a width): still solved exactly."""
    h = Sym.named("H", 10)
    assert_solved(apply(a, h, h) * apply(b, h, h) + shift, relation)


# -- torch confirms ----------------------------------------------------------------------

@pytest.mark.parametrize(("name", "params"), [("lenet5", {}), ("unet", {"width": 2}),
                                                ("resnet18", {"classes": 3})])
def test_torch_runs_exactly_the_sizes_said_to_work_with_its_weights(name, params):
    """The built model (its weights fixed by the declared size) runs a batch of each size
    near the boundaries iff the size works with those weights, with the output shapes the
    formulas give; every other size fails in torch."""
    torch = pytest.importorskip("torch")
    spec = netspec.load(f"specs/{name}.yaml", params=params)
    model = netspec.build(spec, seed=0).eval()
    declared = spec._graph.nodes["input"].op.shape
    found = sizes.of(spec, spec._graph)[0]  # the first spatial dim
    edges = {found.valid.min(), found.same_weights.min(), found.same_weights.max(),
             found.lossless.above(declared[1])}
    picks = sorted({s + k for s in edges if s and s < 2048 for k in (-1, 0, 1, 5)
                    if s + k >= 1})  # a few MB a batch (the largest sizes need 100s of GB)
    assert len(picks) >= 4
    for size in picks:
        x = torch.zeros(1, *declared[:1], size, *declared[2:])
        try:
            with torch.no_grad():
                y = model(x)
        except RuntimeError:
            y = None
        assert (y is not None) == (size in found.same_weights), size
        if y is not None:
            assert tuple(y.shape[1:]) == next(iter(found.at(size)[0].values())), size
