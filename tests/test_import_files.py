"""`netspec import FILE.pt2 | FILE.onnx`: a torch.export program or an ONNX model read back as
a spec and its weights.

The oracles are the files themselves: a program's `ep.module()`, onnxruntime on the ONNX
model. An imported spec checks to the file's counts, builds with the model's `state_dict`
keys where the file carries them (a program's are the model's own; an ONNX model of torch's
exporters names initializers by them, less the BatchNorms the exporters fold into the conv
before), loads the weights written for it strictly and computes the file's outputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner, Result
from torch import nn

import netspec
from netspec.cli import main
from netspec.importer import ImportFailure, import_file

SHAPE = (3, 16, 16)


class Residual(nn.Module):
    """conv-bn, plus its input, then a ReLU (a ResNet block of one conv)."""

    def __init__(self, width: int):
        super().__init__()
        self.conv = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)) + x)


class SmallCNN(nn.Module):
    """conv-bn-relu, max pool, two residual blocks, a concatenated 1x1 branch, global
    pool, flatten, linear."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.pool = nn.MaxPool2d(2)
        self.blocks = nn.Sequential(Residual(8), Residual(8))
        self.side = nn.Conv2d(8, 4, 1)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(12, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.pool(self.stem(x)))
        x = torch.cat([x, self.side(x)], 1)
        return self.fc(torch.flatten(self.gap(x), 1))


class MeanHead(nn.Module):
    """A conv, then a mean over space without keepdim (MNASNet's head), then a linear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3)
        self.fc = nn.Linear(6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).relu().mean([2, 3]))


class Sine(nn.Module):
    """A conv and a sine, which no netspec op computes."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.conv(x))


def trained(model: nn.Module) -> nn.Module:
    """`model` in eval mode with batch-norm statistics, norms' affine tensors and the
    tensors a module of another library holds itself (ConvNeXt's layer_scale) drawn at
    random (their starting values, zeros, ones and 1e-6, would hide one read wrong, and
    equal tensors are one initializer in an ONNX file)."""
    torch.manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
            if isinstance(m, nn.BatchNorm2d | nn.LayerNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
            elif not type(m).__module__.startswith("torch.nn"):
                for tensor in m._parameters.values():
                    tensor.uniform_(0.1, 0.5)
    return model.eval()


def batch(shape: tuple[int, ...]) -> torch.Tensor:
    return torch.randn(2, *shape, generator=torch.Generator().manual_seed(1))


def save_program(model: nn.Module, path: Path, shape: tuple[int, ...], decompose: bool = False) -> Path:
    program = torch.export.export(model, (batch(shape),))
    torch.export.save(program.run_decompositions() if decompose else program, str(path))
    return path


def save_onnx(model: nn.Module, path: Path, shape: tuple[int, ...], dynamo: bool) -> Path:
    pytest.importorskip("onnxscript")
    torch.onnx.export(model, (batch(shape),), str(path), dynamo=dynamo)
    return path


def handmade_onnx(path: Path, conv: nn.Conv2d, names: tuple[str, str, str, str], last: str) -> Path:
    """An ONNX model written by hand, as torch's TorchScript exporter writes one (no export
    run: the quick tier): x [batch, 3, 8, 8] -> Conv holding `conv`'s tensors -> `last` (an op
    of no attributes); `names` are the conv's weight and bias initializers' and the two
    nodes' names."""
    onnx = pytest.importorskip("onnx")  # the export extra
    from onnx import TensorProto, helper, numpy_helper

    weight, bias, conv_node, last_node = names
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", weight, bias], ["c"], conv_node, kernel_shape=[3, 3]),
         helper.make_node(last, ["c"], ["y"], last_node)], "handmade",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4, 6, 6])],
        [numpy_helper.from_array(conv.weight.detach().numpy(), weight),
         numpy_helper.from_array(conv.bias.detach().numpy(), bias)])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def built(text: str, weights: dict[str, torch.Tensor]) -> nn.Module:
    """The spec built, the imported weights loaded strictly (every key, no other)."""
    net = netspec.build(text).eval()
    net.load_state_dict(weights, strict=True)
    return net


