"""Every zoo spec that torchvision also builds computes torchvision's function: the same
parameter and buffer counts, and, with torchvision's randomly initialised weights loaded
(batch-norm statistics randomised too), the same eval-mode outputs on a random input.

torchvision is the reference, not a dependency: CI installs its pure-Python model code
(../shared/tools/reference-torchvision.sh) and points NETSPEC_TORCHVISION at it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tiers import zoo

import netspec
from netspec.weights import load_weights

SPECS = Path(__file__).resolve().parent.parent / "specs"

REFERENCES = {
    "alexnet": ("alexnet", {}, 64),
    "vgg11_bn": ("vgg11_bn", {}, 32),
    "vgg16": ("vgg16", {}, 32),
    "vgg19_bn": ("vgg19_bn", {}, 32),
    "googlenet": ("googlenet", {"aux_logits": False, "transform_input": False,
                                "init_weights": True}, 64),
    "resnet18": ("resnet18", {}, 64),
    "resnet34": ("resnet34", {}, 64),
    "resnet50": ("resnet50", {}, 64),
    "resnet152": ("resnet152", {}, 64),
    "resnext50_32x4d": ("resnext50_32x4d", {}, 64),
    "wide_resnet50_2": ("wide_resnet50_2", {}, 64),
    "densenet121": ("densenet121", {}, 64),
    "densenet169": ("densenet169", {}, 64),
    "mobilenet_v2": ("mobilenet_v2", {}, 64),
    "squeezenet1_0": ("squeezenet1_0", {}, 96),
    "squeezenet1_1": ("squeezenet1_1", {}, 96),
}
"""Zoo spec -> (torchvision constructor, its arguments, a side small enough to run on the CPU)."""


def reference(name: str) -> torch.nn.Module:
    """torchvision's model with its own random initialisation and random batch-norm
    statistics (a fresh model's are 0 and 1, which would hide a misplaced norm)."""
    from torchvision import models

    constructor, kwargs, _ = REFERENCES[name]
    torch.manual_seed(0)
    model = getattr(models, constructor)(**kwargs).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    return model


def count(tensors) -> int:
    return sum(t.numel() for t in tensors)


@pytest.mark.needs("torchvision")
@pytest.mark.parametrize("name", zoo(sorted(REFERENCES)))
def test_the_spec_computes_torchvision_s_function(name: str) -> None:
    ref = reference(name)
    report = netspec.check(SPECS / f"{name}.yaml")
    assert (report.params, report.buffers) == (count(ref.parameters()), count(ref.buffers()))
    net = netspec.build(SPECS / f"{name}.yaml").eval()
    load_weights(net, ref.state_dict())
    side = REFERENCES[name][2]
    x = torch.randn(2, 3, side, side, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want, got = ref(x), net(x)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * want.abs().max().item())


def test_every_zoo_spec_torchvision_builds_is_compared() -> None:
    from tiers import ZOO

    without = {"lenet5", "unet"}  # no torchvision model: tests/reference_models.py has them
    assert set(REFERENCES) == ZOO - without
