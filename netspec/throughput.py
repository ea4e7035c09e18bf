"""How fast a device trains, and the time of a training step that follows (issue 19).

A device's figures (`Throughput`) are its arithmetic rates for convolutions and matrix
products, per precision, and its memory bandwidth: a GPU's from its vendor's datasheet
(`DEVICES`, `profile`), this machine's CPU (or a CUDA device) as `netspec bench` measured it
(`measure`, saved in `cache_path()` and read back by `measured`).

The estimate (`estimate`) is a roofline per layer: each layer's forward and each layer's
backward take max(FLOPs / rate, bytes moved / bandwidth), where

- FLOPs are 2 x the MACs of `netspec.train_step` (the forward's `macs`, the backward's
  `grad_input_macs` and `grad_weight_macs`; a layer of a checkpointed block runs its
  forward once more in the backward), at the convolution rate for convolutions and
  the matrix-product rate for every other layer;
- bytes are what its kernels read and write once each: the forward reads its inputs and
  weights and writes its output; the backward reads its output's gradient, its inputs and
  weights, writes its inputs' gradients and its weights' gradients (attention's scores
  count as one more output); a view moves nothing. Weights and their gradients are float32;
  activations too, or in mixed precision each in the dtype autocast gives it
  (`netspec.train_step.autocast_dtypes`: 16-bit but for autocast's float32 ops);
- the optimizer is elementwise, so memory-bound: `optimizer_accesses` element reads and
  writes per trained parameter, as torch's update code makes them.

Each layer's forward, and each backward, also takes the device's `overhead`: what a layer
costs whatever its size (dispatch, autograd's bookkeeping, a kernel's launch), measured by
`netspec bench` on a chain of tiny layers; a datasheet gives none, so on a GPU profile it
counts 0. It leaves out the loss, the optimizer's per-tensor bookkeeping, data loading and
augmentation, and caches (small layers run at the rates of large ones here). A
datasheet's peak is not reached by real kernels either: on a GPU profile the estimate is
a lower bound. Nothing here imports torch but `measure`.
"""

from __future__ import annotations

import datetime
import difflib
import functools
import itertools
import json
import math
import os
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netspec.errors import quote_list
from netspec.report import StepTime
from netspec.train_step import DEFAULT_BATCH, DEFAULT_OPTIMIZER, FLOAT, autocast_dtypes

if TYPE_CHECKING:
    from netspec.report import LayerReport, Report

T, G = 1e12, 1e9


@dataclass(frozen=True, slots=True)
class Throughput:
    """What a device does per second: `conv` and `matmul`, FLOP/s of convolutions and of
    matrix products (linear layers, attention) by precision (`fp32`, `tf32`, `bf16`,
    `fp16`: a precision missing is one the device lacks or that was not measured), and
    `bandwidth`, bytes per second to and from its memory. `source` says where the figures
    come from; `gpu`, whether mixed precision (`precision: auto`) trains in bf16 on it.
    `overhead`: the seconds a layer's forward and a layer's backward take whatever their
    size (dispatch, autograd's bookkeeping, a kernel's launch), as `netspec bench` measures
    them; 0 where not measured (a datasheet's figures: the estimate is a lower bound)."""

    name: str
    source: str
    conv: Mapping[str, float]
    matmul: Mapping[str, float]
    bandwidth: float
    gpu: bool
    overhead: Mapping[str, float] = field(default_factory=lambda: {"forward": 0.0,
                                                                   "backward": 0.0})
    curves: Mapping[str, list[list[float]]] = field(default_factory=dict)
    """Measured `[FLOPs of one call, FLOP/s]` points of `conv` and `matmul` in float32,
    smallest call first: a small kernel runs far below the peak (`rate_at`)."""

    def rate_at(self, kind: str, precision: str, flops: float) -> float:
        """FLOP/s of a `kind` (`conv`, `matmul`) kernel of `flops` at `precision`: along
        the measured curve (log-log between its points; below the smallest, that call's
        time; above the largest, its rate), never above the peak."""
        peak = (self.conv if kind == "conv" else self.matmul)[precision]
        points = self.curves.get(kind) if precision == "fp32" else None
        if not points or flops <= 0:
            return peak
        if flops <= points[0][0]:
            return min(peak, flops / (points[0][0] / points[0][1]))
        for (x0, y0), (x1, y1) in itertools.pairwise(points):
            if flops <= x1:
                share = math.log(flops / x0) / math.log(x1 / x0)
                return min(peak, math.exp(math.log(y0) + share * math.log(y1 / y0)))
        return min(peak, points[-1][1])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _datasheet(name: str, source: str, fp32: float, tf32: float | None, bf16: float | None,
               fp16: float, bandwidth: float) -> Throughput:
    """A GPU's dense (no sparsity) peaks in TFLOP/s, its bandwidth in GB/s."""
    rates = {k: v * T for k, v in (("fp32", fp32), ("tf32", tf32), ("bf16", bf16),
                                   ("fp16", fp16)) if v is not None}
    return Throughput(name, f"peaks from the {source}", rates, rates, bandwidth * G, gpu=True)


