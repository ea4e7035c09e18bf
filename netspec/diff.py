"""Two networks compared layer by layer (`netspec diff A B`): a pass over two Reports.

Each side is checked as `netspec check` checks it (`netspec.api.diagnose`); its layers, or
seen from `--depth N` the rows of `Report.rows(N)` (block instances collapsed), are then
paired with the other side's, and the totals compared. Nothing here imports torch.

Pairing, so that the result reads as the edit a person made. Pairs keep the order of
both sides (no two cross), and of all such pairings the one whose weights sum highest is
taken (dynamic programming, as Needleman-Wunsch aligns sequences):

- two layers of one op weigh 2, plus 2 when their definitions agree, plus 1 when their
  names do. A definition is the op's arguments (with `init`, `frozen` and `tie` when
  set), or for a collapsed row its block, the block's parameters and the count of
  instances rolled into it;
- two layers of different ops pair only under one name (weight 1): a named layer whose
  op changed;
- every other layer of A is "removed", of B "added".

A definition outweighs a name, and a name decides between equal definitions: a conv2d
inserted before LeNet-5's conv2 is one added layer, though its conv2 is named conv3 after
it (the same definition under a new name), and the extra conv of a stage of VGG-19 is the
one VGG-11's stage lacks by name. A common head and tail of identical layers pair first;
past FULL pairs of layers the rest is aligned within BAND layers of the diagonal only.
(`difflib.SequenceMatcher` would take the longest run of equal keys first, and when a
width change leaves only the norms and activations equal, that run lies off the diagonal.)

A pair is "changed" when its op, arguments, wiring, output shape, params or MACs differ,
else "same" (a "same" pair may be renamed). Wiring compares what the two layers read with
added and removed layers seen through: a layer reading an added one reads what that one
reads, so inserting a layer before another leaves the other's wiring as it was.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from netspec.api import Params, SpecSource, diagnose
from netspec.errors import Diagnostic, SpecError
from netspec.ir import Node
from netspec.limits import Limits
from netspec.report import LayerReport, Report, Row
from netspec.shapes import Shape

Status = Literal["added", "removed", "changed", "same"]
STATUSES: tuple[Status, ...] = ("added", "removed", "changed", "same")
CHANGES = ("op", "args", "inputs", "shape", "params", "macs")
"""What can differ in a pair of layers, in the order `LayerDiff.changes` lists it."""
Inputs = Mapping[str, Shape] | Shape | None


@dataclass(frozen=True, slots=True)
class Item:
    """One side's layer, or block instance collapsed into a row (`--depth`)."""

    name: str
    op: str
    """The op (`conv2d`), or a collapsed row's block (`bottleneck`)."""
    block: bool
    """Whether it is a collapsed block instance (or several rolled into one row)."""
    label: str
    """The op and its key arguments, or the block and count, as `check` shows them."""
    args: dict[str, Any]
    """Its definition in JSON values: the op's arguments (and `init`, `frozen`, `tie`
    when set), or the block's parameters and the `count` of instances in the row."""
    inputs: tuple[str, ...]
    """The layers (rows) it reads, by name, network inputs included."""
    shape: Shape
    """Its output's shape per sample (a row's last output)."""
    params: int
    macs: int

    @property
    def definition(self) -> str:
        """`args` as one comparable string."""
        return json.dumps(self.args, sort_keys=True)


