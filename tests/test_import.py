"""`netspec import` and `netspec summary`: a torch model read back as a spec.

torch is the oracle: an imported spec checks to the model's parameter and buffer counts,
builds with the model's very `state_dict` keys (a Sequential's `0` is the layer `name: 0`),
loads the model's weights strictly and computes its outputs. Models come
from tests/importing/nets.py and from torchvision (NETSPEC_TORCHVISION, as the zoo tests)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner, Result
from torch.utils.flop_counter import FlopCounterMode

import netspec
from netspec.backends.modules import LearnedTensor
from netspec.cli import main
from netspec.importer import ImportFailure, import_model
from netspec.importer.reference import parse_reference

sys.path.insert(0, str(Path(__file__).parent))

CLASSIFIERS = ["alexnet", "vgg11", "vgg11_bn", "vgg16", "vgg19_bn", "resnet18", "resnet34",
               "resnet50", "resnet101", "resnet152", "resnext50_32x4d", "wide_resnet50_2",
               "squeezenet1_0", "squeezenet1_1", "densenet121", "densenet161", "inception_v3",
               "googlenet", "shufflenet_v2_x1_0", "mobilenet_v2", "mobilenet_v3_small",
               "mobilenet_v3_large", "mnasnet0_5", "mnasnet1_0", "efficientnet_b0",
               "efficientnet_v2_s", "regnet_y_400mf", "regnet_x_1_6gf", "convnext_tiny",
               "vit_b_16", "swin_t", "maxvit_t"]
"""torchvision's classification zoo (one or two of each family's sizes)."""


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def same_function(spec: str, model: torch.nn.Module, shape: tuple[int, ...]) -> None:
    """The spec checks to the model's counts, loads its state_dict strictly under the same
    keys (in the order its layers run: Swin's PatchMerging makes its `reduction` before the
    `norm` it runs first) and computes its outputs (eval mode, random batch-norm
    statistics). A tensor the
    model's forward reads itself (ConvNeXt's layer_scale) is a parameter layer, which holds
    it as `weight` of a leading 1 (netspec's LearnedTensor); those are drawn at random, as
    their constant starts (1e-6, zeros) would hide them."""
    model.eval()
    net = netspec.build(spec).eval()
    ours = net.state_dict()
    learned = {f"{n}.weight": n for n, m in net.named_modules() if isinstance(m, LearnedTensor)}
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
        for name in learned.values():
            model.get_parameter(name).normal_(std=0.5)
    report = netspec.check(spec)
    assert (report.params, report.buffers) == (sum(p.numel() for p in model.parameters()),
                                               sum(b.numel() for b in model.buffers()))
    theirs = model.state_dict()
    assert sorted(learned.get(k, k) for k in ours) == sorted(theirs)
    net.load_state_dict({k: theirs[learned.get(k, k)].reshape(t.shape) for k, t in ours.items()},
                        strict=True)
    x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want, got = model(x), net(x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * want.abs().max().item())


def test_a_small_net_imports_and_computes_the_same() -> None:
    from importing.nets import Net

    torch.manual_seed(0)
    imported = import_model("importing.nets:Net(width=8)", (3, 16, 16))
    assert imported.unexpressed == []
    assert "stages" in imported.text and "name: head" in imported.text
    same_function(imported.text, Net(width=8), (3, 16, 16))


def test_a_mean_over_space_is_a_global_pool() -> None:
    from importing.nets import Means

    torch.manual_seed(0)
    text = import_model("importing.nets:Means", (3, 8, 8)).text
    assert text.count("{adaptive_avgpool2d: {size: 1}") == 2 and text.count("- {flatten") == 1
    same_function(text, Means(), (3, 8, 8))


def test_dims_moved_by_functions_and_methods_are_permute_and_transpose() -> None:
    from importing.nets import Reordered

    torch.manual_seed(0)
    text = import_model("importing.nets:Reordered", (3, 4, 6)).text
    assert "permute: {dims: [0, 2, 3, 1]}" in text and "permute: {dims: [0, 3, 1, 2]}" in text
    assert "transpose: {dim0: 2, dim1: 3}" in text
    same_function(text, Reordered(), (3, 4, 6))


def test_swapaxes_is_transpose() -> None:
    from importing.nets import Swapping

    torch.manual_seed(0)
    text = import_model("importing.nets:Swapping", (3, 4, 6)).text
    assert "transpose: {dim0: 1, dim1: -1}" in text and "transpose: {dim0: -1, dim1: 1}" in text
    same_function(text, Swapping(), (3, 4, 6))


def test_a_concatenation_of_one_map_is_that_map() -> None:
    from importing.nets import Dense

    torch.manual_seed(0)
    text = import_model("importing.nets:Dense", (3, 8, 8)).text
    assert "- {identity, name: identity}" in text
    same_function(text, Dense(), (3, 8, 8))


def test_modules_of_a_container_keep_its_name_or_are_refused() -> None:
    from importing.nets import Stack

    torch.manual_seed(0)
    text = import_model("importing.nets:Stack", (3, 8, 8)).text
    same_function(text, Stack(), (3, 8, 8))  # keys blocks.0.weight, ...
    with pytest.raises(ImportFailure, match="convs: `concat` is defined later"):
        import_model("importing.nets:Dense(listed=True)", (3, 8, 8))


@pytest.mark.needs("torchvision")
def test_torchvision_s_stochastic_depth_is_drop_path() -> None:
    from importing.nets import Residual

    torch.manual_seed(0)
    text = import_model("importing.nets:Residual", (3, 8, 8)).text
    assert "drop_path: {p: 0.25}" in text
    same_function(text, Residual(), (3, 8, 8))
    with pytest.raises(ImportFailure, match="stochastic_depth with mode 'batch'"):
        import_model("importing.nets:Residual(mode='batch')", (3, 8, 8))


def test_a_chunk_s_pieces_are_read_by_name() -> None:
    from importing.nets import Halves

    torch.manual_seed(0)
    text = import_model("importing.nets:Halves", (4, 8, 8)).text
    assert "- {chunk: {chunks: 2}, name: chunk}" in text
    assert "from: chunk.1" in text and "concat: [chunk.0, conv]" in text
    same_function(text, Halves(), (4, 8, 8))


def test_a_module_s_own_tensors_are_parameter_layers_or_its_function_s() -> None:
    from importing.nets import Scaled

    torch.manual_seed(0)
    text = import_model("importing.nets:Scaled", (3, 8, 8)).text
    assert "- {parameter: {shape: [4, 1, 1]}, name: layer_scale}" in text
    assert "- {layernorm: {shape: [4]}, name: 1}" in text
    same_function(text, Scaled(), (3, 8, 8))  # keys layer_scale, body.1.weight, body.1.bias


@pytest.mark.needs("torchvision")
def test_a_module_an_op_declares_is_read_whole() -> None:
    from importing.nets import Windowed

    torch.manual_seed(0)
    text = import_model("importing.nets:Windowed", (3, 8, 8)).text
    assert "- {window_attention: {heads: 2, window: 4, shift: 2}, name: attn}" in text
    assert "{stochastic_depth, name: drop}" in text and "{stochastic_depth, name: drop_1" in text
    same_function(text, Windowed(), (3, 8, 8))
    with pytest.raises(ImportFailure, match=r"\(root\): ShiftedWindowAttention\(\): "
                       r"window_attention does not take .*'output_dropout': 0.1"):
        import_model("importing.nets:Windowed(dropout=0.1)", (3, 8, 8))


def test_a_wrapped_function_is_traced_and_its_sizes_are_numbers() -> None:
    from importing.nets import Corners

    torch.manual_seed(0)
    text = import_model("importing.nets:Corners", (3, 8, 8)).text
    assert text.count("- {slice: {dim: ") == 4 and "{slice: {dim: 3, start: 1, step: 2}" in text
    assert "pad" not in text.replace("padding", "")  # a pad by nothing at even sizes
    same_function(text, Corners(), (3, 8, 8))
    with pytest.raises(ImportFailure, match="no netspec op"):  # padded at odd sizes
        import_model("importing.nets:Corners", (3, 7, 8))


def test_sizes_of_the_batch_reshape_and_expand_samples() -> None:
    from importing.nets import Tokens

    torch.manual_seed(0)
    text = import_model("importing.nets:Tokens", (3, 8, 8)).text
    assert "- {parameter: {shape: [1, 8]}, name: class_token}" in text
    assert "{reshape: {shape: [8, 4]}" in text and "{select: {dim: 1, index: 0}" in text
    assert "expand" not in text
    same_function(text, Tokens(), (3, 8, 8))


def test_a_head_run_in_training_only_is_an_auxiliary_output() -> None:
    """The eval forward leaves the auxiliary head's tensors unread, so the training forward
    is read: its second value is an auxiliary output, computed in training only; the first
    is the eval forward's output."""
    from importing.nets import Auxiliary

    torch.manual_seed(0)
    text = import_model("importing.nets:Auxiliary", (3, 8, 8)).text
    assert "auxiliary: [aux]" in text and "outputs:" not in text
    model = Auxiliary()
    same_function(text, model, (3, 8, 8))
    net = netspec.build(text).train()
    net.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, 3, 8, 8)
    torch.manual_seed(1)
    want = model.train()(x)
    torch.manual_seed(1)
    got = net(x)
    assert len(got) == len(want) == 2
    for ours, theirs in zip(got, want, strict=True):
        torch.testing.assert_close(ours, theirs)
    report = netspec.check(text)
    assert (report.outputs, report.auxiliary) == ({"head": (3,)}, {"aux.3": (2,)})
    assert report.training_only_macs == 4 * 2  # the head's linear layer, 4 -> 2


