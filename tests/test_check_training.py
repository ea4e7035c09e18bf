"""`check --batch N --memory SIZE --device D`: a training step in the table and the JSON,
and the largest batch that fits. The model itself is tested against torch in
tests/test_train_memory.py and tests/test_train_flops.py; here, what the command shows."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import netspec
from netspec import train_step
from netspec.cli import ByteSize, main

ROOT = Path(__file__).resolve().parent.parent
LENET = str(ROOT / "specs" / "lenet5.yaml")


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_json_carries_the_step_at_the_batch_asked():
    code, out, _ = run("check", LENET, "--batch", "8", "--format", "json")
    assert code == 0
    report = json.loads(out)
    api = netspec.check(LENET, batch=8)
    assert report["train_memory"] == api.memory.to_dict()
    assert report["train_memory"]["batch"] == 8
    assert report["train_flops"] == 2 * (api.macs + api.grad_input_macs + api.grad_weight_macs)
    # kept activations grow with the batch: all of it per sample but the fixed statistics
    at_16 = netspec.check(LENET, batch=16).memory
    assert at_16.saved - api.memory.saved == 8 * api.memory.saved_per_sample


def test_a_gpu_profile_makes_the_step_a_cuda_one():
    """With `--device-profile` (and no `--device`) the memory is the step the profile's
    GPU runs: `precision: auto` is bf16 autocast there, as the time estimate takes it."""
    def memory(*args: str) -> dict:
        code, out, _ = run("check", LENET, "--batch", "8", "--format", "json", *args)
        assert code == 0
        return json.loads(out)["train_memory"]

    on_gpu = memory("--device-profile", "a100-80gb")
    lenet = netspec.load(LENET)
    train = lenet.training.model_copy(update={"precision": "bf16"})
    assert on_gpu == train_step.memory(netspec.check(lenet), train, 8, "cuda").to_dict() | {
        "precision": "auto"}
    assert on_gpu["cast_weights"] == 2 * netspec.check(LENET).params  # conv and linear only
    assert memory()["cast_weights"] == 0
    assert memory("--device-profile", "a100-80gb", "--device", "cpu")["cast_weights"] == 0


def test_the_table_gains_the_step_s_columns_and_totals():
    code, out, _ = run("check", LENET, "--batch", "32")
    assert code == 0
    header = next(line for line in out.splitlines() if line.startswith("layer"))
    assert re.search(r"kept for backward\s+backward MACs$", header)
    report = netspec.check(LENET, batch=32)
    assert f"training step: batch 32, {report.optimizer}" in out
    assert "memory  peak" in out and f"(in the {report.memory.peak_at})" in out
    plain = run("check", LENET)[1]
    assert "training step" not in plain and "backward MACs" not in plain


@pytest.mark.parametrize("budget", ["64MiB", "1GiB", "3000000"])
def test_the_largest_batch_is_the_last_that_fits(budget: str):
    code, out, _ = run("check", LENET, "--memory", budget, "--format", "json")
    assert code == 0
    found = json.loads(out)["largest_batch"]
    size = ByteSize().convert(budget, None, None)
    assert found == {"batch": found["batch"], "budget": size, "margin": train_step.MARGIN,
                     "device": "cpu"}
    report = netspec.check(LENET)
    allowed = train_step.MARGIN * size
    assert train_step.memory(report, None, found["batch"]).peak <= allowed
    assert train_step.memory(report, None, found["batch"] + 1).peak > allowed


def test_a_budget_too_small_for_one_sample_says_so():
    code, out, _ = run("check", LENET, "--memory", "100KiB")
    assert code == 0 and "no batch fits in 90% of 100.00 KiB on cpu" in out
    report = netspec.check(LENET, memory=100 * 1024)
    assert report.largest_batch is not None and report.largest_batch.batch == 0


@pytest.mark.parametrize(("text", "size"), [
    ("24GiB", 24 * 2**30), ("16GB", 16 * 10**9), ("512 mib", 512 * 2**20), ("1.5KB", 1500),
    ("1000000", 10**6), ("2kib", 2048),
])
def test_memory_sizes_are_read_as_people_write_them(text: str, size: int):
    assert ByteSize().convert(text, None, None) == size


@pytest.mark.parametrize("args", [["--memory", "lots"], ["--memory", "0"],
                                  ["--device", "tpu"], ["--batch", "0"]])
def test_bad_options_are_usage_errors(args: list[str]):
    code, _, err = run("check", LENET, *args)
    assert code == 2 and "Traceback" not in err


def test_the_api_refuses_a_batch_that_is_not_one():
    with pytest.raises(TypeError, match="batch is a positive integer"):
        netspec.check(LENET, batch=0)
    with pytest.raises(ValueError, match="device is one of"):
        netspec.check(LENET, device="tpu")


@pytest.mark.slow  # imports torch to ask for CUDA
def test_cuda_s_budget_is_its_free_memory_and_no_cuda_is_an_error():
    import torch

    code, out, err = run("check", LENET, "--device", "cuda")
    if torch.cuda.is_available():
        assert code == 0 and "largest batch" in out and "on cuda" in out
    else:
        assert code == 1 and "no CUDA device here" in err and "Traceback" not in err


def test_the_step_s_options_do_not_import_torch():
    code = ("import sys; from netspec.cli import main\n"
            "try:\n    main(['check', sys.argv[1], '--batch', '8', '--memory', '1GiB'])\n"
            "except SystemExit as e:\n    assert not e.code, e.code\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, LENET], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"