@dataclass(frozen=True, slots=True)
class LayerDiff:
    """One row of a comparison: a layer only A has, only B has, or one both have."""

    a: Item | None
    b: Item | None
    changes: tuple[str, ...] = ()
    """What differs in a pair, in CHANGES' order: `op`, `args`, `inputs` (the wiring),
    `shape`, `params`, `macs`. Empty for a pair that is the same, and for added or
    removed layers."""

    @property
    def status(self) -> Status:
        if self.a is None:
            return "added"
        if self.b is None:
            return "removed"
        return "changed" if self.changes else "same"

    @property
    def renamed(self) -> bool:
        return self.a is not None and self.b is not None and self.a.name != self.b.name

    @property
    def params_delta(self) -> int:
        """B's params minus A's (an absent layer has none)."""
        return (self.b.params if self.b else 0) - (self.a.params if self.a else 0)

    @property
    def macs_delta(self) -> int:
        return (self.b.macs if self.b else 0) - (self.a.macs if self.a else 0)

    @property
    def args_changed(self) -> dict[str, tuple[Any, Any]]:
        """Each argument that differs in a pair of one op: name -> (A's, B's), None for
        one a side does not set."""
        if "args" not in self.changes:
            return {}
        a, b = self.a.args, self.b.args  # type: ignore[union-attr]
        return {k: (a.get(k), b.get(k)) for k in dict.fromkeys([*a, *b]) if a.get(k) != b.get(k)}

    def to_dict(self) -> dict[str, Any]:
        """The JSON of a layer row (see `Diff.to_dict`)."""
        a, b = self.a, self.b

        def both(get: Callable[[Item], Any]) -> dict[str, Any]:
            return {"a": None if a is None else get(a), "b": None if b is None else get(b)}

        return {
            "status": self.status, "a": a and a.name, "b": b and b.name,
            "renamed": self.renamed,
            "block": (a or b).block,  # type: ignore[union-attr]
            "op": both(lambda i: i.op), "label": both(lambda i: i.label),
            "inputs": both(lambda i: list(i.inputs)), "shape": both(lambda i: list(i.shape)),
            "params": {**both(lambda i: i.params), "delta": self.params_delta},
            "macs": {**both(lambda i: i.macs), "delta": self.macs_delta},
            "changes": list(self.changes),
            "args": {k: {"a": x, "b": y} for k, (x, y) in self.args_changed.items()},
        }


@dataclass(frozen=True, slots=True)
class Total:
    """One of the networks' totals on both sides."""

    key: str
    """Its name in JSON, as `check --format json` names it (`trainable_params`)."""
    title: str
    """Its name in the table (`trainable`)."""
    a: int
    b: int

    @property
    def delta(self) -> int:
        return self.b - self.a

    @property
    def percent(self) -> float | None:
        """The change as a percentage of A's value; None when A's is 0."""
        return 100 * self.delta / self.a if self.a else None

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "delta": self.delta, "percent": self.percent}


TOTALS: tuple[tuple[str, str, Callable[[Report], int]], ...] = (
    ("params", "params", lambda r: r.params),
    ("trainable_params", "trainable", lambda r: r.trainable_params),
    ("buffers", "buffers", lambda r: r.buffers),
    ("macs", "MACs", lambda r: r.macs),
    ("flops", "FLOPs", lambda r: r.flops),
)
"""The totals compared: JSON key, table title, the value from a report."""


@dataclass(frozen=True, slots=True)
class Side:
    """One side of a comparison: what was checked, how it was asked for, and its report."""

    file: str
    """The spec's file (`<string>` or `<dict>` for a spec given as text or a mapping)."""
    scale: str | None
    params: dict[str, Any]
    """The parameter values set (`--set`, `params=`), by name."""
    inputs: dict[str, Shape] | None
    """The input shapes it was checked at when given (`--input`); None: the declared ones."""
    report: Report

    def describe(self) -> str:
        """The side as a command line would ask for it: `specs/x.yaml --scale s --set w=0.5`."""
        words = [self.file, *([f"--scale {self.scale}"] if self.scale else []),
                 *(f"--set {name}={_shown(value)}" for name, value in self.params.items())]
        single = self.inputs is not None and len(self.report.inputs) == 1
        words += [f"--input {'' if single else name + '='}{','.join(map(str, shape))}"
                  for name, shape in (self.inputs or {}).items()]
        return " ".join(words)

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "name": self.report.name, "scale": self.scale,
                "params": _jsonable(self.params),
                "inputs": None if self.inputs is None else _shapes(self.inputs)}


