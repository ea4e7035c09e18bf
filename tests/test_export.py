"""`netspec export`: standalone PyTorch source, torch.export programs and ONNX files compute
what `netspec.build` computes, with the same weights."""

from __future__ import annotations

import importlib.util
import json
import py_compile
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest
import torch
from click.testing import CliRunner
from tiers import zoo

import netspec
import netspec.backends.modules
from netspec.backends.source import python_source
from netspec.cli import main
from netspec.export import example_inputs, export

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
LENET = ROOT / "specs" / "lenet5.yaml"

INLINE = {
    "stochastic_depth": """
        name: stochastic depth
        input: [8, 6, 6]
        layers:
          - conv2d: {out: 8, kernel: 3, padding: 1}
            repeat: 2
          - drop_path: "0.1 * (i + 1)"
            repeat: 2
          - add: [conv2, drop_path2]
    """,
    "rearrange": """
        name: rearrange
        input: [16, 6, 8]
        layers:
          - permute: [0, 2, 3, 1]
          - reshape: [48, -1]
          - unflatten: {dim: 1, sizes: [6, 8]}
          - slice: {dim: 3, start: 2, end: 14, step: 3}
          - select: {dim: 1, index: 0}
          - linear: 3
    """,
    "pieces_and_tokens": """
        name: pieces and tokens
        input: [6, 4, 4]
        layers:
          - chunk: 2
            name: halves
          - conv2d: [3, 1]
            from: halves.1
          - concat: [halves.0, conv1]
          - split: {sizes: [1, 3], dim: 2, index: 1}
          - parameter: [6, 1, 4]
            name: scale
            init: {normal: {std: 0.5}}
          - mul: [scale, split1]
          - flatten: {start_dim: 2}
          - parameter: [1, 12]
            name: token
          - concat: {dim: 1}
            from: [token, flatten1]
    """,
    "attention_by_hand": """
        name: attention by hand
        input: [6, 16]
        layers:
          - rmsnorm: {eps: 1e-6}
          - linear: 48
          - chunk: {chunks: 3, dim: 2}
            name: qkv
          - transpose: [1, 2]
            from: qkv.1
          - matmul: [qkv.0, transpose1]
          - softmax: -1
          - matmul: [softmax1, qkv.2]
          - linear: 64
          - glu: silu
    """,
    "transformer": """
        name: transformer
        inputs:
          ids: {tokens: [12], vocab: 50}
          memory: [7, 24]
        layers:
          - embedding: [50, 32]
            from: ids
          - parameter: [12, 32]
            name: positions
            from: ids
            init: {normal: {std: 0.02}}
          - add: [embed1, positions]
            name: x
          - layernorm: {}
          - multihead_attention: {heads: 4, kv_heads: 2, causal: true, rotary: true}
          - add: [x, attn1]
            name: h
          - multihead_attention: {heads: 2, head_dim: 8}
            from: [h, memory]
          - add: [h, attn2]
          - rmsnorm: {}
          - linear: 50
            tie: embed1
    """,
    "segmentation_head": """
        name: segmentation head
        input: [3, 37, 45]
        layers:
          - conv2d: {out: 8, kernel: 3, stride: 2, padding: 1}
          - conv2d: {out: 8, kernel: 3, stride: 2, padding: 1}
          - conv2d: {out: 4, kernel: 1}
          - upsample: {mode: bilinear}
            from: [conv3, input]
    """,
    "residual": """
        name: residual
        input: [3, 8, 8]
        blocks:
          unit:
            params: {c: null}
            layers:
              - conv2d: {out: c, kernel: 3, padding: 1}
              - batchnorm2d
              - add: [input, bn1]
              - relu
        layers:
          - unit: {c: 3}
            repeat: 3
            name: layer1
          - conv2d: [3, 1]
            name: unused
            frozen: true
          - concat: [layer1, input]
          - adaptive_avgpool2d: 1
          - flatten
          - linear: 5
    """,
    "merges": """
        name: merges
        inputs: {skip: [4, 12, 12], up: [4, 8, 8], gate: [4, 1, 1]}
        outputs: [mul1, crop1, add1, crop2]
        layers:
          - center_crop:
            from: [skip, up]
          - add: [crop1, up, up]
          - mul: [up, gate]
          - center_crop: 6
            from: skip
    """,
    "long_names": """
        name: a network with rather long layer names
        input: [2, 6, 6]
        blocks:
          branch:
            params: {c: null}
            layers:
              - {conv2d: {out: c, kernel: 3, padding: 1, bias: false}, name: a_convolution_with_a_long_name}
              - {batchnorm2d: {momentum: 0.05, eps: 0.001}, name: normalisation_with_a_long_name}
        layers:
          - {branch: {c: 2}, name: the_first_branch_of_this_network}
          - {branch: {c: 3}, name: the_second_branch_of_this_network, from: input}
          - {branch: {c: 4}, name: the_third_branch_of_this_network, from: input}
          - concat: [the_first_branch_of_this_network, the_second_branch_of_this_network,
                     the_third_branch_of_this_network, the_first_branch_of_this_network]
            name: concatenation_of_every_branch_of_this_network
          - {leaky_relu: {negative_slope: 0.2}}
          - {add: [concatenation_of_every_branch_of_this_network, leaky_relu1,
                   concatenation_of_every_branch_of_this_network]}
    """,
    "every_op_2d": """
        name: every op in 2-d
        input: [4, 16, 16]
        layers:
          - conv2d: {out: 8, kernel: 3, padding: same, dilation: 2, padding_mode: reflect}
          - conv2d: {out: 8, kernel: [3, 1], stride: [2, 1], groups: 4, bias: false}
          - groupnorm: 2
          - relu6
          - conv_transpose2d: {out: 6, kernel: 3, stride: 2, output_padding: 1, padding: 1}
          - instancenorm2d: {affine: true}
          - leaky_relu: 0.1
          - maxpool2d: {kernel: 3, stride: 2, ceil_mode: true}
          - prelu: {per_channel: true, init: 0.1}
          - avgpool2d: {kernel: 2, padding: 1, count_include_pad: false}
          - elu: 0.5
          - upsample: {scale: 2, mode: bilinear, align_corners: true}
          - gelu: tanh
          - zeropad2d: [1, 2, 0, 1]
          - silu: {inplace: true}
          - upsample: {size: [6, 5]}
          - layernorm: 3
          - hardswish
          - mish
          - hardsigmoid: {inplace: true}
          - dropout2d: 0.2
          - adaptive_maxpool2d: [null, 3]
          - tanh
          - identity
          - softmax: 1
          - adaptive_avgpool2d: 2
          - sigmoid
          - log_softmax: -1
          - flatten
          - dropout: 0.1
          - linear: {out: 3, bias: false}
    """,
    "every_op_1d": """
        name: every op in 1-d
        input: [3, 32]
        layers:
          - conv1d: {out: 6, kernel: 5, stride: 2, padding: 2}
          - batchnorm1d: {momentum: null}
          - instancenorm1d: {affine: true, track_running_stats: true}
          - maxpool1d: 2
          - conv_transpose1d: {out: 4, kernel: 4, stride: 2, dilation: 2}
          - zeropad1d: [2, -1]
          - avgpool1d: {kernel: 3, stride: 1}
          - upsample: {scale: 1.5, mode: linear}
          - adaptive_maxpool1d: 8
          - adaptive_avgpool1d: 4
          - relu: {inplace: true}
    """,
}


