"""Truth (DESIGN.md): netspec's static analysis is exactly what torch does.

Hypothesis draws random valid specs (tests/strategies.py): every layer op alone over its
arguments, short chains of random layers, and forks merged by add, mul or concat. Each spec
is checked (`netspec.check`), compiled (`netspec.build`) and run on a random batch; every
layer's real output shape, parameters and buffers must equal its report row, the outputs
the report's outputs, and the MACs of convolutions and linear layers what torch's
FlopCounterMode counts (one MAC is two FLOPs). The shapes must also be the documented
formulas' that the generators work out. The zoo (specs/*.yaml) is run at its default input
and at an odd size.

Near the limits, one-layer specs with arguments drawn regardless of the input (windows
larger than it, paddings past half a kernel, groups that do not divide...) check that
netspec accepts exactly what torch runs.

Disagreements fuzzing found (since fixed) are kept at the end as regression cases.

NETSPEC_TRUTH_EXAMPLES sets hypothesis's example count per test (default 25; the whole
file then takes under a minute on two cores); raise it for long runs. Examples are
derandomised (tests/conftest.py): every run at a count draws the same ones, so a failure
reproduces; `--hypothesis-profile=explore` draws fresh ones. The quick tier runs the
random chains, forks and boundary cases and the quick zoo specs (tests/tiers.py); each op
alone, over its arguments, is in the full run (tests/test_op_tables.py has every op's rows).
"""

from __future__ import annotations

import copy
import functools
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import strategies
import torch
from hypothesis import assume, given, settings
from tiers import zoo
from torch.utils.flop_counter import FlopCounterMode

import netspec
from netspec.ops import OPS, TorchCall
from netspec.report import Report
from netspec.shapes import Shape

EXAMPLES = int(os.environ.get("NETSPEC_TRUTH_EXAMPLES", "25"))
BATCH = 2  # batch norm in training mode needs more than one value per channel
MAC_OPS = frozenset({"conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d", "linear",
                     "multihead_attention"})
"""Ops whose MACs FlopCounterMode sees; DESIGN.md counts no MACs for the others."""

SPECS = Path(__file__).resolve().parent.parent / "specs"
ODD_SIZES: dict[str, Shape | None] = {
    "lenet5": None,  # its flatten feeds linear(120) 16*5*5 features: only 32x32 fits
    "alexnet": (3, 227, 229),
    "vgg16": (3, 227, 229),
    "vgg11_bn": (3, 227, 229),
    "resnet18": (3, 97, 131),
    "resnet34": (3, 97, 131),
    "resnet50": (3, 97, 131),
    "resnet152": (3, 97, 131),
    "densenet121": (3, 227, 229),
    "mobilenet_v2": (3, 227, 229),
    "unet": (1, 190, 222),  # pools round down, crops start at odd offsets
    "googlenet": (3, 227, 229),
    "squeezenet1_0": (3, 193, 257),
    "squeezenet1_1": (3, 193, 257),
    "vgg19_bn": (3, 227, 229),
    "resnext50_32x4d": (3, 97, 131),
    "wide_resnet50_2": (3, 97, 131),
    "densenet169": (3, 227, 229),
    "efficientnet_b0": (3, 97, 131),
    "efficientnet_v2_s": (3, 97, 131),
    "mobilenet_v3_small": (3, 97, 131),
    "mobilenet_v3_large": (3, 97, 131),
    "mnasnet1_0": (3, 97, 131),
    "regnet_y_400mf": (3, 97, 131),
    "regnet_x_1_6gf": (3, 97, 131),
    "inception_v3": (3, 97, 131),
    "shufflenet_v2_x1_0": (3, 97, 131),
    "convnext_tiny": (3, 97, 131),
    "fcn_resnet50": (3, 97, 131),
    "deeplabv3_resnet50": (3, 97, 131),
    "r3d_18": (3, 7, 45, 61),  # seven frames: layer4's 3x3x3 windows see mostly padding
    "vit_b_16": None,  # its learned position embedding has one row per 16x16 patch of 224x224
    "vit_tiny": None,  # likewise for the 2x2 patches of an 8x8 digit
    "swin_t": (3, 97, 131),  # 24x32 patches: merging sees even sizes, windows are padded
    "gpt2": None,  # its learned position embedding has one row per token of 1024
    "gpt_tiny": None,  # likewise for its 128 bytes
}