def matches_program(path: Path, model: nn.Module, shape: tuple[int, ...]) -> None:
    """The imported program checks to the model's counts, keeps its state_dict keys and
    computes what the saved program computes."""
    imported = import_file(path)
    assert imported.weights is not None and not imported.unexpressed
    report = netspec.check(imported.text)
    assert (report.params, report.buffers) == (sum(p.numel() for p in model.parameters()),
                                               sum(b.numel() for b in model.buffers()))
    assert report.to_dict()["inputs"] == {"input": list(shape)}
    theirs = model.state_dict()
    # a tensor the forward reads itself is a parameter layer's `weight`, of a leading 1
    assert sorted(k if k in theirs else k.removesuffix(".weight") for k in imported.weights) == \
        sorted(theirs)
    x = batch(shape)
    with torch.no_grad():
        want = torch.export.load(str(path)).module()(x)
        got = built(imported.text, imported.weights)(x)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-4)


def matches_onnx(path: Path, model: nn.Module, shape: tuple[int, ...]) -> set[str]:
    """The imported ONNX model computes what onnxruntime computes of the file; its keys
    include each initializer named as one of the model's state_dict keys. Returns the
    spec's keys the model lacks (folded convs' biases, parameter layers' weights)."""
    ort = pytest.importorskip("onnxruntime")
    import onnx

    imported = import_file(path)
    assert imported.weights is not None and not imported.unexpressed
    net = built(imported.text, imported.weights)
    theirs = set(model.state_dict())
    named = {t.name for t in onnx.load(str(path)).graph.initializer} & theirs
    # a tensor the model reads as a value is a parameter layer's `weight`, of a leading 1
    assert (named or not theirs) and \
        named <= {k if k in theirs else k.removesuffix(".weight") for k in net.state_dict()}
    session = ort.InferenceSession(str(path))
    x = batch(shape)
    (want,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        got = net(x)
    torch.testing.assert_close(got, torch.from_numpy(want), rtol=0, atol=1e-4)
    return set(net.state_dict()) - theirs


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


@pytest.fixture(scope="module")
def program(tmp_path_factory: pytest.TempPathFactory) -> tuple[nn.Module, Path]:
    """The small CNN and its program, saved once for the tests reading it."""
    model = trained(SmallCNN())
    return model, save_program(model, tmp_path_factory.mktemp("program") / "cnn.pt2", SHAPE)


def test_a_small_cnn_from_a_program_computes_as_the_program(program: tuple[nn.Module, Path]) -> None:
    model, path = program
    matches_program(path, model, SHAPE)


@pytest.mark.slow
def test_a_decomposed_program_computes_as_the_program(tmp_path: Path) -> None:
    """aten.convolution, addmm of a permuted weight, _native_batch_norm_legit_no_training,
    max_pool2d_with_indices, mean over space, view."""
    model = trained(SmallCNN())
    matches_program(save_program(model, tmp_path / "cnn.pt2", SHAPE, decompose=True), model, SHAPE)


@pytest.mark.slow
def test_a_small_cnn_from_torchscript_onnx_computes_as_onnxruntime(tmp_path: Path) -> None:
    model = trained(SmallCNN())
    extra = matches_onnx(save_onnx(model, tmp_path / "cnn.onnx", SHAPE, dynamo=False), model, SHAPE)
    # the exporter folds each BatchNorm into the conv before it: that conv gains a bias
    assert extra == {"blocks.0.conv.bias", "blocks.1.conv.bias"}


@pytest.mark.slow
def test_a_small_cnn_from_dynamo_onnx_computes_as_onnxruntime(tmp_path: Path) -> None:
    model = trained(SmallCNN())
    extra = matches_onnx(save_onnx(model, tmp_path / "cnn.onnx", SHAPE, dynamo=True), model, SHAPE)
    assert extra == {"blocks.0.conv.bias", "blocks.1.conv.bias"}


class Flattening(nn.Module):
    """A conv and a linear layer over its map flattened by the batch's size, read back
    from the input: `x.view(x.size(0), -1)`."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4 * 6 * 6, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv(x))
        return self.fc(x.view(x.size(0), -1))


def test_an_onnx_model_of_a_dynamic_batch_folds_the_sizes_it_computes_from_it(tmp_path: Path) -> None:
    """Its view's size is a Shape of the map, a Gather of its batch, a Concat with -1:
    read at a batch of 2, they fold to a constant, and the spec computes what onnxruntime
    computes of the file at any batch."""
    ort = pytest.importorskip("onnxruntime")
    path = tmp_path / "dynamic.onnx"
    model = trained(Flattening())
    torch.onnx.export(model, (batch((3, 8, 8)),), str(path), dynamo=False, input_names=["x"],
                      dynamic_axes={"x": {0: "N"}})
    imported = import_file(path)
    assert "{flatten, name: flatten}" in imported.text
    net = built(imported.text, imported.weights or {})
    x = torch.randn(3, 3, 8, 8)
    (want,) = ort.InferenceSession(str(path)).run(None, {"x": x.numpy()})
    with torch.no_grad():
        torch.testing.assert_close(net(x), torch.from_numpy(want), rtol=0, atol=1e-5)


def resnet18() -> nn.Module:
    from torchvision import models

    return trained(models.resnet18())


@pytest.mark.slow
@pytest.mark.needs("torchvision")
def test_resnet18_from_a_program_computes_as_the_program(tmp_path: Path) -> None:
    model = resnet18()
    matches_program(save_program(model, tmp_path / "resnet18.pt2", (3, 64, 64)), model, (3, 64, 64))


@pytest.mark.slow
@pytest.mark.needs("torchvision")
@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "torchscript"])
def test_resnet18_from_onnx_computes_as_onnxruntime(tmp_path: Path, dynamo: bool) -> None:
    model = resnet18()
    path = save_onnx(model, tmp_path / "resnet18.onnx", (3, 64, 64), dynamo)
    extra = matches_onnx(path, model, (3, 64, 64))
    assert all(key.endswith(".bias") for key in extra)  # folded norms' shifts, nothing else


@pytest.mark.slow
@pytest.mark.needs("torchvision")
@pytest.mark.parametrize("name", ["shufflenet_v2_x0_5", "convnext_tiny"])
def test_shufflenet_and_convnext_from_files_compute_as_the_files(tmp_path: Path, name: str) -> None:
    """ShuffleNetV2's chunks and channel shuffles (a program's aten.chunk, view, transpose;
    ONNX Slices at a computed size, Reshape, Transpose), ConvNeXt's LayerNorm2d between
    permutes, layer_scale, GELU and linear layers over NHWC maps."""
    from torchvision import models

    model = trained(getattr(models, name)())
    matches_program(save_program(model, tmp_path / f"{name}.pt2", (3, 64, 64)), model, (3, 64, 64))
    extra = matches_onnx(save_onnx(model, tmp_path / f"{name}.onnx", (3, 64, 64), dynamo=False),
                         model, (3, 64, 64))
    assert all(key.endswith((".bias", "layer_scale.weight")) for key in extra)


@pytest.mark.slow
@pytest.mark.needs("torchvision")
def test_convnext_from_dynamo_onnx_computes_as_onnxruntime(tmp_path: Path) -> None:
    """Its pool's mean, kept to [N, C, 1, 1], reaches the head through the exporter's
    as_strided: a Reshape to one dim and a Gather of every element back in order, which
    are the mean's value."""
    from torchvision import models

    model = trained(models.convnext_tiny())
    path = save_onnx(model, tmp_path / "convnext.onnx", (3, 64, 64), dynamo=True)
    extra = matches_onnx(path, model, (3, 64, 64))
    assert all(key.endswith((".bias", "layer_scale.weight")) for key in extra)