def load(text: str) -> netspec.Spec:
    return netspec.load(textwrap.dedent(text).strip() + "\n")


SOURCES = {**{p.stem: netspec.load(p) for p in SPECS}, **{k: load(v) for k, v in INLINE.items()}}


def import_file(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def as_tuple(value: torch.Tensor | tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    return value if isinstance(value, tuple) else (value,)


def perturbed(model: torch.nn.Module) -> torch.nn.Module:
    """Non-trivial batch-norm statistics, so eval mode matters."""
    generator = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=generator) - 0.5)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=generator) + 0.5)
    return model.eval()


RUN_AT = {"unet": (1, 188, 188), "fcn_resnet50": (3, 97, 131), "deeplabv3_resnet50": (3, 97, 131),
          "r3d_18": (3, 8, 56, 56)}
"""Specs too heavy to run at their declared size run smaller: U-Net (150 GMACs at 572x572),
the segmentation nets (143 and 169 GMACs at 520x520), R3D-18 (41 GMACs on 16 frames)."""


@pytest.mark.parametrize("name", zoo(sorted(SOURCES)))
def test_python_source_computes_what_build_computes(name, tmp_path):
    spec = SOURCES[name]
    path = tmp_path / f"{name}_net.py"
    path.write_text(python_source(spec))
    py_compile.compile(str(path), doraise=True)
    module = import_file(path)
    built = perturbed(netspec.build(spec, seed=0))
    classes = {v.__name__: v for v in vars(module).values()
               if isinstance(v, type) and issubclass(v, torch.nn.Module) and v.__module__ == module.__name__}
    own = {n for n in classes if hasattr(netspec.backends.modules, n)}  # copied in, like helpers
    assert set(classes) - own == {type(built).__name__}
    with torch.device("meta"):  # no time spent initialising weights about to be replaced
        written = classes[type(built).__name__]()
    assert list(written.state_dict()) == list(built.state_dict())
    written.load_state_dict(built.state_dict(), strict=True, assign=True)
    written.eval()
    assert [n for n, p in written.named_parameters() if not p.requires_grad] == \
        [n for n, p in built.named_parameters() if not p.requires_grad]
    examples = example_inputs(spec, RUN_AT.get(name), batch=2)
    with torch.no_grad():
        ours, theirs = as_tuple(written(*examples)), as_tuple(built(*examples))
    assert len(ours) == len(theirs)
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))