pytestmark = [
    # torch's performance notes, irrelevant to shapes
    pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning"),
    pytest.mark.filterwarnings("ignore:dropout2d:UserWarning"),
]


class NetspecRefuses(AssertionError):
    """netspec refuses a spec the generators consider valid."""


class TorchRefuses(AssertionError):
    """torch refuses to run a spec that netspec accepts."""


class Disagrees(AssertionError):
    """netspec's report differs from what the compiled module does."""


def truth(count: int = EXAMPLES):
    """hypothesis settings: `count` examples, derandomised and with no deadline (the first
    build imports fx code), as the `netspec` profile (tests/conftest.py) has it."""
    return settings(max_examples=count)


# -- the check -------------------------------------------------------------------------


class _Recorder(torch.fx.Interpreter):
    """Runs a compiled spec node by node, keeping the per-sample shape of every function
    call (add, mul, concat, center crop), which no module hook sees."""

    def __init__(self, module: torch.fx.GraphModule):
        super().__init__(module)
        self.shapes: dict[str, Shape] = {}

    def run_node(self, n: torch.fx.Node) -> Any:
        result = super().run_node(n)
        if n.op == "call_function" and isinstance(result, torch.Tensor):
            self.shapes[n.name] = tuple(result.shape[1:])
        return result


def _node_name(layer: str) -> str:
    return re.sub(r"\W", "_", layer)


def _counts(module: torch.nn.Module, counted: set[int] | None = None) -> tuple[int, int]:
    """Parameters and buffers of `module`; with `counted`, only parameters not counted
    before (adding them to it)."""
    params = [p for p in module.parameters() if counted is None or id(p) not in counted]
    if counted is not None:
        counted.update(id(p) for p in params)
    return (sum(p.numel() for p in params), sum(b.numel() for b in module.buffers()))


def _counted_flops(model: torch.nn.Module, xs: Sequence[torch.Tensor]) -> int:
    """The model's FLOPs on `xs` as FlopCounterMode counts them, on the meta device: there
    F.scaled_dot_product_attention takes its math path, where on CPU its flash kernel has
    no formula in the counter (which would count it as 0). In eval mode: the counted ops do
    the same either way, and a batch norm of cumulative statistics reads a number in
    training, which meta tensors do not hold."""
    meta = copy.deepcopy(model).to("meta").eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        meta(*(x.to("meta") for x in xs))
    return counter.get_total_flops()