@pytest.mark.slow
@pytest.mark.needs("torchvision")
def test_shufflenet_from_dynamo_onnx_computes_as_onnxruntime(tmp_path: Path) -> None:
    """The exporter's optimizer makes each channel split a Split of no module record: it is
    read in the module its readers share, so each unit is one block again."""
    from torchvision import models

    model = trained(models.shufflenet_v2_x0_5())
    path = save_onnx(model, tmp_path / "shufflenet.onnx", (3, 64, 64), dynamo=True)
    extra = matches_onnx(path, model, (3, 64, 64))
    assert all(key.endswith(".bias") for key in extra)
    assert "{chunk: {chunks: 2}, name: chunk, if: has_chunk}" in import_file(path).text


@pytest.mark.slow
@pytest.mark.needs("torchvision")
@pytest.mark.parametrize("name", ["mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0",
                                  "densenet121", "regnet_y_400mf"])
def test_torchvision_classifiers_from_files_compute_as_the_files(tmp_path: Path, name: str) -> None:
    """ReLU6 (aten.hardtanh, ONNX Clip), Hardsigmoid and Hardswish, SiLU (ONNX: x times its
    Sigmoid), in-place dropout, squeeze-and-excitation's Mul, DenseNet's concatenations (its
    first of one map), RegNet's hyphenated module names (`block1-0`) in initializers'."""
    from torchvision import models

    model = trained(getattr(models, name)())
    matches_program(save_program(model, tmp_path / f"{name}.pt2", (3, 64, 64)), model, (3, 64, 64))
    matches_onnx(save_onnx(model, tmp_path / f"{name}.onnx", (3, 64, 64), dynamo=False), model,
                 (3, 64, 64))


