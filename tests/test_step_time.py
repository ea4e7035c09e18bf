"""The time of a training step (issue 19, item 5): the GPU table and its names, `netspec
bench`'s measurement and the file it keeps, the roofline estimate's arithmetic worked out by
hand for a tiny spec, and what `check` shows with and without figures. How the estimate
compares with real steps is benchmarks/bench_step_time.py's (the README's table)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import netspec
from netspec import throughput
from netspec.cli import main
from netspec.throughput import DEVICES, Throughput, profile

ROOT = Path(__file__).resolve().parent.parent
LENET = str(ROOT / "specs" / "lenet5.yaml")
TINY = """
name: tiny
input: [4]
layers:
  - linear: 8
  - relu
  - linear: 3
"""


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Measured figures live in a file of the test's own, none there at first."""
    path = tmp_path / "cache" / "throughput.json"
    monkeypatch.setenv(throughput.CACHE_VARIABLE, str(path))
    return path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def figures(rate: float, bandwidth: float, gpu: bool = False) -> Throughput:
    return Throughput("test device", "a test", {"fp32": rate}, {"fp32": rate}, bandwidth, gpu)


# -- the table ------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "key"), [
    ("h100-sxm", "h100-sxm"), ("H100 SXM", "h100-sxm"), ("NVIDIA H100 SXM", "h100-sxm"),
    ("h200", "h200"), ("A100_80GB", "a100-80gb"), ("l4", "l4"), ("L40", "l40s"),
    ("GeForce RTX 4090", "rtx4090"), ("v100", "v100"),
])
def test_a_device_is_found_whatever_its_case_spacing_or_vendor(name: str, key: str):
    assert profile(name) is DEVICES[key]


@pytest.mark.parametrize(("name", "says"), [
    ("h10o", "did you mean `h100-sxm` or `h100-pcie`?"),
    ("4090", "did you mean `rtx4090`?"),
    ("a100", "could be `a100-40gb`, `a100-80gb`: name one"),
    ("h100", "could be `h100-pcie`, `h100-sxm`: name one"),
])
def test_a_typo_or_an_ambiguous_name_says_which_was_meant(name: str, says: str):
    with pytest.raises(LookupError, match=says.replace("?", r"\?")):
        profile(name)


def test_an_unknown_device_lists_the_known_ones():
    with pytest.raises(LookupError) as caught:
        profile("tpu")
    assert "did you mean" not in str(caught.value)
    assert all(f"`{key}`" in str(caught.value) for key in DEVICES)


def test_the_command_line_takes_a_typo_as_a_usage_error():
    code, out, err = run("check", LENET, "--batch", "8", "--device-profile", "rtx4900")
    assert code == 2 and out == ""
    assert err.endswith("Error: Invalid value for --device-profile: no device `rtx4900`: did "
                        "you mean `rtx4090`? the known ones are "
                        + ", ".join(f"`{k}`" for k in sorted(DEVICES)) + "\n")


def test_every_datasheet_figure_is_dense_and_ordered():
    """Dense peaks: 16-bit at least TF32's, TF32 at least float32's; bandwidth in GB/s."""
    for device in DEVICES.values():
        rates = device.matmul
        assert rates == device.conv and device.gpu and device.source.startswith("peaks from the NVIDIA ")
        assert rates["fp16"] >= rates.get("tf32", rates["fp32"]) >= rates["fp32"] > 1e12
        assert 2e11 < device.bandwidth < 1e13


@pytest.mark.parametrize(("device", "precision", "rate"), [
    ("a100-80gb", "auto", "bf16"), ("a100-80gb", "fp32", "tf32"), ("a100-80gb", "fp16", "fp16"),
    ("t4", "auto", "fp32"), ("t4", "fp32", "fp32"), ("t4", "bf16", None), ("v100", "fp16", "fp16"),
])
def test_a_step_runs_at_the_rate_netspec_train_would_use(device: str, precision: str,
                                                         rate: str | None):
    assert throughput.precision_of(DEVICES[device], precision) == rate


def test_the_cpu_trains_in_float32_when_precision_is_auto():
    assert throughput.precision_of(figures(1e9, 1e9), "auto") == "fp32"
    assert throughput.precision_of(figures(1e9, 1e9), "bf16") is None


# -- the estimate's arithmetic ---------------------------------------------------------------

