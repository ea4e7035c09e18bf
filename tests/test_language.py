"""The spec language: short forms, names, inference of input sizes, graphs, blocks, repeat,
conditions and parameters. Expected values follow from the spec text and the conv formula."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import TypeAdapter, ValidationError

import netspec
from netspec.api import graph_of
from netspec.ops import OPS, any_layer_op

SPECS = Path(__file__).resolve().parent.parent / "specs"


def names(spec: netspec.Spec) -> list[str]:
    return [n.name for n in graph_of(spec).layers()]


def test_short_forms_normalise_to_the_canonical_model(spec_text):
    short = spec_text("""
        input: [3, 16, 16]
        layers:
          - conv2d: [8, 3, 2, 1]
          - maxpool2d: [3, 2]
          - leaky_relu: 0.2
          - flatten
          - linear: 10
    """)
    long = spec_text("""
        input: [3, 16, 16]
        layers:
          - conv2d: {out: 8, kernel: 3, stride: 2, padding: 1}
          - maxpool2d: {kernel: 3, stride: 2}
          - leaky_relu: {negative_slope: 0.2}
          - flatten: {}
          - linear: {out: 10}
    """)
    assert [n.op for n in graph_of(short).layers()] == [n.op for n in graph_of(long).layers()]
    conv = graph_of(short).layers()[0].op
    assert type(conv) is OPS["conv2d"] and (conv.out, conv.kernel, conv.stride) == (8, 3, 2)


def test_canonical_models_form_a_discriminated_union():
    adapter = TypeAdapter(any_layer_op())
    conv = adapter.validate_python({"op": "conv2d", "out": 4, "kernel": 3})
    assert type(conv) is OPS["conv2d"]
    assert type(adapter.validate_python({"op": "relu"})) is OPS["relu"]
    with pytest.raises(ValidationError, match="kernal"):
        adapter.validate_python({"op": "conv2d", "out": 4, "kernal": 3})
    with pytest.raises(ValidationError):
        adapter.validate_python({"op": "conv9d"})


def test_automatic_names_count_per_kind_and_skip_names_taken(spec_text):
    spec = spec_text("""
        input: [1, 8, 8]
        layers:
          - conv2d: [4, 3]
          - relu
          - conv2d: [4, 3]
            name: conv2
          - conv2d: [4, 1]
          - relu
    """)
    assert names(spec) == ["conv1", "relu1", "conv2", "conv3", "relu2"]


def test_input_channels_are_inferred_and_checked_when_given(spec_text):
    report = netspec.check(spec_text("""
        input: [5, 9, 9]
        layers:
          - conv2d: {out: 7, kernel: 3, in: 5}
          - flatten
          - linear: {out: 2, in: 343}
    """))
    assert report.layer("conv1").params == 7 * 5 * 3 * 3 + 7
    assert report.layer("fc1").params == (7 * 7 * 7) * 2 + 2
    with pytest.raises(netspec.SpecError, match="says 4 input channels but input gives 5"):
        netspec.check(spec_text("""
            input: [5, 9, 9]
            layers: [{conv2d: {out: 7, kernel: 3, in: 4}}]
        """))


def test_graphs_read_named_layers_with_several_inputs_and_outputs(spec_text):
    report = netspec.check(spec_text("""
        inputs: {image: [3, 8, 8], mask: [1, 8, 8]}
        outputs: [logits, gate]
        layers:
          - conv2d: {out: 4, kernel: 3, padding: 1}
            from: image
            name: feat
          - conv2d: {out: 4, kernel: 1}
            from: mask
          - sigmoid:
            name: gate
          - mul: [feat, gate]
          - concat: [mul1, feat, image]
          - adaptive_avgpool2d: 1
          - flatten
          - linear: 3
            name: logits
    """))
    assert report.outputs == {"logits": (3,), "gate": (4, 8, 8)}
    assert report.layer("cat1").shape == (4 + 4 + 3, 8, 8)
    assert report.layer("cat1").inputs == ["mul1", "feat", "image"]


def test_mul_broadcasts_channel_gates_like_torch(spec_text):
    report = netspec.check(spec_text("""
        input: [16, 8, 8]
        layers:
          - adaptive_avgpool2d: 1
          - conv2d: [16, 1]
          - sigmoid
          - mul: [input, sigmoid1]
    """))
    assert report.layer("mul1").shape == (16, 8, 8)


BLOCKS = """
    name: tiny
    input: [3, 32, 32]
    params: {width: 8}
    blocks:
      unit:
        params: {out: null, stride: 1}
        layers:
          - conv2d: {out: out, kernel: 3, stride: stride, padding: 1, bias: false}
          - batchnorm2d
          - conv2d: {out: out, kernel: 1, stride: stride, bias: false}
            from: input
            name: shortcut
            if: stride != 1
          - identity:
            from: input
            name: shortcut
            if: stride == 1
          - add: [bn1, shortcut]
    layers:
      - conv2d: {out: width, kernel: 3, padding: 1}
        name: stem
      - unit: {out: width}
        name: stage1
      - unit: {out: "width * 2", stride: "2 if i == 0 else 1"}
        repeat: 2
        name: stage2
