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
from netspec.backends.modules import Attention, WindowAttention
from netspec.weights import load_weights

SPECS = Path(__file__).resolve().parent.parent / "specs"

REFERENCES = {
    "alexnet": ("alexnet", {}, (3, 64, 64)),
    "vgg11_bn": ("vgg11_bn", {}, (3, 32, 32)),
    "vgg16": ("vgg16", {}, (3, 32, 32)),
    "vgg19_bn": ("vgg19_bn", {}, (3, 32, 32)),
    "googlenet": ("googlenet", {"aux_logits": False, "transform_input": False,
                                "init_weights": True}, (3, 64, 64)),
    "inception_v3": ("inception_v3", {"aux_logits": False, "init_weights": True}, (3, 80, 97)),
    "resnet18": ("resnet18", {}, (3, 64, 64)),
    "resnet34": ("resnet34", {}, (3, 64, 64)),
    "resnet50": ("resnet50", {}, (3, 64, 64)),
    "resnet152": ("resnet152", {}, (3, 64, 64)),
    "resnext50_32x4d": ("resnext50_32x4d", {}, (3, 64, 64)),
    "wide_resnet50_2": ("wide_resnet50_2", {}, (3, 64, 64)),
    "densenet121": ("densenet121", {}, (3, 64, 64)),
    "densenet169": ("densenet169", {}, (3, 64, 64)),
    "mobilenet_v2": ("mobilenet_v2", {}, (3, 64, 64)),
    "mobilenet_v3_small": ("mobilenet_v3_small", {}, (3, 64, 64)),
    "mobilenet_v3_large": ("mobilenet_v3_large", {}, (3, 64, 64)),
    "mnasnet1_0": ("mnasnet1_0", {}, (3, 64, 64)),
    "shufflenet_v2_x1_0": ("shufflenet_v2_x1_0", {}, (3, 64, 64)),
    "convnext_tiny": ("convnext_tiny", {}, (3, 64, 64)),
    "efficientnet_b0": ("efficientnet_b0", {}, (3, 64, 64)),
    "efficientnet_v2_s": ("efficientnet_v2_s", {}, (3, 64, 64)),
    "regnet_y_400mf": ("regnet_y_400mf", {}, (3, 64, 64)),
    "regnet_x_1_6gf": ("regnet_x_1_6gf", {}, (3, 64, 64)),
    "squeezenet1_0": ("squeezenet1_0", {}, (3, 96, 96)),
    "squeezenet1_1": ("squeezenet1_1", {}, (3, 96, 96)),
    "fcn_resnet50": ("segmentation.fcn_resnet50", {"aux_loss": False, "weights_backbone": None}, (3, 64, 80)),
    "deeplabv3_resnet50": ("segmentation.deeplabv3_resnet50", {"aux_loss": False,
                                                              "weights_backbone": None}, (3, 64, 80)),
    "r3d_18": ("video.r3d_18", {}, (3, 8, 48, 56)),
    # its position embedding is learned for 14x14 patches: 224 is the only size it takes
    "vit_b_16": ("vit_b_16", {}, (3, 224, 224)),
    # 32x40 patches: windows padded, shifted ones masked; merging at even sizes
    "swin_t": ("swin_t", {}, (3, 128, 160)),
}
"""Zoo spec -> (torchvision constructor, its arguments, an input small enough to run on the
CPU). The segmentation models return a dict: their `out` is the network's output."""


def reference(name: str) -> torch.nn.Module:
    """torchvision's model with its own random initialisation and random batch-norm
    statistics (a fresh model's are 0 and 1, which would hide a misplaced norm). ViT starts
    its classifier head and class token at zero, which would make every output the head's
    zero bias: its all-zero parameters are drawn at random too."""
    from torchvision import models

    constructor, kwargs, _ = REFERENCES[name]
    family, _, function = constructor.rpartition(".")
    torch.manual_seed(0)
    model = getattr(getattr(models, family) if family else models, function)(**kwargs).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
        if isinstance(model, models.VisionTransformer):
            for parameter in model.parameters():
                if not parameter.any():
                    parameter.normal_(std=0.02)
    return model


WEIGHTED = (torch.nn.modules.conv._ConvNd, torch.nn.Linear, torch.nn.modules.batchnorm._NormBase,
            torch.nn.LayerNorm, torch.nn.GroupNorm)
"""The layers whose class and weights must agree one by one: convolutions, linear, norms."""
ATTENTION = (torch.nn.MultiheadAttention, Attention, WindowAttention)  # + ShiftedWindowAttention
"""Attention layers, compared as one unit each: torch's holds its packed input projection as
parameters and its output projection as a Linear it calls as a function, netspec's holds
both as Linears (`qkv`, `out`); their parameters agree in shape and order. Swin's window
attention (torchvision's ShiftedWindowAttention, netspec's WindowAttention) holds its bias
table, then `qkv` and `proj`."""
RUN_ORDER = {"PatchMerging": ("norm", "reduction")}
"""torchvision modules that create their layers in another order than they run them:
compared in the order they run (the order of a spec's layers)."""

Layer = tuple[str, tuple[int, ...] | tuple[tuple[int, ...], ...] | None, int]


