"""Which input sizes a network takes, in closed form: for each size of its inputs (one
dimension, or every dimension a spec calls by one name, the others as declared), the
sizes for which every layer works, those for which no layer drops input rows to floor
rounding, and those that keep the weights of the given size.

The layers' own shape rules run on a symbolic size (`netspec.symbolic.Sym`) with one
example value: the pass is exact wherever the guards it records hold, a periodic set of
sizes (`netspec.sizeset`). Starting from the declared size, each pass classifies a whole
region (it works there, with the same formulas, or fails at the same layer); the next
pass starts at the least size not yet classified, until every size is. A net whose
sizes netspec cannot follow in closed form (a period past `sizeset.PERIOD_LIMIT`, a
product of three sizes) is checked one size at a time up to `CHECKED_UP_TO` instead; one
that needs more than `PASSES` passes (a block that reads a size to make its layers) is
known up to the least size not yet classified. Either says how far it got.

Nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

from netspec import limits
from netspec.analysis import settle
from netspec.errors import Diagnostic, SpecError, Where
from netspec.ir import Graph
from netspec.ops import Input, Tensor
from netspec.shapes import Shape, dims_label
from netspec.sizeset import SizeSet, solve
from netspec.spec.document import Named, Spec
from netspec.spec.expand import Expander
from netspec.symbolic import Guard, Poly, Sym, Unsupported, guarded, guards_log

PASSES = 128
"""Symbolic passes per dimension at most; past it the sizes are checked one by one."""
CHECKED_UP_TO = 1024
"""How far sizes are checked one by one when no closed form is found."""


Regraph = Callable[[dict[str, Shape]], Graph]
"""Expands the spec again for other input shapes (raises SpecError when it does not)."""
Place = tuple[str, int]
"""A dimension of an input: (input name, dim index in its per-sample shape)."""


class Outcome(NamedTuple):
    """One pass at one size: whether every layer works, the shapes it inferred, per
    rounding window its slack, and the totals."""

    ok: bool
    shapes: dict[str, Shape]
    slacks: list[tuple[str, Any]]
    """(layer, slack) per rounded dim of each window (`shapes.floor_slack`; at least 0
    reads every row)."""
    macs: Any = 0
    params: Any = 0
    failed: str | None = None
    """The first layer that fails (None when all work, or the spec did not expand)."""
    costs: dict[str, tuple[Any, Any]] | None = None
    """Each layer's (params, MACs), when the pass works."""


@dataclass(frozen=True)
class Region:
    """Sizes at which the network works by the same formulas: its outputs' shapes and its
    multiply-accumulates, in the size's name (ints where they do not depend on it)."""

    sizes: SizeSet
    outputs: dict[str, Shape]
    macs: Any


@dataclass(frozen=True)
class DimSizes:
    """The sizes one input size takes, named `name` in formulas: the size of dimension
    `dim` of input `input`, and of every other place the spec names alike (`places`;
    the inputs' other dimensions as given)."""

    places: tuple[Place, ...]
    name: str
    valid: SizeSet
    lossless: SizeSet
    same_weights: SizeSet
    """The sizes that work with the parameters of the given size: those a built (or
    trained) model takes as it is."""
    given: int = 0
    """The size the input has (as declared, or as `--input` gives it)."""
    verdict: str = ""
    """What happens at `given`: works, or where it fails or drops rows, with the nearest
    sizes that do not."""
    regions: tuple[Region, ...] = ()
    checked_up_to: int | None = None
    """When the sizes were not all classified, the largest size up to which all were
    (above it, the sets hold the sizes classified so far); None when every size was."""

    @property
    def input(self) -> str:
        return self.places[0][0]

    @property
    def dim(self) -> int:
        return self.places[0][1]

    def at(self, size: int) -> tuple[dict[str, tuple[int, ...]], int] | None:
        """The output shapes and MACs at `size` by the formulas; None where it fails."""
        for region in self.regions:
            if size in region.sizes:
                at = {self.name: size}
                return ({o: tuple(_value(d, at) for d in shape)
                         for o, shape in region.outputs.items()}, _value(region.macs, at))
        return None

    def nearest(self, size: int, lossless: bool) -> tuple[int | None, int | None]:
        """The nearest sizes below and above `size` that work (or read every row)."""
        chosen = self.lossless if lossless else self.valid
        return chosen.below(size), chosen.above(size)

    def to_json(self) -> dict[str, Any]:
        return {"input": self.input, "dim": self.dim + 1, "name": self.name,
                "places": [{"input": i, "dim": d + 1} for i, d in self.places],
                "given": self.given, "given_works": self.given in self.valid,
                "given_reads_every_row": self.given in self.lossless,
                "nearest_working": list(self.nearest(self.given, False)),
                "nearest_reading_every_row": list(self.nearest(self.given, True)),
                "checked_up_to": self.checked_up_to,
                "valid": self.valid.describe(), "lossless": self.lossless.describe(),
                "same_weights": self.same_weights.describe(),
                "formulas": [{"sizes": r.sizes.describe(),
                              "outputs": {o: [str(d) for d in shape]
                                          for o, shape in r.outputs.items()},
                              "macs": str(r.macs)} for r in self.regions]}