def tiny(batch: int, device: Throughput, samples: int | None = None) -> netspec.Report:
    report = netspec.check(netspec.load(TINY), batch=batch, throughput=device, samples=samples)
    # The report's own figures the hand computations below start from.
    assert [(r.macs, r.grad_input_macs, r.grad_weight_macs, r.params) for r in report.layers] \
        == [(32, 0, 32, 40), (0, 0, 0, 0), (24, 24, 24, 27)]
    return report


def test_a_compute_bound_step_takes_its_flops_over_the_rate():
    rate = 1e9
    time = tiny(2, figures(rate, bandwidth=1e30)).step_time
    assert time is not None
    assert time.forward == pytest.approx(2 * 2 * (32 + 24) / rate)
    assert time.backward == pytest.approx(2 * 2 * (32 + 24 + 24) / rate)
    assert time.compute_bound == pytest.approx(1)


def test_a_memory_bound_step_takes_its_bytes_over_the_bandwidth():
    """Batch 2, float32. linear 4 -> 8: forward reads 2x4 inputs and 40 weights, writes 2x8;
    backward reads the 2x8 gradients and 2x4 inputs, reads the weights and writes their
    gradients (its input needs none). relu: 2x8 in and out; backward 2x8 read twice and
    written once. linear 8 -> 3 likewise, its input's gradient written too. AdamW: 20
    accesses of each of the 67 trained parameters."""
    bandwidth = 1e9
    time = tiny(2, figures(1e30, bandwidth)).step_time
    assert time is not None
    forward = 4 * (2 * (4 + 8) + 40) + 4 * 2 * (8 + 8) + 4 * (2 * (8 + 3) + 27)
    backward = 4 * (2 * (8 + 4) + 40 + 40) + 4 * 2 * (8 + 8 + 8) + 4 * (2 * (3 + 8 + 8) + 27 + 27)
    assert time.forward == pytest.approx(forward / bandwidth)
    assert time.backward == pytest.approx(backward / bandwidth)
    assert time.optimizer == pytest.approx(4 * 20 * 67 / bandwidth)
    assert time.step == pytest.approx((forward + backward + 4 * 20 * 67) / bandwidth)
    assert time.compute_bound == 0


def test_each_layer_takes_the_slower_of_its_arithmetic_and_its_memory():
    """With both limits finite, every layer-pass is the max of the two, never their sum."""
    rate, bandwidth = 1e9, 4e9
    both = tiny(2, figures(rate, bandwidth)).step_time
    compute = tiny(2, figures(rate, 1e30)).step_time
    memory = tiny(2, figures(1e30, bandwidth)).step_time
    assert both is not None and compute is not None and memory is not None
    # linear layers: forward 128 and 96 FLOPs vs 256 and 196 bytes; relu: bytes only
    forward = max(128 / rate, 256 / bandwidth) + 128 / bandwidth + max(96 / rate, 196 / bandwidth)
    assert both.forward == pytest.approx(forward)
    assert max(compute.step, memory.step) < both.step < compute.step + memory.step


def test_each_layer_pass_takes_the_measured_overhead_too():
    """Every layer's forward takes `overhead["forward"]` more; each layer running a backward
    (both linear layers and the relu between: they all lead to a trained weight)
    `overhead["backward"]`."""
    plain = tiny(2, figures(1e9, 1e9)).step_time
    device = figures(1e9, 1e9)
    slow = Throughput(device.name, device.source, device.conv, device.matmul, device.bandwidth,
                      device.gpu, overhead={"forward": 1e-5, "backward": 3e-5})
    timed = tiny(2, slow).step_time
    assert plain is not None and timed is not None
    assert timed.forward == pytest.approx(plain.forward + 3 * 1e-5)
    assert timed.backward == pytest.approx(plain.backward + 3 * 3e-5)


def test_a_small_kernel_runs_at_its_measured_rate():
    """Log-log between measured points; below the smallest, that call's time; above the
    largest, its rate; never above the peak; only in float32, where it was measured."""
    curve = [[1e6, 1e9], [1e8, 1e10]]
    device = Throughput("cpu", "a test", {"fp32": 5e10}, {"fp32": 5e9, "bf16": 5e9}, 1e9,
                        False, curves={"conv": curve, "matmul": curve})
    assert device.rate_at("conv", "fp32", 1e7) == pytest.approx(10 ** 9.5)  # halfway, log-log
    assert device.rate_at("conv", "fp32", 1e5) == pytest.approx(1e5 / (1e6 / 1e9))
    assert device.rate_at("conv", "fp32", 1e12) == pytest.approx(1e10)
    assert device.rate_at("matmul", "fp32", 1e12) == 5e9  # the peak caps the curve
    assert device.rate_at("matmul", "bf16", 1e5) == 5e9
    assert figures(1e9, 1e9).rate_at("conv", "fp32", 1.0) == 1e9  # no curve: the peak


