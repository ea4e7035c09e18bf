"""The drawing backend: every zoo spec rendered by the real `dot` at depths 0, 1 and full, the
DOT source and the SVG parsed back (nodes, edge shapes, clusters, legend), broken specs,
Graphviz missing, the `netspec draw` command, and golden `.dot` files.

    python3 tests/test_draw.py --regen    # rewrite tests/golden/{lenet5,residual_block}.dot
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import graphviz
import pytest
from click.testing import CliRunner
from tiers import zoo

import netspec
from netspec.api import diagnose, graph_of
from netspec.backends import drawing
from netspec.backends.drawing import RED, STYLES, GraphvizMissing, dims, to_digraph, write
from netspec.ir import Graph

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
BAD = ROOT / "tests" / "bad"
ZOO = sorted((ROOT / "specs").glob("*.yaml"))
GOLDENS = {"lenet5": ROOT / "specs" / "lenet5.yaml",
           "residual_block": GOLDEN / "residual_block.yaml"}
LEGEND = "(legend)"
SVG = "{http://www.w3.org/2000/svg}"
DOT = pytest.mark.needs("dot")  # renders with Graphviz's `dot`



def draw(source: str | Path, depth: int | None = None, rankdir: str = "TB") -> graphviz.Digraph:
    """What `netspec.draw` does: analyse leniently, then draw."""
    spec, report, errors = diagnose(source)
    assert spec is not None, errors
    return to_digraph(graph_of(spec), report, errors, depth=depth, rankdir=rankdir)


def shapes_of(source: str | Path) -> dict[str, str]:
    """Every valid layer's (and input's) shape as `netspec.check` infers it, as drawn."""
    report = netspec.check(source)
    return {name: dims(shape) for name, shape in
            [*report.inputs.items(), *((r.name, r.shape) for r in report.layers)]}


def graph(source: str | Path) -> Graph:
    spec, _, _ = diagnose(source)
    assert spec is not None
    return graph_of(spec)


def level(g: Graph, group: str) -> int:
    parent = g.groups[group].parent
    return 0 if parent is None else 1 + level(g, parent)


# -- reading the DOT source and the SVG back ------------------------------------------------

ID = r'("(?:[^"\\]|\\.)*"|[\w.]+)'
NODE = re.compile(rf"^\t*{ID} \[(.*)\]$")
EDGE = re.compile(rf"^\t*{ID} -> {ID} \[(.*)\]$")
SUBGRAPH = re.compile(rf"^\t*subgraph {ID} \{{$")
ATTR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|<.*?>(?= \w+=|$)|[^\s"<]+)')


def _unquote(text: str) -> str:
    return text[1:-1].replace('\\"', '"') if text.startswith('"') else text


@dataclass
class Dot:
    """What a DOT source declares: nodes (with attributes and enclosing cluster), edges
    (with attributes) and clusters (with their parent cluster)."""

    nodes: dict[str, dict[str, str]] = field(default_factory=dict)
    cluster_of: dict[str, str | None] = field(default_factory=dict)
    edges: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    clusters: dict[str, str | None] = field(default_factory=dict)

    @property
    def layer_nodes(self) -> dict[str, dict[str, str]]:
        return {k: v for k, v in self.nodes.items() if k != LEGEND}


def parse_dot(source: str) -> Dot:
    out = Dot()
    stack: list[str | None] = [None]
    for line in source.splitlines():
        attrs = lambda text: {k: _unquote(v) for k, v in ATTR.findall(text)}  # noqa: E731
        if m := SUBGRAPH.match(line):
            name = _unquote(m.group(1))
            if name.startswith("cluster_"):
                out.clusters[name] = stack[-1]
            stack.append(name if name.startswith("cluster_") else stack[-1])
        elif line.strip() == "{":  # an anonymous subgraph (rank constraints)
            stack.append(stack[-1])
        elif line.strip() == "}":
            stack.pop()
        elif m := EDGE.match(line):
            out.edges.append((_unquote(m.group(1)), _unquote(m.group(2)), attrs(m.group(3))))
        elif (m := NODE.match(line)) and m.group(1) not in ("graph", "node", "edge"):
            name = _unquote(m.group(1))
            out.nodes[name] = attrs(m.group(2))
            out.cluster_of[name] = stack[-1]
    return out


@dataclass
class Svg:
    """The rendered picture: node titles with their texts, edges, cluster titles."""

    nodes: dict[str, list[str]]
    edges: list[tuple[str, str, list[str]]]
    clusters: set[str]


def parse_svg(path: Path) -> Svg:
    nodes: dict[str, list[str]] = {}
    edges: list[tuple[str, str, list[str]]] = []
    clusters: set[str] = set()
    for g in ET.parse(path).getroot().iter(f"{SVG}g"):
        title = g.findtext(f"{SVG}title") or ""
        texts = [t.text or "" for t in g.iter(f"{SVG}text")]
        kind = g.get("class")
        if kind == "node":
            nodes[title] = texts
        elif kind == "edge":
            src, dst = title.split("->")
            edges.append((src, dst, texts))
        elif kind == "cluster":
            clusters.add(title)
    return Svg(nodes, edges, clusters)


def render_svg(dot: graphviz.Digraph, tmp_path: Path, name: str = "net") -> Svg:
    path = write(dot, tmp_path / f"{name}.svg")
    return parse_svg(path)


# -- the zoo --------------------------------------------------------------------------------

TIED = "tied weight"
"""The label of the dotted line from a weight's layer to a layer that shares it."""