DEVICES: dict[str, Throughput] = {
    # Dense tensor-core peaks: where a datasheet gives only the figure "with sparsity", half.
    # GeForce cards: tensor peaks with FP32 accumulate (what torch uses), from the whitepaper.
    "v100": _datasheet("NVIDIA V100 SXM2", "NVIDIA Tesla V100 datasheet (2020)",
                       15.7, None, None, 125, 900),
    "t4": _datasheet("NVIDIA T4", "NVIDIA T4 datasheet", 8.1, None, None, 65, 320),
    "a10": _datasheet("NVIDIA A10", "NVIDIA A10 datasheet", 31.2, 62.5, 125, 125, 600),
    "a100-40gb": _datasheet("NVIDIA A100 40GB SXM", "NVIDIA A100 datasheet",
                            19.5, 156, 312, 312, 1555),
    "a100-80gb": _datasheet("NVIDIA A100 80GB SXM", "NVIDIA A100 datasheet",
                            19.5, 156, 312, 312, 2039),
    "l4": _datasheet("NVIDIA L4", "NVIDIA L4 datasheet (sparse figures halved)",
                     30.3, 60, 121, 121, 300),
    "l40s": _datasheet("NVIDIA L40S", "NVIDIA L40S datasheet", 91.6, 183, 362.05, 362.05, 864),
    "h100-sxm": _datasheet("NVIDIA H100 SXM", "NVIDIA H100 datasheet (sparse figures halved)",
                           67, 494.5, 989.5, 989.5, 3350),
    "h100-pcie": _datasheet("NVIDIA H100 PCIe", "NVIDIA H100 datasheet (sparse figures halved)",
                            51, 378, 756.5, 756.5, 2000),
    "h200": _datasheet("NVIDIA H200 SXM", "NVIDIA H200 datasheet (sparse figures halved)",
                       67, 494.5, 989.5, 989.5, 4800),
    "rtx3090": _datasheet("NVIDIA GeForce RTX 3090", "NVIDIA Ampere GA102 whitepaper",
                          35.6, 35.6, 71, 71, 936),
    "rtx4090": _datasheet("NVIDIA GeForce RTX 4090", "NVIDIA Ada Lovelace whitepaper",
                          82.6, 82.6, 165.2, 165.2, 1008),
}
"""Common GPUs by the name `--device-profile` takes."""
CLOSE = 0.6
"""How like a known name a misspelt one must be for a "did you mean" (difflib's ratio)."""


def _key(name: str) -> str:
    """A name as `profile` compares it: lower case, letters and digits only, no vendor."""
    squeezed = "".join(c for c in name.lower() if c.isalnum())
    for vendor in ("nvidia", "geforce", "tesla"):
        squeezed = squeezed.removeprefix(vendor)
    return squeezed