"""


def test_blocks_expand_with_scoped_names_and_parameters(spec_text):
    spec = spec_text(BLOCKS)
    assert names(spec) == [
        "stem",
        "stage1.conv1", "stage1.bn1", "stage1.shortcut", "stage1.add1",
        "stage2.0.conv1", "stage2.0.bn1", "stage2.0.shortcut", "stage2.0.add1",
        "stage2.1.conv1", "stage2.1.bn1", "stage2.1.shortcut", "stage2.1.add1",
    ]
    report = netspec.check(spec)
    # stage2.0 halves 32 -> (32 + 2*1 - 3)//2 + 1 = 16 and projects with a 1x1/2 conv
    assert report.layer("stage2.0.conv1").shape == (16, (32 + 2 - 3) // 2 + 1, 16)
    assert report.layer("stage2.0.shortcut").op == "conv2d"
    assert report.layer("stage2.0.shortcut").params == 16 * 8 * 1 * 1
    assert report.layer("stage2.1.shortcut").op == "identity"
    assert report.layer("stage2.1.conv1").params == 16 * 16 * 3 * 3
    assert report.layer("stage1.shortcut").inputs == ["stem"]
    assert report.layer("stage2.1.shortcut").inputs == ["stage2.0.add1"]


def test_a_block_reads_several_inputs_and_names_its_output(spec_text):
    report = netspec.check(spec_text("""
        input: [4, 8, 8]
        blocks:
          fuse:
            params: {c: 4}
            inputs: [a, b]
            output: mixed
            layers:
              - concat: [a, b]
              - conv2d: [c, 1]
                name: mixed
              - relu
        layers:
          - conv2d: [4, 3, 1, 1]
          - fuse: {c: 6}
            from: [input, conv1]
          - relu
    """))
    assert report.layer("fuse1.cat1").shape == (8, 8, 8)
    assert report.layer("relu1").inputs == ["fuse1.mixed"]


def test_repeat_chains_copies_and_names_them_by_index(spec_text):
    spec = spec_text("""
        input: [2, 16]
        layers:
          - conv1d: {out: "4 * (i + 1)", kernel: 3}
            repeat: 3
            name: c
          - relu
    """)
    report = netspec.check(spec)
    assert [r.name for r in report.layers] == ["c.0", "c.1", "c.2", "relu1"]
    assert [r.shape for r in report.layers[:3]] == [(4, 14), (8, 12), (12, 10)]
    assert report.layer("c.1").inputs == ["c.0"]


def test_unnamed_repeats_take_automatic_names(spec_text):
    spec = spec_text("""
        input: [2, 16]
        layers:
          - conv1d: [2, 3]
            repeat: 2
    """)
    assert names(spec) == ["conv1", "conv2"]


def test_a_block_parameter_default_may_use_earlier_parameters(spec_text):
    report = netspec.check(spec_text("""
        input: [8, 4, 4]
        blocks:
          squeeze:
            params: {c: null, mid: "max(2, c // 4)"}
            layers: [{conv2d: [mid, 1]}, {conv2d: [c, 1]}]
        layers: [{squeeze: {c: 16}}]
    """))
    assert report.layer("squeeze1.conv1").shape == (16 // 4, 4, 4)


def test_frozen_layers_count_as_untrainable(spec_text):
    report = netspec.check(spec_text("""
        input: [3, 8, 8]
        layers:
          - conv2d: [4, 3]
            frozen: true
          - flatten
          - linear: 2
    """))
    conv = 4 * 3 * 9 + 4
    assert report.params == conv + 4 * 6 * 6 * 2 + 2
    assert report.trainable_params == report.params - conv


def test_words_that_are_not_parameters_stay_literal(spec_text):
    report = netspec.check(spec_text("""
        input: [3, 8, 8]
        blocks:
          up:
            params: {mode: nearest}
            layers: [{upsample: {scale: 2, mode: mode}}, {conv2d: {out: 3, kernel: 3, padding: same}}]
        layers: [{up: {mode: bilinear}}]
    """))
    assert report.layer("up1.up1").label.endswith("bilinear")
    assert report.layer("up1.conv1").shape == (3, 16, 16)


def test_load_accepts_a_path_text_or_dict_alike():
    path = SPECS / "lenet5.yaml"
    from_path = netspec.check(netspec.load(path)).to_dict()
    from_text = netspec.check(netspec.load(path.read_text())).to_dict()
    import yaml

    from_dict = netspec.check(netspec.load(yaml.safe_load(path.read_text()))).to_dict()
    def rows(report: dict) -> list[dict]:
        return [{k: v for k, v in row.items() if k != "line"} for row in report["layers"]]

    assert rows(from_path) == rows(from_text) == rows(from_dict)
    conv1 = next(n for n, line in enumerate(path.read_text().splitlines(), 1) if "conv2d" in line)
    assert from_path["layers"][0]["line"] == from_text["layers"][0]["line"] == conv1
    assert from_path["params"] == 61_706


def test_check_at_another_input_size(spec_text):
    spec = spec_text("""
        input: [1, 32, 32]
        layers: [{conv2d: [2, 5]}, {maxpool2d: 2}]
    """)
    assert netspec.check(spec, inputs=(1, 28, 28)).layers[-1].shape == (2, (28 - 5 + 1) // 2,
                                                                         (28 - 5 + 1) // 2)
    assert netspec.check(spec, inputs={"input": (1, 9, 13)}).layers[-1].shape == (2, 2, 4)


def automatic_names_table() -> str:
    """The README's table of automatic layer names, from the op registry: one row per name
    prefix that differs from its op's name, and one row for the ops named after themselves."""
    by_stem: dict[str, list[str]] = {}
    for kind, cls in OPS.items():
        by_stem.setdefault(cls.stem(), []).append(kind)
    rows = ["| automatic names | ops |", "|---|---|"]
    own = []
    for stem, kinds in by_stem.items():
        if kinds == [stem]:
            own.append(stem)
        else:
            rows.append(f"| `{stem}1`, `{stem}2`, ... | {', '.join(f'`{k}`' for k in kinds)} |")
    rows.append(f"| the op's name: `relu1`, `add1`, ... | {', '.join(f'`{k}`' for k in own)} |")
    return "\n".join(rows)