@DOT
@pytest.mark.parametrize("path", zoo(ZOO), ids=lambda p: p.stem)
def test_zoo_at_full_depth(path: Path, tmp_path: Path):
    """One node per layer and input (merges included), one edge per tensor read, labelled with
    the shape `netspec check` gives its producer, a dotted line per tied weight, one cluster
    per block instance (nested as the instances are), and a legend of the families drawn."""
    g, shapes = graph(path), shapes_of(path)
    dot = parse_dot(draw(path).source)
    svg = render_svg(draw(path), tmp_path)

    assert set(dot.layer_nodes) == set(g.nodes) == set(svg.nodes) - {LEGEND}
    assert len(dot.layer_nodes) == len(netspec.check(path).layers) + len(g.inputs)
    ties = {(n.tie, n.name) for n in g.nodes.values() if n.tie}
    assert {(s, d) for s, d, a in dot.edges if a["label"] == TIED} == ties
    assert {(s, d) for s, d, texts in svg.edges if texts == [TIED]} == ties
    data = [(s, d, a) for s, d, a in dot.edges if a["label"] != TIED]
    wanted = {(i, n.name) for n in g.nodes.values() for i in n.inputs}
    assert {(s, d) for s, d, _ in data} == wanted
    assert len(data) == len(wanted)
    for src, _, attrs in data:
        assert attrs["label"] == shapes[src]
    assert {(s, d) for s, d, texts in svg.edges if texts != [TIED]} == wanted
    for src, _, texts in svg.edges:
        assert texts in ([shapes[src]], [TIED])

    assert dot.clusters == {f"cluster_{name}": group.parent and f"cluster_{group.parent}"
                            for name, group in g.groups.items()}
    assert svg.clusters == set(dot.clusters)
    for node in g.nodes.values():
        assert dot.cluster_of[node.name] == (f"cluster_{node.groups[-1]}" if node.groups else None)

    families = {STYLES[n.op.family][0] for n in g.layers() if n.op and n.op.family in STYLES}
    assert set(svg.nodes[LEGEND]) == families | {"input / output"}