def profile(name: str) -> Throughput:
    """The datasheet figures of the GPU `name`, case, spaces and dashes aside (`H100 SXM`,
    `h100-sxm`), or a unique beginning of one (`l40`); LookupError saying which names there
    are, the likeliest first, when none or several match."""
    keys = {_key(k): k for k in DEVICES}
    wanted = _key(name)
    starting = [k for key, k in keys.items() if key.startswith(wanted)] if wanted else []
    if wanted in keys:
        return DEVICES[keys[wanted]]
    if len(starting) == 1:
        return DEVICES[starting[0]]
    if starting:
        raise LookupError(f"`{name}` could be {quote_list(starting)}: name one")
    near = _nearest(wanted, list(keys))
    hint = f"did you mean {' or '.join(f'`{keys[k]}`' for k in near)}? " if near else ""
    raise LookupError(f"no device `{name}`: {hint}the known ones are {quote_list(DEVICES)}")


def _nearest(wanted: str, keys: list[str]) -> list[str]:
    """The keys most like `wanted`, whole or their beginning as long as it (`h10o` is like
    `h100sxm` and `h100pcie` alike); none when none is close."""
    def likeness(key: str) -> float:
        return max(difflib.SequenceMatcher(None, wanted, k).ratio()
                   for k in (key, key[:len(wanted)]))
    best = max(map(likeness, keys))
    return [k for k in keys if likeness(k) == best] if best >= CLOSE else []


# -- measured figures: `netspec bench` -------------------------------------------------------

CACHE_VARIABLE = "NETSPEC_THROUGHPUT"
"""The environment variable naming the file `netspec bench` writes and `check` reads."""


def cache_path() -> Path:
    """Where measured figures are kept: $NETSPEC_THROUGHPUT, else
    $XDG_CACHE_HOME/netspec/throughput.json (~/.cache without XDG_CACHE_HOME)."""
    if os.environ.get(CACHE_VARIABLE):
        return Path(os.environ[CACHE_VARIABLE])
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "netspec" / "throughput.json"


def measured(device: str = "cpu") -> tuple[Throughput | None, str | None]:
    """The figures `netspec bench` measured for `device` (`cpu` or `cuda`) and saved, or
    None with what to do instead."""
    path = cache_path()
    command = "netspec bench" + ("" if device == "cpu" else f" --device {device}")
    todo = (f"`{command}` measures it in seconds, or --device-profile NAME takes a GPU's "
            "datasheet figures")
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        kept = {}
    except (OSError, ValueError) as exc:
        return None, f"{path} cannot be read ({exc}): {todo}"
    if not isinstance(kept, dict) or device not in kept:
        return None, f"no throughput measured for the {device}: {todo}"
    try:
        return _figures(kept[device]), None
    except (TypeError, ValueError) as exc:
        return None, f"{path} holds no valid figures for the {device} ({exc}): {todo}"


def _figures(saved: Any) -> Throughput:
    """Figures as `save` wrote them; TypeError or ValueError when they are not."""
    figures = Throughput(**saved)
    rates = [*figures.conv.values(), *figures.matmul.values(), figures.bandwidth]
    if not all(isinstance(r, int | float) and r > 0 for r in rates) or not figures.matmul:
        raise ValueError("a rate that is not a positive number")
    if set(figures.overhead) != {"forward", "backward"} or not all(
            isinstance(t, int | float) and t >= 0 for t in figures.overhead.values()):
        raise ValueError("an overhead that is not a number of seconds")
    points = [p for curve in figures.curves.values() for p in curve]
    if not all(isinstance(p, list) and len(p) == 2 and all(
            isinstance(v, int | float) and v > 0 for v in p) for p in points):
        raise ValueError("a rate curve's point that is not [FLOPs, FLOP/s]")
    return figures


def save(figures: Throughput, device: str) -> Path:
    """Keep `figures` as `device`'s (`cpu` or `cuda`) in `cache_path()`, beside the
    other device's; returns the path."""
    path = cache_path()
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        kept = {}
    kept = {**(kept if isinstance(kept, dict) else {}), device: figures.to_dict()}
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(kept, indent=2) + "\n", encoding="utf-8")
    temporary.replace(path)
    return path


MEASURED = {
    "cpu": {"matmul": 1024, "conv": (8, 64, 56), "copy": 2**26},
    "cuda": {"matmul": 8192, "conv": (64, 128, 56), "copy": 2**30},
}
"""The sizes `measure` times on each kind of device: a square matrix product's side; a
3x3 convolution's batch, channels (in and out) and side; a copy's bytes (beyond caches)."""