def lines(found: list[DimSizes]) -> list[str]:
    """The section `netspec check --sizes` prints: per dimension, the sizes that work and
    those that read every row, and for the size the input has, what fails or drops and
    the nearest sizes that do not."""
    out = ["input sizes (each dimension alone, the others as given):"]
    for d in found:
        known = "" if d.checked_up_to is None else f" (checked up to {d.checked_up_to:,})"
        out.append(f"  {d.name:<4} works: {words(d.valid.describe(), d.name)}{known}")
        out.append(f"  {'':<4} reads every row: {words(d.lossless.describe(), d.name)}")
        out.append(f"  {'':<4} with the weights of {d.given:,}: "
                   f"{words(d.same_weights.describe(), d.name)}")
        out.append(f"  {'':<4} {d.name} = {d.given:,}: {d.verdict}")
    return out


def summary(found: list[DimSizes]) -> str:
    """The sizes that work, in one line: dimensions that take the same sizes together
    (`H, W: every size from 188, up to 42,987`)."""
    groups: dict[str, list[str]] = {}
    for d in found:
        groups.setdefault(words(d.valid.describe(), "size"), []).append(d.name)
    return "; ".join(f"{', '.join(names)}: {text}" for text, names in groups.items())


def _verdict(d: DimSizes, graph: Graph, size: int) -> str:
    """What happens at `size`, with the nearest better sizes when it fails or drops rows."""
    if size in d.lossless:
        return "works, reads every row"
    outcome = trace(graph, dict.fromkeys(d.places, size))
    if size in d.valid:
        layer, slack = next(((n, s) for n, s in outcome.slacks if s < 0), ("", 0))
        what = f"drops {-slack} row{'s' if slack != -1 else ''} at `{layer}`"
        if not d.lossless:
            return f"{what}; no {d.name} reads every row while the other sizes stay"
        return f"{what}; nearest that read every row: {_pair(d.nearest(size, True))}"
    where = f" at `{outcome.failed}`" if outcome.failed else ""
    nearest = d.nearest(size, False)
    if nearest == (None, None):
        return f"fails{where}; no {d.name} works while the other sizes stay"
    return f"fails{where}; nearest that work: {_pair(nearest)}"


def _pair(sizes: tuple[int | None, int | None]) -> str:
    shown = [f"{s:,}" for s in sizes if s is not None]
    return ", ".join(shown) if shown else "none"


def words(d: dict[str, Any], name: str) -> str:
    """A `SizeSet.describe()` as people say it: `every H from 188`, `H = 188 + 16k`."""
    if d["min"] is None:
        return "none"
    parts = []
    if d["irregular_count"]:
        more = d["irregular_count"] - len(d["irregular"])
        parts.append(", ".join(f"{s:,}" for s in d["irregular"]) + (f" (and {more:,} more)"
                                                                      if more else ""))
    low, period = d["regular"], d["period"]
    firsts = sorted(low + (d["min"] + o - low) % period for o in d["offsets"])
    if d["max"] is not None and (not firsts or firsts[0] > d["max"]):
        pass
    elif firsts[0] == d["max"]:
        parts.append(f"{firsts[0]:,}")
        return "; and ".join(parts)
    elif period == 1:
        parts.append(f"every {name}" if low == 1 and d["max"] is None else
                     f"every {name} from {low:,}")
    else:
        start = f"{firsts[0]:,}" if len(firsts) == 1 else \
            "{" + ", ".join(f"{f:,}" for f in firsts) + "}"
        parts.append(f"{name} = {start} + {period}k")
    text = "; and ".join(parts) if parts else "none"
    return text + (f", up to {d['max']:,}" if d["max"] is not None else "")


