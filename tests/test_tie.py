"""`tie: LAYER` makes a layer's weight the very tensor of an earlier layer's weight (GPT-2's
output projection and its token embedding): counted once, as torch counts parameters."""

from __future__ import annotations

import pytest
import torch

import netspec

TIED = """
name: tied
input: {tokens: [16], vocab: 100}
layers:
  - embedding: [100, 32]
    name: wte
  - layernorm: {}
  - linear: {out: 100, bias: false}
    tie: wte
"""


def test_a_tied_weight_is_one_tensor_counted_once():
    report = netspec.check(TIED)
    model = netspec.build(TIED, seed=0)
    assert model.fc1.weight is model.wte.weight
    assert report.params == sum(p.numel() for p in model.parameters())  # torch dedups
    assert report.params == 100 * 32 + 2 * 32  # the table, and layernorm's scale and shift
    assert report.layer("fc1").params == 0 and "tied to wte" in report.layer("fc1").label


def test_both_uses_train_the_one_tensor():
    model = netspec.build(TIED, seed=0)
    ids = torch.randint(0, 100, (4, 16), generator=torch.Generator().manual_seed(0))
    model(ids).sum().backward()
    grad = model.wte.weight.grad
    assert grad is not None and model.fc1.weight.grad is grad
    # the output projection alone gives every row a gradient; the lookup only the rows read
    unread = sorted(set(range(100)) - set(ids.flatten().tolist()))
    assert unread and grad[unread].abs().sum() > 0


def test_a_tied_state_loads_back():
    model = netspec.build(TIED, seed=0)
    state = model.state_dict()
    assert set(state) == {"wte.weight", "ln1.weight", "ln1.bias", "fc1.weight"}
    other = netspec.build(TIED, seed=1)
    other.load_state_dict(state)
    assert torch.equal(other.wte.weight, model.wte.weight) and other.fc1.weight is other.wte.weight


@pytest.mark.parametrize(("old", "new", "message"), [
    ("out: 100,", "out: 99,",
     "`tie: wte` shares wte's weight [100, 32], but this linear's weight is [99, 32]"),
    ("tie: wte", "tie: nope", "unknown layer `nope`"),
    ("tie: wte", "tie: ln1", "`tie` shares a weight, and layernorm has none to share"),
])
def test_a_tie_that_cannot_hold_is_refused_at_its_line(old, new, message):
    with pytest.raises(netspec.SpecError) as info:
        netspec.check(TIED.replace(old, new))
    error = info.value.errors[0]
    assert message in error.message
    assert error.where.line == TIED.splitlines().index("    tie: wte") + 1


def test_a_block_call_cannot_be_tied():
    text = TIED + "blocks:\n  head:\n    layers: [{linear: 100}]\n"
    text = text.replace("  - linear: {out: 100, bias: false}\n    tie: wte", "  - head:\n    tie: wte")
    with pytest.raises(netspec.SpecError, match="a block holds many"):
        netspec.check(text)