@DOT
@pytest.mark.parametrize("depth", [0, 1])
@pytest.mark.parametrize("path", zoo(ZOO), ids=lambda p: p.stem)
def test_zoo_collapsed(path: Path, depth: int, tmp_path: Path):
    """Below the collapse depth no cluster is left: each instance there is one node (or rolls
    into the identical one before it), showing its in -> out shapes; layers outside stay."""
    g, shapes = graph(path), shapes_of(path)
    dot = parse_dot(draw(path, depth=depth).source)
    svg = render_svg(draw(path, depth=depth), tmp_path)

    assert set(dot.clusters) == {f"cluster_{k}" for k in g.groups if level(g, k) < depth}
    assert svg.clusters == set(dot.clusters)
    blocks = {k for k in dot.layer_nodes if k.endswith(" (block)")}
    assert set(dot.layer_nodes) - blocks == {n.name for n in g.nodes.values()
                                             if len(n.groups) <= depth}
    assert set(svg.nodes) - {LEGEND} == set(dot.layer_nodes)
    at_depth = [k for k in g.groups if level(g, k) == depth]
    rolled = 0
    for block in blocks:
        assert block.removesuffix(" (block)") in at_depth
        text = " ".join(svg.nodes[block])
        assert "→" in text
        found = re.search(r"×(\d+)", text)
        rolled += int(found.group(1)) if found else 1
    assert rolled == len(at_depth)
    for src, _, attrs in dot.edges:
        if attrs["label"] == TIED:
            continue
        if src in shapes:
            assert attrs["label"] == shapes[src]
        else:  # leaves a collapsed instance: the shape of one of its block's layers
            kind = g.groups[src.removesuffix(" (block)")].block
            assert attrs["label"] in {shapes[n.name] for n in g.nodes.values()
                                      if len(n.groups) > depth and g.groups[n.groups[depth]].block == kind}
    if not g.groups:
        assert draw(path, depth=depth).source == draw(path).source


def test_resnet50_at_depth_0_is_its_stages():
    path = ROOT / "specs" / "resnet50.yaml"
    report = netspec.check(path)
    dot = parse_dot(draw(path, depth=0).source)
    assert list(dot.layer_nodes) == [
        "input", "stem1 (block)", "layer1 (block)", "layer2 (block)", "layer3 (block)",
        "layer4 (block)", "avgpool1", "flatten1", "fc"]
    assert not dot.clusters
    label = dot.nodes["layer3 (block)"]["label"]
    params = sum(r.params for r in report.layers if r.name.startswith("layer3."))
    for text in ("<b>layer3</b>", "bottleneck (repeat 6)", "512x28x28 → 1024x14x14",
                 f"{params:,} params"):
        assert text in label
    assert [(s, d, a["label"]) for s, d, a in dot.edges][:3] == [
        ("input", "stem1 (block)", "3x224x224"), ("stem1 (block)", "layer1 (block)", "64x56x56"),
        ("layer1 (block)", "layer2 (block)", "256x56x56")]
    assert dot.nodes["fc"]["penwidth"] == "3"  # the output stands out


def test_resnet_at_depth_1_rolls_identical_blocks_inside_each_stage():
    path = ROOT / "specs" / "resnet50.yaml"
    report = netspec.check(path)
    dot = parse_dot(draw(path, depth=1).source)
    assert set(dot.clusters) == {"cluster_stem1", *(f"cluster_layer{k}" for k in range(1, 5))}
    label = dot.nodes["layer3.1 (block)"]["label"]
    params = sum(r.params for r in report.layers if re.match(r"layer3\.[1-5]\.", r.name))
    for text in ("<b>1–5</b>", "bottleneck ×5", "1024x14x14 → 1024x14x14", f"{params:,} params"):
        assert text in label
    assert "×" not in dot.nodes["layer3.0 (block)"]["label"]
    # resnet152 at depth 1 fits a screen: each stage is its first block and the rest rolled
    deep = parse_dot(draw(ROOT / "specs" / "resnet152.yaml", depth=1).source)
    assert sum(1 for n in deep.layer_nodes if n.endswith("(block)")) == 8
    assert "bottleneck ×35" in deep.nodes["layer3.1 (block)"]["label"]