def _value(d: Any, at: dict[str, int]) -> int:
    return d.poly.value(at) if isinstance(d, Sym) else d


def of(spec: Spec, graph: Graph, inputs: Mapping[str, Shape] | None = None) -> list[DimSizes]:
    """The sizes of `spec` expanded as `graph`, around the input shapes `inputs` (by name;
    the declared ones by default): one for each size the spec names (`input: [3, H, W]`),
    then one for each other dimension worth one (`dims_of`)."""
    graph = with_inputs(graph, inputs or {})
    regraph = _regraph(spec)
    named = spec.size_places()
    covered = {p for places in named.values() for p in places}
    wanted = [(tuple(places), name) for name, places in named.items()]
    wanted += [(((i, d),), var) for i, d, var in dims_of(graph) if (i, d) not in covered]
    found = [explore(graph, places, var, regraph) for places, var in wanted]
    return [replace(d, given=(given := _input_shape(graph, d.input)[d.dim]),
                    verdict=_verdict(d, graph, given)) for d in found]


@dataclass(frozen=True)
class Formulas:
    """Every layer's output shape, parameters and MACs in the sizes a spec names, as they
    are at its `examples` (and wherever the same formulas hold: the region of each size
    around its example in `netspec.sizes.of`)."""

    examples: dict[str, int]
    inputs: dict[str, Shape]
    layers: dict[str, tuple[Shape, Any, Any]]
    """Layer name -> (shape, params, MACs)."""
    training_only: frozenset[str] = frozenset()
    """The layers run in training only, whose MACs `macs` leaves out (`Report.macs`)."""

    @property
    def params(self) -> Any:
        return sum(p for _, p, _ in self.layers.values())

    @property
    def macs(self) -> Any:
        return sum(m for n, (_, _, m) in self.layers.items() if n not in self.training_only)

    def to_json(self) -> dict[str, Any]:
        return {"examples": self.examples, "params": str(self.params), "macs": str(self.macs),
                "inputs": {n: [str(d) for d in shape] for n, shape in self.inputs.items()},
                "layers": {n: {"shape": [str(d) for d in shape], "params": str(p),
                               "macs": str(m)} for n, (shape, p, m) in self.layers.items()}}


def formulas(spec: Spec, graph: Graph) -> Formulas | None:
    """The formulas of `graph`, the spec expanded at the examples of the sizes it names
    (None when it names none, or fails there)."""
    examples = {n: spec.input_shapes()[p[0][0]][p[0][1]] for n, p in spec.size_places().items()}
    if not examples:
        return None
    at = {place: Sym.named(name, examples[name])
          for name, places in spec.size_places().items() for place in places}
    with guarded():
        outcome = trace(graph, at)
    if not outcome.ok or outcome.costs is None:
        return None
    return Formulas(examples, {n: outcome.shapes[n] for n in graph.inputs},
                    {n: (outcome.shapes[n], *outcome.costs[n])
                     for n in outcome.costs if n not in graph.inputs},
                    frozenset(graph.training_only()))


def choose_examples(spec: Spec) -> list[Diagnostic]:
    """Give each size the spec names without an example (`input: [3, H, W]`) one: the
    least size in its range that works and reads every row (else that works). First all
    such sizes together (an image's H and W are mostly alike), then each alone with the
    others at theirs. `spec._graph` is expanded for them. The error, at the size's first
    place, when no size in its range works."""
    regraph = _regraph(spec)
    unset = {n: d for n, d in spec.sizes().items() if d.example is None}
    places = spec.size_places()
    for name, named in unset.items():
        if named.high is not None and named.high < named.low:
            return [Diagnostic(_where(spec, places[name][0]), "", f"the range "
                               f"{named.low}..{named.high} of {name} holds no size",
                               "write the least size first", code="bad-range")]
    steps = [list(unset)] if len(unset) > 1 else []
    for names in [*steps, *([n] for n in unset)]:
        found = explore(spec._graph, tuple(p for n in names for p in places[n]),
                        ", ".join(names), regraph)
        span = SizeSet.every()
        for n in names:
            span &= _span(unset[n])
        pick = (found.lossless & span).min() or (found.valid & span).min()
        if pick is None and len(names) > 1 and not found.valid:
            continue  # none alike: alone, each may still find one
        if pick is None:
            bounds = ", ".join(f"{n} in {unset[n].low}..{unset[n].high or ''}" for n in names)
            known = "" if found.checked_up_to is None else \
                f" (checked up to {found.checked_up_to:,})"
            alike = " alike" if len(names) > 1 else ""
            return [Diagnostic(_where(spec, places[names[0]][0]), "", f"no size {bounds} "
                               f"works{known}", f"the sizes that do{alike}: "
                               f"{words(found.valid.describe(), found.name)}", code="shape")]
        spec._examples.update(dict.fromkeys(names, pick))
        try:
            spec._graph = regraph(spec.input_shapes())
        except SpecError as exc:
            return exc.errors
    return []