@dataclass(slots=True, repr=False)
class Diff:
    """Network A against network B: `rows(depth)` pairs their layers, `totals` compares
    their sums; `to_dict()` is `netspec diff --format json`, `print(diff)` its table."""

    a: Side
    b: Side

    def rows(self, depth: int | None = None) -> list[LayerDiff]:
        """Every layer of both sides in order (see the module's pairing rule): the pairs,
        each removed layer of A and added layer of B where it stands. With `depth` N, the
        rows of `check --depth N` instead of layers (block instances nested deeper than
        N collapsed, as `Report.rows` collapses them)."""
        return compare(items(self.a.report, depth), items(self.b.report, depth),
                       _input_pairs(list(self.a.report.inputs), list(self.b.report.inputs)))

    @property
    def totals(self) -> list[Total]:
        """params, trainable params, buffers, MACs and FLOPs on both sides."""
        return [Total(key, title, get(self.a.report), get(self.b.report))
                for key, title, get in TOTALS]

    def to_dict(self, depth: int | None = None) -> dict[str, Any]:
        """`netspec diff --format json`:

            {"a": SIDE, "b": SIDE, "depth": N | null,
             "summary": {"added", "removed", "changed", "same", "renamed": int},
             "layers": [{"status": "added" | "removed" | "changed" | "same",
                         "a": name | null, "b": name | null, "renamed": bool,
                         "block": bool, "op": {"a", "b"}, "label": {"a", "b"},
                         "inputs": {"a", "b"}, "shape": {"a": [dims], "b": [dims]},
                         "params": {"a", "b", "delta"}, "macs": {"a", "b", "delta"},
                         "changes": [...], "args": {NAME: {"a", "b"}}}],
             "totals": {"params" | "trainable_params" | "buffers" | "macs" | "flops":
                            {"a", "b", "delta", "percent": float | null},
                        "inputs": {"a": {NAME: [dims]}, "b": ...}, "outputs": ...,
                        "auxiliary": ...}}

        SIDE is {"file", "name", "scale", "params": {values set}, "inputs": {NAME: [dims]}
        given | null}. `layers` lists every layer (or row, with `depth`), the same ones
        too; a side's value is null where it has no such layer. `changes` names what
        differs (CHANGES), `args` the arguments that do."""
        rows = self.rows(depth)
        reports = self.a.report, self.b.report
        return {
            "a": self.a.to_dict(), "b": self.b.to_dict(), "depth": depth,
            "summary": summary(rows),
            "layers": [row.to_dict() for row in rows],
            "totals": {**{t.key: t.to_dict() for t in self.totals},
                       "inputs": dict(zip("ab", (_shapes(r.inputs) for r in reports), strict=True)),
                       "outputs": dict(zip("ab", (_shapes(r.outputs) for r in reports),
                                           strict=True)),
                       "auxiliary": dict(zip("ab", (_shapes(r.auxiliary) for r in reports),
                                             strict=True))},
        }

    def table(self, depth: int | None = None, all_layers: bool = False) -> str:
        """What `netspec diff` prints: the sides, the layers that differ (every layer with
        `all_layers`; `depth` as in `rows`), a count of each status, the totals."""
        rows = self.rows(depth)
        shown = [r for r in rows if all_layers or r.status != "same"]
        lines = [f"A: {self.a.describe()}", f"B: {self.b.describe()}", ""]
        if shown:
            lines += [*_layer_lines(shown), ""]
        lines += [_summary_line(rows, "layers" if depth is None else "rows"), "",
                  *_total_lines(self.totals, self.a.report, self.b.report)]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        return f"<Diff {self.a.describe()} → {self.b.describe()}: {_summary_line(self.rows(), 'layers')}>"


class DiffError(SpecError):
    """A side of a comparison has errors. `.errors` holds every error of both sides (one
    both share once), each message ending with its side: `(in A)`, `(in B)` or
    `(in A and B)`; `.sides[k]` is "a", "b" or "both" for `.errors[k]`."""

    def __init__(self, errors: list[Diagnostic], sides: list[str]):
        super().__init__(errors)
        self.sides = sides

    def to_dicts(self) -> list[dict[str, object]]:
        """The errors as `check --format json` gives them, each with its `side`."""
        return [{**e.to_dict(), "side": side} for e, side in zip(self.errors, self.sides,
                                                                   strict=True)]