@pytest.mark.slow
@pytest.mark.needs("torchvision")
def test_a_vision_transformer_from_a_program_computes_as_the_program(tmp_path: Path) -> None:
    """Its class token, expanded over the batch and concatenated before the patches, is a
    parameter layer; the token read back, `x[:, 0]`, an aten.select; its attention,
    nn.MultiheadAttention decomposed, one layer each."""
    from torchvision.models import VisionTransformer

    model = trained(VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2,
                                      hidden_dim=32, mlp_dim=64, num_classes=10))
    with torch.no_grad():  # its zero class token and head would hide them read wrong
        model.class_token.normal_()
        model.heads.head.weight.normal_(std=0.5)
    path = save_program(model, tmp_path / "vit.pt2", (3, 32, 32))
    matches_program(path, model, (3, 32, 32))
    text = import_file(path).text
    assert "{parameter: {shape: [1, 32]}, name: class_token}" in text
    assert "{select: {dim: 1, index: 0}, name: select}" in text


SMALL_NETS = {"Halves": (4, 8, 8), "Reordered": (3, 8, 8), "Scaled": (3, 8, 8), "Shuffled": (3, 8, 8),
              "Thirds": (5, 4, 4)}
"""Small nets of tests/importing/nets.py that cut, move and scale maps, and their inputs."""


def small_net(name: str) -> nn.Module:
    from importing import nets

    return trained(getattr(nets, name)())


@pytest.mark.parametrize("name", sorted(SMALL_NETS))
def test_maps_cut_moved_and_scaled_from_a_program_compute_as_the_program(tmp_path: Path,
                                                                        name: str) -> None:
    """aten.chunk and its pieces (Halves), permute and transpose (Reordered), a layer norm
    between permutes and a tensor of the model read as a value (Scaled: ConvNeXt's), a split,
    a channel shuffle written out, a transposed conv, GELU and softmax (Shuffled), a split by
    length (Thirds)."""
    model, shape = small_net(name), SMALL_NETS[name]
    matches_program(save_program(model, tmp_path / f"{name}.pt2", shape), model, shape)


def test_multihead_attention_from_a_program_is_one_layer(tmp_path: Path) -> None:
    """torch's nn.MultiheadAttention, decomposed in the program, is read back whole where it
    is batch-first self-attention (its attention weights unread)."""
    model = small_net("Attending")
    path = save_program(model, tmp_path / "attending.pt2", (6, 8))
    matches_program(path, model, (6, 8))
    assert "{multihead_attention: {heads: 2, state_dict: torch}, name: attn}" in import_file(path).text


def test_masked_multihead_attention_from_a_program_is_listed(tmp_path: Path) -> None:
    """Its calls read the mask too: they are read one by one, and what no op computes is
    listed (the mask's comparison among them)."""
    from importing.nets import Attending

    path = save_program(trained(Attending(masked=True)), tmp_path / "masked.pt2", (6, 8))
    with pytest.raises(ImportFailure) as caught:
        import_file(path)
    listed = [str(u) for u in caught.value.unexpressed]
    assert "(root): aten.lt.Scalar (node lt): no netspec op" in listed
    # its in_proj, a linear layer of attn's own tensors, made before its out_proj module ran
    assert listed[-1] == "attn: reads the own tensors of attn, which holds modules besides " \
        "(no layer holds them under their keys)"


