"""The zoo's `scales:` are torchvision's variants of each network: every scale has the
parameter count torchvision publishes with its weights and, at the size those weights are
evaluated at, its published GFLOPS (multiply-adds; by analysis alone); and the scales of
MobileNetV2 (`mobilenet_v2(width_mult=...)`) and EfficientNet-B1 to B3 compute
torchvision's function: the same parameters and buffers, the same layers in order, and
with torchvision's random weights loaded by `load_weights`, the same outputs
(tests/test_zoo_torchvision.py's comparison, at each scale)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from test_zoo_torchvision import count, weighted_layers

import netspec
from netspec.weights import load_weights

SPECS = Path(__file__).resolve().parent.parent / "specs"

PUBLISHED = {  # spec -> scale -> torchvision's model of that scale (its weights' meta)
    "efficientnet_b0": {f"b{k}": f"efficientnet_b{k}" for k in range(8)},
    "convnext_tiny": {size: f"convnext_{size}" for size in ("tiny", "small", "base", "large")},
    "shufflenet_v2_x1_0": {w: f"shufflenet_v2_{w}" for w in ("x0_5", "x1_0", "x1_5", "x2_0")},
    "mnasnet1_0": {w: f"mnasnet{w[1:]}" for w in ("x0_5", "x0_75", "x1_0", "x1_3")},
    "vit_b_16": {v: f"vit_{v}" for v in ("b_16", "b_32", "l_16", "l_32", "h_14")},
}
CASES = [(spec, scale) for spec, scales in PUBLISHED.items() for scale in scales]


def test_the_scales_are_torchvision_s_variants():
    for spec, scales in PUBLISHED.items():
        assert list(netspec.load(SPECS / f"{spec}.yaml").scales) == list(scales)


@pytest.mark.needs("torchvision")
@pytest.mark.parametrize(("spec", "scale"), CASES, ids=[f"{s}-{c}" for s, c in CASES])
def test_each_scale_has_torchvision_s_published_params_and_gflops(spec: str, scale: str):
    from torchvision import models

    weights = models.get_model_weights(PUBLISHED[spec][scale]).DEFAULT
    crop = weights.transforms.keywords["crop_size"]  # the size the figures are measured at
    report = netspec.check(SPECS / f"{spec}.yaml", scale=scale, inputs=(3, crop, crop))
    assert (report.params, round(report.macs / 1e9, 3)) == \
        (weights.meta["num_params"], weights.meta["_ops"])


def mobilenet_v2(width: float) -> Callable[[], torch.nn.Module]:
    from torchvision import models

    return lambda: models.mobilenet_v2(width_mult=width)


def efficientnet(k: int) -> Callable[[], torch.nn.Module]:
    from torchvision import models

    return getattr(models, f"efficientnet_b{k}")


FUNCTION = [("mobilenet_v2", "x0_5", 0.5), ("mobilenet_v2", "x0_75", 0.75),
            ("mobilenet_v2", "x1_0", 1.0), ("mobilenet_v2", "x1_4", 1.4),
            ("efficientnet_b0", "b1", 1), ("efficientnet_b0", "b2", 2),
            ("efficientnet_b0", "b3", 3)]
QUICK = {"x0_5"}
"""The smallest builds in the quick tier; the others build larger models."""


def randomised(model: torch.nn.Module) -> torch.nn.Module:
    """The model in eval mode with random batch-norm statistics (fresh ones, 0 and 1,
    would hide a misplaced norm)."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    return model.eval()


@pytest.mark.needs("torchvision")
@pytest.mark.parametrize(("spec", "scale", "argument"), [
    pytest.param(*case, marks=() if case[1] in QUICK else pytest.mark.slow) for case in FUNCTION],
    ids=[f"{spec}-{scale}" for spec, scale, _ in FUNCTION])
def test_the_scale_computes_torchvision_s_function(spec: str, scale: str, argument: float):
    torch.manual_seed(0)
    builder = mobilenet_v2(argument) if spec == "mobilenet_v2" else efficientnet(int(argument))
    ref = randomised(builder())
    path = SPECS / f"{spec}.yaml"
    report = netspec.check(path, scale=scale)
    assert (report.params, report.buffers) == (count(ref.parameters()), count(ref.buffers()))
    net = netspec.build(path, scale=scale).eval()
    assert weighted_layers(net) == weighted_layers(ref)
    load_weights(net, ref.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want, got = ref(x), net(x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * want.abs().max().item())