CURVE = {"matmul": (32, 64, 128, 256, 512), "conv": ((8, 4, 16), (8, 8, 28), (8, 16, 28),
                                                      (8, 32, 56))}
"""The smaller kernels `measure` times on the CPU for its rate curves: square matrix
products' sides; 3x3 convolutions' batch, channels and side."""
SMALL_LAYERS = 50
"""Layers of the chain whose time per layer is a layer's overhead: small enough that the
arithmetic is nothing."""


def measure(device: str = "cpu", seconds: float = 1.0) -> tuple[Throughput, list[str]]:
    """Time, with torch, a matrix product, a convolution's forward and backward, a copy,
    and a chain of tiny layers forward and backward (what a layer costs whatever its size)
    on `device` (`cpu`, `cuda` or `cuda:N`), each repeated for about `seconds`; the median
    repetition gives the rate. In float32 (on CUDA with TF32 on, as `netspec train` sets
    it), and on CUDA in bfloat16 too. Returns the figures and a line on each."""
    import torch

    where = torch.device(device)
    kind = where.type
    sizes = MEASURED[kind]
    if kind == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
        wide = "tf32" if torch.cuda.get_device_capability(where)[0] >= 8 else "fp32"
        dtypes = {wide: torch.float32, "bf16": torch.bfloat16}
        name = torch.cuda.get_device_name(where)
    else:
        dtypes = {"fp32": torch.float32}
        threads = torch.get_num_threads()
        name = f"{_cpu_name()}, {threads} thread{'s' if threads > 1 else ''}"

    def timed(run: Callable[[], object], span: float = seconds) -> float:
        """The median seconds of `run`, repeated for about `span` after a warm-up."""
        sync = torch.cuda.synchronize if kind == "cuda" else (lambda: None)
        run()
        sync()
        times: list[float] = []
        began = time.perf_counter()
        while len(times) < 3 or time.perf_counter() - began < span:
            start = time.perf_counter()
            run()
            sync()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    def conv_step(x: torch.Tensor, w: torch.Tensor) -> None:
        torch.nn.functional.conv2d(x, w, padding=1).sum().backward()

    small = torch.nn.Sequential(*(torch.nn.Linear(4, 4) for _ in range(SMALL_LAYERS))).to(where)
    tiny = torch.randn(1, 4, device=where)

    def small_forward() -> torch.Tensor:
        return small(tiny)

    def small_step() -> None:
        small(tiny).sum().backward()

    n, (batch, channels, side) = sizes["matmul"], sizes["conv"]
    conv_flops = 3 * 2 * batch * channels * channels * 9 * side * side  # padding 1
    conv, matmul, lines = {}, {}, []
    for precision, dtype in dtypes.items():
        a, b = (torch.randn(n, n, device=where, dtype=dtype) for _ in range(2))
        x, w = (torch.randn(*shape, device=where, dtype=dtype, requires_grad=True)
                for shape in ((batch, channels, side, side), (channels, channels, 3, 3)))
        matmul[precision] = 2 * n**3 / timed(functools.partial(torch.matmul, a, b))
        conv[precision] = conv_flops / timed(functools.partial(conv_step, x, w))
        lines += [f"matmul       {_rate(matmul[precision])}  {precision}, {n}x{n} by {n}x{n}",
                  f"convolution  {_rate(conv[precision])}  {precision}, forward and backward, "
                  f"3x3, {channels} to {channels} channels at {batch}x{channels}x{side}x{side}"]
    source = torch.empty(sizes["copy"] // FLOAT, device=where)
    target = torch.empty_like(source)
    bandwidth = 2 * sizes["copy"] / timed(lambda: target.copy_(source))
    lines.append(f"bandwidth    {bandwidth / G:,.1f} GB/s  a copy of {sizes['copy'] // 2**20:,} "
                 "MiB (read and written)")
    curves: dict[str, list[list[float]]] = {}
    if kind == "cpu":  # a GPU's small kernels are bound by their launch: `overhead`
        for side in CURVE["matmul"]:
            a, b = (torch.randn(side, side, device=where) for _ in range(2))
            work = 2 * side**3
            curves.setdefault("matmul", []).append(
                [work, work / timed(functools.partial(torch.matmul, a, b), seconds / 4)])
        for batch_, channels_, side in CURVE["conv"]:
            x, w = (torch.randn(*shape, device=where, requires_grad=True)
                    for shape in ((batch_, channels_, side, side), (channels_, channels_, 3, 3)))
            work = 3 * 2 * batch_ * channels_**2 * 9 * side**2
            curves.setdefault("conv", []).append(
                [work, work / timed(functools.partial(conv_step, x, w), seconds / 4)])
        for kind_, points in curves.items():
            lines.append(f"{kind_:12} " + ", ".join(f"{_rate(rate)} at {_flops(work)}"
                                                  for work, rate in points))
    forward = timed(small_forward) / SMALL_LAYERS
    backward = max(timed(small_step) / SMALL_LAYERS - forward, 0.0)
    lines.append(f"per layer    {forward * 1e6:,.1f} µs forward, {backward * 1e6:,.1f} µs backward "
                 f"(a chain of {SMALL_LAYERS} 4x4 linear layers on one sample)")
    today = datetime.date.today().isoformat()
    return Throughput(name, f"measured by netspec bench on {today} (torch {torch.__version__})",
                      conv, matmul, bandwidth, gpu=kind == "cuda",
                      overhead={"forward": forward, "backward": backward},
                      curves=curves), lines


def _rate(flops: float) -> str:
    return f"{flops / T:,.2f} TFLOP/s" if flops >= T else f"{flops / G:,.1f} GFLOP/s"


def _flops(work: float) -> str:
    return f"{work / 1e6:,.1f} MFLOP" if work < G else f"{work / G:,.1f} GFLOP"


def _cpu_name() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo), else the platform's word for it."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "CPU"