def test_a_layer_norm_between_permutes_and_a_scale_are_read_as_trace_reads_them(tmp_path: Path) -> None:
    """The norm's module, which makes the permutes too, is a layer named as it in its
    parent's scope, holding its keys; the scale is a parameter layer, first in its scope:
    the spec is the one imported from the model itself, line for line but the first."""
    from netspec.importer import import_model

    model = small_net("Scaled")
    text = import_file(save_program(model, tmp_path / "scaled.pt2", (3, 8, 8)), name="scaled").text
    assert "{layernorm: {shape: [4]}, name: 1}" in text
    assert text.splitlines()[1:] == import_model(model, (3, 8, 8)).text.splitlines()[1:]


@pytest.mark.slow
@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "torchscript"])
@pytest.mark.parametrize("name", sorted(SMALL_NETS))
def test_maps_cut_moved_and_scaled_from_onnx_compute_as_onnxruntime(tmp_path: Path, name: str,
                                                                   dynamo: bool) -> None:
    """Slice by a computed shape (a chunk, folded), Split, Transpose, LayerNormalization,
    Mul by an initializer, ConvTranspose, Gelu, Softmax, Reshape to a shape of Concat."""
    model, shape = small_net(name), SMALL_NETS[name]
    matches_onnx(save_onnx(model, tmp_path / f"{name}.onnx", shape, dynamo=dynamo), model, shape)