def test_the_cli_writes_the_spec(tmp_path: Path) -> None:
    out = tmp_path / "net.yaml"
    result = run("import", "importing.nets:Net(width=4, classes=3)", "-o", str(out),
                 "--input", "3,8,8")
    assert result.exit_code == 0, result.output
    report = netspec.check(out)
    assert list(report.outputs.values()) == [(3,)]
    assert out.read_text().startswith("# Imported by `netspec import importing.nets:Net(width=4")


def test_what_cannot_be_expressed_is_listed_and_exits_1(tmp_path: Path) -> None:
    out = tmp_path / "swapped.yaml"
    result = run("import", "importing.nets:Swapped", "-o", str(out), "--input", "3,8,8")
    assert result.exit_code == 1
    assert "1 computation(s) netspec cannot express" in result.output
    assert "(root): Tensor.cumsum" in result.output
    assert "Traceback" not in result.output and not out.exists()


def test_partial_writes_a_marked_placeholder(tmp_path: Path) -> None:
    out = tmp_path / "swapped.yaml"
    result = run("import", "importing.nets:Swapped", "-o", str(out), "--input", "3,8,8",
                 "--partial")
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "# not expressible: (root): Tensor.cumsum" in text
    assert netspec.check(out).params == 3 * 4 * 9 + 4