def _span(named: Named) -> SizeSet:
    """The sizes `low..high` a named size may take."""
    top = SizeSet.every() if named.high is None else SizeSet.upto(named.high)
    return top - SizeSet.upto(named.low - 1)


def _where(spec: Spec, place: Place) -> Where:
    """Where the spec declares this input dimension."""
    source, (name, dim) = spec._source, place
    keys = ("inputs", name) if spec.inputs is not None else ("input",)
    declared = spec.inputs[name] if spec.inputs is not None else spec.input
    return source.where(source.data, *keys, *(("tokens",) if not isinstance(declared, list)
                                              else ()), dim)


def _regraph(spec: Spec) -> Regraph:
    """Expands `spec` for other input shapes."""
    def regraph(shapes: dict[str, Shape]) -> Graph:
        expander = Expander(spec, spec._source, spec._blocks)
        expanded = expander.graph(shapes)
        if expander.errors:
            raise SpecError(expander.errors)
        return expanded

    return regraph


def with_inputs(graph: Graph, inputs: Mapping[str, Shape]) -> Graph:
    """`graph` with these inputs' shapes (by name) in place of its own."""
    if not inputs:
        return graph
    nodes = dict(graph.nodes)
    for name, shape in inputs.items():
        op = nodes[name].op
        assert op is not None
        nodes[name] = replace(nodes[name], op=op.model_copy(update={"shape": tuple(shape)}))
    return replace(graph, nodes=nodes)


def dims_of(graph: Graph) -> Iterator[tuple[str, int, str]]:
    """The dimensions whose sizes are worth a closed form, with their names in formulas:
    every dim of each input but an image's or a signal's channels (its first, for ranks
    2 and up), named as shapes are (`H`, `W`, `L`; a token input's last dim `T`), after
    the input when there are several (`x.H`)."""
    for name in graph.inputs:
        op = graph.nodes[name].op
        assert isinstance(op, Input)
        rank = len(op.shape)
        if op.vocab is not None:  # ids: no channels; the last dim is the sequence
            labels, first = (*(f"d{i}" for i in range(1, rank)), "T"), 0
        else:
            labels, first = dims_label(rank), 0 if rank == 1 else 1
        for d in range(first, len(op.shape)):
            yield name, d, labels[d] if len(graph.inputs) == 1 else f"{name}.{labels[d]}"


class Memo:
    """What layers gave in earlier passes over the same sizes: per layer and input shapes
    (as formulas, whatever the example), the guards its rules recorded and what they gave.
    A later pass whose example meets those guards takes the same branches, so it takes
    the result as it is (a pass that fails at layer 20 reruns no rule of layers 1-19)."""

    def __init__(self) -> None:
        self.entries: dict[Any, list[tuple[tuple[Guard, ...], Any, dict[str, int], Any]]] = {}

    def get(self, key: Any, at: dict[str, int]) -> tuple[tuple[Guard, ...], Any] | None:
        """The result for `key` whose guards hold with the names at these examples."""
        for guards, frozen, examples, result in self.entries.get(key, ()):
            if examples == at:  # met in this pass
                return guards, result
            if all(_holds_at(g, at) for g in guards):
                return guards, _thaw(frozen, at)
        return None

    def put(self, key: Any, guards: list[Guard], result: Any, at: dict[str, int]) -> None:
        self.entries.setdefault(key, []).append((tuple(guards), _freeze(result), at, result))


def _holds_at(guard: Guard, at: dict[str, int]) -> bool:
    value = guard.poly.value(at)
    return value >= 0 if guard.relation == "ge" else (value == 0) == (guard.relation == "eq")


