"""Layer names torch gives modules: a non-negative integer (`name: 0`, as nn.Sequential and
nn.ModuleList name their children) is a layer name like an identifier, written as a YAML
integer or quoted alike, and read by `from:`, `outputs:`, a block's `output:` and `tie:`.
torch is the oracle: the built module's `state_dict` keys are nn.Sequential's."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from torch import nn

import netspec
from netspec.backends.source import python_source

SEQUENTIAL = """\
input: [3, 8, 8]
blocks:
  stage:
    layers:
      - {conv2d: {out: 4, kernel: 3, padding: 1}, name: 0}
      - {batchnorm2d: {}, name: 1}
      - {relu: {}, name: '2'}
layers:
  - {stage: {}, name: 0}
  - {stage: {}, name: 1}
  - {add: [0, 1], name: sum}
  - {conv2d: {out: 2, kernel: 1}, name: 2, from: 0}
outputs: [sum, 2]
"""


def torch_twin() -> nn.Module:
    """SEQUENTIAL's modules as torch would name them, in a Sequential of Sequentials."""
    def stage(c: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(c, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())

    return nn.Sequential(stage(3), stage(4), nn.Conv2d(4, 2, 1))


def test_integer_names_give_torch_s_state_dict_keys() -> None:
    built = netspec.build(SEQUENTIAL)
    assert list(built.state_dict()) == list(torch_twin().state_dict())
    report = netspec.check(SEQUENTIAL)
    assert list(report.outputs) == ["sum", "2"]


def test_an_integer_and_its_quoted_digits_are_one_name() -> None:
    text = "input: [3]\nlayers:\n  - {linear: 4, name: 0}\n  - {relu: {}, name: '0'}\n"
    with pytest.raises(netspec.SpecError) as info:
        netspec.load(text)
    assert "duplicate name `0` (first at line 3)" in info.value.errors[0].message


def test_from_reads_an_integer_named_layer() -> None:
    text = ("input: [3]\nlayers:\n  - {linear: 4, name: 0}\n  - {linear: 5, name: 1}\n"
            "  - {linear: 6, from: 0}\n")
    built = netspec.build(text)
    assert built.get_submodule("fc1").in_features == 4


@pytest.mark.parametrize(("name", "column"), [("'00'", 23), ("-1", 23), ("'1a'", 23),
                                              ("-a", 23), ("a.b", 23), ("'a b'", 23)])
def test_other_digit_names_are_refused(name: str, column: int) -> None:
    text = f"input: [3]\nlayers:\n  - {{linear: 4, name: {name}}}\n"
    with pytest.raises(netspec.SpecError) as info:
        netspec.load(text)
    error = info.value.errors[0]
    assert (error.where.line, error.where.column) == (3, column)
    assert "must be letters, digits, _ and -, first a letter or _ (`block1-0`), or an integer " \
        "such as 0" in error.message


def test_a_dotted_number_in_from_is_told_to_be_quoted() -> None:
    text = ("input: [3]\nblocks:\n  b:\n    layers: [{linear: 4, name: 0}]\nlayers:\n"
            "  - {b: {}, name: 1}\n  - {relu: {}, from: 1.0}\n")
    with pytest.raises(netspec.SpecError) as info:
        netspec.load(text)
    error = info.value.errors[0]
    assert error.message.endswith("an input is a layer name, found 1.0")
    assert error.hint == "quote it: `'1.0'` (YAML reads 1.0 as a number)"
    quoted = text.replace("from: 1.0", "from: '1.0'")
    assert list(netspec.check(quoted).outputs.values()) == [(4,)]


def test_a_block_s_output_may_be_an_integer_name() -> None:
    text = ("input: [3]\nblocks:\n  b:\n    output: 0\n    layers:\n"
            "      - {linear: 4, name: 0}\n      - {linear: 7, name: 1, from: input}\n"
            "layers:\n  - {b: {}, name: x}\n")
    assert list(netspec.check(text).outputs.values()) == [(4,)]


def test_the_python_export_reaches_integer_named_children(tmp_path: Path) -> None:
    code = python_source(SEQUENTIAL)
    assert 'self.add_module("0", nn.ModuleList())' in code
    assert 'x = getattr(self, "0")[0](x)' in code and '= getattr(self, "2")(_0_2)' in code
    path = tmp_path / "seq_net.py"
    path.write_text(code)
    spec = importlib.util.spec_from_file_location("seq_net", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    built = netspec.build(SEQUENTIAL).eval()
    written = module.Net().eval()
    assert list(written.state_dict()) == list(built.state_dict())
    written.load_state_dict(built.state_dict(), strict=True)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        for got, want in zip(written(x), built(x), strict=True):
            torch.testing.assert_close(got, want)


HYPHENATED = """\
input: [3, 8, 8]
blocks:
  stage:
    layers:
      - {conv2d: {out: 4, kernel: 3, padding: 1}, name: conv-a}
      - {relu: {}, name: '2'}
layers:
  - {stage: {}, name: block1-0}
  - {stage: {}, name: block1-1}
  - {add: [block1-0, block1-1], name: sum-1}
  - {conv2d: {out: 2, kernel: 1}, name: head-, from: block1-0}
outputs: [sum-1, head-]
"""


class _Hyphenated(nn.Module):
    """HYPHENATED's modules as torch names them (add_module takes any name without a dot,
    as torchvision's RegNet names its blocks `block1-0`)."""

    def __init__(self) -> None:
        super().__init__()
        for name, c in (("block1-0", 3), ("block1-1", 4)):
            stage = nn.Module()
            stage.add_module("conv-a", nn.Conv2d(c, 4, 3, padding=1))
            stage.add_module("2", nn.ReLU())
            self.add_module(name, stage)
        self.add_module("head-", nn.Conv2d(4, 2, 1))


def test_hyphenated_names_give_torch_s_keys_and_are_read_by_from_and_outputs(
        tmp_path: Path) -> None:
    built = netspec.build(HYPHENATED).eval()
    assert list(built.state_dict()) == list(_Hyphenated().state_dict())
    assert list(netspec.check(HYPHENATED).outputs) == ["sum-1", "head-"]
    code = python_source(HYPHENATED)
    assert 'getattr(self, "block1-0")' in code and 'self.add_module("head-", ' in code
    path = tmp_path / "hyphen_net.py"
    path.write_text(code)
    spec = importlib.util.spec_from_file_location("hyphen_net", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    written = module.Net().eval()
    written.load_state_dict(built.state_dict(), strict=True)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        for got, want in zip(written(x), built(x), strict=True):
            torch.testing.assert_close(got, want)


def test_a_block_s_output_may_be_hyphenated_and_never_dotted() -> None:
    text = ("input: [3]\nblocks:\n  b:\n    output: a-b\n    layers:\n"
            "      - {linear: 4, name: a-b}\n      - {linear: 7, name: c, from: input}\n"
            "layers:\n  - {b: {}, name: x}\n")
    assert list(netspec.check(text).outputs.values()) == [(4,)]
    with pytest.raises(netspec.SpecError) as info:
        netspec.load(text.replace("output: a-b", "output: a.b"))
    error = info.value.errors[0]
    assert (error.where.line, error.where.column) == (4, 13)
    assert error.message.endswith("must be letters, digits, _ and -, first a letter or _ "
                                  "(`block1-0`), or an integer such as 0, found 'a.b'")