def test_an_epoch_is_its_steps_with_a_short_last_one():
    time = tiny(2, figures(1e9, 1e9), samples=101).step_time
    assert time is not None and time.samples == 101 and time.samples_from == "--samples"
    assert time.steps_per_epoch == 51
    assert time.epoch == pytest.approx(51 * time.optimizer + 50.5 * (time.forward + time.backward))


def test_the_epoch_of_the_digits_is_known_without_reading_them():
    report = netspec.check(LENET, batch=64, throughput=figures(1e9, 1e9))
    time = report.step_time
    assert time is not None and time.samples == 1797 - 359 and time.steps_per_epoch == 23
    assert time.samples_from == "digits: 1,797 samples less 359 held out for validation"


def test_data_read_from_disk_needs_samples_for_the_epoch():
    spec = netspec.load(TINY + "train: {data: {npz: x.npz}}\n")
    time = netspec.check(spec, batch=8, throughput=figures(1e9, 1e9)).step_time
    assert time is not None and time.epoch is None and time.samples is None
    assert "give --samples N" in time.samples_from
    timed = netspec.check(spec, batch=8, throughput=figures(1e9, 1e9), samples=80).step_time
    assert timed is not None and timed.epoch == pytest.approx(10 * timed.step)


def test_mixed_precision_moves_16_bit_activations():
    """The forward of test_a_memory_bound_step_takes_its_bytes_over_the_bandwidth's net
    under autocast: the batch float32 as loaded, the linear layers' and relu's outputs
    16-bit, the weights float32."""
    gpu = Throughput("gpu", "a test", {"fp32": 1e30, "bf16": 1e30}, {"fp32": 1e30, "bf16": 1e30},
                     1e9, gpu=True)
    half = tiny(2, gpu).step_time
    assert half is not None and half.precision == "bf16"
    assert half.forward == pytest.approx((2 * (4 * 4 + 2 * 8 + 2 * 16 + 2 * (8 + 3))
                                          + 4 * (40 + 27)) / 1e9)


def test_a_device_without_the_step_s_precision_gives_no_time():
    spec = netspec.load(TINY + "train: {precision: bf16}\n")
    report = netspec.check(spec, batch=8, throughput=DEVICES["t4"])
    assert report.step_time is None
    assert report.step_time_hint == ("NVIDIA T4 has no bf16 figures: peaks from the NVIDIA T4 "
                                     "datasheet")


# -- netspec bench and check ------------------------------------------------------------------

def test_bench_measures_and_keeps_positive_figures(cache: Path):
    code, out, err = run("bench", "--seconds", "0.01")
    assert code == 0, err
    assert out.splitlines()[-1] == f"wrote {cache}"
    assert [line.split()[0] for line in out.splitlines()[1:-1]] == \
        ["matmul", "convolution", "bandwidth", "matmul", "conv", "per"]
    kept = json.loads(cache.read_text())["cpu"]
    assert kept["matmul"]["fp32"] > 0 and kept["conv"]["fp32"] > 0 and kept["bandwidth"] > 0
    assert kept["overhead"]["forward"] > 0 and kept["overhead"]["backward"] >= 0
    for kind, sizes in throughput.CURVE.items():  # each kernel's FLOPs, from its size
        work = [2 * n**3 for n in sizes] if kind == "matmul" else \
            [3 * 2 * b * c * c * 9 * side**2 for b, c, side in sizes]
        assert [p[0] for p in kept["curves"][kind]] == work
        assert all(p[1] > 0 for p in kept["curves"][kind])
    assert kept["source"].startswith("measured by netspec bench on ")
    read, hint = throughput.measured("cpu")
    assert hint is None and read == Throughput(**kept)


def write(cache: Path, device: str = "cpu", **changed: object) -> Throughput:
    measured = Throughput("a CPU, 2 threads", "measured by netspec bench on 2025-01-01",
                          {"fp32": 2e10}, {"fp32": 5e10}, 1e10, gpu=False)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({device: {**measured.to_dict(), **changed}}))
    return measured