def ruff() -> list[str]:
    """ruff, from the test extra."""
    return ["ruff"] if shutil.which("ruff") else [sys.executable, "-m", "ruff"]


def test_python_source_is_ruff_clean(tmp_path):
    for name, spec in SOURCES.items():
        (tmp_path / f"{name.replace('-', '_')}_net.py").write_text(python_source(spec))
    many = {"input_size": "[3, 224, 224]", "mean": "[0.485, 0.456, 0.406]",
            "std": "[0.229, 0.224, 0.225]", "classes": json.dumps([f"class {i}" for i in range(1000)])}
    (tmp_path / "with_constants.py").write_text(python_source(LENET, metadata=many))
    result = subprocess.run([*ruff(), "check", "--no-cache", "--config", str(ROOT / "pyproject.toml"),
                             str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_python_source_reads_like_the_spec():
    code = python_source(SOURCES["residual"])
    assert "import netspec" not in code and "from netspec" not in code
    assert "class Residual(nn.Module):" in code
    assert "self.layer1 = nn.ModuleList([nn.Module() for _ in range(3)])" in code
    assert "self.layer1[0].conv1 = nn.Conv2d(in_channels=3, out_channels=3, kernel_size=3, padding=1)" \
        in code
    assert "self.unused.requires_grad_(False)" in code
    assert "        x = self.layer1[0].bn1(x)  # (N, 3, 8, 8)\n" in code
    assert "x = input_ + x  # (N, 3, 8, 8)\n" in code
    assert "layer1_0_relu1 = self.layer1[0].relu1(x)  # (N, 3, 8, 8)\n" in code
    assert "x = torch.cat((layer1_2_relu1, input_), dim=1)  # (N, 6, 8, 8)" in code
    assert "_ = self.unused(layer1_2_relu1)" in code
    merges = python_source(SOURCES["merges"])
    assert "def center_crop(" in merges and "add1 = crop1 + up + up  # (N, 4, 8, 8)" in merges
    assert "mul1 = up * gate" in merges and "return mul1, crop1, add1, crop2" in merges
    assert "def center_crop(" not in code


def test_export_python_writes_the_source_with_the_input_size(tmp_path):
    out = export(LENET, "python", tmp_path / "net.py")
    assert out.read_text() == python_source(LENET, metadata={"input_size": "[1, 32, 32]"})
    module = import_file(out)
    assert (module.INPUT_SIZE, module.MEAN, module.STD, module.CLASSES) == ([1, 32, 32], None, None, None)


TINY = """
name: tiny
input: [3, 8, 8]
layers:
  - conv2d: {out: 4, kernel: 3}
  - flatten
  - linear: 4
train:
  epochs: 1
  batch_size: 8
  data: {synthetic: {size: 32}}
"""


@pytest.mark.slow  # trains an epoch: 2-5 s on a busy machine
def test_the_python_export_of_a_trained_run_carries_its_preparation(tmp_path):
    """The constants are the checkpoint's; its weights, loaded into the exported class,
    compute what the built network with them computes."""
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY)
    netspec.train(spec, out=tmp_path / "run", verbose=False)
    out = tmp_path / "tiny_net.py"
    result = CliRunner().invoke(main, ["export", str(spec), "--format", "python", "-o", str(out),
                                       "--weights", str(tmp_path / "run" / "best.pt")])
    assert result.exit_code == 0, result.output
    module = import_file(out)
    state = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    assert module.INPUT_SIZE == [3, 8, 8]
    assert state["data"] == {"mean": module.MEAN, "std": module.STD, "classes": module.CLASSES}
    written = module.Tiny().eval()
    written.load_state_dict(state["model"])
    built = netspec.build(spec).eval()
    built.load_state_dict(state["model"])
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(written(x), built(x))


def test_a_python_export_refuses_weights_that_do_not_fit(tmp_path):
    out = tmp_path / "net.py"
    other = netspec.build(LENET, seed=0, params=None).state_dict()
    other["fc1.weight"] = torch.zeros(120, 256)
    result = CliRunner().invoke(main, ["export", str(LENET), "--format", "python", "-o", str(out),
                                       "--weights", str(checkpoint(tmp_path, other))])
    assert result.exit_code == 1 and "fc1.weight: [120, 400] here, [120, 256] in the weights" \
        in result.output
    assert "Traceback" not in result.output and not out.exists()
    bare = netspec.build(LENET, seed=5).state_dict()  # a bare state_dict: no preparation
    export(LENET, "python", out, weights=checkpoint(tmp_path, bare))
    assert import_file(out).MEAN is None


def test_the_export_command_writes_the_file_or_says_why_not(tmp_path):
    out = tmp_path / "net.py"
    result = CliRunner().invoke(main, ["export", str(LENET), "--format", "python", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text() == export(LENET, "python", tmp_path / "api.py").read_text()
    bad = ROOT / "tests" / "bad" / "unknown_op.yaml"
    result = CliRunner().invoke(main, ["export", str(bad), "--format", "python",
                                       "-o", str(tmp_path / "b.py")])
    assert result.exit_code == 1 and f"{bad}:" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "b.py").exists()
    assert CliRunner().invoke(main, ["export", str(LENET)]).exit_code == 2  # --format is required


@pytest.mark.parametrize("name", ["lenet5", "merges", "every_op_2d", "every_op_1d", "transformer"])
def test_pt2_program_reloads_and_computes_the_same(name, tmp_path):
    spec = SOURCES[name]
    out = export(spec, "pt2", tmp_path / "net.pt2")
    program = torch.export.load(out).module()
    model = netspec.build(spec, seed=0).eval()
    for batch in (1, 3):  # the batch is dynamic
        examples = example_inputs(spec, batch=batch)
        with torch.no_grad():
            ours, theirs = as_tuple(program(*examples)), as_tuple(model(*examples))
        assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))