def diff(a: SpecSource, b: SpecSource | None = None, *, inputs: Inputs = None,
         inputs_b: Inputs = None, params: Params | None = None, params_b: Params | None = None,
         scale: str | None = None, scale_b: str | None = None,
         limits: Limits | None = None) -> Diff:
    """Compare spec A with spec B (`netspec diff A B`), each checked as `check` checks it.

    B defaults to A itself, so one spec compares at two parameter values or scales: `params`,
    `scale` and `inputs` apply to both sides, `params_b` (over `params`), `scale_b` and
    `inputs_b` (over `inputs`) to B only. `diff(spec, params_b={"width": 0.5})`.
    Raises DiffError (a SpecError) with the errors of both sides, each naming its side.
    `print(diff(...))` prints the table of `netspec diff`; `.to_dict()` is its JSON."""
    spec_a, report_a, errors_a = diagnose(a, inputs, limits=limits, params=params, scale=scale)
    source_b = b if b is not None else (a if spec_a is None else spec_a)
    merged = {**(params or {}), **(params_b or {})} if params_b is not None else params
    spec_b, report_b, errors_b = diagnose(source_b, _over(inputs, inputs_b), limits=limits,
                                          params=merged, scale=scale if scale_b is None else scale_b)
    if errors_a or errors_b:
        raise _sided(errors_a, errors_b)
    assert spec_a is not None and spec_b is not None and report_a is not None \
        and report_b is not None
    given_b = inputs if inputs_b is None else inputs_b
    return Diff(_side(spec_a, report_a, inputs is not None),
                _side(spec_b, report_b, given_b is not None))


def items(report: Report, depth: int | None = None) -> list[Item]:
    """The report's layers as the diff sees them, or with `depth` its collapsed rows."""
    layers = {r.name: r for r in report.layers}
    return [_item(report, row, layers) for row in report.rows(depth)]


def compare(a: Sequence[Item], b: Sequence[Item], inputs: Mapping[str, str]) -> list[LayerDiff]:
    """Every item of `a` and `b` paired by the module's rule, in order; `inputs` pairs the
    networks' inputs (A's name -> B's)."""
    order = align(a, b)
    to_b = {**inputs, **{a[i].name: b[j].name for i, j in order if i is not None and j is not None}}
    reads_a, reads_b = _reads(a, set(to_b)), _reads(b, set(to_b.values()))
    rows = []
    for i, j in order:
        x, y = (None if i is None else a[i]), (None if j is None else b[j])
        changes: tuple[str, ...] = ()
        if x is not None and y is not None:
            rewired = tuple(to_b.get(n) for n in reads_a[x.name]) != reads_b[y.name]
            changes = _changes(x, y, rewired)
        rows.append(LayerDiff(x, y, changes))
    return rows


FULL = 1_000_000
"""Pairs of layers up to which the alignment weighs every way to pair them; past it, only
pairings within BAND layers of the diagonal (beyond the difference in length)."""
BAND = 64
_PAIR, _SKIP_A, _SKIP_B = 0, 1, 2


def align(a: Sequence[Item], b: Sequence[Item]) -> list[tuple[int | None, int | None]]:
    """Indices into `a` and `b`: pairs `(i, j)`, `(i, None)` for a removed item and
    `(None, j)` for an added one, in the order of both sequences (removed before added
    in each gap between pairs). A common head and tail of identical items (same name
    and definition) pair as they are; the middle is aligned by `_pairs`."""
    n, m = len(a), len(b)
    head = 0
    while head < min(n, m) and _identical(a[head], b[head]):
        head += 1
    tail = 0
    while tail < min(n, m) - head and _identical(a[n - 1 - tail], b[m - 1 - tail]):
        tail += 1
    pairs = [(k, k) for k in range(head)]
    pairs += [(head + i, head + j) for i, j in _pairs(a[head:n - tail], b[head:m - tail])]
    pairs += [(n - tail + k, m - tail + k) for k in range(tail)]
    order: list[tuple[int | None, int | None]] = []
    i = j = 0
    for pi, pj in [*pairs, (n, m)]:
        order += [(k, None) for k in range(i, pi)] + [(None, k) for k in range(j, pj)]
        order += [(pi, pj)] if pi < n else []
        i, j = pi + 1, pj + 1
    return order


