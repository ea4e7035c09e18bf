"""`check --scale all` with a training step's options (issue 19, item 6): `--batch`,
`--memory`, `--device`, `--device-profile` and `--samples` hold for every scale. Each
scale's row gains its step's figures, as `check --scale NAME` with the same options prints
them, and the JSON of each scale is that command's JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import netspec
from netspec import throughput, train_step
from netspec.cli import main
from netspec.report import human_bytes

MOBILENET = str(Path(__file__).resolve().parent.parent / "specs" / "mobilenet_v2.yaml")
SMALL = ("--input", "3,64,64")
SCALES = list(netspec.load(MOBILENET).scales)
EVERYTHING = ("--batch", "8", "--memory", "2GiB", "--device-profile", "h100-sxm",
              "--samples", "1000")


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No measured figures: a step's time comes from --device-profile, or is a hint."""
    monkeypatch.setenv(throughput.CACHE_VARIABLE, str(tmp_path / "throughput.json"))


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("options", [
    ("--batch", "8"), EVERYTHING, ("--memory", "512MiB", "--device", "cuda"),
    ("--device-profile", "a100-80gb", "--samples", "100")], ids=" ".join)
def test_the_json_of_each_scale_is_the_single_scale_command_s(options: tuple[str, ...]):
    code, out, err = run("check", MOBILENET, "--scale", "all", *SMALL, *options, "--format",
                         "json")
    assert code == 0, err
    reports = json.loads(out)
    assert list(reports) == SCALES
    for name, report in reports.items():
        _, single, _ = run("check", MOBILENET, "--scale", name, *SMALL, *options, "--format",
                           "json")
        assert report == json.loads(single)
        assert ("largest_batch" in report) == ("--memory" in options)
        assert ("step_time" in report) == ("--device-profile" in options)
        assert ("step_time_hint" in report) == ("--device-profile" not in options)
    if "--batch" in options:
        assert {r["train_memory"]["batch"] for r in reports.values()} == {8}


def single_scale_figures(name: str) -> list[str]:
    """The step's figures `check --scale NAME` prints, in the columns' order: batch, FLOPs,
    peak and where, largest batch, step time, epoch."""
    code, out, err = run("check", MOBILENET, "--scale", name, *SMALL, *EVERYTHING)
    assert code == 0, err
    patterns = [r"training step: batch ([\d,]+),", r"FLOPs +(\S+ \S+):",
                r"peak (\S+ \S+) \(in the", r"\(in the (\w+)\)", r"largest batch ([\d,]+) on",
                r"time +(\S+ \S+) per step", r"epoch +(\S+ \S+):"]
    return [re.search(pattern, out).group(1) for pattern in patterns]


def test_each_scale_s_row_gains_its_training_step_as_the_single_scale_table_says():
    code, out, err = run("check", MOBILENET, "--scale", "all", *SMALL, *EVERYTHING)
    assert code == 0, err
    head, titles, *rows, blank, step, budget, time, epoch = out.splitlines()
    assert head == f"mobilenet_v2: {len(SCALES)} scales at input 3x64x64"
    assert titles.split() == ["scale", "params", "MACs", "batch", "step", "FLOPs", "peak",
                              "memory", "peaks", "in", "largest", "batch", "step", "time",
                              "epoch", "sizes", "that", "work"]
    assert len(rows) == len(SCALES) and blank == ""
    for name, row in zip(SCALES, rows, strict=True):
        report = netspec.check(MOBILENET, scale=name, inputs=(3, 64, 64))
        cells = [name, f"{report.params:,}", f"{report.macs:,}", *single_scale_figures(name)]
        assert row.split()[:len(" ".join(cells).split())] == " ".join(cells).split()
    first = netspec.check(MOBILENET, scale=SCALES[0], batch=8)
    device = throughput.profile("h100-sxm")
    assert step == f"training step: {first.optimizer}, {first.memory.precision}"
    assert budget == (f"largest batch: its peak within {train_step.MARGIN:.0%} of "
                      f"{human_bytes(2 * 2**30)} on cuda")  # the GPU profile's step
    assert time.startswith(f"time on {device.name}, ") and time.endswith(device.source)
    assert epoch == "epoch: 1,000 samples (--samples)"


def test_columns_follow_the_options_and_a_missing_throughput_is_said_once():
    code, out, _ = run("check", MOBILENET, "--scale", "all", *SMALL, "--batch", "8")
    assert code == 0
    lines = out.splitlines()
    assert lines[1].split() == ["scale", "params", "MACs", "batch", "step", "FLOPs", "peak",
                                "memory", "peaks", "in", "sizes", "that", "work"]
    assert lines[-2:] == ["training step: adamw, auto", f"time unknown: {throughput.measured()[1]}"]
    code, plain, _ = run("check", MOBILENET, "--scale", "all", *SMALL, "--samples", "100")
    assert plain.splitlines()[1].split()[3:] == ["sizes", "that", "work"]  # no step asked for


def test_check_scales_takes_the_step_s_options_as_check_does():
    options = {"batch": 4, "memory": 2**30, "device": "cuda",
               "throughput": throughput.profile("rtx4090"), "samples": 64}
    reports = netspec.check_scales(MOBILENET, (3, 32, 32), **options)
    assert [name for name, _ in reports] == SCALES
    for name, report in reports:
        single = netspec.check(MOBILENET, (3, 32, 32), scale=name, **options)
        assert report.to_dict() == single.to_dict()
        assert report.largest_batch is not None and report.step_time is not None


def test_a_cuda_device_without_a_budget_needs_the_device():
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is here: its free memory is the budget")
    code, _, err = run("check", MOBILENET, "--scale", "all", "--device", "cuda")
    assert code == 1 and "--device cuda: no CUDA device here" in err
    code, _, err = run("check", MOBILENET, "--scale", "all", "--device-profile", "h10o")
    assert code == 2 and "did you mean `h100-sxm`" in err