def _freeze(value: Any) -> Any:
    """`value` with each Sym as its polynomial (the same whatever the example)."""
    if isinstance(value, Sym):
        return value.poly
    if isinstance(value, tuple):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any, at: dict[str, int]) -> Any:
    """`_freeze` undone at an example."""
    if isinstance(value, Poly):
        return Sym.of(value, value.value(at))
    if isinstance(value, tuple):
        return tuple(_thaw(v, at) for v in value)
    return value


def trace(graph: Graph, at: Mapping[Place, int | Sym], memo: Memo | None = None) -> Outcome:
    """Run every layer's shape rule with the input dimensions `at` set to these sizes;
    stops at the first layer that fails. A layer met before (in this pass, or in an
    earlier one given its `memo`) is not run again when it can be taken from it."""
    largest = limits.current().tensor_elements
    shapes: dict[str, Shape] = {}
    vocabs: dict[str, int | None] = {}
    weights: dict[str, Shape | None] = {}
    windows: list[tuple[str, Any, list[Shape]]] = []
    tied = {n.tie for n in graph.nodes.values()}
    memo = memo or Memo()
    examples = {str(v.poly): v.hint for v in at.values() if isinstance(v, Sym)}
    log = guards_log()
    costs: dict[str, tuple[Any, Any]] = {}
    later = graph.training_only()  # their MACs are not the network's
    for node in graph.nodes.values():
        op = node.op
        assert op is not None
        if isinstance(op, Input):
            op = op.model_copy(update={"shape": tuple(
                at.get((node.name, d), n) for d, n in enumerate(op.shape))})
        x = [shapes[i] for i in node.inputs]
        key = (_hashable(op), *_freeze(tuple(x)), *(vocabs[i] for i in node.inputs))
        found = None if node.tie is not None or node.name in tied else memo.get(key, examples)
        if found is not None:
            guards, done = found
            if log is not None:
                log.extend(guards)
        else:
            tensors = [Tensor(s, i, i in graph.inputs, vocab=vocabs[i])
                       for s, i in zip(x, node.inputs, strict=True)]
            with guarded() as mine:
                settled = settle(graph, node, op, tensors, weights, largest)
            if log is not None:
                log.extend(mine)
            done = None if isinstance(settled, Diagnostic) else (
                settled[0], settled[1], settled[2].params, settled[2].macs)
            memo.put(key, mine, done, examples)
        if done is None:
            return Outcome(False, shapes, [], failed=node.name)
        windows.append((node.name, op, x))
        shapes[node.name], vocabs[node.name], *cost = done
        costs[node.name] = tuple(cost)  # type: ignore[assignment]
    return Outcome(True, shapes, [(n, s) for n, op, x in windows for s in op.floor_slacks(x)],
                   sum(m for n, (_, m) in costs.items() if n not in later),
                   sum(p for p, _ in costs.values()),
                   costs=costs)


def _hashable(op: Any) -> Any:
    """The op as a key: itself when hashable (most are), else its type and arguments with
    lists as tuples (reshape's shape; never its identity, which a later op may reuse)."""
    try:
        hash(op)
    except TypeError:
        return (type(op), _tupled(op.model_dump()))
    return op


def _tupled(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_tupled(v) for v in value)
    if isinstance(value, dict):
        return tuple((k, _tupled(v)) for k, v in value.items())
    return value


def explore(graph: Graph, places: tuple[Place, ...], var: str, regraph: Regraph) -> DimSizes:
    """The sizes of the input dimensions `places`, one size called `var` in formulas: see
    the module docstring."""
    try:
        return _closed_form(graph, places, var, regraph)
    except Unsupported:
        return _one_by_one(graph, places, var, regraph)