def _identical(x: Item, y: Item) -> bool:
    return (x.name, x.op, x.block) == (y.name, y.op, y.block) and x.args == y.args


def _pairs(a: Sequence[Item], b: Sequence[Item]) -> list[tuple[int, int]]:
    """The pairs, in order, of the alignment of `a` and `b` whose weights sum highest (see
    the module docstring), found row by row within `_band`."""
    n, m = len(a), len(b)
    if not n or not m:
        return []
    (ops_a, defs_a, names_a), (ops_b, defs_b, names_b) = _interned(a, b)
    width = max(n, m) if n * m <= FULL else abs(n - m) + BAND
    unreachable = -1
    prev = [unreachable] * (m + 1)
    lo, hi = _band(0, n, m, width)
    prev[lo:hi + 1] = [0] * (hi - lo + 1)
    moves: list[tuple[int, bytearray]] = []
    for i in range(1, n + 1):
        op, definition, name = ops_a[i - 1], defs_a[i - 1], names_a[i - 1]
        cur = [unreachable] * (m + 1)
        lo, hi = _band(i, n, m, width)
        move = bytearray(hi - lo + 1)
        for j in range(lo, hi + 1):
            best, how = prev[j], _SKIP_A
            if j > lo and cur[j - 1] > best:
                best, how = cur[j - 1], _SKIP_B
            if j and prev[j - 1] != unreachable:
                if ops_b[j - 1] == op:
                    weight = 2 + 2 * (defs_b[j - 1] == definition) + (names_b[j - 1] == name)
                else:
                    weight = names_b[j - 1] == name
                if weight and prev[j - 1] + weight >= best:
                    best, how = prev[j - 1] + weight, _PAIR
            cur[j] = best
            move[j - lo] = how
        prev = cur
        moves.append((lo, move))
    return _traced(moves, n, m)


def _interned(a: Sequence[Item], b: Sequence[Item]) -> list[tuple[list[int], ...]]:
    """Each side's ops, definitions and names as small ints, equal where they are equal
    (the alignment compares them for every pair of layers)."""
    ids: dict[Hashable, int] = {}
    keys: tuple[Callable[[Item], Hashable], ...] = (
        lambda x: ("op", x.block, x.op), lambda x: ("definition", x.definition),
        lambda x: ("name", x.name))
    return [tuple([ids.setdefault(key(x), len(ids)) for x in side] for key in keys)
            for side in (a, b)]


def _band(i: int, n: int, m: int, width: int) -> tuple[int, int]:
    """The columns of row `i` the alignment considers: `width` either side of the
    diagonal from (0, 0) to (n, m)."""
    centre = i * m // n
    return max(0, centre - width), min(m, centre + width)


def _traced(moves: list[tuple[int, bytearray]], n: int, m: int) -> list[tuple[int, int]]:
    """The pairs on the best path, followed back from (n, m)."""
    pairs = []
    i, j = n, m
    while i and j:
        lo, move = moves[i - 1]
        how = move[j - lo]
        if how == _PAIR:
            pairs.append((i - 1, j - 1))
        i -= how != _SKIP_B
        j -= how != _SKIP_A
    return pairs[::-1]


def _reads(items: Sequence[Item], paired: set[str]) -> dict[str, tuple[str, ...]]:
    """What each item reads, an unpaired (added or removed) item among its inputs replaced
    by what that one reads, back to paired items and network inputs."""
    reads: dict[str, tuple[str, ...]] = {}
    for item in items:
        through = (n for i in item.inputs
                   for n in (reads[i] if i in reads and i not in paired else (i,)))
        reads[item.name] = tuple(dict.fromkeys(through))
    return reads