def assert_truth(spec: Any, inputs: Shape | None = None, *,
                 model: torch.fx.GraphModule | None = None, batch: int = BATCH,
                 per_layer_macs: bool = True) -> Report:
    """Check `spec`, build it (unless `model` is given), run it on a random batch and
    hold every number of the report to what torch does."""
    try:
        report = netspec.check(spec, inputs)
    except netspec.SpecError as exc:
        raise NetspecRefuses(str(exc)) from exc
    if model is None:
        model = netspec.build(spec, seed=0, inputs=inputs)

    def fail(what: str, ours: Any, real: Any) -> Disagrees:
        return Disagrees(f"{what}: netspec reports {ours}, torch has {real}")

    if (report.params, report.buffers) != _counts(model):
        raise fail("params, buffers", (report.params, report.buffers), _counts(model))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if report.trainable_params != trainable:
        raise fail("trainable params", report.trainable_params, trainable)

    modules = [row for row in report.layers if row.torch]
    seen: dict[str, Shape] = {}
    handles = [model.get_submodule(row.name).register_forward_hook(
        lambda m, i, o, name=row.name: seen.__setitem__(name, tuple(o.shape[1:])))
        for row in modules]
    recorder = _Recorder(model)
    vocabs = report.token_inputs
    xs = [torch.randint(0, vocabs[name], (batch, *shape)) if name in vocabs
          else torch.randn(batch, *shape) for name, shape in report.inputs.items()]
    try:
        with torch.no_grad():
            out = recorder.run(*xs)
    except Exception as exc:  # torch's refusals: RuntimeError, ValueError, IndexError...
        raise TorchRefuses(f"{type(exc).__name__}: {exc}") from exc
    finally:
        for handle in handles:
            handle.remove()

    outs = out if isinstance(out, tuple) else (out,)
    real_outputs = [tuple(o.shape) for o in outs]
    expected = [(batch, *shape) for shape in report.outputs.values()]
    if real_outputs != expected:
        raise fail("outputs", expected, real_outputs)
    counted: set[int] = set()  # a tied weight counts at the first layer holding it, as in torch
    for row in report.layers:
        real = seen.get(row.name) if row.torch else recorder.shapes.get(_node_name(row.name))
        if real != row.shape:
            raise fail(f"{row.name} ({row.op}) shape", row.shape, real)
        counts = _counts(model.get_submodule(row.name), counted) if row.torch else (0, 0)
        if (row.params, row.buffers) != counts:
            raise fail(f"{row.name} ({row.op}) params, buffers", (row.params, row.buffers), counts)
    flops = _counted_flops(model, xs)
    if flops != 2 * batch * report.macs:
        raise fail("MACs of the whole network", report.macs, flops / 2 / batch)
    if per_layer_macs:
        shapes = {**report.inputs, **{row.name: row.shape for row in report.layers}}
        for row in report.layers:
            if row.op in MAC_OPS:
                one = [torch.empty(1, *shapes[i]) for i in row.inputs]
                real_macs = _counted_flops(model.get_submodule(row.name), one) // 2
                if real_macs != row.macs:
                    raise fail(f"{row.name} ({row.op}) MACs", row.macs, real_macs)
    return report


# -- random specs ----------------------------------------------------------------------


def test_every_op_has_a_generator():
    assert set(strategies.GENERATORS) | set(strategies.MERGES) | set(strategies.PAIRS) \
        | set(strategies.TOKEN_OPS) == set(OPS)


def assert_case(case: strategies.Case) -> None:
    """The spec matches torch, and its shapes are also the documented formulas' (which
    catches an argument that netspec's analysis and its torch arguments both misread)."""
    report = assert_truth(case.spec)
    ours = {row.name: row.shape for row in report.layers}
    assert ours == case.shapes, "netspec and torch agree, but not with the documented formulas"


@pytest.mark.slow
@pytest.mark.parametrize("op", list(OPS))
def test_each_op_matches_torch(op):
    @truth()
    @given(strategies.single_op_specs(op))
    def check(case):
        assert_case(case)

    check()


@truth(4 * EXAMPLES)
@given(strategies.chain_specs())
def test_random_chains_match_torch(case):
    assert_case(case)


@truth(4 * EXAMPLES)
@given(strategies.fork_specs())
def test_forks_and_merges_match_torch(case):
    assert_case(case)


def _torch_runs(op: str, args: dict[str, Any], xs: tuple[Shape, ...]) -> Shape | None:
    """The per-sample output shape of the layer's torch module (or function) on batches of
    `xs`, or None when torch refuses them, gives an empty tensor (which netspec refuses by
    design: every dimension of a spec's tensors is at least 1), or gives a per-sample shape
    that depends on the batch size (mixed-rank broadcasting against the batch dim).
    The module comes from the op's own torch arguments, as `build` would make it had the
    shape check passed, for the declared input size if there is one."""
    model = OPS[op].model_validate(args)
    declared = [list(x) for x in xs]
    if "in" in args:
        declared[0][-1 if op == "linear" else 0] = args["in"]
    found = set()
    for batch in (2, 3):
        tensors = [torch.randn(batch, *x) for x in xs]
        try:
            made = model.to_torch(torch, [tuple(d) for d in declared], xs[0])
            with torch.no_grad():
                if not isinstance(made, TorchCall):
                    y = made(*tensors)
                elif made.packed:
                    y = made.fn(tensors, **made.kwargs)
                elif made.pairwise:
                    y = functools.reduce(made.fn, tensors)
                else:
                    y = made.fn(*tensors, **made.kwargs)
        except (RuntimeError, ValueError, TypeError, IndexError, NotImplementedError):
            return None
        if y.dim() == 0 or y.shape[0] != batch or min(y.shape) < 1:
            return None
        found.add(tuple(y.shape[1:]))
    return found.pop() if len(found) == 1 else None