def test_check_estimates_with_what_bench_measured(cache: Path):
    measured = write(cache)
    code, out, _ = run("check", LENET, "--batch", "16", "--format", "json")
    assert code == 0
    shown = json.loads(out)["step_time"]
    expected = netspec.check(LENET, batch=16, throughput=measured).step_time
    assert expected is not None
    assert shown == {**expected.to_dict(), "device": "a CPU, 2 threads"}
    assert set(shown) >= {"step", "forward", "backward", "optimizer", "epoch", "samples",
                          "steps_per_epoch", "device", "source", "precision", "batch"}
    table = run("check", LENET, "--batch", "16")[1]
    assert "  time    " in table and "on a CPU, 2 threads, fp32: measured by netspec bench" in table
    assert "  epoch   " in table and "90 steps of 1,438 samples" in table


def test_a_profile_overrides_the_measurement(cache: Path):
    write(cache)
    shown = json.loads(run("check", LENET, "--batch", "16", "--device-profile", "h200",
                           "--format", "json")[1])["step_time"]
    assert shown["device"] == "NVIDIA H200 SXM" and shown["precision"] == "bf16"


def test_without_a_measurement_check_says_how_to_get_one():
    code, out, _ = run("check", LENET, "--batch", "8")
    assert code == 0
    assert ("  time    unknown: no throughput measured for the cpu: `netspec bench` measures it "
            "in seconds, or --device-profile NAME takes a GPU's datasheet figures") in out
    code, out, _ = run("check", LENET, "--batch", "8", "--format", "json")
    report = json.loads(out)
    assert code == 0 and "step_time" not in report and "netspec bench" in report["step_time_hint"]


@pytest.mark.parametrize("text", ["{not json", '{"cpu": {"name": "x"}}', '[1, 2]',
                                  '{"gpu": {}}'])
def test_a_broken_or_foreign_cache_file_is_a_hint_not_a_crash(cache: Path, text: str):
    cache.parent.mkdir(parents=True)
    cache.write_text(text)
    code, out, _ = run("check", LENET, "--batch", "8")
    assert code == 0 and "time    unknown: " in out and "`netspec bench`" in out


def test_negative_figures_are_refused(cache: Path):
    write(cache, bandwidth=-1.0)
    figures_read, hint = throughput.measured("cpu")
    assert figures_read is None and hint is not None and "not a positive number" in hint
    write(cache, overhead={"forward": -1.0, "backward": 0.0})
    assert "not a number of seconds" in str(throughput.measured("cpu")[1])
    write(cache, curves={"conv": [[1.0]]})
    assert "not [FLOPs, FLOP/s]" in str(throughput.measured("cpu")[1])


def test_figures_kept_before_overheads_and_curves_were_measured_still_read(cache: Path):
    kept = {k: v for k, v in write(cache).to_dict().items() if k not in ("overhead", "curves")}
    cache.write_text(json.dumps({"cpu": kept}))
    read, hint = throughput.measured("cpu")
    assert hint is None and read is not None and read.overhead == {"forward": 0.0,
                                                                   "backward": 0.0}


def test_a_cuda_step_reads_the_cuda_measurement(cache: Path):
    write(cache)
    hint = json.loads(run("check", LENET, "--device-profile", "t4", "--samples", "10",
                          "--format", "json")[1])
    assert hint["step_time"]["epoch"] is not None
    assert throughput.measured("cuda")[1] == (
        "no throughput measured for the cuda: `netspec bench --device cuda` measures it in "
        "seconds, or --device-profile NAME takes a GPU's datasheet figures")


def test_check_without_the_step_s_options_is_unchanged(cache: Path):
    """The golden files' JSON: no time unless a step is asked for."""
    write(cache)
    report = json.loads(run("check", LENET, "--format", "json")[1])
    assert "step_time" not in report and "step_time_hint" not in report


@pytest.mark.parametrize(("train", "accesses"), [
    ("{optimizer: {sgd: {momentum: 0.0}}}", 3),
    ("{optimizer: {sgd: {lr: 0.1, momentum: 0.9, nesterov: true, weight_decay: 0.1}}}", 14),
    ("{optimizer: {adam: {lr: 0.1}}}", 18), ("{optimizer: {adam: {weight_decay: 0.1}}}", 21),
    ("{optimizer: adamw, clip_grad: 1.0}", 23),
])
def test_the_optimizer_moves_each_parameter_as_torch_s_update_does(train: str, accesses: int):
    spec = netspec.load(f"{TINY}train: {train}\n")
    time = netspec.check(spec, batch=2, throughput=figures(1e9, 1e9)).step_time
    assert throughput.optimizer_accesses(spec.training) == accesses
    assert time is not None and time.optimizer == pytest.approx(4 * accesses * 67 / 1e9)
