"""`train.init_from`: fine-tuning starts from a checkpoint's weights (by name, then order and
shape), says where every tensor went, and is not read again on a resume."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import netspec
from netspec.cli import main
from netspec.training.config import TrainConfig
from netspec.training.resume import changes

SPECS = Path(__file__).resolve().parent.parent / "specs"

TINY = """
name: tiny
input: [3, 8, 8]
params: {classes: 4}
layers:
  - conv2d: {out: 4, kernel: 3}
  - flatten
  - linear: classes
train:
  epochs: 1
  batch_size: 8
  data: {synthetic: {size: 32}}
  init_from: {init_from}
"""


def _resnet18(folder: Path, init_from: str) -> Path:
    """The zoo's resnet18 at 3x32x32, training one epoch on 32 random images at a learning
    rate too small to move the weights, so that the trained run shows what was loaded."""
    shutil.copytree(SPECS / "blocks", folder / "blocks")
    text = (SPECS / "resnet18.yaml").read_text().replace("input: [3, 224, 224]", "input: [3, 32, 32]")
    text += ("train:\n  epochs: 1\n  batch_size: 16\n  data: {synthetic: {size: 32}}\n"
             f"  optimizer: {{adamw: {{lr: 1.0e-12, weight_decay: 0}}}}\n  init_from: {init_from}\n")
    path = folder / "resnet18.yaml"
    path.write_text(text)
    return path


@pytest.mark.slow
def test_fine_tuning_a_10_class_resnet18_from_a_1000_class_checkpoint(tmp_path):
    spec = _resnet18(tmp_path, "weights/base.pt")
    base = netspec.build(spec, seed=1).state_dict()  # the spec's own 1000 classes
    (tmp_path / "weights").mkdir()
    torch.save(base, tmp_path / "weights" / "base.pt")
    result = CliRunner().invoke(main, ["train", str(spec), "--set", "classes=10",
                                       "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output + result.stderr
    total = len(base)
    assert (f"transferred {total - 2}/{total}: fc.weight [10, 512] vs [1000, 512] kept its "
            "initialisation; fc.bias [10] vs [1000] kept its initialisation") in result.stdout
    trained = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["model"]
    fresh = dict(netspec.build(spec, seed=0, params={"classes": 10}).named_parameters())
    for key in fresh:  # the weights, not batch norm's running statistics: training moves those
        want = fresh[key] if key.startswith("fc.") else base[key]
        torch.testing.assert_close(trained[key], want, rtol=0, atol=1e-6, msg=key)


def _tiny(folder: Path, init_from: str) -> Path:
    path = folder / "tiny.yaml"
    path.write_text(TINY.replace("{init_from}", init_from))
    return path


def _train(spec: Path, *args: str):
    return CliRunner().invoke(main, ["train", str(spec), "--out", str(spec.parent / "run"), *args])


@pytest.mark.parametrize(("content", "message"), [
    (None, "no such weights file"),
    (b"not a checkpoint", "not a readable weights file"),
    ([1, 2, 3], "holds no state_dict"),
    ({"other.weight": torch.zeros(7)}, "base.pt: nothing in it fits this model (transferred 0/4: "),
])
def test_a_bad_init_from_is_an_error_at_its_line(tmp_path, content, message):
    spec = _tiny(tmp_path, "base.pt")
    if isinstance(content, bytes):
        (tmp_path / "base.pt").write_bytes(content)
    elif content is not None:
        torch.save(content, tmp_path / "base.pt")
    result = _train(spec)
    assert result.exit_code == 1
    line = TINY.splitlines().index("  init_from: {init_from}") + 1
    assert result.stderr.startswith(f"{spec}:{line}:14: error: `train.init_from`: ")
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "run" / "last.pt").exists()


@pytest.mark.slow
def test_a_resume_restores_the_run_and_does_not_read_init_from_again(tmp_path):
    spec = _tiny(tmp_path, "base.pt")
    base = netspec.build(spec, seed=3).state_dict()
    torch.save(base, tmp_path / "base.pt")
    first = _train(spec)
    assert first.exit_code == 0, first.stderr
    assert "transferred 4/4" in first.stdout
    (tmp_path / "base.pt").unlink()
    resumed = _train(spec, "--resume", str(tmp_path / "run" / "last.pt"), "--epochs", "2",
                     "--init-from", str(tmp_path / "elsewhere.pt"))
    assert resumed.exit_code == 0, resumed.stderr
    assert "transferred" not in resumed.stdout and "init_from" not in resumed.stderr


def test_another_init_from_is_no_change_to_a_resumed_run():
    saved = TrainConfig.model_validate({"epochs": 1, "init_from": "base.pt"})
    assert changes(saved, saved.override(init_from="/elsewhere/other.pt"), step=4) == []
    [line] = changes(saved, saved.override(init_from="other.pt", epochs=2), step=4)
    assert line.startswith("epochs: 1 -> 2: ")


def test_the_cli_option_overrides_the_spec_relative_to_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "specs").mkdir()
    spec = _tiny(tmp_path / "specs", "missing.pt")  # the spec's own would fail
    (tmp_path / "weights").mkdir()
    torch.save(netspec.build(spec, seed=3).state_dict(), tmp_path / "weights" / "base.pt")
    monkeypatch.chdir(tmp_path)
    result = _train(spec, "--init-from", "weights/base.pt")
    assert result.exit_code == 0, result.stderr
    assert "transferred 4/4" in result.stdout


def test_a_missing_init_from_option_is_named_and_exits_1(tmp_path, monkeypatch):
    spec = _tiny(tmp_path, "base.pt")
    torch.save(netspec.build(spec, seed=3).state_dict(), tmp_path / "base.pt")
    monkeypatch.chdir(tmp_path)
    result = _train(spec, "--init-from", "nothing.pt")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"{spec}: error: init_from: {tmp_path / 'nothing.pt'}: "
                                    "no such weights file")
    assert "Traceback" not in result.stderr and not (tmp_path / "run" / "last.pt").exists()


def test_the_api_takes_init_from(tmp_path):
    spec = _tiny(tmp_path, "missing.pt")
    base = netspec.build(spec, seed=3).state_dict()
    torch.save(base, tmp_path / "base.pt")
    result = netspec.train(spec, out=tmp_path / "run", verbose=False, epochs=1,
                           init_from=tmp_path / "base.pt")
    assert result.transferred is not None and len(result.transferred) == len(base)


def test_the_api_returns_the_report(tmp_path):
    spec = _tiny(tmp_path, "base.pt")
    torch.save(netspec.build(spec, seed=3, params={"classes": 6}).state_dict(), tmp_path / "base.pt")
    result = netspec.train(spec, out=tmp_path / "run", verbose=False)
    assert result.transferred is not None
    assert dict(result.transferred) == {"conv1.weight": "conv1.weight", "conv1.bias": "conv1.bias"}
    assert set(result.transferred.skipped) == {"fc1.weight", "fc1.bias"}