@pytest.mark.parametrize(("text", "message"), [
    ("importing.nets", "names no model"),
    ("importing.nets:Net(width=len('ab'))", "arguments must be literals"),
    ("importing.nets:Net.attr", "a name or a call of one"),
    ("importing.nets:Nope", "has no callable Nope"),
    ("no_such_package_x:Net", "cannot import no_such_package_x"),
    ("importing.nets:Net(width=-1)", "calling Net raised RuntimeError"),
])
def test_bad_references_are_refused_in_one_line(text: str, message: str) -> None:
    result = run("import", text, "-o", os.devnull)
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output


def test_a_module_in_the_current_directory_is_found(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "here_nets.py").write_text("from torch import nn\n\n\ndef tiny():\n"
                                           "    return nn.Sequential(nn.Linear(3, 2))\n")
    monkeypatch.chdir(tmp_path)
    result = run("import", "here_nets:tiny", "--input", "3", "-o", "tiny.yaml")
    assert result.exit_code == 0, result.output
    assert netspec.check(tmp_path / "tiny.yaml").params == 3 * 2 + 2
    assert str(tmp_path) not in sys.path


def test_reference_arguments_are_literals() -> None:
    assert parse_reference("a.b:Net(3, width=[1, 2], name='x')") == \
        ("a.b", "Net", [3], {"width": [1, 2], "name": "x"})