def weighted_layers(model: torch.nn.Module) -> list[Layer]:
    """Each conv, linear, norm and attention layer in order: its torch.nn class
    (torchvision's Conv3DSimple is a Conv3d) or "attention", its weight shape (an attention
    layer's: the shape of each of its parameters) and parameters."""
    from torchvision.models.swin_transformer import ShiftedWindowAttention

    if isinstance(model, (*ATTENTION, ShiftedWindowAttention)):
        return [("attention", tuple(tuple(p.shape) for p in model.parameters()),
                 count(model.parameters()))]
    if isinstance(model, WEIGHTED):
        weight = getattr(model, "weight", None)
        return [(torch_class(model), None if weight is None else tuple(weight.shape),
                 count(model.parameters()))]
    order = RUN_ORDER.get(type(model).__name__)
    children = [model.get_submodule(n) for n in order] if order else model.children()
    return [layer for child in children for layer in weighted_layers(child)]


def torch_class(module: torch.nn.Module) -> str:
    return next(c.__name__ for c in type(module).__mro__ if c.__module__.startswith("torch.nn"))


def count(tensors) -> int:
    return sum(t.numel() for t in tensors)


@pytest.mark.needs("torchvision")
@pytest.mark.parametrize("name", zoo(sorted(REFERENCES)))
def test_the_spec_computes_torchvision_s_function(name: str) -> None:
    ref = reference(name)
    report = netspec.check(SPECS / f"{name}.yaml")
    assert (report.params, report.buffers) == (count(ref.parameters()), count(ref.buffers()))
    net = netspec.build(SPECS / f"{name}.yaml").eval()
    assert weighted_layers(net) == weighted_layers(ref)
    load_weights(net, ref.state_dict(), strict=True)
    x = torch.randn(2, *REFERENCES[name][2], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want, got = ref(x), net(x)
    want = want["out"] if isinstance(want, dict) else want
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * want.abs().max().item())


WITH_AUX = {"fcn_resnet50", "deeplabv3_resnet50"}
"""Published with the auxiliary head their weights were trained with (`aux_loss=True`); the
specs, like the models torchvision builds by default, have none."""


@pytest.mark.needs("torchvision")
@pytest.mark.parametrize("name", zoo(sorted(REFERENCES)))
def test_macs_are_torch_s_count_and_torchvision_s_published_figure(name: str) -> None:
    """At the spec's input size: half of what torch's FlopCounterMode counts running
    torchvision's model (on the meta device: nothing is computed), and the GFLOPS figure
    torchvision publishes with the model's weights (G multiply-adds, 3 decimals)."""
    from torch.utils.flop_counter import FlopCounterMode
    from torchvision import models

    report = netspec.check(SPECS / f"{name}.yaml")
    constructor, kwargs, _ = REFERENCES[name]
    family, _, function = constructor.rpartition(".")
    # built on the CPU (RegNet computes its widths with tensors), run on the meta device
    model = getattr(getattr(models, family) if family else models, function)(**kwargs)
    with torch.device("meta"), FlopCounterMode(display=False) as flops:
        model.to("meta").eval()(torch.empty(1, *report.inputs["input"]))
    assert report.macs == flops.get_total_flops() // 2
    if name not in WITH_AUX:
        published = models.get_model_weights(function).DEFAULT.meta["_ops"]
        assert round(report.macs / 1e9, 3) == published


@pytest.mark.needs("torchvision")
@pytest.mark.parametrize("name", zoo(["vit_b_16"]))
def test_vit_attention_is_torchvision_s_in_weights_and_macs(name: str) -> None:
    """load_weights pairs each nn.MultiheadAttention's in_proj_weight, in_proj_bias,
    out_proj.weight and out_proj.bias with Attention's qkv.weight, qkv.bias, out.weight and
    out.bias, by order. torchvision's published 17.564 GFLOPS counts attention's two products
    (Q K^T and weights x V), as netspec and FlopCounterMode do: 12 layers x 2 x 12 heads x
    197 x 197 tokens x 64 features = 715,327,488 MACs; without them it would be 16.849."""
    from torchvision import models

    ref = models.vit_b_16()
    pairs = load_weights(netspec.build(SPECS / f"{name}.yaml"), ref.state_dict(), strict=True)
    theirs = [k for k in ref.state_dict() if ".self_attention." in k]
    assert [pairs[k].split(".self_attention.")[1] for k in pairs if ".self_attention." in k] == \
        ["in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"] * 12
    assert [k.split(".self_attention.")[1] for k in pairs if ".self_attention." in k] == \
        ["qkv.weight", "qkv.bias", "out.weight", "out.bias"] * 12
    assert len(theirs) == 4 * 12
    report = netspec.check(SPECS / f"{name}.yaml")
    layers, heads, tokens, head_dim = 12, 12, (224 // 16) ** 2 + 1, 768 // 12
    assert report.attention_macs == layers * 2 * heads * tokens * tokens * head_dim == 715_327_488
    published = models.ViT_B_16_Weights.IMAGENET1K_V1.meta["_ops"]
    assert round(report.macs / 1e9, 3) == published == 17.564
    assert round((report.macs - report.attention_macs) / 1e9, 3) == 16.849


def test_every_zoo_spec_torchvision_builds_is_compared() -> None:
    from tiers import ZOO

    # no torchvision model: reference_models.py, reference_unet.py; vit_tiny is for the digits
    without = {"lenet5", "unet", "vit_tiny", "gpt2", "gpt_tiny"}  # GPTs: reference_gpt2.py
    assert set(REFERENCES) == ZOO - without