def checkpoint(tmp_path: Path, state: object) -> Path:
    path = tmp_path / "ckpt.pt"
    torch.save(state, path)
    return path


def test_weights_load_from_a_state_dict_a_training_checkpoint_or_another_naming(tmp_path):
    trained = netspec.build(LENET, seed=5).state_dict()
    renamed = {f"features.{i}": v for i, v in enumerate(trained.values())}  # ported by order
    for saved in (trained, {"model": trained, "epoch": 3}, renamed):
        out = export(LENET, "pt2", tmp_path / "net.pt2", weights=checkpoint(tmp_path, saved))
        program = torch.export.load(out)
        assert torch.equal(program.state_dict["conv1.weight"], trained["conv1.weight"])


def test_weights_that_do_not_fit_are_listed(tmp_path):
    state = netspec.build(LENET, seed=0).state_dict()
    state["fc1.weight"] = torch.zeros(120, 256)
    with pytest.raises(ValueError) as info:
        export(LENET, "pt2", tmp_path / "net.pt2", weights=checkpoint(tmp_path, state))
    assert isinstance(info.value, netspec.WeightsError)
    assert "fc1.weight: [120, 400] here, [120, 256] in the weights" in str(info.value)
    with pytest.raises(ValueError, match="holds no state_dict"):
        export(LENET, "pt2", tmp_path / "net.pt2", weights=checkpoint(tmp_path, [1, 2]))
    assert not (tmp_path / "net.pt2").exists()