def cut_and_moved_onnx(path: Path, tensors: dict[str, torch.Tensor]) -> Path:
    """x [batch, 4, 8, 8]: its channels cut in two by Slices at a size computed from its
    Shape (half the channels), the second half upsampled by a ConvTranspose and max-pooled
    back, the halves concatenated, moved to NHWC by a Transpose, layer-normed, Gelu, moved
    back, times an initializer [4, 1, 1], a Softmax over channels."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    def const(name: str, values: list[int]) -> object:
        return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(
            torch.tensor(values).numpy(), name))

    nodes = [helper.make_node("Shape", ["x"], ["shape"], start=1, end=2),
             const("two", [2]), helper.make_node("Div", ["shape", "two"], ["half"]),
             const("zero", [0]), const("end", [2**62]), const("axis", [1]),
             helper.make_node("Slice", ["x", "zero", "half", "axis"], ["a"], "/Slice"),
             helper.make_node("Slice", ["x", "half", "end", "axis"], ["b"], "/Slice_1"),
             helper.make_node("ConvTranspose", ["b", "up.weight", "up.bias"], ["u"], "/up/ConvTranspose",
                              kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("MaxPool", ["u"], ["d"], "/down/MaxPool", kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Concat", ["a", "d"], ["c"], "/Concat", axis=1),
             helper.make_node("Transpose", ["c"], ["t"], "/Transpose", perm=[0, 2, 3, 1]),
             helper.make_node("LayerNormalization", ["t", "norm.weight", "norm.bias"], ["n"],
                              "/norm/LayerNormalization", epsilon=1e-5),
             helper.make_node("Gelu", ["n"], ["g"], "/act/Gelu"),
             helper.make_node("Transpose", ["g"], ["m"], "/Transpose_1", perm=[0, 3, 1, 2]),
             helper.make_node("Mul", ["layer_scale", "m"], ["s"], "/Mul"),
             helper.make_node("Softmax", ["s"], ["y"], "/Softmax", axis=1)]
    graph = helper.make_graph(
        nodes, "handmade", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4, 8, 8])],
        [numpy_helper.from_array(t.detach().numpy(), name) for name, t in tensors.items()])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)]), str(path))
    return path


def test_a_handmade_onnx_model_cutting_moving_and_scaling_maps_computes_as_onnxruntime(
        tmp_path: Path) -> None:
    torch.manual_seed(0)
    up, norm = nn.ConvTranspose2d(2, 2, 2, stride=2), nn.LayerNorm(4)
    model = nn.ModuleDict({"up": up, "norm": trained(nn.Sequential(norm))[0]})
    model.register_parameter("layer_scale", nn.Parameter(torch.rand(4, 1, 1) + 0.5))
    path = cut_and_moved_onnx(tmp_path / "cut.onnx", dict(model.state_dict()))
    assert matches_onnx(path, model, (4, 8, 8)) == {"layer_scale.weight"}  # a parameter layer's
    text = import_file(path).text
    assert "{parameter: {shape: [4, 1, 1]}, name: layer_scale}" in text
    assert "{permute: {dims: [0, 2, 3, 1]}, name: permute}" in text


def test_the_cli_writes_the_spec_and_its_weights(tmp_path: Path,
                                                 program: tuple[nn.Module, Path]) -> None:
    model, path = program
    result = run("import", str(path), "-o", str(tmp_path / "cnn.yaml"))
    assert result.exit_code == 0, result.output
    assert f"wrote {tmp_path / 'cnn.pt'}" in result.output
    weights = torch.load(tmp_path / "cnn.pt")
    x = batch(SHAPE)
    with torch.no_grad():
        torch.testing.assert_close(built((tmp_path / "cnn.yaml").read_text(), weights)(x),
                                   model(x), rtol=0, atol=1e-4)


def test_the_cli_takes_another_input_size_and_weights_path(tmp_path: Path,
                                                          program: tuple[nn.Module, Path]) -> None:
    _, path = program
    result = run("import", str(path), "-o", str(tmp_path / "cnn.yaml"), "--input", "3,32,32",
                 "--weights", str(tmp_path / "w.pt"))
    assert result.exit_code == 0, result.output
    assert "input: [3, 32, 32]" in (tmp_path / "cnn.yaml").read_text()
    assert (tmp_path / "w.pt").is_file()


def test_a_program_s_unexpressible_op_is_listed_by_module_and_exits_1(tmp_path: Path) -> None:
    path = save_program(Sine().eval(), tmp_path / "sine.pt2", (3, 8, 8))
    result = run("import", str(path), "-o", str(tmp_path / "sine.yaml"))
    assert result.exit_code == 1
    assert "1 computation(s) netspec cannot express" in result.output
    assert "(root): aten.sin.default (node sin): no netspec op" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "sine.yaml").exists()
    partial = run("import", str(path), "-o", str(tmp_path / "sine.yaml"), "--partial")
    assert partial.exit_code == 0, partial.output
    assert "# not expressible: (root): aten.sin.default" in (tmp_path / "sine.yaml").read_text()


def test_a_mean_over_space_is_a_global_pool_and_a_flatten(tmp_path: Path) -> None:
    model = MeanHead().eval()
    path = save_program(model, tmp_path / "head.pt2", (3, 8, 8))
    matches_program(path, model, (3, 8, 8))
    text = import_file(path).text
    assert "{adaptive_avgpool2d: {size: 1}, name: adaptive_avgpool2d}" in text
    assert "{flatten, name: flatten}" in text


@pytest.mark.slow
def test_an_onnx_mean_over_space_is_a_global_pool_and_a_flatten(tmp_path: Path) -> None:
    model = MeanHead().eval()
    onnx = save_onnx(model, tmp_path / "head.onnx", (3, 8, 8), dynamo=False)
    assert matches_onnx(onnx, model, (3, 8, 8)) == set()


class Twice(nn.Module):
    """One conv run twice: its weights are shared, which a spec's layers are not."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.conv(x))


def test_a_layer_run_twice_is_listed_as_shared_weights(tmp_path: Path) -> None:
    path = save_program(Twice().eval(), tmp_path / "twice.pt2", (3, 8, 8))
    with pytest.raises(ImportFailure) as caught:
        import_file(path)
    assert [str(u) for u in caught.value.unexpressed] == [
        "conv: aten.conv2d.default (node conv2d_1): called again (shared weights)"]


