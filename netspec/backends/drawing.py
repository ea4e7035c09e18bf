"""The graphviz backend: the analysed IR as a picture, valid or not.

`to_digraph(graph, report, errors)` returns a `graphviz.Digraph`:

- one node per layer and per input (a merge is a small circle: + add, × mul, ‖ concat),
  filled by op family (`Op.family`), with a legend of the families present; a node shows
  its name, `Op.label()` and its parameters; inputs are dark, outputs have a heavy border;
  the layers run in training only (for the spec's `auxiliary` outputs) and the edges into
  them are dashed;
- every edge carries the shape of the tensor on it (`64x56x56`, per sample);
- block instances are clusters (nested as `Group.parent`); with `depth=N` an instance
  nested deeper than N becomes one node (its name, block, in -> out shapes, params), and
  identical chained instances roll into one node marked `x35` (`netspec.collapse`, which
  `check --depth` shares);
- an invalid spec still draws: a failing layer and the edges into it are red with the error
  on it, what it feeds is grey with unknown (`?`) shapes; an instance holding a failing
  layer is never collapsed.

`write(dot, path)` renders by the file's suffix (svg, png, pdf; dot writes the source and
needs no Graphviz binary). Nothing here imports torch.
"""

from __future__ import annotations

import html
import shutil
import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path

import graphviz

from netspec.collapse import Collapsed, Unit, local
from netspec.errors import Diagnostic
from netspec.ir import Graph, Group, Node
from netspec.ops import ShapeError
from netspec.report import Report, human
from netspec.shapes import Shape

FORMATS = ("svg", "png", "pdf", "dot")
INSTALL = ("Graphviz's `dot` program was not found; install Graphviz (Debian/Ubuntu: "
           "`sudo apt-get install graphviz`, macOS: `brew install graphviz`, Windows: "
           "`winget install graphviz`) or write the source with `-o FILE.dot`")
RANKDIRS = ("TB", "LR", "BT", "RL")

RED, GREY, DARK = "#d32f2f", "#b0b0b0", "#263238"
# Node styles, in legend order: op families (`Op.family`), then the special kinds.
# key: (legend text, fill, outline); pastel fills keep dark text readable.
STYLES: dict[str, tuple[str, str, str]] = {
    "conv": ("convolution", "#d6e6f7", "#4a7fb5"),
    "pool": ("pooling", "#d9efd8", "#4f9a55"),
    "norm": ("normalisation", "#fcefd2", "#c39333"),
    "activation": ("activation", "#ece0f5", "#8a5aa6"),
    "dropout": ("dropout", "#f8dfe7", "#b55a78"),
    "linear": ("linear", "#fde0cc", "#c7733a"),
    "attention": ("attention", "#f6d5d0", "#b5473a"),
    "resize": ("resize / pad", "#d5efee", "#3f9490"),
    "merge": ("merge", "#fff4b8", "#b89b1c"),
    "reshape": ("reshape", "#e7e3dc", "#8a7d68"),
    "other": ("other", "#ffffff", "#8a8a8a"),
    "io": ("input / output", "#37474f", DARK),
    "block": ("block (collapsed)", "#e3e7f4", "#5c6bc0"),
    "error": ("error", "#fde7e7", RED),
    "unknown": ("not computed", "#f4f4f4", GREY),
}
TEXT_COLOURS = {"io": "#ffffff", "error": "#b71c1c", "unknown": "#8a8a8a"}
CLUSTER_FILLS = ("#f7f8fa", "#eceff3")  # alternate by nesting level
MERGE_SIGNS = {"add": "+", "mul": "×", "concat": "‖"}
FONT = "Helvetica"
NODE_WIDTH = "2.1"  # inches: one width for every layer box, so columns line up
WRAP = 44  # characters per line of an error message


class GraphvizMissing(RuntimeError):
    """Rendering needs Graphviz's `dot` program and it is not installed."""


def to_digraph(graph: Graph, report: Report | None, errors: Sequence[Diagnostic],
               depth: int | None = None, rankdir: str = "TB") -> graphviz.Digraph:
    """Draw `graph` with the shapes and costs of `report` and the failures in `errors`.

    `depth` None draws every block instance as a cluster; N keeps clusters for instances
    nested at most N deep (top-level ones are at 0) and collapses deeper ones into nodes.
    """
    if rankdir not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {', '.join(RANKDIRS)}, found {rankdir!r}")
    return _Drawing(graph, report, errors, depth).digraph(rankdir)


