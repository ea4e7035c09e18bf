"""`netspec train` end to end on the CPU: the quickstart's accuracy, the files a run leaves,
bit-exact resume (after an epoch and mid-epoch), refusals before training, and the
schedule each `schedule:` names."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import netspec
from netspec.cli import main

ROOT = Path(__file__).resolve().parent.parent
LENET = ROOT / "specs" / "lenet5.yaml"

# A small net with every stateful piece a resume must carry: dropout (the global RNG),
# batch norm (running statistics), augmentation (the RNG again), momentum (optimizer state).
SMALL = """
    name: small
    input: [1, 16, 16]
    layers:
      - conv2d: {out: 8, kernel: 3, padding: 1}
      - batchnorm2d
      - relu
      - maxpool2d: 2
      - dropout: 0.2
      - flatten
      - linear: 10
    train:
      epochs: 4
      batch_size: 32
      data: {digits: {augment: {crop: 1, flip: true}}}
      optimizer: {sgd: {lr: 0.05, momentum: 0.9, nesterov: true, weight_decay: 1e-4}}
      schedule: {cosine: {warmup: 0.5}}
      clip_grad: 5.0
      device: cpu
"""


def small_spec(tmp_path: Path, text: str = SMALL) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.slow
def test_quickstart_lenet_learns_digits(tmp_path: Path) -> None:
    """The README's first command, on a shorter schedule: at least 97% validation accuracy,
    and every file a run promises."""
    result = netspec.train(LENET, epochs=8, out=tmp_path / "run", verbose=False)
    assert result.best is not None and result.best["metric"] == "val_acc"
    assert result.best["value"] >= 0.97
    out = tmp_path / "run"
    for name in ("last.pt", "best.pt", "metrics.jsonl", "metrics.csv", "curves.png",
                 "confusion.png"):
        assert (out / name).is_file(), name
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == list(range(1, 9))
    assert rows == result.history
    best = torch.load(out / "best.pt", weights_only=True)
    assert best["epoch"] == result.best["epoch"]
    assert best["history"][-1]["val_acc"] == max(r["val_acc"] for r in rows)
    # The recorded validation accuracy is what the saved best model really scores.
    from netspec.training.data import load_data

    spec = netspec.load(LENET)
    data = load_data(spec.training.data, (1, 32, 32), seed=0, root=LENET.parent)
    model = netspec.build(spec).eval()
    model.load_state_dict(best["model"])
    with torch.no_grad():
        right = sum(int((model(x).argmax(1) == y).sum())
                    for x, y in data.loader("val", 100, torch.device("cpu")).epoch(0))
    assert right / data.val_size == result.best["value"]
    assert data.mean == best["data"]["mean"] and data.std == best["data"]["std"]
    last = torch.load(out / "last.pt", weights_only=True)
    assert last["epoch"] == 8 and last["step"] == 0
    assert last["spec"]["text"] == LENET.read_text()


@pytest.mark.slow
def test_resume_after_an_epoch_is_bit_exact(tmp_path: Path) -> None:
    spec = small_spec(tmp_path)
    straight = netspec.train(spec, out=tmp_path / "straight", verbose=False)
    stopped = netspec.train(spec, out=tmp_path / "split", verbose=False,
                            on_epoch=lambda row: row["epoch"] == 2)
    assert stopped.stopped == "callback" and len(stopped.history) == 2
    assert torch.load(tmp_path / "split" / "last.pt", weights_only=True)["epoch"] == 2
    resumed = netspec.train(spec, resume=tmp_path / "split" / "last.pt", verbose=False)
    assert resumed.out == tmp_path / "split" and resumed.stopped is None
    same_weights(straight.model.state_dict(), resumed.model.state_dict())
    assert resumed.history[:2] == stopped.history
    for mine, theirs in zip(resumed.history, straight.history, strict=True):
        assert {k: v for k, v in mine.items() if k not in ("seconds", "images_per_s")} == \
            {k: v for k, v in theirs.items() if k not in ("seconds", "images_per_s")}
    a = torch.load(tmp_path / "straight" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "split" / "last.pt", weights_only=True)
    same_weights(a["model"], b["model"])
    assert a["optimizer"]["state"].keys() == b["optimizer"]["state"].keys()
    for key, state in a["optimizer"]["state"].items():
        assert torch.equal(state["momentum_buffer"], b["optimizer"]["state"][key]["momentum_buffer"])
    csv_rows = (tmp_path / "split" / "metrics.csv").read_text().splitlines()
    assert len(csv_rows) == 1 + 4


@pytest.mark.slow
def test_sigterm_mid_epoch_saves_and_resumes_bit_exact(tmp_path: Path) -> None:
    """A run killed with SIGTERM in the middle of an epoch writes last.pt at that step and
    exits 143; resuming ends with exactly the weights of a run never stopped."""
    spec = small_spec(tmp_path, SMALL.replace("epochs: 4", "epochs: 3").replace(
        "data: {digits: {augment: {crop: 1, flip: true}}}",
        "data: {synthetic: {size: 12000, augment: {crop: 1, flip: true}}}"))
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "netspec", "train", str(spec), "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in process.stdout:  # until epoch 1's summary line: epoch 2 (hundreds of steps) starts
        if line.startswith("epoch 1/3"):
            break
    process.send_signal(signal.SIGTERM)  # the loop looks at it within its next few steps
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert "stopped by SIGTERM at epoch 2" in stdout
    saved = torch.load(out / "last.pt", weights_only=True)
    assert saved["epoch"] == 1 and saved["step"] > 0, (saved["epoch"], saved["step"])
    resumed = netspec.train(spec, resume=out / "last.pt", verbose=False)
    straight = netspec.train(spec, out=tmp_path / "straight", verbose=False)
    same_weights(straight.model.state_dict(), resumed.model.state_dict())


def test_a_checkpoint_of_another_spec_is_refused(tmp_path: Path) -> None:
    spec = small_spec(tmp_path)
    netspec.train(spec, epochs=1, out=tmp_path / "run", verbose=False)
    other = tmp_path / "other.yaml"
    other.write_text(textwrap.dedent(SMALL).replace("name: small", "name: wider")
                     .replace("out: 8", "out: 12"))
    with pytest.raises(netspec.TrainError) as err:
        netspec.train(other, resume=tmp_path / "run" / "last.pt", verbose=False)
    assert "`small`" in str(err.value) and "`wider`" in str(err.value)


@pytest.mark.slow
def test_resume_may_extend_the_run_but_a_finished_run_is_not_overwritten(tmp_path: Path) -> None:
    spec = small_spec(tmp_path)
    netspec.train(spec, epochs=1, out=tmp_path / "run", verbose=False)
    with pytest.raises(netspec.TrainError, match="already holds a run"):
        netspec.train(spec, epochs=1, out=tmp_path / "run", verbose=False)
    longer = netspec.train(spec, epochs=2, resume=tmp_path / "run" / "last.pt", verbose=False)
    assert [row["epoch"] for row in longer.history] == [1, 2]


def test_output_that_does_not_fit_the_classes_is_refused_before_training(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "twelve.npz", x=rng.random((48, 1, 16, 16), dtype=np.float32),
             y=np.arange(48) % 12)
    spec = small_spec(tmp_path)
    with pytest.raises(netspec.TrainError) as err:
        netspec.train(spec, data=str(tmp_path / "twelve.npz"), out=tmp_path / "run", verbose=False)
    message = str(err.value)
    assert "10 values" in message and "12 classes" in message and "linear: 12" in message
    assert not (tmp_path / "run" / "last.pt").exists()


def test_what_fits_but_may_not_be_meant_is_a_warning(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """A 1-channel, 10-output spec on a folder of 3 classes of RGB images trains, saying
    that the images became grayscale and that outputs 3..9 name no class."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in ("a", "b", "c"):
        (tmp_path / "shapes" / name).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(
                tmp_path / "shapes" / name / f"{i}.png")
    spec = small_spec(tmp_path, SMALL.replace("{digits: {augment: {crop: 1, flip: true}}}",
                                              "folder:shapes"))
    result = netspec.train(spec, epochs=1, out=tmp_path / "run", progress=False)
    expected = ["images are RGB; converted to 1 channel (grayscale) for input [1,16,16]",
                "the output `fc1` has 10 values but the data has 3 classes; outputs 3..9 are "
                "never the target, and the loss still trains them towards low scores"]
    assert result.warnings == expected
    assert [f"warning: {w}" for w in expected] == [
        line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]