class Normed(nn.Module):
    """A conv, then a layer norm of the module's own tensors over the conv's NHWC view: a
    module holding a submodule and tensors of its own, read by a call of its forward."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.weight, self.bias = nn.Parameter(torch.ones(4)), nn.Parameter(torch.zeros(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.layer_norm(self.conv(x).permute(0, 2, 3, 1), (4,), self.weight, self.bias)


@pytest.mark.parametrize(("model", "listed"), [
    (nn.Sequential(Normed()), "0: aten.layer_norm.default (node layer_norm): reads the own tensors "
                              "of 0, which holds modules besides (no layer holds them under their keys)"),
    (Normed(), "(root): aten.layer_norm.default (node layer_norm): reads the model's own tensors "
               "(no layer holds them under their keys)")], ids=["nested", "root"])
def test_a_module_s_own_tensors_beside_its_modules_are_listed(tmp_path: Path, model: nn.Module,
                                                               listed: str) -> None:
    """Not as a layer called again: nothing was."""
    with pytest.raises(ImportFailure) as caught:
        import_file(save_program(model.eval(), tmp_path / "normed.pt2", (3, 8, 8)))
    assert [str(u) for u in caught.value.unexpressed] == [listed]


@pytest.mark.slow
def test_an_onnx_model_s_tensors_read_twice_are_held_by_each_layer(tmp_path: Path) -> None:
    """ONNX keeps one initializer for equal tensors (shared weights, or a fresh model's
    norms merged by the exporter): each layer reading it holds a copy, named where it runs."""
    model = Twice().eval()
    extra = matches_onnx(save_onnx(model, tmp_path / "twice.onnx", (3, 8, 8), dynamo=False),
                         model, (3, 8, 8))
    assert extra == {"conv_1.weight", "conv_1.bias"}


def test_a_handmade_onnx_model_computes_as_onnxruntime(tmp_path: Path) -> None:
    """Initializers named by state_dict keys, nodes by module path: the model's keys."""
    model = Sine().eval()
    path = handmade_onnx(tmp_path / "conv.onnx", model.conv,
                         ("conv.weight", "conv.bias", "/conv/Conv", "/relu/Relu"), "Relu")
    assert matches_onnx(path, model, (3, 8, 8)) == set()


def test_an_onnx_model_s_unexpressible_op_is_listed_by_node_and_exits_1(tmp_path: Path) -> None:
    path = handmade_onnx(tmp_path / "sine.onnx", Sine().conv,
                         ("conv.weight", "conv.bias", "/conv/Conv", "/Sin"), "Sin")
    result = run("import", str(path), "-o", str(tmp_path / "sine.yaml"))
    assert result.exit_code == 1
    assert "(root): Sin (node /Sin): no netspec op" in result.output
    assert "Traceback" not in result.output


def test_an_onnx_model_of_other_node_names_names_layers_after_them(tmp_path: Path) -> None:
    """Node names that carry no module path and initializers not named by state_dict keys
    (another framework's): the root's layers, named as the nodes, sanitised."""
    path = handmade_onnx(tmp_path / "sine.onnx", Sine().conv, ("t0", "t1", "Conv:0", "Sin:1"), "Sin")
    imported = import_file(path, partial=True)
    assert "name: Conv_0" in imported.text and "name: Sin_1" in imported.text
    assert sorted(imported.weights or {}) == ["Conv_0.bias", "Conv_0.weight"]


@pytest.mark.parametrize(("name", "message"), [
    ("net.h5", "reads .pt2 and .onnx files (or MODULE:CALLABLE), not .h5"),
    ("missing.pt2", "missing.pt2: no such file"),
    ("folder.onnx/", "folder.onnx: a folder, not a file"),
])
def test_a_file_that_cannot_be_read_is_refused_in_one_line(tmp_path: Path, name: str,
                                                         message: str) -> None:
    if name.endswith("/"):
        (tmp_path / name).mkdir()
    with pytest.raises(ImportFailure, match=message.replace("(", r"\(").replace(")", r"\)")):
        import_file(tmp_path / name)


def test_a_file_of_another_kind_is_refused_in_one_line(tmp_path: Path, capfd) -> None:
    """In one line: torch's own logger, which prints a traceback before it raises, too."""
    (tmp_path / "net.pt2").write_text("not a program")
    result = run("import", str(tmp_path / "net.pt2"), "-o", str(tmp_path / "net.yaml"))
    assert result.exit_code == 1 and "not a torch.export program torch can load" in result.output
    assert "Traceback" not in result.output + capfd.readouterr().err