def test_nested_blocks_collapse_inside_their_cluster():
    """vgg16's stages hold `conv` blocks: at depth 1 the stages stay clusters and the conv
    blocks become nodes, the identical ones rolled (conv2–3 ×2 in stage3)."""
    path = ROOT / "specs" / "vgg16.yaml"
    dot = parse_dot(draw(path, depth=1).source)
    assert dot.clusters == {f"cluster_stage{i}": None for i in range(1, 6)}
    assert dot.cluster_of["stage3.conv1 (block)"] == "cluster_stage3"
    assert "conv2–3</b>" in dot.nodes["stage3.conv2 (block)"]["label"]
    assert "conv ×2" in dot.nodes["stage3.conv2 (block)"]["label"]
    assert "stage3.conv3 (block)" not in dot.nodes
    # first conv of a stage changes the width (other parameter count): not rolled with the rest
    assert "×" not in dot.nodes["stage3.conv1 (block)"]["label"]
    full = parse_dot(draw(path).source)
    assert full.clusters["cluster_stage3.conv1"] == "cluster_stage3"
    assert full.cluster_of["stage3.conv1.conv"] == "cluster_stage3.conv1"


# -- what nodes and edges show --------------------------------------------------------------

def test_layer_nodes_show_name_op_and_params():
    dot = parse_dot(draw(ROOT / "specs" / "lenet5.yaml").source)
    conv2 = dot.nodes["conv2"]["label"]
    assert "conv2" in conv2 and "conv 5x5, 16" in conv2 and "2,416 params" in conv2
    assert "params" not in dot.nodes["relu1"]["label"]  # zero params: not shown
    assert dot.nodes["input"]["fillcolor"] == STYLES["io"][1] and "1x32x32" in dot.nodes["input"]["label"]
    assert dot.nodes["conv2"]["fillcolor"] == STYLES["conv"][1]
    assert dot.nodes["maxpool1"]["fillcolor"] == STYLES["pool"][1]
    assert dot.nodes["fc3"]["penwidth"] == "3" and "output 10" in dot.nodes["fc3"]["label"]


def test_merges_are_small_signs_and_inputs_start_together():
    text = """
        name: gated
        inputs: {image: [3, 32, 32], mask: [1, 32, 32]}
        outputs: [logits]
        layers:
          - {conv2d: {out: 16, kernel: 3, padding: 1}, from: image, name: feat}
          - {conv2d: {out: 16, kernel: 1}, from: mask}
          - sigmoid
          - mul: [feat, sigmoid1]
          - concat: [mul1, feat]
          - add: [cat1, cat1]
          - flatten
          - linear: 10
            name: logits
    """
    source = draw(textwrap.dedent(text)).source
    dot = parse_dot(source)
    for name, sign in (("mul1", "×"), ("cat1", "‖"), ("add1", "+")):
        assert dot.nodes[name]["shape"] == "circle" and dot.nodes[name]["label"] == sign
        assert dot.nodes[name]["fillcolor"] == STYLES["merge"][1]
        assert name in dot.nodes[name]["tooltip"]
    assert re.search(r"\{\s*graph \[rank=min\]\s*image \[.*\]\s*mask \[", source)
    assert [d for s, d, _ in dot.edges if s == "cat1"] == ["add1"]  # one edge per tensor read


def test_attention_shows_its_heads_and_a_tied_weight_its_source():
    """Attention nodes say heads x head_dim (inferred from the width) and causal; token
    inputs say their vocabulary; a tied weight is a dotted line that does not pull the
    layout."""
    text = """
        name: tiny gpt
        input: {tokens: [16], vocab: 100}
        layers:
          - embedding: [100, 32]
            name: wte
          - multihead_attention: {heads: 4, kv_heads: 2, causal: true}
          - linear: {out: 100, bias: false}
            tie: wte
    """
    dot = parse_dot(draw(textwrap.dedent(text)).source)
    assert "attention 4x8, kv 2, causal" in dot.nodes["attn1"]["label"]
    assert dot.nodes["attn1"]["fillcolor"] == STYLES["attention"][1]
    assert "16 token ids &lt; 100" in dot.nodes["input"]["label"]
    tie = [a for s, d, a in dot.edges if (s, d) == ("wte", "fc1")]
    assert tie == [{"label": "tied weight", "style": "dotted", "color": tie[0]["color"],
                    "fontcolor": tie[0]["fontcolor"], "constraint": "false",
                    "arrowhead": "none"}]


