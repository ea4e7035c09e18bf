"""`netspec predict` and the preparation exports carry: an input is prepared as training
prepared it (Pillow's bilinear resize, [0, 1], the checkpoint's mean and std), and an ONNX
export alone, through its metadata, reproduces predict's probabilities."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import netspec
from netspec.cli import main

predicting = importlib.import_module("netspec.predict")  # `netspec.predict` is the function

SPEC = """
name: shades
input: [3, 8, 8]
layers:
  - conv2d: {out: 4, kernel: 3, padding: 1}
  - relu
  - flatten
  - linear: 3
train:
  epochs: 1
  batch_size: 8
  data: {folder: images}
"""
CLASSES = ["blue", "green", "red"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A spec trained for an epoch on 12x12 images of three colours (resized to 8x8)."""
    root = tmp_path_factory.mktemp("predict")
    rng = np.random.default_rng(0)
    for channel, name in ((2, "blue"), (1, "green"), (0, "red")):
        (root / "images" / name).mkdir(parents=True)
        for i in range(6):
            pixels = rng.integers(0, 80, (12, 12, 3), dtype=np.uint8)
            pixels[..., channel] += 150
            Image.fromarray(pixels).save(root / "images" / name / f"{i}.png")
    (root / "shades.yaml").write_text(SPEC)
    netspec.train(root / "shades.yaml", out=root / "run", verbose=False)
    return root


def _by_hand(run: Path, x: torch.Tensor) -> torch.Tensor:
    """The probabilities from torch alone: the checkpoint's weights, mean and std."""
    state = torch.load(run / "run" / "best.pt", weights_only=True)
    model = netspec.build(run / "shades.yaml").eval()
    model.load_state_dict(state["model"])
    mean = torch.tensor(state["data"]["mean"]).view(3, 1, 1)
    std = torch.tensor(state["data"]["std"]).view(3, 1, 1)
    with torch.no_grad():
        return model(((x - mean) / std)[None]).softmax(-1)[0]


@pytest.mark.slow  # the module's run trains once: 5-8 s on a busy 2-core machine
def test_an_image_is_prepared_as_training_prepared_it(run):
    image = run / "images" / "red" / "0.png"
    with Image.open(image) as opened:
        pixels = np.array(opened.convert("RGB").resize((8, 8), Image.Resampling.BILINEAR))
    want = _by_hand(run, torch.from_numpy(pixels).permute(2, 0, 1).float() / 255)
    (got,) = netspec.predict(run / "shades.yaml", run / "run" / "best.pt", [image], top_k=3)
    assert got.file == str(image) and [name for name, _ in got.top] == \
        [CLASSES[i] for i in want.argsort(descending=True).tolist()]
    for name, p in got.top:
        assert p == pytest.approx(float(want[CLASSES.index(name)]), abs=1e-6)


@pytest.mark.slow  # the module's run trains once: 5-8 s on a busy 2-core machine
def test_the_command_prints_the_top_k_of_every_image_in_folders_and_files(run):
    result = CliRunner().invoke(main, ["predict", str(run / "shades.yaml"), "--weights",
                                       str(run / "run"), str(run / "images" / "green"),
                                       str(run / "images" / "red" / "1.png"), "--top-k", "2"])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    files = [*sorted((run / "images" / "green").glob("*.png")), run / "images" / "red" / "1.png"]
    assert [line.split(": ")[0] for line in lines] == [str(f) for f in files]
    api = netspec.predict(run / "shades.yaml", run / "run", files, top_k=2)
    assert lines == [p.line() for p in api]
    assert all(len(p.top) == 2 and p.top[0][1] >= p.top[1][1] for p in api)