def test_the_readme_lists_every_op_s_automatic_name():
    readme = (SPECS.parent / "README.md").read_text(encoding="utf-8")
    table = automatic_names_table()
    assert table in readme, f"README.md's automatic-names table is out of date; it should be:\n{table}"


def test_automatic_names_count_per_prefix(spec_text):
    spec = spec_text("""
        input: [3, 16, 16]
        layers:
          - conv2d: {out: 8, kernel: 3, padding: 1}
          - conv_transpose2d: {out: 8, kernel: 2, stride: 2}
          - upsample: {scale: 0.5}
          - concat: [input, up1]
          - conv2d: {out: 8, kernel: 1}
          - dropout2d: 0.1
          - dropout: 0.1
    """)
    assert names(spec) == ["conv1", "deconv1", "up1", "cat1", "conv2", "dropout1", "dropout2"]


def test_an_op_with_several_outputs_gives_a_layer_per_piece(spec_text):
    """`chunk` or `split` without an `index` expands to `name.0`, `name.1`, ...: ShuffleNet's
    channel split, each half read by name; the compiled pieces are torch.chunk's."""
    import torch

    text = """
        input: [6, 4, 4]
        layers:
          - chunk: 2
            name: halves
          - conv2d: [3, 1]
            from: halves.1
          - concat: [halves.0, conv1]
          - split: {sizes: [1, 5]}
            name: parts
        outputs: [parts]
    """
    report = netspec.check(spec_text(text))
    assert [r.name for r in report.layers] == ["halves.0", "halves.1", "conv1", "cat1",
                                               "parts.0", "parts.1"]
    assert report.layer("halves.1").shape == (6 // 2, 4, 4)
    assert report.outputs == {"parts.0": (1, 4, 4), "parts.1": (5, 4, 4)}
    model = netspec.build(spec_text(text))
    x = torch.randn(2, 6, 4, 4)
    first, second = x.chunk(2, dim=1)
    joined = torch.cat([first, model.conv1(second)], dim=1)
    got = model(x)
    torch.testing.assert_close(got[0], joined[:, :1])
    torch.testing.assert_close(got[1], joined[:, 1:])


def test_reading_every_piece_at_once_is_an_error(spec_text):
    with pytest.raises(netspec.SpecError) as caught:
        netspec.load(spec_text("""
            input: [6, 4, 4]
            layers:
              - chunk: 3
              - relu
        """))
    error, = caught.value.errors
    assert error.where.line == 4  # the relu
    assert "the layer before it, `chunk1`, has 3 outputs (`chunk1.0`, `chunk1.1`, `chunk1.2`)" \
        in error.message
    assert error.hint == "name the one it reads: `from: chunk1.0`"


@pytest.mark.parametrize(("line", "word"), [
    ("  - conv2d: {out: 8, kernal: 3}", "kernal"),             # an unknown key: the key
    ("  - conv2d: {out: 8, kernel: 9}", "9"),                  # a bad value: the value
    ("  - linaer: 10", "linaer"),                              # an unknown op: its name
    ("  - conv2d: {out: 8, kernel: 3, stride: [1, 1, 1]}", "[1, 1, 1]"),  # a flow list: all of it
])
def test_an_error_ends_where_the_text_it_is_about_ends(line: str, word: str):
    text = f"input: [3, 4, 4]\nlayers:\n{line}\n"
    errors = netspec.api.diagnose(text)[2]
    assert len(errors) == 1
    where = errors[0].where
    start = line.index(word) + 1
    assert (where.line, where.column, where.end_line, where.end_column) == \
        (3, start, 3, start + len(word))
