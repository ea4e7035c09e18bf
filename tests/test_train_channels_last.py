"""`train.channels_last`: the model and its image batches laid out NHWC. It trains to the
weights of the contiguous layout, and a step takes the same memory, so netspec.train_step's
estimate (which does not look at the layout) holds for both: measured with MemTracker."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch
from test_train_memory import step_peak

import netspec
from netspec import train_step
from netspec.training.devices import memory_format

SPEC = """
    name: small_conv
    input: [3, 16, 16]
    layers:
      - conv2d: {out: 8, kernel: 3, padding: 1}
      - batchnorm2d
      - relu
      - maxpool2d: 2
      - conv2d: {out: 16, kernel: 3, padding: 1}
      - relu
      - flatten
      - linear: 10
    train:
      epochs: 1
      batch_size: 32
      data: {synthetic: {size: 40, val_split: 0.2}}
      optimizer: {sgd: {lr: 0.1, momentum: 0.9}}
      device: cpu
"""
CPU = torch.device("cpu")


def test_the_layout_follows_the_samples_dimensions() -> None:
    assert memory_format(True, CPU, 3) is torch.channels_last  # images (C, H, W)
    assert memory_format(True, CPU, 4) is torch.channels_last_3d  # volumes (C, D, H, W)
    assert memory_format(True, CPU, 1) is None  # features: unchanged
    assert memory_format(False, CPU, 3) is None
    assert memory_format("auto", CPU, 3) is None  # auto: on CUDA only
    assert memory_format("auto", torch.device("cuda"), 3) is torch.channels_last


def test_one_step_channels_last_ends_with_the_contiguous_run_s_weights(tmp_path: Path) -> None:
    spec = netspec.load(textwrap.dedent(SPEC))
    runs = {layout: netspec.train(spec, channels_last=layout, out=tmp_path / str(layout),
                                  verbose=False) for layout in (False, True)}
    last = runs[True].model
    assert last.get_submodule("conv1").weight.is_contiguous(memory_format=torch.channels_last)
    assert not last.get_submodule("conv1").weight.is_contiguous()
    before = netspec.build(spec, seed=0).state_dict()
    plain, nhwc = runs[False].model.state_dict(), last.state_dict()
    assert not torch.equal(plain["conv1.weight"], before["conv1.weight"])  # a step was taken
    for key, value in plain.items():
        torch.testing.assert_close(nhwc[key], value, atol=1e-5, rtol=0, msg=key)


@pytest.mark.parametrize("batch", [8, 64])
def test_a_channels_last_step_takes_what_the_estimate_says(batch: int, one_thread: None) -> None:
    """MemTracker's peak of a real step in each layout (as tests/test_train_memory.py
    measures one), against the one estimate: the layout changes no tensor's size."""
    spec = netspec.load(textwrap.dedent(SPEC))
    estimate = train_step.memory(netspec.check(spec), spec.training, batch).peak
    plain = step_peak(spec, None, batch, torch.contiguous_format)
    nhwc = step_peak(spec, None, batch, torch.channels_last)
    assert abs(plain - estimate) <= 0.05 * plain, (estimate, plain)
    assert abs(nhwc - estimate) <= 0.05 * nhwc, (estimate, nhwc)