def test_one_unused_output_is_named_alone() -> None:
    from netspec.training.config import LossConfig
    from netspec.training.task import make_task

    task = make_task(LossConfig.model_validate("cross_entropy"), "logits", (4,),
                     torch.tensor([0, 1, 2, 1]), ["x", "y", "z"])
    assert task.notes == ("the output `logits` has 4 values but the data has 3 classes; output 3 "
                          "is never the target, and the loss still trains it towards low scores",)
    assert make_task(LossConfig.model_validate("cross_entropy"), "logits", (3,),
                     torch.tensor([0, 1, 2]), ["x", "y", "z"]).notes == ()


def test_missing_data_and_unwritable_folder_are_clear_errors(tmp_path: Path) -> None:
    spec = small_spec(tmp_path)
    with pytest.raises(netspec.TrainError, match="nowhere"):
        netspec.train(spec, data=f"folder:{tmp_path / 'nowhere'}", out=tmp_path / "r",
                      verbose=False)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(netspec.TrainError, match="cannot write to the run folder"):
        netspec.train(spec, out=blocker / "run", verbose=False)


def test_nan_loss_stops_naming_epoch_and_step_and_keeps_the_last_checkpoint(tmp_path: Path) -> None:
    # Without batch norm and clipping nothing holds a huge learning rate back.
    spec = small_spec(tmp_path, SMALL.replace("      - batchnorm2d\n", "")
                      .replace("      clip_grad: 5.0\n", ""))
    netspec.train(spec, epochs=1, out=tmp_path / "run", verbose=False)
    before = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    with pytest.raises(netspec.TrainError) as err:
        netspec.train(spec, epochs=2, lr=1e30, resume=tmp_path / "run" / "last.pt",
                      verbose=False)
    assert "NaN or infinite at epoch 2, step " in str(err.value)
    assert "last.pt (epoch 1)" in str(err.value)
    after = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert after["epoch"] == 1
    same_weights(before["model"], after["model"])