def test_fused_exports_compute_what_the_unfused_module_does(tmp_path):
    spec = SOURCES["residual"]
    model = perturbed(netspec.build(spec, seed=0))
    weights = tmp_path / "trained.pt"
    torch.save({"model": model.state_dict()}, weights)
    program = torch.export.load(export(spec, "pt2", tmp_path / "fused.pt2", weights=weights,
                                       fuse_bn=True)).module()
    source = export(spec, "python", tmp_path / "fused_net.py", fuse_bn=True).read_text()
    assert "BatchNorm" not in source and "BatchNorm" in python_source(spec)
    written = import_file(tmp_path / "fused_net.py").Residual().eval()
    written.load_state_dict(netspec.fuse(spec, model).state_dict(), strict=True)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        want = model(x)
        torch.testing.assert_close(program(x), want, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(written(x), want, rtol=1e-5, atol=1e-5)


def test_bad_requests_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown export format 'tflite'"):
        export(LENET, "tflite", tmp_path / "x")  # type: ignore[arg-type]


def test_onnx_without_the_extra_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # `import onnxscript` now fails
    with pytest.raises(ImportError, match=r"needs .*onnxscript.*pip install 'netspec\[export\]'"):
        export(LENET, "onnx", tmp_path / "net.onnx")
    assert not (tmp_path / "net.onnx").exists()


@pytest.mark.parametrize(("name", "trained"), [("lenet5", True), ("vgg11_bn", False),
                                              ("merges", True), ("residual", True),
                                              ("transformer", True)])
@pytest.mark.slow
def test_onnx_runs_in_onnxruntime_like_torch(name, trained, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    spec = SOURCES[name]
    model = netspec.build(spec, seed=0).eval()
    weights = None
    if trained:  # (vgg11_bn's 530 MB would take long to write twice)
        weights = checkpoint(tmp_path, perturbed(model).state_dict())
    out = export(spec, "onnx", tmp_path / "net.onnx", weights=weights)
    assert [p.name for p in tmp_path.iterdir() if p.suffix != ".pt"] == ["net.onnx"]  # one file
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    graph = spec._graph
    assert [i.name for i in session.get_inputs()] == graph.inputs
    assert [o.name for o in session.get_outputs()] == graph.outputs
    examples = example_inputs(spec, batch=1)
    got = session.run(None, {n: x.numpy() for n, x in zip(graph.inputs, examples, strict=True)})
    with torch.no_grad():
        want = as_tuple(model(*examples))
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(torch.from_numpy(a), b, rtol=1e-4, atol=1e-4)