def write(dot: graphviz.Digraph, path: str | Path) -> Path:
    """Write `dot` to `path` in the format its suffix names (svg, png, pdf, dot).

    Raises GraphvizMissing (with how to install it) when rendering needs `dot` and it is
    not on the PATH; `.dot` only writes the source.
    """
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise ValueError(f"cannot draw to {path.name!r}: use a .svg, .png, .pdf or .dot file")
    if fmt == "dot":
        path.write_text(dot.source, encoding="utf-8")
        return path
    if shutil.which("dot") is None:
        raise GraphvizMissing(INSTALL)
    try:
        data = dot.pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise GraphvizMissing(INSTALL) from None
    path.write_bytes(data)
    return path


def dims(shape: Shape | None) -> str:
    """`64x56x56`, or `?` for a shape the analysis could not compute."""
    return "x".join(map(str, shape)) if shape is not None else "?"


class _Drawing:
    """The analysis facts a drawing needs, and the nodes, clusters and edges built from them."""

    def __init__(self, graph: Graph, report: Report | None, errors: Sequence[Diagnostic],
                 depth: int | None):
        self.graph = graph
        self.report = report
        rows = report.layers if report else []
        self.shapes: dict[str, Shape] = {**(report.inputs if report else {}),
                                         **{r.name: r.shape for r in rows}}
        self.params = {r.name: r.params for r in rows}
        self.failures: dict[str, list[str]] = {}
        self.loose: list[Diagnostic] = []  # errors about no drawn layer: the caption shows them
        for error in errors:
            target = error.path if error.path in graph.nodes or error.path in graph.groups else None
            if target is None:
                self.loose.append(error)
            else:
                text = f"{error.message}; {error.hint}" if error.hint else error.message
                self.failures.setdefault(target, []).append(text)
        for node in graph.nodes.values():
            if node.op is None and node.name not in self.failures:
                self.failures[node.name] = [f"invalid {node.kind} layer"]
        self.errors = len(errors)
        self.view = Collapsed(graph, depth, self.params, self.failures)
        self.units, self.unit_of = self.view.units, self.view.unit_of
        self.readers = self.view.readers  # layer -> the layers reading it, in order
        self.states = {u.id: self._state(u) for u in self.units}
        later = graph.training_only()
        self.training_only = {u.id for u in self.units
                              if all(n.name in later for n in u.members)}
        """The units run in training only (for the `auxiliary` outputs): drawn dashed."""

    def _state(self, unit: Unit) -> str:
        """ok, error (a layer failed) or unknown (downstream of a failure)."""
        if any(n.name in self.failures for n in unit.members):
            return "error"
        return "ok" if all(n.name in self.shapes for n in unit.members) else "unknown"

    # -- the picture ----------------------------------------------------------------------

    def digraph(self, rankdir: str) -> graphviz.Digraph:
        dot = graphviz.Digraph(self.graph.name, graph_attr={
            "rankdir": rankdir, "label": self._caption(), "labelloc": "t", "labeljust": "l",
            "fontname": FONT, "fontsize": "16", "nodesep": "0.3", "ranksep": "0.35",
            "newrank": "true",
        }, node_attr={"fontname": FONT, "fontsize": "11", "margin": "0.12,0.06"},
            edge_attr={"fontname": FONT, "fontsize": "9", "fontcolor": "#5f6368",
                       "color": "#7d868c", "arrowsize": "0.6"})
        families: set[str] = set()
        tree = self._tree()
        by_id = {u.id: u for u in self.units}
        if len(self.graph.inputs) > 1:  # several inputs start side by side
            tree[""] = [i for i in tree[""] if i not in self.graph.inputs]
            with dot.subgraph(graph_attr={"rank": "min"}) as top:
                for name in self.graph.inputs:
                    self._node(top, by_id[name], families)
        self._emit(dot, "", tree, by_id, families, level=0)
        self._edges(dot)
        dot.node("(legend)", self._legend(families), shape="plaintext", margin="0")
        return dot

    def _tree(self) -> dict[str, list[str]]:
        """Each drawn cluster ("" for the root) -> the clusters and unit ids in it, in order."""
        tree: dict[str, list[str]] = {"": []}
        for unit in self.units:
            for i, inner in enumerate(unit.clusters):
                if inner not in tree:
                    tree[unit.clusters[i - 1] if i else ""].append(inner)
                    tree[inner] = []
            tree[unit.clusters[-1] if unit.clusters else ""].append(unit.id)
        return tree

    def _emit(self, parent: graphviz.Digraph, cluster: str, tree: dict[str, list[str]],
              by_id: dict[str, Unit], families: set[str], level: int) -> None:
        for item in tree.get(cluster, []):
            if item in by_id:
                self._node(parent, by_id[item], families)
                continue
            group = self.graph.groups[item]
            failed = group.name in self.failures
            if failed:
                families.add("error")
            sub = graphviz.Digraph(f"cluster_{item}", graph_attr={
                "label": self._cluster_label(group),
                "labeljust": "l", "fontsize": "10", "margin": "12", "style": "rounded,filled",
                "fillcolor": CLUSTER_FILLS[level % 2],
                "color": RED if failed else "#aab3bf", "penwidth": "1"})
            self._emit(sub, item, tree, by_id, families, level + 1)
            parent.subgraph(sub)

    def _cluster_label(self, group: Group) -> str:
        """The instance name over its block's: two short lines keep left of the main path,
        which enters a cluster down its leftmost column, so edges rarely strike them."""
        text = (f'<b>{_e(local(group.name, group.parent))}</b><br align="left"/>'
                f'<font point-size="9" color="#5f6368">{_e(group.block)}</font><br align="left"/>')
        return _html(text + _error_lines(self.failures.get(group.name, [])))

    def _node(self, dot: graphviz.Digraph, unit: Unit, families: set[str]) -> None:
        state = self.states[unit.id]
        node = unit.members[0]
        label = self._block_label(unit) if unit.group else self._layer_label(unit, node)
        if state != "ok":
            key = state
        elif unit.group is not None:
            key = "block"
        elif node.name in self.graph.inputs:
            key = "io"
        else:
            key = node.op.family if node.op and node.op.family in STYLES else "other"
        families.add(key)
        line = STYLES[key][2]
        attrs = {"shape": "box", "style": "rounded,filled", "width": NODE_WIDTH,
                 "fillcolor": STYLES[key][1], "color": line,
                 "fontcolor": TEXT_COLOURS.get(key, "#202124"),
                 "tooltip": self._tooltip(unit)}
        if unit.group is not None:
            attrs["penwidth"] = "1.5"
        elif self._is_merge(node) and state != "error":  # a small circle, its name in the tooltip
            attrs.update(shape="circle", width="0.4", fixedsize="true", fontsize="16")
            label = MERGE_SIGNS[node.op.kind()]  # type: ignore[union-attr]
        if state == "error":
            attrs["penwidth"] = "2"
        elif state == "unknown":
            attrs["style"] = "rounded,filled,dashed"
        if unit.id in self.training_only:
            attrs.update(style="rounded,filled,dashed", tooltip=f"in training only: {attrs['tooltip']}")
        if any(n.name in (*self.graph.outputs, *self.graph.auxiliary) for n in unit.members):
            families.add("io")
            attrs.update(penwidth="3", color=DARK if state == "ok" else line)
        dot.node(unit.id, label, **attrs)

    def _layer_label(self, unit: Unit, node: Node) -> str:
        """Name (short inside its cluster), op label, params; an input shows its shape."""
        name = unit.title(unit.scope)
        text = self._op_text(node)
        if node.name in self.graph.inputs:
            vocab = getattr(node.op, "vocab", None)
            ids = f" token ids &lt; {vocab:,}" if vocab else ""
            lines = [f"<b>{_e(name)}</b>", dims(self.shapes.get(node.name)) + ids]
        else:
            lines = [f'<font point-size="9">{_e(name)}</font>', f"<b>{_e(text)}</b>"]
        params = self.params.get(node.name, 0)
        if params:
            lines.append(f'<font point-size="9">{params:,} params</font>')
        if node.name in self.graph.outputs:
            lines.append(f'<font point-size="9">output {dims(self.shapes.get(node.name))}</font>')
        if node.name in self.graph.auxiliary:
            lines.append(f'<font point-size="9">auxiliary output {dims(self.shapes.get(node.name))}'
                         ', in training</font>')
        return _html("<br/>".join(lines) + _error_lines(self.failures.get(node.name, [])))

    def _block_label(self, unit: Unit) -> str:
        ins = ", ".join(dims(self.shapes.get(i)) for i in self.view.entries(unit))
        outs = ", ".join(dims(self.shapes.get(o)) for o in self.view.exits(unit))
        lines = [f"<b>{_e(unit.title(unit.scope))}</b>", _e(unit.block),
                 f'<font point-size="9">{_e(ins)} → {_e(outs)}</font>']
        params = self.view.params_of(unit.members)
        if params:
            lines.append(f'<font point-size="9">{params:,} params</font>')
        return _html("<br/>".join(lines))

    def _op_text(self, node: Node) -> str:
        """The op's label, with what the shapes tell when they are known; its kind when the
        layer is invalid (a label of arguments that do not fit the op, such as a 3-d kernel
        on conv2d, cannot be formed)."""
        if node.op is None:
            return node.kind
        x, y = [self.shapes.get(i) for i in node.inputs], self.shapes.get(node.name)
        try:
            if y is None or None in x:
                return node.op.label()
            return node.op.label_at(x, y)  # type: ignore[arg-type]
        except ShapeError:
            return node.kind

    def _tooltip(self, unit: Unit) -> str:
        if unit.group is not None:
            params = ", ".join(f"{k}={v}" for k, v in unit.group.params.items())
            return f"{unit.group.name}: {unit.group.block}({params})"
        node = unit.members[0]
        text = self._op_text(node)
        return f"{node.name}: {text} → {dims(self.shapes.get(node.name))}"

    def _edges(self, dot: graphviz.Digraph) -> None:
        """One edge per producer and consumer unit, labelled with the producer's shape.

        The spine (a node's first input, when the node is that input's first reader) weighs
        more, so the main path runs straight and branches (shortcuts) bend around it."""
        seen: set[tuple[str, str]] = set()
        for node in self.graph.nodes.values():
            dst = self.unit_of[node.name]
            for src in node.inputs:
                head = self.unit_of[src]
                if head is dst or (src, dst.id) in seen:
                    continue
                seen.add((src, dst.id))
                attrs = {"label": dims(self.shapes.get(src))}
                if src == node.inputs[0] and self.readers[src][0] == node.name:
                    attrs["weight"] = "8"
                elif self._is_merge(node):  # pulls a branch's tail down to where it joins
                    attrs["weight"] = "2"
                if src not in self.shapes:
                    attrs.update(color=GREY, fontcolor=GREY, style="dashed")
                elif dst.id in self.training_only:
                    attrs["style"] = "dashed"
                if self.states[dst.id] == "error":
                    attrs.update(color=RED, fontcolor=RED, penwidth="1.5")
                dot.edge(head.id, dst.id, **attrs)
            self._tie_edge(dot, node, dst)

    def _tie_edge(self, dot: graphviz.Digraph, node: Node, dst: Unit) -> None:
        """A dotted line from the layer whose weight `node` shares, outside the data flow
        (it does not pull the layout)."""
        if node.tie is None or self.unit_of[node.tie] is dst:
            return
        dot.edge(self.unit_of[node.tie].id, dst.id, label="tied weight", style="dotted",
                 color=GREY, fontcolor=GREY, constraint="false", arrowhead="none")

    @staticmethod
    def _is_merge(node: Node) -> bool:
        return node.op is not None and node.op.kind() in MERGE_SIGNS

    def _caption(self) -> str:
        """The network's name and totals; for an invalid spec, the error count and the
        errors that concern no drawn layer."""
        title = f"<b>{_e(self.graph.name)}</b>"
        if self.errors or self.report is None:
            count = f"{self.errors} error{'s' if self.errors != 1 else ''}"
            lines = [f'{title}   <font color="{RED}">{count}</font>']
            lines += [f'<font color="{RED}" point-size="11">{_e(e.where)}: {_e(e.text)}</font>'
                      for e in self.loose]
            return _html("<br align=\"left\"/>".join(lines) + "<br align=\"left\"/>")
        return _html(f'{title}   <font point-size="12">{self.report.params:,} params · '
                     f"{human(self.report.macs)} MACs</font>")

    def _legend(self, families: set[str]) -> str:
        """An HTML table: a swatch and a name per style drawn."""
        cells = "".join(
            f'<tr><td width="14" height="10" bgcolor="{fill}" color="{line}" border="1"></td>'
            f'<td align="left"><font point-size="9">{_e(text)}</font></td></tr>'
            for key, (text, fill, line) in STYLES.items() if key in families)
        return _html(f'<table border="0" cellborder="0" cellspacing="3" cellpadding="1">{cells}</table>')


def _error_lines(messages: Iterable[str]) -> str:
    """Error messages under a label, wrapped, in red."""
    lines = [line for m in messages for line in textwrap.wrap(m, WRAP)]
    return "".join(f'<br/><font color="{RED}" point-size="9">{_e(line)}</font>' for line in lines)


def _e(text: object) -> str:
    return html.escape(str(text), quote=False)


def _html(text: str) -> str:
    """An HTML-like graphviz label (the python package passes `<...>` through unquoted)."""
    return f"<{text}>"