def _changes(x: Item, y: Item, rewired: bool) -> tuple[str, ...]:
    """What differs between a pair (CHANGES' names, in order)."""
    same_op = (x.block, x.op) == (y.block, y.op)
    differs = {"op": not same_op, "args": same_op and x.args != y.args, "inputs": rewired,
               "shape": tuple(x.shape) != tuple(y.shape), "params": x.params != y.params,
               "macs": x.macs != y.macs}
    return tuple(name for name in CHANGES if differs[name])


def summary(rows: Sequence[LayerDiff]) -> dict[str, int]:
    """How many rows have each status, and how many pairs are renamed."""
    counts = {status: 0 for status in STATUSES}
    for row in rows:
        counts[row.status] += 1
    return {**counts, "renamed": sum(row.renamed for row in rows)}


def _item(report: Report, row: Row, layers: Mapping[str, LayerReport]) -> Item:
    if row.block is None:
        layer = layers[row.name]
        return Item(row.name, layer.op, False, row.label, _layer_args(layer.node),
                    tuple(row.inputs), layer.shape, row.params, row.macs)
    group = report.graph.groups[row.instances[0]]  # rolled instances share their params
    return Item(row.name, row.block, True, row.label, {**_jsonable(group.params), "count": row.count},
                tuple(row.inputs), row.shapes[-1], row.params, row.macs)


def _layer_args(node: Node) -> dict[str, Any]:
    """A layer's definition: its op's arguments as the spec names them, and its `init`,
    `frozen` and `tie` when set."""
    fields = {} if node.op is None else type(node.op).model_fields
    args = {field.alias or key: _jsonable(getattr(node.op, key))
            for key, field in fields.items() if key != "op"}
    extra = {"init": node.init, "frozen": node.frozen or None, "tie": node.tie}
    return {**args, **{k: _jsonable(v) for k, v in extra.items() if v is not None}}


def _jsonable(value: Any) -> Any:
    """`value` in JSON types: a named tuple as an object, a tuple as a list, an unknown
    object as its text."""
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return _jsonable(value._asdict())
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _side(spec: Any, report: Report, given: bool) -> Side:
    """A checked side; `given`: whether its input shapes were given."""
    choice = spec.choice
    return Side(spec._source.file, choice.scale, dict(choice.values),
                dict(report.inputs) if given else None, report)


def _over(inputs: Inputs, inputs_b: Inputs) -> Inputs:
    """B's input shapes: `inputs_b` over `inputs` (named shapes merge)."""
    if inputs_b is None:
        return inputs
    if isinstance(inputs, Mapping) and isinstance(inputs_b, Mapping):
        return {**inputs, **inputs_b}
    return inputs_b


def _sided(errors_a: list[Diagnostic], errors_b: list[Diagnostic]) -> DiffError:
    """Both sides' errors, each saying its side; one both sides share is listed once."""
    in_b = {(e.where, e.message) for e in errors_b}
    in_a = {(e.where, e.message) for e in errors_a}
    sided = [(e, "both" if (e.where, e.message) in in_b else "a") for e in errors_a]
    sided += [(e, "b") for e in errors_b if (e.where, e.message) not in in_a]
    words = {"a": "in A", "b": "in B", "both": "in A and B"}
    return DiffError([Diagnostic(e.where, e.path, f"{e.message} ({words[s]})", e.hint, e.severity,
                                 e.code) for e, s in sided], [s for _, s in sided])


def _input_pairs(a: list[str], b: list[str]) -> dict[str, str]:
    """The networks' inputs paired: by name, then the others in order."""
    rest = zip([n for n in a if n not in b], [n for n in b if n not in a], strict=False)
    return {**{n: n for n in a if n in b}, **dict(rest)}


# -- the table ------------------------------------------------------------------------------

_HEADER = ("", "layer", "op", "shape", "params", "Δ", "MACs", "Δ", "changes")
_RIGHT = {4, 5, 6, 7}