def test_cli_prints_the_check_summary_first_and_a_line_per_epoch(tmp_path: Path) -> None:
    spec = small_spec(tmp_path)
    result = CliRunner().invoke(main, ["train", str(spec), "--epochs", "2", "--out",
                                       str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("small: input 1x16x16")
    assert any(line.startswith("params") for line in lines[:6])
    epochs = [line for line in lines if line.startswith("epoch")]
    assert len(epochs) == 2 and "val loss" in epochs[0]
    assert "best val_acc" in result.stderr


def test_cli_never_starts_training_a_broken_spec(tmp_path: Path) -> None:
    spec = small_spec(tmp_path, SMALL.replace("linear: 10", "linear: {out: 10, bias: maybe}"))
    result = CliRunner().invoke(main, ["train", str(spec), "--out", str(tmp_path / "run")])
    assert result.exit_code == 1
    assert "small.yaml:" in result.stderr and "bias" in result.stderr
    assert not (tmp_path / "run").exists()


def test_cli_bad_input_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    spec = small_spec(tmp_path)
    result = CliRunner().invoke(main, ["train", str(spec), "--data", str(tmp_path / "none.npz"),
                                       "--out", str(tmp_path / "run")])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.stderr.startswith(f"{spec}: error: ")


@pytest.mark.parametrize("schedule", ["constant", "{step: {every: 2, gamma: 0.5}}",
                                      "{cosine: {min_lr: 0.001, warmup: 1}}", "onecycle"])
@pytest.mark.slow
def test_each_schedule_follows_its_formula(tmp_path: Path, schedule: str) -> None:
    """The learning rate of each epoch's last step, recorded in the metrics, against the
    schedule's closed form."""
    spec = small_spec(tmp_path, SMALL.replace("schedule: {cosine: {warmup: 0.5}}",
                                              f"schedule: {schedule}"))
    result = netspec.train(spec, out=tmp_path / "run", verbose=False)
    steps = math.ceil(1437 / 32)  # digits: 1,797 samples, 20% held out
    base, total = 0.05, 4 * steps
    for row in result.history:
        t = row["epoch"] * steps  # steps taken by the end of the epoch
        if schedule == "constant":
            want = base
        elif schedule.startswith("{step"):
            want = base * 0.5 ** (t // (2 * steps))
        elif schedule.startswith("{cosine"):
            want = 0.001 + (base - 0.001) * 0.5 * (1 + math.cos(math.pi * t / total))
        else:
            want = torch.optim.lr_scheduler.OneCycleLR(
                torch.optim.SGD([torch.zeros(1)], lr=base), base, total_steps=total)
            for _ in range(t):
                want.optimizer.step()
                want.step()
            want = want.get_last_lr()[0]
        assert row["lr"] == pytest.approx(want, rel=1e-9), row["epoch"]


def test_python_m_netspec_train_help_lists_the_overrides() -> None:
    result = CliRunner().invoke(main, ["train", "--help"])
    for option in ("--epochs", "--batch-size", "--lr", "--device", "--precision", "--out",
                   "--seed", "--data", "--compile", "--resume", "--nproc"):
        assert option in result.output


def test_environment_is_left_as_found(tmp_path: Path) -> None:
    """Training installs its signal handlers for the run only."""
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    netspec.train(small_spec(tmp_path), epochs=1, out=tmp_path / "run", verbose=False)
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
    assert os.environ.get("RANK") is None


@pytest.mark.slow
def test_resume_with_another_lr_rescales_the_schedule_from_where_it_was(tmp_path: Path) -> None:
    spec = small_spec(tmp_path, SMALL.replace("schedule: {cosine: {warmup: 0.5}}",
                                              "schedule: cosine"))
    netspec.train(spec, epochs=4, out=tmp_path / "run", verbose=False,
                  on_epoch=lambda row: row["epoch"] == 2)
    resumed = netspec.train(spec, lr=0.01, resume=tmp_path / "run" / "last.pt", verbose=False)
    for row in resumed.history:  # each epoch's last step: epoch / 4 of the way
        base = 0.05 if row["epoch"] <= 2 else 0.01
        want = base * 0.5 * (1 + math.cos(math.pi * row["epoch"] / 4))
        assert row["lr"] == pytest.approx(want, rel=1e-9, abs=1e-15), row["epoch"]


@pytest.mark.parametrize(("arg", "kind"), [("digits", "digits"), ("synthetic", "synthetic"),
                                           ("data.npz", "npz"), ("folder:imgs", "folder"),
                                           ("mnist:idx", "mnist"), ("images", "folder")])
def test_data_argument_names_a_source(tmp_path: Path, arg: str, kind: str) -> None:
    from netspec.training.config import Augment, DataConfig, Digits, data_from_arg

    base = DataConfig(digits=Digits(val_split=0.1, augment=Augment(crop=3)))
    chosen = data_from_arg(arg, base)
    assert chosen.kind == kind
    assert chosen.options.val_split == 0.1 and chosen.options.augment.crop == 3
    if kind not in ("digits", "synthetic"):
        assert Path(chosen.options.path).is_absolute()


def test_a_folder_of_idx_files_is_mnist(tmp_path: Path) -> None:
    from netspec.training.config import DataConfig, data_from_arg

    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"")
    assert data_from_arg(str(tmp_path), DataConfig.model_validate("digits")).kind == "mnist"
    with pytest.raises(ValueError, match="unknown kind `tape`"):
        data_from_arg("tape:/dev/st0", DataConfig.model_validate("digits"))


SPEC_WITH_DATA = """\
input: [1, 8, 8]
layers:
  - flatten
  - linear: 10
train:
  data: {data}
"""


@pytest.mark.parametrize(("written", "kind", "path"), [
    ("folder:shapes", "folder", "shapes"), ("shapes", "folder", "shapes"),
    ("npz:arrays.npz", "npz", "arrays.npz"), ("arrays.npz", "npz", "arrays.npz"),
    ("mnist:idx", "mnist", "idx"), ("idx", "mnist", "idx"),
    ("digits", "digits", None), ("synthetic", "synthetic", None)])
def test_a_spec_data_string_is_what_the_data_option_takes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, written: str, kind: str,
        path: str | None) -> None:
    """`data: STRING` in a spec and `--data STRING` read the same kinds; a bare path is
    recognised relative to the spec's folder (`idx` holds IDX files there, not in the
    current folder), and the spec keeps it relative."""
    from netspec.training.config import DataConfig, data_from_arg

    (tmp_path / "idx").mkdir()
    (tmp_path / "idx" / "train-images-idx3-ubyte").write_bytes(b"")
    spec = tmp_path / "net.yaml"
    spec.write_text(SPEC_WITH_DATA.format(data=written))
    monkeypatch.chdir(ROOT)  # the current folder has no `idx`: only the spec's folder counts
    data = netspec.load(spec).training.data
    assert data.kind == kind
    assert getattr(data.options, "path", None) == path
    monkeypatch.chdir(tmp_path)
    assert data_from_arg(written, DataConfig.model_validate("digits")).kind == kind


@pytest.mark.parametrize(("written", "message"), [
    ("digts", "`train.data`: no data kind or path named `digts` found; did you mean `digits`?"),
    ("tape:/dev/st0", "`train.data`: unknown kind `tape`; use digits, synthetic, folder:PATH, "
                      "npz:PATH, mnist:PATH, text:PATH, text:stdlib or a path"),
    ("digits:extra", "`train.data`: `digits` takes no path, found 'digits:extra'")])
def test_a_bad_spec_data_string_is_a_positioned_error(tmp_path: Path, written: str,
                                                      message: str) -> None:
    spec = tmp_path / "net.yaml"
    spec.write_text(SPEC_WITH_DATA.format(data=written))
    with pytest.raises(netspec.SpecError) as info:
        netspec.load(spec)
    (error,) = info.value.errors
    assert (error.where.line, error.where.column) == (6, 9)  # the value after `data:`
    assert error.text.startswith(message)


def test_scientific_notation_reads_as_a_number(spec_text) -> None:
    spec = spec_text("""
        input: [1, 8, 8]
        layers: [flatten, {linear: 10}]
        train: {optimizer: {adamw: {lr: 3e-4, weight_decay: 5E-2}}}
    """)
    assert spec.training.lr == 3e-4 and spec.training.optimizer.options.weight_decay == 0.05


def test_an_in_place_layer_a_backward_cannot_run_past_is_refused_at_its_line(
        tmp_path: Path) -> None:
    """Not torch's "modified by an inplace operation" traceback after the first step."""
    spec = tmp_path / "inplace.yaml"
    spec.write_text("input: [1, 4, 4]\nlayers:\n  - flatten\n  - linear: 8\n  - sigmoid\n"
                    "  - relu: {inplace: true}\n  - linear: 10\n")
    result = CliRunner().invoke(main, ["train", str(spec), "--data", "synthetic",
                                       "--out", str(tmp_path / "run")])
    assert result.exit_code == 1
    assert f"{spec}:6:21: error: relu1: `inplace: true` overwrites `sigmoid1`" in result.stderr
    assert "Traceback" not in result.output and not (tmp_path / "run").exists()


NO_WEIGHTS = "no layer has trainable parameters (every one frozen, or none has weights)"


@pytest.mark.parametrize(("layers", "why"), [
    ("[relu, flatten]", NO_WEIGHTS),
    ("[{linear: 10, frozen: true}]", NO_WEIGHTS),
    ("[flatten, {linear: 8}, {reshape: [2, 4]}, {sinusoidal_positions: {dim: 4}}, flatten]",
     "no gradient reaches its trained parameters, as no output depends on their values (fc1)"),
])
def test_a_network_with_nothing_to_train_is_refused_before_anything_is_written(
        tmp_path: Path, layers: str, why: str) -> None:
    """Not torch's empty-optimizer or no-grad_fn traceback: exit 1 naming the reason (and
    the layers no gradient reaches), the run folder never made."""
    spec = tmp_path / "idle.yaml"
    spec.write_text(f"name: idle\ninput: [1, 4, 4]\nlayers: {layers}\n")
    result = CliRunner().invoke(main, ["train", str(spec), "--data", "synthetic",
                                       "--out", str(tmp_path / "run")])
    assert result.exit_code == 1
    assert result.stderr == f"{spec}: error: idle has nothing to train: {why}\n"
    assert not (tmp_path / "run").exists()