def test_a_sequential_s_children_keep_their_integer_names() -> None:
    imported = import_model("importing.nets:Net(width=4)", (3, 8, 8)).text
    assert "name: 0" in imported and "_0" not in imported
    from importing.nets import Net

    assert list(netspec.build(imported).state_dict()) == list(Net(width=4).state_dict())


def test_summary_prints_check_s_table_through_import() -> None:
    result = run("summary", "importing.nets:Net(width=8)", "--input", "3,16,16")
    assert result.exit_code == 0, result.output
    want = str(netspec.check(import_model("importing.nets:Net(width=8)", (3, 16, 16)).text))
    assert result.output.strip() == want.strip()
    assert result.output.startswith("net: input 3x16x16") and "meta-device" not in result.output


@pytest.mark.needs("torchvision")
def test_summary_is_titled_with_the_callable_s_name() -> None:
    from torchvision import models

    result = run("summary", "torchvision.models:resnet18", "--input", "3,32,32")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("resnet18: input 3x32x32")
    params = sum(p.numel() for p in models.resnet18().parameters())
    assert f"params {params:,}" in " ".join(result.output.split())


def test_summary_falls_back_to_a_meta_trace_and_says_so() -> None:
    from importing.nets import Swapped

    text = netspec.summary(Swapped(), (3, 8, 8))
    assert text.startswith("swapped: meta-device trace (not imported: (root): Tensor.cumsum")
    assert "conv" in text and "[4, 6, 6]" in text and f"params {3 * 4 * 9 + 4:,}" in text


@pytest.mark.needs("torchvision")
def test_resnet18_imports_and_matches_torchvision() -> None:
    from torchvision import models

    text = import_model("torchvision.models:resnet18", (3, 32, 32)).text
    torch.manual_seed(0)
    same_function(text, models.resnet18(), (3, 32, 32))