@pytest.mark.slow  # the module's run trains once: 5-8 s on a busy 2-core machine
def test_a_bad_input_is_named_and_exits_1(run, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    runner = CliRunner()
    args = ["predict", str(run / "shades.yaml"), "--weights", str(run / "run" / "best.pt")]
    result = runner.invoke(main, [*args, str(broken)])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: cannot read image {broken}: ")
    assert "Traceback" not in result.stderr and result.stdout == ""
    result = runner.invoke(main, [*args, str(tmp_path / "nothing.png")])
    assert (result.exit_code, result.stderr) == (1, f"error: {tmp_path / 'nothing.png'}: no such "
                                                    "file or folder\n")
    np.save(tmp_path / "wrong.npy", np.zeros((2, 3, 4, 5), dtype=np.float32))
    result = runner.invoke(main, [*args, str(tmp_path / "wrong.npy")])
    assert result.exit_code == 1 and "an array of shape [2, 3, 4, 5] does not fit the input [3, 8, 8]" \
        in result.stderr
    result = runner.invoke(main, [*args, "--limit", "predict_files=5", str(run / "images")])
    assert result.exit_code == 1 and "more than 5 inputs" in result.stderr


@pytest.mark.slow  # the module's run trains once: 5-8 s on a busy 2-core machine
def test_a_checkpoint_of_another_network_is_refused(run, tmp_path):
    other = tmp_path / "other.yaml"
    other.write_text(SPEC.replace("out: 4", "out: 5"))
    result = CliRunner().invoke(main, ["predict", str(other), "--weights", str(run / "run"),
                                       str(run / "images" / "red" / "0.png")])
    assert result.exit_code == 1 and "its weights do not fit" in result.stderr


@pytest.mark.slow
def test_an_onnx_export_alone_reproduces_predict(run, tmp_path):
    import onnx
    import onnxruntime

    pixels = np.random.default_rng(1).integers(0, 256, (3, 8, 8), dtype=np.uint8)
    np.save(tmp_path / "x.npy", pixels)
    (want,) = netspec.predict(run / "shades.yaml", run / "run", [tmp_path / "x.npy"], top_k=3)
    onnx_path = tmp_path / "shades.onnx"
    result = CliRunner().invoke(main, ["export", str(run / "shades.yaml"), "--format", "onnx",
                                       "--weights", str(run / "run" / "best.pt"), "-o", str(onnx_path)])
    assert result.exit_code == 0, result.stderr
    meta = {p.key: json.loads(p.value) for p in onnx.load(str(onnx_path)).metadata_props}
    state = torch.load(run / "run" / "best.pt", weights_only=True)
    assert meta == {"input_size": [3, 8, 8], **state["data"]} and meta["classes"] == CLASSES
    x = (pixels / 255 - np.array(meta["mean"]).reshape(3, 1, 1)) / np.array(meta["std"]).reshape(3, 1, 1)
    session = onnxruntime.InferenceSession(str(onnx_path))
    (logits,) = session.run(None, {session.get_inputs()[0].name: x[None].astype(np.float32)})
    probabilities = np.exp(logits[0] - logits[0].max())
    probabilities /= probabilities.sum()
    for name, p in want.top:
        assert abs(probabilities[meta["classes"].index(name)] - p) < 1e-5


@pytest.mark.slow
def test_a_pt2_export_carries_the_same_metadata(run, tmp_path):
    from netspec.export import PT2_METADATA, export

    path = export(run / "shades.yaml", "pt2", tmp_path / "shades.pt2", weights=run / "run" / "best.pt")
    extra = {PT2_METADATA: ""}
    torch.export.load(path, extra_files=extra)
    state = torch.load(run / "run" / "best.pt", weights_only=True)
    assert {k: json.loads(v) for k, v in json.loads(extra[PT2_METADATA]).items()} == \
        {"input_size": [3, 8, 8], **state["data"]}


def test_without_a_checkpoint_an_export_records_the_input_size_only():
    from netspec.export import preparation

    spec = netspec.load(SPEC)
    assert preparation(spec, None, None) == {"input_size": "[3, 8, 8]"}
    assert preparation(spec, (3, 16, 16), {"mean": [0.5] * 3, "std": [0.25] * 3, "classes": CLASSES}) \
        == {"input_size": "[3, 16, 16]", "mean": "[0.5, 0.5, 0.5]", "std": "[0.25, 0.25, 0.25]",
            "classes": json.dumps(CLASSES)}