def test_rankdir_and_arguments_are_checked():
    lenet = ROOT / "specs" / "lenet5.yaml"
    assert "rankdir=LR" in draw(lenet, rankdir="LR").source
    with pytest.raises(ValueError, match="rankdir"):
        draw(lenet, rankdir="XY")
    with pytest.raises(ValueError, match="depth"):
        draw(lenet, depth=-1)


def test_every_golden_dot_file_is_checked():
    assert {p.stem for p in GOLDEN.glob("*.dot")} == set(GOLDENS)


@pytest.mark.parametrize("name", sorted(GOLDENS))
def test_golden_dot(name: str, tmp_path: Path):
    """The DOT source is stable: `netspec draw -o x.dot` writes the golden file exactly, so a
    change shows in its diff."""
    out = tmp_path / "x.dot"
    result = CliRunner().invoke(_cli(), ["draw", str(GOLDENS[name]), "-o", str(out)])
    assert result.exit_code == 0, result.output
    expected = (GOLDEN / f"{name}.dot").read_text(encoding="utf-8")
    assert out.read_text(encoding="utf-8") == expected, "run python3 tests/test_draw.py --regen"


@pytest.mark.parametrize("name", sorted(GOLDENS))
def test_golden_dot_draws_what_check_reports(name: str):
    """The golden file itself is right, read against `netspec check --format json`: one node
    per input and layer, in the cluster of its block; one edge per tensor read, labelled with
    its producer's shape; each node's tooltip `name: label → shape`, its parameter count when
    it has any; the outputs drawn heavier; the totals in the title. So a wrong golden that
    --regen wrote cannot pass."""
    result = CliRunner().invoke(_cli(), ["check", str(GOLDENS[name]), "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    shapes = {**report["inputs"], **{r["name"]: r["shape"] for r in report["layers"]}}
    shown = {k: "x".join(map(str, shape)) for k, shape in shapes.items()}
    source = (GOLDEN / f"{name}.dot").read_text(encoding="utf-8")
    dot = parse_dot(source)

    assert set(dot.layer_nodes) == set(shapes)
    assert sorted((s, d, a["label"]) for s, d, a in dot.edges) == sorted(
        (i, r["name"], shown[i]) for r in report["layers"] for i in r["inputs"])
    for key in report["inputs"]:
        assert dot.nodes[key]["tooltip"] == f"{key}: input → {shown[key]}"
        assert dot.cluster_of[key] is None
    for r in report["layers"]:
        node = dot.nodes[r["name"]]
        assert node["tooltip"] == f"{r['name']}: {r['label']} → {shown[r['name']]}"
        assert (f"{r['params']:,} params" in node["label"]) == (r["params"] > 0)
        assert (node.get("penwidth") == "3") == (r["name"] in report["outputs"])
        block, _, _ = r["name"].rpartition(".")
        assert dot.cluster_of[r["name"]] == (f"cluster_{block}" if block else None)
    [title] = [line for line in source.splitlines() if line.startswith("\tgraph [")]
    assert f"<b>{report['name']}</b>" in title and f"{report['params']:,} params" in title


# -- broken specs ---------------------------------------------------------------------------

@DOT
def test_a_failing_layer_is_red_with_its_error(tmp_path: Path):
    path = BAD / "kernel_larger_than_input.yaml"
    dot = parse_dot(draw(path).source)
    conv2 = dot.nodes["conv2"]
    assert conv2["color"] == RED and conv2["fillcolor"] == STYLES["error"][1]
    assert "needs at least 5x5 input but pool1" in conv2["label"]
    [(_, _, edge)] = [e for e in dot.edges if e[1] == "conv2"]
    assert edge["color"] == RED and edge["label"] == "6x4x4"
    svg = render_svg(draw(path), tmp_path)
    assert "needs at least 5x5 input but pool1" in " ".join(svg.nodes["conv2"])
    assert "error" in svg.nodes[LEGEND]
    assert "1 error" in [t.text for t in ET.parse(tmp_path / "net.svg").getroot().iter(f"{SVG}text")]


@DOT
def test_layers_after_a_failure_are_grey_and_failing_instances_stay_open(tmp_path: Path):
    path = BAD / "block_instance_error.yaml"  # stage.2.conv1 fails; stage.2.relu1 reads it
    for depth in (None, 0):
        dot = parse_dot(draw(path, depth=depth).source)
        assert dot.nodes["stage.2.conv1"]["color"] == RED
        after = dot.nodes["stage.2.relu1"]
        assert after["fillcolor"] == STYLES["unknown"][1] and "dashed" in after["style"]
        assert [e[2]["label"] for e in dot.edges if e[1] == "stage.2.relu1"] == ["?"]
        assert "cluster_stage.2" in dot.clusters
    dot = parse_dot(draw(path, depth=0).source)
    assert {"stage.0 (block)", "stage.1 (block)"} <= set(dot.nodes)
    svg = render_svg(draw(path, depth=0), tmp_path)
    assert {"not computed", "error", "block (collapsed)"} <= set(svg.nodes[LEGEND])


def test_every_readable_bad_spec_draws_with_its_errors():
    """Each error about a layer or block instance is written on it, with its hint; the others
    in the caption."""
    drawn = 0
    for path in sorted(BAD.glob("*.yaml")):
        spec, _, errors = diagnose(path)
        if spec is None:
            continue
        for depth in (None, 0):
            source = draw(path, depth=depth).source
            assert errors and f"{len(errors)} error" in source
            for error in errors:
                shown = f"{error.message}; {error.hint}" if error.hint else error.message
                first = textwrap.wrap(shown, drawing.WRAP)[0]
                assert drawing._e(first) in source, (path.name, error.message)
        drawn += 1
    assert drawn >= 30


# -- without Graphviz -----------------------------------------------------------------------

def test_without_dot_only_the_source_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    dot = draw(ROOT / "specs" / "lenet5.yaml")
    monkeypatch.setattr(drawing.shutil, "which", lambda _: None)
    with pytest.raises(GraphvizMissing) as info:
        write(dot, tmp_path / "lenet5.svg")
    assert "apt-get install graphviz" in str(info.value) and "brew install graphviz" in str(info.value)
    assert not (tmp_path / "lenet5.svg").exists()
    assert write(dot, tmp_path / "lenet5.dot").read_text() == dot.source


def test_a_dot_that_vanishes_is_reported_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """`which` finds it but running it fails (graphviz.ExecutableNotFound): same message."""
    monkeypatch.setattr(drawing.shutil, "which", lambda _: "/usr/bin/dot")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(GraphvizMissing, match="apt-get install graphviz"):
        write(draw(ROOT / "specs" / "lenet5.yaml"), tmp_path / "lenet5.png")


def test_unknown_formats_are_refused(tmp_path: Path):
    with pytest.raises(ValueError, match=r"\.svg, \.png, \.pdf or \.dot"):
        write(draw(ROOT / "specs" / "lenet5.yaml"), tmp_path / "lenet5.jpg")


@DOT
@pytest.mark.parametrize("fmt", ["png", "pdf"])
def test_bitmap_and_pdf_output(fmt: str, tmp_path: Path):
    path = write(draw(ROOT / "specs" / "lenet5.yaml"), tmp_path / f"lenet5.{fmt}")
    assert path.read_bytes()[:4] == {"png": b"\x89PNG", "pdf": b"%PDF"}[fmt]


def test_drawing_imports_no_torch():
    code = ("import sys; from netspec.api import diagnose, graph_of\n"
            "from netspec.backends.drawing import to_digraph\n"
            "s, r, e = diagnose(sys.argv[1]); to_digraph(graph_of(s), r, e).source\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(ROOT / "specs" / "resnet18.yaml")],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- the public API and the command ---------------------------------------------------------


def _cli():
    from netspec.cli import main

    return main




def test_api_draw_returns_the_digraph():
    lenet = ROOT / "specs" / "lenet5.yaml"
    dot = netspec.draw(lenet, depth=0, rankdir="LR", inputs=(1, 28, 28))
    assert isinstance(dot, graphviz.Digraph) and "rankdir=LR" in dot.source
    assert 'label="1x28x28"' in dot.source
    assert netspec.draw(netspec.load(lenet)).source == draw(lenet).source
    with pytest.raises(netspec.SpecError):
        netspec.draw(BAD / "yaml_tab.yaml")


def test_importing_netspec_imports_neither_graphviz_nor_torch():
    code = ("import sys, netspec; before = 'graphviz' in sys.modules\n"
            "netspec.draw(sys.argv[1]).source\n"
            "print(before, 'graphviz' in sys.modules, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(ROOT / "specs" / "lenet5.yaml")],
                         capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True", "False"]


@DOT
def test_cli_draws_to_the_named_file(tmp_path: Path):
    main = _cli()
    out = tmp_path / "lenet5.svg"
    result = CliRunner().invoke(main, ["draw", str(ROOT / "specs" / "lenet5.yaml"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert set(parse_svg(out).nodes) >= {"conv1", "fc3", LEGEND}
    result = CliRunner().invoke(main, ["draw", str(ROOT / "specs" / "resnet18.yaml"), "--depth", "0",
                                       "--rankdir", "LR", "--input", "3,128,128",
                                       "-o", str(tmp_path / "r.dot")])
    assert result.exit_code == 0, result.output
    source = (tmp_path / "r.dot").read_text()
    assert "rankdir=LR" in source and "layer4 (block)" in source and "3x128x128" in source


def test_cli_default_output_is_the_spec_stem_as_svg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    main = _cli()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(drawing.shutil, "which", lambda _: None)
    result = CliRunner().invoke(main, ["draw", str(ROOT / "specs" / "lenet5.yaml")])
    assert result.exit_code == 1 and "lenet5.svg" not in [p.name for p in tmp_path.iterdir()]
    assert "apt-get install graphviz" in result.output and "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)
    result = CliRunner().invoke(main, ["draw", str(ROOT / "specs" / "lenet5.yaml"), "-o", "net.dot"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "net.dot").read_text() == draw(ROOT / "specs" / "lenet5.yaml").source


@DOT
def test_cli_on_a_broken_spec_writes_the_picture_then_fails(tmp_path: Path):
    main = _cli()
    out = tmp_path / "broken.svg"
    result = CliRunner().invoke(main, ["draw", str(BAD / "kernel_larger_than_input.yaml"), "-o", str(out)])
    assert result.exit_code == 1
    assert out.exists() and "conv2" in parse_svg(out).nodes
    assert "error: conv2: needs at least 5x5 input but pool1 gives 4x4" in result.stderr
    unreadable = CliRunner().invoke(main, ["draw", str(BAD / "yaml_tab.yaml"), "-o", str(tmp_path / "t.svg")])
    assert unreadable.exit_code == 1 and not (tmp_path / "t.svg").exists()


def test_cli_usage_errors_exit_2(tmp_path: Path):
    main = _cli()
    lenet = str(ROOT / "specs" / "lenet5.yaml")
    for args in (["-o", str(tmp_path / "x.jpg")], ["--depth", "-1"], ["--rankdir", "XY"]):
        result = CliRunner().invoke(main, ["draw", lenet, *args])
        assert result.exit_code == 2, (args, result.output)


# -- golden files ---------------------------------------------------------------------------

def regen() -> None:
    """Rewrite the golden `.dot` files from the current backend; review the diff."""
    for name, spec in GOLDENS.items():
        path = GOLDEN / f"{name}.dot"
        path.write_text(draw(spec).source, encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--regen"]:
        sys.exit(__doc__)
    regen()