def _layer_lines(rows: Sequence[LayerDiff]) -> list[str]:
    """The rows as an aligned table under a header, between rules."""
    cells = [_HEADER, *map(_cells, rows)]
    widths = [max(len(c[k]) for c in cells) for k in range(len(_HEADER))]

    def line(row: tuple[str, ...]) -> str:
        return "  ".join(c.rjust(w) if k in _RIGHT else c.ljust(w)
                         for k, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip()

    lines = [*map(line, cells)]
    rule = "─" * max(map(len, lines))
    return [lines[0], rule, *lines[1:], rule]


def _cells(row: LayerDiff) -> tuple[str, ...]:
    a, b = row.a, row.b
    now = b or a
    assert now is not None
    return (row.status, _either(a, b, lambda i: i.name), now.label,
            _either(a, b, lambda i: _dims(i.shape)), _either(a, b, lambda i: f"{i.params:,}"),
            _signed(row.params_delta), _either(a, b, lambda i: f"{i.macs:,}"),
            _signed(row.macs_delta), _what_changed(row))


def _either(a: Item | None, b: Item | None, text: Callable[[Item], str]) -> str:
    """The side's value where one side has the layer, else `_arrow` of both."""
    return _arrow([text(i) for i in (a, b) if i is not None])


def _arrow(shown: list[str]) -> str:
    """One text where all agree, else `A's → B's`."""
    return shown[0] if len(set(shown)) == 1 else " → ".join(shown)


def _what_changed(row: LayerDiff) -> str:
    """The changes the other columns do not show: the op, arguments, wiring."""
    a, b = row.a, row.b
    if a is None or b is None:
        return ""
    parts = [f"{a.op} → {b.op}"] if "op" in row.changes else []
    parts += [f"{name} {_shown(x)} → {_shown(y)}" for name, (x, y) in row.args_changed.items()]
    if "inputs" in row.changes:
        parts.append(f"from {', '.join(a.inputs)} → {', '.join(b.inputs)}")
    return "; ".join(parts)


def _summary_line(rows: Sequence[LayerDiff], noun: str) -> str:
    """`1 added, 2 changed, 9 same (1 renamed)`, or `no differences (12 layers)`."""
    counts = summary(rows)
    if not (counts["added"] or counts["removed"] or counts["changed"] or counts["renamed"]):
        return f"no differences ({len(rows)} {noun})"
    renamed = f" ({counts['renamed']} renamed)" if counts["renamed"] else ""
    return ", ".join(f"{counts[s]} {s}{renamed if s == 'same' else ''}"
                     for s in STATUSES if counts[s])


def _total_lines(totals: Sequence[Total], a: Report, b: Report) -> list[str]:
    """The totals, A, B, delta and percentage aligned, then the inputs and outputs."""
    rows = [("", "A", "B", "Δ", "%")]
    rows += [(t.title, f"{t.a:,}", f"{t.b:,}", _signed(t.delta),
              "" if t.percent is None or not t.delta else f"{t.percent:+.2f}%") for t in totals]
    widths = [max(len(r[k]) for r in rows) for k in range(5)]
    lines = ["  ".join([r[0].ljust(widths[0]), *(c.rjust(w) for c, w in
                                                  zip(r[1:], widths[1:], strict=True))]).rstrip()
             for r in rows]
    sides = [("inputs", (a.inputs, b.inputs)), ("outputs", (a.outputs, b.outputs))]
    if a.auxiliary or b.auxiliary:
        sides.append(("auxiliary", (a.auxiliary, b.auxiliary)))
    for title, (x, y) in sides:
        shown = [", ".join(f"{n} {_dims(s)}" for n, s in side.items()) for side in (x, y)]
        lines.append(f"{title.ljust(widths[0])}  {_arrow(shown)}")
    return lines


def _signed(n: int) -> str:
    """`+330`, `-1,200`; blank for 0, so the changes stand out."""
    return f"{n:+,}" if n else ""


def _dims(shape: Shape) -> str:
    return "x".join(map(str, shape))


def _shapes(shapes: Mapping[str, Shape]) -> dict[str, list[Any]]:
    return {name: list(shape) for name, shape in shapes.items()}


def _shown(value: Any) -> str:
    """A value as a person writes it in YAML or on a command line: words bare."""
    if value is None:
        return "-"
    return value if isinstance(value, str) else json.dumps(value)