def _closed_form(graph: Graph, places: tuple[Place, ...], var: str, regraph: Regraph
                 ) -> DimSizes:
    unknown, valid, lossless = SizeSet.every(), SizeSet.empty(), SizeSet.empty()
    same = SizeSet.empty()
    reference: int | None = None  # the parameter count at the given size
    regions: list[Region] = []
    solved: dict[Guard, SizeSet] = {}
    memo = Memo()

    previous: list[tuple[Guard, SizeSet]] = []  # the last pass's guards, intersected in turn

    def region(guards: list[Guard]) -> SizeSet:
        """Where all `guards` hold. Passes share their first guards (the layers before
        the one where they part), so the intersection resumes where the last one parted."""
        unique = list(dict.fromkeys(guards))
        same = 0
        while same < min(len(unique), len(previous)) and unique[same] == previous[same][0]:
            same += 1
        del previous[same:]
        out = previous[-1][1] if previous else SizeSet.every()
        for guard in unique[same:]:
            out = out & solved_once(guard)
            previous.append((guard, out))
        return out.reduced()

    def solved_once(guard: Guard) -> SizeSet:
        if guard not in solved:
            solved[guard] = solve(guard, var)
        return solved[guard]

    def lossless_region(slacks: list[Any]) -> SizeSet:
        out = SizeSet.every()
        for guard in dict.fromkeys(_slack_guard(s) for _, s in slacks):
            out &= solved_once(guard)
        return out.reduced()

    hint: int | None = _input_shape(graph, places[0][0])[places[0][1]]
    given = hint
    expands = False  # whether the graph depends on this size (known after the first pass)
    for _ in range(PASSES):
        if hint is None:
            return DimSizes(places, var, valid, lossless, same, regions=tuple(regions))
        size = Sym.named(var, hint)
        with guarded() as guards:
            outcome = _pass(graph, places, size, regraph if expands else None, memo)
        if not expands and _depends(graph, outcome.shapes):
            expands = True
            continue  # again, with the spec expanded for the symbolic size
        here = region(guards)
        if hint not in here:
            raise Unsupported("a pass does not hold at its own size")
        if outcome.ok:
            regions.append(Region(here, {o: outcome.shapes[o] for o in graph.outputs
                                         if o in outcome.shapes}, outcome.macs))
            valid |= here
            lossless |= here & lossless_region(outcome.slacks)
            if hint == given:
                reference = _value(outcome.params, {var: hint})
            if reference is not None:
                same |= here & solved_once(_equal_guard(outcome.params, reference))
        unknown -= here
        hint = unknown.min()
    # Passes after the first go up from the least unknown size: all below it are known.
    return DimSizes(places, var, valid, lossless, same, regions=tuple(regions),
                    checked_up_to=hint - 1)  # type: ignore[operator]


def _pass(graph: Graph, places: tuple[Place, ...], size: int | Sym, regraph: Regraph | None,
          memo: Memo | None = None) -> Outcome:
    """`trace` over `graph`, or with `regraph` over the spec expanded for this size."""
    at = dict.fromkeys(places, size)
    if regraph is not None:
        shapes = {i: tuple(at.get((i, d), n) for d, n in enumerate(_input_shape(graph, i)))
                  for i in graph.inputs}
        try:
            graph = regraph(shapes)  # type: ignore[arg-type]
        except SpecError:
            return Outcome(False, {}, [])
    return trace(graph, at, memo)


def _depends(graph: Graph, shapes: dict[str, Shape]) -> bool:
    """Whether a shape the blocks read while expanding depends on the symbolic size."""
    for node, dim in graph.shape_reads:
        read = shapes.get(node, ())
        if any(isinstance(v, Sym) for v in (read[:1] if dim == 0 else read)):
            return True
    return False


def _input_shape(graph: Graph, name: str) -> Shape:
    op = graph.nodes[name].op
    assert isinstance(op, Input)
    return op.shape


def _equal_guard(value: Any, target: int) -> Guard:
    """`value == target` as a guard."""
    return Guard(value.poly.plus(-target) if isinstance(value, Sym) else
                 Poly.const(value - target), "eq")


def _slack_guard(slack: Any) -> Guard:
    """`slack >= 0` as a guard (a constant slack gives a constant guard)."""
    return Guard(slack.poly if isinstance(slack, Sym) else Poly.const(slack), "ge")


def _one_by_one(graph: Graph, places: tuple[Place, ...], var: str, regraph: Regraph
                ) -> DimSizes:
    valid, lossless, same = [], [], []
    again = regraph if graph.shape_reads else None
    given = _pass(graph, places, _input_shape(graph, places[0][0])[places[0][1]], again)
    for size in range(1, CHECKED_UP_TO + 1):
        outcome = _pass(graph, places, size, again)
        if outcome.ok:
            valid.append(size)
            if all(s >= 0 for _, s in outcome.slacks):
                lossless.append(size)
            if given.ok and outcome.params == given.params:
                same.append(size)
    return DimSizes(places, var, SizeSet.of(valid), SizeSet.of(lossless), SizeSet.of(same),
                    checked_up_to=CHECKED_UP_TO)