# -- the estimate -------------------------------------------------------------------------

def precision_of(figures: Throughput, precision: str) -> str | None:
    """The rate a step of `precision` (a spec's `train.precision`) runs at on `figures`'
    device, as `netspec train` runs it: `auto` is bf16 on a GPU that has it, else float32;
    float32 on a GPU with TF32 runs at TF32. None: the device has no such rate."""
    if precision == "auto":
        precision = "bf16" if figures.gpu and "bf16" in figures.matmul else "fp32"
    if precision == "fp32" and "tf32" in figures.matmul:
        return "tf32"
    return precision if precision in figures.matmul and precision in figures.conv else None


def optimizer_accesses(train: Any) -> int:
    """Element reads and writes per trained parameter in one step of `train`'s optimizer
    (None: the default), as torch's single-tensor update code makes them, each kernel
    reading its inputs and writing its output once (torch/optim/sgd.py, adam.py):

        sgd    p.add_(g, alpha=-lr)                       3
               weight decay  g = g.add(p, alpha=wd)      +3
               momentum  b.mul_(m).add_(g)               +5;  nesterov g = g.add(b, alpha=m) +3
        adam   m.lerp_(g)                                 3
               v.mul_(b2).addcmul_(g, g)                  5
               d = (v.sqrt() / c).add_(eps)               6
               p.addcdiv_(m, d)                           4
               weight decay  adam: g = g.add(p, alpha=wd) +3;  adamw: p.mul_(1 - lr * wd) +2
        clip_grad    the norm reads g, g.mul_(scale)     +3  (torch/nn/utils/clip_grad.py)
    """
    if train is None:
        kind, decay, momentum, nesterov = (*DEFAULT_OPTIMIZER, 0.0, False)
    else:
        options = train.optimizer.options
        kind, decay = train.optimizer.kind, options.weight_decay
        momentum, nesterov = getattr(options, "momentum", 0.0), getattr(options, "nesterov", False)
    clip = 3 if train is not None and train.clip_grad is not None else 0
    if kind == "sgd":
        return clip + 3 + (3 if decay else 0) + (5 if momentum else 0) + (3 if nesterov else 0)
    return clip + 3 + 5 + 6 + 4 + ((2 if kind == "adamw" else 3) if decay else 0)


DIGITS = 1797
"""Samples of scikit-learn's digits, the `digits` data."""


