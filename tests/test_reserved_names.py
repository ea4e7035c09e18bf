"""Layer names that would clash with Python or with torch's module attributes are refused
when the spec is loaded, not discovered as a traceback when it is built."""

from __future__ import annotations

import keyword

import pytest
import torch.fx

import netspec
from netspec.spec.expand import RESERVED


def test_reserved_names_cover_torchs_module_attributes_and_python_keywords():
    attributes = {n for n in dir(torch.fx.GraphModule) if not n.startswith("_")}
    attributes |= set(vars(torch.fx.GraphModule(torch.nn.Module(), torch.fx.Graph())))
    public = {n for n in attributes if not n.startswith("_")}
    assert public | set(keyword.kwlist) <= RESERVED


@pytest.mark.parametrize("name", ["for", "class", "forward", "train", "training", "to", "graph"])
def test_a_reserved_layer_name_is_a_positioned_error(name):
    text = f"input: [3, 8, 8]\nlayers:\n  - conv2d: [4, 3]\n    name: {name}\n"
    with pytest.raises(netspec.SpecError) as info:
        netspec.load(text)
    error = info.value.errors[0]
    assert (error.where.line, error.where.column) == (4, 11)
    assert f"layer name `{name}` is reserved" in error.message and error.hint == f"e.g. `{name}_`"
