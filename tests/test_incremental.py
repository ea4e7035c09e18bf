"""Analysing again after an edit: what is reused must give what a fresh analysis gives.

- `analyse(graph, previous=report)` takes a layer's findings from the earlier report only
  when its op, inputs and tie are the same;
- a used block file is read once while its text stays the same, and its blocks replay
  the instances they expanded, unless the spec's own blocks take a name they call.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import netspec
from netspec.api import diagnose
from netspec.spec.source import editing, read_source

ROOT = Path(__file__).resolve().parent.parent
LENET = (ROOT / "specs" / "lenet5.yaml").read_text()


def reports(text: str, edited: str) -> tuple[netspec.Report, netspec.Report, netspec.Report]:
    """The report of `text`, of `edited` analysed after it, and of `edited` afresh."""
    before = diagnose(text)[1]
    assert before is not None
    after = diagnose(edited, previous=before)[1]
    fresh = diagnose(edited)[1]
    assert after is not None and fresh is not None
    return before, after, fresh


@pytest.mark.parametrize(("old", "new", "changed"), [
    ("classes: 10}", "classes: 7}", {"fc3"}),                        # the last layer only
    ("{out: 16, kernel: 5}", "{out: 12, kernel: 5}", {"conv2", "relu2", "maxpool2",
                                                      "flatten1", "fc1"}),
    # the relu after it reads the dropout; the layer after the relu, the same as before
    ("  - linear: 84\n", "  - linear: 84\n  - dropout: 0.1\n", {"dropout1", "relu4"}),
    # every layer up to the first linear, whose output is as long as before
    ("input: [1, 32, 32]", "input: [1, 36, 36]", {"input", "conv1", "relu1", "maxpool1",
                                                  "conv2", "relu2", "maxpool2", "flatten1",
                                                  "fc1"}),
])
def test_an_edit_reanalyses_the_layers_it_changes_and_no_other(old: str, new: str,
                                                               changed: set[str]):
    edited = LENET.replace(old, new)
    before, after, fresh = reports(LENET, edited)
    assert after.to_dict() == fresh.to_dict()
    assert [w.format() for w in after.warnings] == [w.format() for w in fresh.warnings]
    again = {n for n, step in after.steps.items() if before.steps.get(n) is not step}
    assert again == changed


def test_a_reused_layer_points_at_its_line_now():
    edited = "# a line above everything\n" + LENET
    before, after, fresh = reports(LENET, edited)
    assert all(after.steps[n] is before.steps[n] for n in after.steps)
    assert [w.format() for w in after.warnings] == [w.format() for w in fresh.warnings]
    assert after.warnings[0].where.line == before.warnings[0].where.line + 1
    assert [r.where.line for r in after.layers] == [r.where.line + 1 for r in before.layers]


def test_a_tied_layer_is_analysed_again():
    text = ("input: {tokens: [8], vocab: 50}\nlayers:\n  - embedding: {vocab: 50, dim: 16}\n"
            "    name: wte\n  - linear: 50\n    tie: wte\n")
    before, after, fresh = reports(text, text.replace("dim: 16", "dim: 16 "))
    assert after.steps["fc1"] is not before.steps["fc1"]
    assert after.to_dict() == fresh.to_dict()


def test_an_edited_block_file_is_read_again_even_at_the_same_size(tmp_path: Path):
    blocks = tmp_path / "blocks.yaml"
    spec = tmp_path / "net.yaml"
    spec.write_text("input: [3, 16, 16]\nuse: [blocks.yaml]\nlayers:\n  - unit\n  - unit\n")
    for kernel in (3, 5, 7, 3):  # rewritten at once, each text as long as the others
        blocks.write_text(f"blocks:\n  unit:\n    layers:\n      - conv2d: {{out: 3, kernel: {kernel}}}\n")
        side = 16 - 2 * (kernel - 1)
        assert netspec.check(spec).outputs == {"unit2.conv1": (3, side, side)}


def test_a_block_file_being_edited_is_read_as_the_editor_has_it(tmp_path: Path):
    blocks = tmp_path / "blocks.yaml"
    blocks.write_text("blocks:\n  unit:\n    layers:\n      - conv2d: {out: 3, kernel: 3}\n")
    spec = tmp_path / "net.yaml"
    spec.write_text("input: [3, 16, 16]\nuse: [blocks.yaml]\nlayers:\n  - unit\n")
    with editing({str(blocks.resolve()): blocks.read_text().replace("out: 3", "out: 9")}):
        assert netspec.check(read_source(spec)).outputs == {"unit1.conv1": (9, 14, 14)}
    assert netspec.check(spec).outputs == {"unit1.conv1": (3, 14, 14)}


def test_a_spec_s_own_block_that_a_used_block_calls_is_seen_as_edited(tmp_path: Path):
    (tmp_path / "lib.yaml").write_text("blocks:\n  outer:\n    layers:\n      - inner\n"
                                       "      - relu\n  inner:\n    layers:\n"
                                       "      - conv2d: {out: 4, kernel: 3}\n")
    spec = tmp_path / "net.yaml"
    for out in (8, 6, 8):
        spec.write_text(f"input: [3, 16, 16]\nuse: [lib.yaml]\nblocks:\n  inner:\n    layers:\n"
                        f"      - conv2d: {{out: {out}, kernel: 3}}\nlayers:\n  - outer\n  - outer\n")
        assert netspec.check(spec).outputs == {"outer2.relu1": (out, 12, 12)}