def epoch_samples(train: Any) -> tuple[int | None, str]:
    """The training samples of one epoch of `train`'s data (None: the default digits) when
    they are known without reading it, and where the figure comes from (or why it is not
    known)."""
    data = train.data if train is not None else None
    kind = data.kind if data is not None else "digits"
    if kind not in ("digits", "synthetic"):
        return None, f"the size of `{kind}` data is known once it is read: give --samples N"
    total = DIGITS if kind == "digits" else data.options.size  # type: ignore[union-attr]
    share = data.options.val_split if data is not None else 0.2
    held = round(total * share)
    return total - held, f"{kind}: {total:,} samples less {held:,} held out for validation"


def estimate(report: Report, train: Any, figures: Throughput, samples: int | None = None
             ) -> StepTime | str:
    """The time of one training step of `report.memory.batch` samples on `figures`' device
    (a roofline per layer: see the module's docstring), after `netspec.train_step.cost`; and
    of an epoch of `samples` training samples (default: the spec's data's, when known
    cheaply). A str says why there is none: the device lacks the step's precision."""
    precision = train.precision if train is not None else "auto"
    rate = precision_of(figures, precision)
    if rate is None:
        return f"{figures.name} has no {precision} figures: {figures.source}"
    batch = report.memory.batch if report.memory is not None else DEFAULT_BATCH
    item = autocast_dtypes(report, "cuda" if figures.gpu else "cpu").item \
        if rate in ("bf16", "fp16") else {}
    forward = backward = compute = 0.0
    for row in report.layers:
        kind = "conv" if row.node.op is not None and row.node.op.family == "conv" else "matmul"
        ahead, back = _layer_bytes(row, batch, item)
        work = [2 * batch * row.macs, 2 * batch * (row.grad_input_macs + row.grad_weight_macs)]
        times = [(flops / figures.rate_at(kind, rate, flops) if flops else 0.0, moved / figures.bandwidth)
                 for flops, moved in zip(work, (ahead, back), strict=True)]
        if row.recomputed:  # a checkpointed block's layer runs forward again
            times.append(times[0])
        forward += max(times[0]) + figures.overhead["forward"]
        backward += sum(max(pair) for pair in times[1:]) + figures.overhead["forward"] * (
            len(times) - 2) + (figures.overhead["backward"] if row.keeps is not None else 0)
        compute += sum(work for work, moved in times if work >= moved)
    optimizer = FLOAT * optimizer_accesses(train) * report.trainable_params / figures.bandwidth
    step = forward + backward + optimizer
    per_epoch, origin = (samples, "--samples") if samples is not None else epoch_samples(train)
    # The last step of an epoch may be short: the passes take its share of a full one's time.
    epoch = None if per_epoch is None else \
        math.ceil(per_epoch / batch) * optimizer + per_epoch / batch * (forward + backward)
    return StepTime(device=figures.name, source=figures.source, precision=rate, batch=batch,
                    forward=forward, backward=backward, optimizer=optimizer,
                    compute_bound=compute / step if step else 0.0, samples=per_epoch,
                    samples_from=origin, epoch=epoch)


def _layer_bytes(row: LayerReport, batch: int, item: dict[str, int]) -> tuple[int, int]:
    """Bytes a layer's forward and backward kernels read and write, each tensor once: its
    activations' elements of `item[value]` bytes (float32 where not given), a gradient's
    as its value's, its weights' of four."""
    op = row.node.op
    if op is not None and op.aliases(row.input_shapes, row.shape) is not None \
            and not getattr(op, "inplace", False):
        return 0, 0  # a view
    width = [item.get(value, FLOAT) for value in row.node.inputs]
    inputs = sum(w * math.prod(s) for w, s in zip(width, row.input_shapes, strict=True))
    output = item.get(row.name, FLOAT) * (math.prod(row.shape) + row.scores)
    forward = batch * (inputs + output) + FLOAT * row.params
    if row.keeps is None:
        return forward, 0
    gradients = sum(w * math.prod(s) for w, s, flows in zip(width, row.input_shapes,
                                                            row.input_grads, strict=True) if flows)
    return forward, batch * (output + inputs + gradients) + FLOAT * (row.params + row.trainable)