@pytest.mark.needs("torchvision")
def test_the_python_export_of_an_imported_resnet18_is_torchvision_s(tmp_path: Path) -> None:
    import importlib.util

    from torchvision import models

    from netspec.backends.source import python_source

    code = python_source(import_model("torchvision.models:resnet18", (3, 32, 32)).text)
    assert "self.layer2[0].downsample.append(nn.Conv2d(" in code
    (tmp_path / "r18.py").write_text(code)
    spec = importlib.util.spec_from_file_location("r18", tmp_path / "r18.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    theirs = models.resnet18().eval()
    written = module.Resnet18().eval()
    written.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(written(x), theirs(x))


@pytest.mark.slow
@pytest.mark.needs("torchvision")
def test_the_imported_resnet50_is_short() -> None:
    text = import_model("torchvision.models:resnet50", (3, 224, 224)).text
    assert text.count("\n") < 100
    assert "repeat: 6" in text


@pytest.mark.slow
@pytest.mark.needs("torchvision")
@pytest.mark.parametrize("name", CLASSIFIERS)
def test_torchvision_s_classifiers_import_and_match(name: str) -> None:
    """Each imports, checks to the MACs torch's flop counter counts, loads torchvision's
    state_dict strictly and computes its outputs."""
    from torchvision import models

    # Inception v3 at 299: at 224 its auxiliary classifier's 5x5 conv meets a 3x3 map
    size = (3, 299, 299) if name == "inception_v3" else (3, 224, 224)
    result = import_model(f"torchvision.models:{name}", size)
    torch.manual_seed(0)
    model = getattr(models, name)()
    same_function(result.text, model, size)
    counter = FlopCounterMode(display=False)  # on the meta device: attention's math path
    with counter, torch.no_grad():
        model.to("meta")(torch.empty(1, *size, device="meta"))
    assert 2 * netspec.check(result.text).macs == counter.get_total_flops()


@pytest.mark.needs("torchvision")
def test_maxvit_s_attention_is_read_whole() -> None:
    from importing.nets import Partitioned

    torch.manual_seed(0)
    text = import_model("importing.nets:Partitioned", (3, 4, 6)).text
    assert "- {relative_attention: {heads: 2}, name: attn}" in text
    same_function(text, Partitioned(), (3, 4, 6))


@pytest.mark.slow
@pytest.mark.needs("torchvision")
def test_a_small_maxvit_imports_and_matches_torchvision() -> None:
    """MaxViT's blocks (MBConv, window and grid partitions, relative attention) at 32 x 32,
    partitions of 2 x 2, two stages: the spec computes torchvision's outputs."""
    from torchvision.models.maxvit import MaxVit

    args = {"input_size": (32, 32), "stem_channels": 8, "partition_size": 2,
            "block_channels": [16, 32], "block_layers": [1, 2], "head_dim": 8,
            "stochastic_depth_prob": 0.2, "num_classes": 10}
    call = ", ".join(f"{k}={v!r}" for k, v in args.items())
    torch.manual_seed(0)
    text = import_model(f"torchvision.models.maxvit:MaxVit({call})", (3, 32, 32)).text
    assert "relative_attention" in text
    same_function(text, MaxVit(**args), (3, 32, 32))


@pytest.mark.slow
@pytest.mark.needs("torchvision")
@pytest.mark.parametrize(("name", "size", "auxiliary"), [
    ("inception_v3", 299, "[AuxLogits]"), ("googlenet", 224, "[aux2, aux1]")])
def test_inception_nets_import_with_their_auxiliary_classifiers(name: str, size: int,
                                                                auxiliary: str) -> None:
    """Their auxiliary classifiers run in training only: the training forward is read, whose
    auxiliary logits are auxiliary outputs. The spec checks to the MACs torch's flop counter
    counts in the eval forward; torchvision's state_dict loads strictly; the output is the
    eval forward's, and in training (dropout drawn alike) every output is the training
    forward's."""
    from torchvision import models

    call = f"{name}(init_weights=True)"
    text = import_model(f"torchvision.models:{call}", (3, size, size)).text
    assert f"auxiliary: {auxiliary}" in text and "outputs:" not in text
    torch.manual_seed(0)
    model = getattr(models, name)(init_weights=True)
    same_function(text, model, (3, size, size))
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model.eval()(torch.randn(1, 3, size, size))
    assert 2 * netspec.check(text).macs == counter.get_total_flops()
    net = netspec.build(text)
    net.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():  # dropout off: the spec runs the auxiliary heads last, drawing later
        want = _without_dropout(model.train())(x)
        got = _without_dropout(net.train())(x)
    assert len(got) == len(want) == auxiliary.count(",") + 2
    for ours, theirs in zip(got, want, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4 * theirs.abs().max().item())


def _without_dropout(model: torch.nn.Module) -> torch.nn.Module:
    """`model` with its dropout layers in eval mode (an identity), the rest as it is."""
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.eval()
    return model


VIT = "torchvision.models.vision_transformer:VisionTransformer"
SMALL_VIT = dict(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64,
                 num_classes=10)


def _vit(**kwargs: Any) -> torch.nn.Module:
    """torchvision's VisionTransformer with its all-zero tensors (the classifier head; the
    class token, which same_function draws anyway) drawn at random: zero weights would make
    every output the head's bias."""
    from torchvision.models import VisionTransformer

    torch.manual_seed(0)
    model = VisionTransformer(**kwargs)
    with torch.no_grad():
        for parameter in model.parameters():
            if not parameter.any():
                parameter.normal_(std=0.5)
    return model


def _call(target: str, kwargs: dict[str, Any]) -> str:
    return f"{target}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"


@pytest.mark.needs("torchvision")
def test_torchvision_s_vision_transformer_imports_with_torch_s_attention_keys() -> None:
    """nn.MultiheadAttention, called as `x, _ = attn(x, x, x, need_weights=False)`, is
    multihead_attention holding its tensors under torch's keys (in_proj_weight, in_proj_bias,
    out_proj.weight, out_proj.bias); the class token and position embedding are parameter
    layers of the same keys, the encoder layers blocks."""
    imported = import_model(_call(VIT, SMALL_VIT), (3, 32, 32))
    assert imported.unexpressed == []
    text = imported.text
    assert "- {multihead_attention: {heads: 2, state_dict: torch}, name: self_attention}" in text
    assert "- {parameter: {shape: [1, 32]}, name: class_token}" in text
    assert "- {parameter: {shape: [17, 32]}, name: pos_embedding}" in text
    model = _vit(**SMALL_VIT)
    keys = list(netspec.build(text).state_dict())
    assert "encoder.layers.encoder_layer_1.self_attention.in_proj_weight" in keys
    assert "encoder.layers.encoder_layer_1.self_attention.out_proj.bias" in keys
    same_function(text, model, (3, 32, 32))


@pytest.mark.parametrize("bias", [True, False])
def test_torch_s_multihead_attention_is_read_as_self_attention(bias: bool) -> None:
    from importing.nets import Attending

    torch.manual_seed(0)
    text = import_model(f"importing.nets:Attending(bias={bias})", (6, 8)).text
    args = "heads: 2, state_dict: torch" if bias else "heads: 2, bias: false, state_dict: torch"
    assert f"- {{multihead_attention: {{{args}}}, name: attn}}" in text
    same_function(text, Attending(bias=bias), (6, 8))


@pytest.mark.parametrize(("call", "message"), [
    ("Attending(batch_first=False)", r"\(root\): MultiheadAttention\(\): multihead_attention "
                                     r"does not take .*'batch_first': False"),
    ("Attending(masked=True)", r"\(root\): MultiheadAttention called for several values"),
    ("Attending(causal=True)", r"\(root\): MultiheadAttention called for several values"),
])
def test_torch_s_attention_it_cannot_read_is_refused(call: str, message: str) -> None:
    with pytest.raises(ImportFailure, match=message):
        import_model(f"importing.nets:{call}", (6, 8))


def test_attention_s_keys_are_netspec_s_unless_the_spec_says_torch() -> None:
    """The default keeps netspec's keys (specs and checkpoints trained with netspec load as
    before); `state_dict: torch` holds the very same tensors under nn.MultiheadAttention's
    keys, so both count alike, a checkpoint of one loads into the other by those names, and
    each computes what torch's nn.MultiheadAttention does with those tensors."""
    def spec(extra: str) -> str:
        return ("name: a\ninput: [6, 8]\nlayers:\n"
                f"  - {{multihead_attention: {{heads: 2{extra}}}, name: attn}}\n")

    ours, theirs = netspec.build(spec("")).eval(), netspec.build(spec(", state_dict: torch")).eval()
    netspec_keys = ["attn.qkv.weight", "attn.qkv.bias", "attn.out.weight", "attn.out.bias"]
    torch_keys = ["attn.in_proj_weight", "attn.in_proj_bias", "attn.out_proj.weight",
                  "attn.out_proj.bias"]
    assert list(ours.state_dict()) == netspec_keys and list(theirs.state_dict()) == torch_keys
    assert netspec.check(spec("")).to_dict() | {"layers": None} == \
        netspec.check(spec(", state_dict: torch")).to_dict() | {"layers": None}
    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(8, 2, batch_first=True).eval()
    with torch.no_grad():
        mha.in_proj_bias.normal_()
        mha.out_proj.bias.normal_()
    state = {f"attn.{k}": v for k, v in mha.state_dict().items()}
    theirs.load_state_dict(state, strict=True)
    ours.load_state_dict(dict(zip(netspec_keys, state.values(), strict=True)), strict=True)
    x = torch.randn(3, 6, 8)
    with torch.no_grad():
        want = mha(x, x, x, need_weights=False)[0]
        torch.testing.assert_close(theirs(x), want)
        torch.testing.assert_close(ours(x), want)


@pytest.mark.slow
@pytest.mark.needs("torchvision")
def test_vit_b_16_imports_and_matches_torchvision() -> None:
    """vit_b_16's own structure (12 layers of 12 heads, 768 features, 197 tokens): the
    classifier test above compares it with its head at zero (every output 0); here the head
    is drawn at random, and the imported spec's MACs are torchvision's published figure."""
    from torchvision import models

    text = import_model("torchvision.models:vit_b_16", (3, 224, 224)).text
    assert text.count("{multihead_attention: {heads: 12, state_dict: torch}") == 1  # one block
    same_function(text, _vit(**{"image_size": 224, "patch_size": 16, "num_layers": 12,
                                "num_heads": 12, "hidden_dim": 768, "mlp_dim": 3072}), (3, 224, 224))
    published = models.ViT_B_16_Weights.IMAGENET1K_V1.meta["_ops"]
    assert round(netspec.check(text).macs / 1e9, 3) == published == 17.564
