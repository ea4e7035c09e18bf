"""Many variants of one spec checked in process (a search loop): a spec loaded once is
expanded again per variant without its YAML being read again, and a block instance whose
expansion is one already done (the same block and arguments, the spec parameters its YAML
may read, its inputs' shapes where it may read them) is that expansion replayed under its
own name; and the analysis of the variant before lends its findings to each layer a
variant leaves as it was. Each test compares with every variant loaded from its file and
every instance expanded afresh (the replay turned off): the same layers, ops, inputs,
groups, positions and report."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

import netspec
from netspec.spec.expand import Expander

SPECS = Path(__file__).resolve().parent.parent / "specs"
NESTED = """\
name: nested
input: [3, 16, 16]
params: {k: 3, classes: 10}
blocks:
  squeeze:                    # reads its input's channels
    params: {ratio: 2}
    layers:
      - conv2d: {out: "max(1, cin // ratio)", kernel: 1}
      - relu
  unit:                       # reads no shape itself; the block it calls does
    params: {out: null}
    layers:
      - squeeze
      - conv2d: {out: out, kernel: k, padding: k // 2}    # `k`: the spec's parameter
      - {chunk: {chunks: 2, dim: 1}, name: halves}
      - concat: [halves.1, halves.0]
layers:
  - {unit: 8, name: a}
  - {unit: 8, name: b}        # it reads 8 channels, `a` 3: b is expanded, not replayed
  - {unit: 8, name: c}
  - {unit: {out: 8}, repeat: 3, name: d}
  - {unit: 6, frozen: true, name: e}
  - adaptive_avgpool2d: 1
  - flatten
  - linear: classes
"""


def picture(spec: netspec.Spec) -> tuple[Any, ...]:
    """All a spec's expansion gives: each node as passes read it, the block instances
    (groups) and the report."""
    graph = spec._graph
    nodes = [(n.name, n.kind, n.op, n.inputs, n.groups, n.frozen, n.init, n.tie, n.where)
             for n in graph.nodes.values()]
    groups = [(g.name, g.block, g.params, g.parent, g.call and g.call.at())
              for g in graph.groups.values()]
    return nodes, groups, graph.outputs, graph.shape_reads, netspec.check(spec).to_dict()


@pytest.fixture
def afresh(monkeypatch: pytest.MonkeyPatch):
    """Within its `with`, every block instance is expanded afresh."""
    class Afresh:
        def __enter__(self) -> None:
            monkeypatch.setattr(Expander, "instance_key", lambda *args: None)

        def __exit__(self, *exc: object) -> None:
            monkeypatch.undo()

    return Afresh()


VARIANTS = {
    "resnet50.yaml": [{"classes": c, "width_per_group": w}
                      for c, w in itertools.product((10, 1000), (16, 64))]
                     + [{"layers": [1, 2, 1, 2]}, {"groups": 2, "width_per_group": 32}],
    "efficientnet_b0.yaml": [{"depth_mult": 1.2}, {"width_mult": 0.5}, {"depth_mult": 1.0}],
    "densenet121.yaml": [{"growth": 16}, {"block_config": [2, 3, 2, 1]}],
    "swin_t.yaml": [{"depths": [2, 2, 2, 2]}, {"classes": 3}],
}


@pytest.mark.parametrize("name", VARIANTS)
def test_a_sweep_gives_what_loading_each_variant_gives(name: str, afresh):
    spec = netspec.load(SPECS / name)
    swept = [picture(netspec.load(spec, params=params)) for params in VARIANTS[name]]
    with afresh:
        want = [picture(netspec.load(SPECS / name, params=params)) for params in VARIANTS[name]]
    assert swept == want


def test_replayed_instances_follow_shapes_params_and_nesting(afresh):
    """`b` reads other channels than `a` (its squeeze's width differs: 3 // 2 and 8 // 2),
    `c` and the `d` copies the same as `b`; `e` is frozen; the spec's `k` changes every
    unit."""
    spec = netspec.load(NESTED)
    report = netspec.check(spec)
    assert [report.layer(f"{x}.squeeze1.conv1").shape[0] for x in "abc"] == [1, 4, 4]
    assert report.layer("e.conv1").node.frozen and not report.layer("c.conv1").node.frozen
    assert report.layer("d.2.halves.1").shape == (4, 16, 16)
    swept = [picture(netspec.load(spec, params={"k": k})) for k in (3, 5, 3, 1)]
    with afresh:
        want = [picture(netspec.load(NESTED, params={"k": k})) for k in (3, 5, 3, 1)]
    assert swept == want
    assert swept[1][-1]["params"] != swept[0][-1]["params"]


def test_limits_in_force_are_the_replay_s_too():
    """An instance expanded under the defaults is not replayed under a tighter limit
    (`k` set to its default: the instances are those of the spec as loaded)."""
    spec = netspec.load(NESTED)
    netspec.check(spec, params={"k": 3})
    tight = netspec.Limits(expression_length=10)
    with pytest.raises(netspec.SpecError, match=r"a\.squeeze1\.conv1: expression is longer"):
        netspec.check(spec, params={"k": 3}, limits=tight)