def known_disagreement(op: str, args: dict[str, Any], xs: tuple[Shape, ...]) -> str | None:
    """A boundary case where netspec deliberately differs from torch's training mode: an
    instance norm over one spatial element that tracks running statistics is accepted with a
    warning (torch refuses to train it, but runs it in eval mode)."""
    if (op.startswith("instancenorm") and math.prod(xs[0][1:]) == 1
            and args.get("track_running_stats")):
        return "instancenorm-one-element-tracked"
    return None


def assert_agreement(op: str, args: dict[str, Any], xs: tuple[Shape, ...]) -> None:
    """netspec accepts the one-layer spec exactly when torch runs it, and then agrees with
    torch on everything (assert_truth)."""
    if len(xs) == 1:
        doc = strategies.spec(xs[0], [strategies.layer(op, args, "l0")])
    else:
        inputs = {f"x{i}": x for i, x in enumerate(xs)}
        doc = strategies.spec(inputs, [strategies.layer(op, args, "l0", list(inputs))])
    try:
        netspec.check(doc)
    except netspec.SpecError as exc:
        real = _torch_runs(op, args, xs)
        if real is not None:
            raise NetspecRefuses(f"torch gives {list(real)}, netspec says {exc}") from exc
        return
    assert_truth(doc)


@truth(8 * EXAMPLES)
@given(strategies.boundary_cases())
def test_netspec_accepts_exactly_what_torch_accepts(case):
    op, args, xs = case
    assume(known_disagreement(op, args, xs) is None)
    assert_agreement(op, args, xs)


# -- the zoo ---------------------------------------------------------------------------


def test_every_zoo_spec_has_an_odd_size_entry():
    assert {p.stem for p in SPECS.glob("*.yaml")} == set(ODD_SIZES)


@pytest.mark.parametrize("path", zoo(sorted(SPECS.glob("*.yaml"))), ids=lambda p: p.stem)
def test_zoo_matches_torch_at_its_input_and_an_odd_size(path):
    spec = netspec.load(path)
    model = netspec.build(spec, seed=0).eval()
    odd = ODD_SIZES[path.stem]
    for size in [None, odd] if odd else [None]:
        report = assert_truth(spec, size, model=model, batch=1, per_layer_macs=False)
        assert size is None or report.inputs["input"] == size


# -- known disagreements ---------------------------------------------------------------


FORMER_DISAGREEMENTS = [
    # torch normalises each instance over its spatial elements and refuses a single one
    # (F.instance_norm's _verify_spatial_size) unless it tracks running statistics
    ("instancenorm1d", {}, ((3, 1),)),
    ("instancenorm2d", {"affine": True}, ((3, 1, 1),)),
    # torch's 1-d adaptive pools take no null size
    ("adaptive_avgpool1d", {"size": [None]}, ((3, 5),)),
]


@pytest.mark.parametrize(("op", "args", "xs"), FORMER_DISAGREEMENTS)
def test_cases_found_by_fuzzing_now_agree(op, args, xs):
    assert_agreement(op, args, xs)


def test_a_null_adaptive_pool_size_is_a_positioned_error_not_a_crash():
    with pytest.raises(netspec.SpecError) as info:
        netspec.check("input: [3, 5]\nlayers:\n  - adaptive_maxpool1d: {size: null}\n")
    assert info.value.errors[0].where.line == 3 and "found None" in info.value.errors[0].message
