"""The `netspec` command line: thin wrappers that parse options, call the API and print."""

from __future__ import annotations

import functools
import gc
import importlib.util
import json
import os
import re
import shlex
import signal
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from netspec.errors import Diagnostic
from netspec.limits import Limits, applied

if TYPE_CHECKING:
    from netspec.ir import Graph
    from netspec.report import Report
    from netspec.sizes import DimSizes
    from netspec.throughput import Throughput

_BYTES = re.compile(r"\s*(\d+(?:\.\d*)?)\s*([kmgtp]?)(i?)b?\s*", re.IGNORECASE)


class ByteSize(click.ParamType):
    """A memory budget: `24GiB`, `16 GB`, `512MiB` (powers of 1,024 with `i`, of 1,000
    without), or bytes (`1000000`)."""

    name = "size"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None
                ) -> int:
        if isinstance(value, int):
            return value
        found = _BYTES.fullmatch(str(value))
        if found is None:
            self.fail(f"{value!r} is not an amount of memory; write e.g. 24GiB, 16GB or 512MiB",
                      param, ctx)
        number, prefix, binary = found.groups()
        power = "kmgtp".find(prefix.lower()) + 1 if prefix else 0
        size = int(float(number) * (1024 if binary else 1000) ** power)
        if size < 1:
            self.fail(f"{value!r}: the budget must be at least one byte", param, ctx)
        return size


class DeviceParam(click.ParamType):
    """`cpu`, `cuda` or `cuda:N`: where a training step runs (its memory differs)."""

    name = "device"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None
                ) -> str:
        if not re.fullmatch(r"cpu|cuda(:\d+)?", str(value)):
            self.fail(f"{value!r}: the device is cpu, cuda or cuda:N", param, ctx)
        return str(value)


MAX_SHOWN = 100
"""Errors printed at most: a hostile file can hold a million mistakes."""
BIG_PICTURE = 150
"""Layers past which `draw` without `--depth` suggests a depth."""
READABLE = 100
"""Nodes the suggested depth draws at most (when one does)."""


class ShapeParam(click.ParamType):
    """`C,H,W` for the only input, or `NAME=C,H,W` for a named one."""

    name = "shape"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> tuple[str | None, tuple[int, ...]]:
        if isinstance(value, tuple):
            return value
        name, _, dims = value.rpartition("=")
        try:
            shape = tuple(int(d) for d in dims.replace("x", ",").split(","))
        except ValueError:
            self.fail(f"{value!r} is not a shape; write C,H,W (e.g. 3,224,224) or NAME=C,H,W",
                      param, ctx)
        if not shape or min(shape) < 1:
            self.fail(f"{value!r}: every dimension must be a positive integer", param, ctx)
        return (name or None), shape


def limit_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give a command `--limit NAME=N` and `--allow-use DIR`; it runs with those limits in
    force (see `netspec.limits`)."""
    @click.option("--limit", "limit_settings", multiple=True, metavar="NAME=N",
                  help=f"Raise or lower a safety limit (repeatable): {', '.join(Limits.names())}.")
    @click.option("--allow-use", multiple=True, metavar="DIR",
                  type=click.Path(exists=True, file_okay=False),
                  help="Let `use:` read files from DIR too, not only the spec's folder.")
    @functools.wraps(command)
    def with_limits(*args: Any, limit_settings: tuple[str, ...], allow_use: tuple[str, ...],
                    **kwargs: Any) -> None:
        try:
            chosen = Limits(use_folders=tuple(map(Path, allow_use))).with_settings(limit_settings)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--limit") from None
        with applied(chosen):
            command(*args, **kwargs)
    return with_limits


def param_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give a command `--set NAME=VALUE` (repeatable) and `--scale NAME`: it is called with
    `params` (each VALUE read as YAML, then as a default in the spec's `params:` is) and
    `scale` (see `netspec.load`)."""
    @click.option("--set", "settings", multiple=True, metavar="NAME=VALUE",
                  help="Set one of the spec's params (repeatable), after --scale: "
                       "classes=10, width=0.5*2, depths=[2,2,6,2].")
    @click.option("--scale", metavar="NAME",
                  help="Use one of the spec's `scales:` (named sets of param values).")
    @functools.wraps(command)
    def with_params(*args: Any, settings: tuple[str, ...], scale: str | None,
                    **kwargs: Any) -> None:
        command(*args, params=_settings(settings), scale=scale, **kwargs)
    return with_params


def _settings(settings: tuple[str, ...]) -> dict[str, Any] | None:
    """`--set` options as parameter values: NAME=VALUE, VALUE read as YAML (a number, a
    list, true, a word or an expression)."""
    from netspec.errors import SpecError
    from netspec.spec.source import read_source

    values = {}
    for setting in settings:
        name, equals, text = setting.partition("=")
        if not equals or not name.strip():
            raise click.BadParameter(f"{setting!r}: write NAME=VALUE (e.g. classes=10)",
                                     param_hint="--set")
        try:
            values[name.strip()] = read_source(f"--set {name.strip()}", text).data
        except SpecError as exc:
            raise click.BadParameter(f"{setting!r}: {exc.errors[0].message}",
                                     param_hint="--set") from None
    return values or None


def _one_scale(scale: str | None) -> None:
    """Refuse `--scale all` where one network is meant (only `check` takes every scale)."""
    from netspec.spec.document import ALL_SCALES

    if scale == ALL_SCALES:
        raise click.BadParameter(f"`{ALL_SCALES}` is for `netspec check`; name one scale",
                                 param_hint="--scale")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="netspec")
@click.pass_context
def main(ctx: click.Context) -> None:
    """netspec: write a network in YAML; check, draw, compile and train it."""
    # A command's objects form no reference cycles: the cyclic collector would only rescan
    # them (a third of the time on a 10,000-layer spec). Back on when the command ends.
    if gc.isenabled():
        gc.disable()
        ctx.call_on_close(gc.enable)
    ctx.with_resource(_plugin_warnings())


@contextmanager
def _plugin_warnings() -> Iterator[None]:
    """Print a plugin refused (netspec.ops.plugins) as `warning: plugin ...` on stderr,
    not in Python's warning format (the other warnings as before)."""
    with warnings.catch_warnings():
        python_shows = warnings.showwarning

        def show(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any
                 ) -> None:
            from netspec.ops.plugins import PluginWarning  # loaded already: a command uses ops

            if issubclass(category, PluginWarning):
                click.echo(f"warning: {message}", err=True)
            else:
                python_shows(message, category, *args, **kwargs)

        warnings.showwarning = show
        yield


@main.command()
@limit_options
@param_options
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--input", "-i", "inputs", type=ShapeParam(), multiple=True,
              help="Check at another input size: C,H,W or NAME=C,H,W (repeatable).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="Human table or the JSON report.")
@click.option("--fuse-bn", is_flag=True,
              help="Report the inference network, each BatchNorm folded into its conv.")
@click.option("--depth", type=click.IntRange(min=0), default=None, metavar="N",
              help="Collapse block instances nested deeper than N into one row each, as "
                   "`draw --depth N` does (0: every top-level block); JSON keeps `layers` "
                   "and adds the rows as `collapsed` [default: every layer].")
@click.option("--sizes", is_flag=True,
              help="Also say which sizes each input dimension takes (the others as given): "
                   "those that work, those that read every row, and the nearest ones to "
                   "the input's own (JSON: `sizes`).")
@click.option("--batch", type=click.IntRange(min=1), default=None, metavar="N",
              help="Show a training step of N samples: each layer's kept activations and "
                   "backward MACs, the step's FLOPs and memory [default: the spec's "
                   "train.batch_size, in the JSON only].")
@click.option("--memory", "budget", type=ByteSize(), default=None, metavar="SIZE",
              help="Also find the largest batch whose training step fits in SIZE (24GiB, "
                   "16GB, 512MiB) [default with --device cuda: the device's free memory].")
@click.option("--device", type=DeviceParam(), default="cpu",
              help="Where the training step runs (cpu, cuda, cuda:N): dropout's masks and "
                   "mixed precision differ [default: cpu; cuda with a --device-profile].")
@click.option("--device-profile", "profile", metavar="NAME",
              help="Estimate the step's time on this GPU from its datasheet (h100-sxm, a100-80gb, "
                   "rtx4090, ...) [default: --device as `netspec bench` measured it].")
@click.option("--samples", type=click.IntRange(min=1), default=None, metavar="N",
              help="Training samples per epoch, for the epoch's time [default: the spec's data's "
                   "when known without reading it].")
def check(spec: str, inputs: tuple[tuple[str | None, tuple[int, ...]], ...], fmt: str,
          fuse_bn: bool, depth: int | None, params: dict[str, Any] | None,
          scale: str | None, sizes: bool, batch: int | None, budget: int | None,
          device: str, profile: str | None, samples: int | None) -> None:
    """Validate SPEC and report every layer's shape, params, MACs and receptive field.
    `--scale all` reports each of the spec's scales in a row, with `--batch` or `--memory`
    its training step's figures too (JSON: the report of each).

    Exit 0 when the spec is valid, 1 when it has errors (all of them are listed)."""
    from netspec.api import diagnose
    from netspec.spec.document import ALL_SCALES

    overrides = _overrides(inputs)
    if budget is None and device.startswith("cuda"):
        budget = _free_memory(device)
    timed = any(x is not None for x in (batch, budget, profile, samples))
    figures, hint = _throughput(profile, device.split(":")[0]) if timed else (None, None)
    if profile is not None and click.get_current_context().get_parameter_source(
            "device") is click.core.ParameterSource.DEFAULT:
        device = "cuda"  # the profile's GPU runs the step (no free memory is asked of it)
    step = {"batch": batch, "memory": budget, "device": device.split(":")[0],
            "throughput": figures, "samples": samples}
    training = batch is not None or budget is not None
    if scale == ALL_SCALES:
        _check_scales(spec, overrides, fmt, fuse_bn, depth, params, sizes, step, hint, training)
        return
    _, report, errors = diagnose(spec, overrides, fuse_bn=fuse_bn, params=params, scale=scale,
                                 sizes=sizes, **step)
    if errors:
        _fail(errors, fmt, report.sizes if report is not None else None)
    assert report is not None
    report.step_time_hint = report.step_time_hint or hint
    if fmt == "json":
        click.echo(json.dumps(report.to_dict(depth), indent=2))
        return
    click.echo(report.table(depth, training=training))
    for warning in report.warnings:
        click.echo(warning.format(), err=True)


def _throughput(profile: str | None, device: str) -> tuple[Throughput | None, str | None]:
    """The figures a step's time is estimated with: the GPU `profile` names (a usage error,
    exit 2, when it names none), else what `netspec bench` measured of `device`; or why
    there are none."""
    from netspec import throughput

    if profile is None:
        return throughput.measured(device)
    try:
        return throughput.profile(profile), None
    except LookupError as exc:
        raise click.BadParameter(str(exc), param_hint="--device-profile") from None


def _free_memory(device: str) -> int:
    """The free memory of a CUDA device, in bytes (this imports torch); exit 1 without one."""
    import torch

    if not torch.cuda.is_available():
        click.echo(f"error: --device {device}: no CUDA device here (torch "
                   f"{torch.__version__}); give the budget with --memory", err=True)
        sys.exit(1)
    index = int(device.partition(":")[2] or torch.cuda.current_device())
    if index >= torch.cuda.device_count():
        click.echo(f"error: --device {device}: there are {torch.cuda.device_count()} CUDA "
                   "devices", err=True)
        sys.exit(1)
    return torch.cuda.mem_get_info(index)[0]


@main.command()
@click.option("--device", type=DeviceParam(), default="cpu", show_default=True,
              help="What to measure: this machine's CPU, or a CUDA device (cuda, cuda:N).")
@click.option("--seconds", type=click.FloatRange(min=0, min_open=True), default=1.0,
              show_default=True, help="How long each measurement repeats.")
def bench(device: str, seconds: float) -> None:
    """Measure what this machine's CPU (or a CUDA device) does per second, with torch: a
    float32 matrix product's and a convolution's FLOP/s and the memory bandwidth, each the
    median of repetitions for about --seconds; print them and save them where `netspec check
    --batch N` finds them to estimate a training step's time ($NETSPEC_THROUGHPUT, else
    $XDG_CACHE_HOME/netspec/throughput.json).

    Exit 0 when measured, 1 without torch or without the CUDA device."""
    if importlib.util.find_spec("torch") is None:
        raise click.ClickException("netspec bench needs torch: pip install 'netspec[train]'")
    from netspec import throughput

    if device.startswith("cuda"):
        _free_memory(device)  # exits 1 without the device
    figures, lines = throughput.measure(device, seconds)
    click.echo(f"{device}: {figures.name}")
    for line in lines:
        click.echo(f"  {line}")
    click.echo(f"wrote {throughput.save(figures, device.split(':')[0])}")


@main.command(name="diff")
@limit_options
@param_options
@click.argument("spec_a", metavar="A", type=click.Path(dir_okay=False))
@click.argument("spec_b", metavar="[B]", required=False, type=click.Path(dir_okay=False))
@click.option("--set-b", "settings_b", multiple=True, metavar="NAME=VALUE",
              help="Set one of B's params only (repeatable), over --set.")
@click.option("--scale-b", metavar="NAME", help="B's scale, instead of --scale's.")
@click.option("--input", "-i", "inputs", type=ShapeParam(), multiple=True,
              help="Compare at another input size: C,H,W or NAME=C,H,W (repeatable).")
@click.option("--input-b", "inputs_b", type=ShapeParam(), multiple=True,
              help="B's input size, over --input's (repeatable).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="Human table or JSON.")
@click.option("--all", "all_layers", is_flag=True,
              help="List every layer, not only those that differ (JSON always does).")
@click.option("--depth", type=click.IntRange(min=0), default=None, metavar="N",
              help="Compare rows, not layers: block instances nested deeper than N as one "
                   "row each, as `check --depth N` shows them [default: every layer].")
def diff_command(spec_a: str, spec_b: str | None, settings_b: tuple[str, ...],
                 scale_b: str | None, inputs: tuple[tuple[str | None, tuple[int, ...]], ...],
                 inputs_b: tuple[tuple[str | None, tuple[int, ...]], ...], fmt: str,
                 all_layers: bool, depth: int | None, params: dict[str, Any] | None,
                 scale: str | None) -> None:
    """Compare spec A with spec B layer by layer: added, removed and changed layers with
    their shape, params and MACs, then the totals. B defaults to A, to compare one spec at
    two values: `--set`, `--scale` and `--input` apply to both, `--set-b`, `--scale-b` and
    `--input-b` to B only (`netspec diff specs/resnet50.yaml --set-b width_per_group=32`).

    Exit 0 when both specs are valid, whether or not they differ; 1 when either has
    errors (each says the side it is in)."""
    from netspec.diff import DiffError, diff
    from netspec.spec.document import ALL_SCALES

    _one_scale(scale)
    if scale_b == ALL_SCALES:
        raise click.BadParameter(f"`{ALL_SCALES}` is for `netspec check`; name one scale",
                                 param_hint="--scale-b")
    params_b = _for_b("--set-b", _settings, settings_b)
    try:
        result = diff(spec_a, spec_b, inputs=_overrides(inputs),
                      inputs_b=_for_b("--input-b", _overrides, inputs_b), params=params,
                      params_b=params_b, scale=scale, scale_b=scale_b)
    except DiffError as exc:
        if fmt == "json":
            click.echo(json.dumps({"errors": exc.to_dicts()}, indent=2))
            sys.exit(1)
        _fail(exc.errors, fmt)
    if fmt == "json":
        click.echo(json.dumps(result.to_dict(depth), indent=2))
        return
    click.echo(result.table(depth, all_layers))


def _for_b(hint: str, read: Callable[[Any], Any], value: Any) -> Any:
    """`read(value)` for an option of B's that reads as its option for both sides does;
    a usage error names `hint`, the option given."""
    try:
        return read(value)
    except click.BadParameter as exc:
        exc.param_hint = hint
        raise


@main.command()
@limit_options
@param_options
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--output", "-o", "out", type=click.Path(dir_okay=False), default=None,
              help="Picture to write: .svg, .png, .pdf, or .dot (the source; needs no "
                   "Graphviz) [default: SPEC's stem + .svg, here].")
@click.option("--depth", type=click.IntRange(min=0), default=None, metavar="N",
              help="Collapse block instances nested deeper than N into one node each "
                   "(0: every top-level block) [default: draw every layer].")
@click.option("--rankdir", type=click.Choice(["TB", "LR"]), default="TB",
              show_default=True, help="Top to bottom or left to right.")
@click.option("--input", "-i", "inputs", type=ShapeParam(), multiple=True,
              help="Draw at another input size: C,H,W or NAME=C,H,W (repeatable).")
def draw(spec: str, out: str | None, depth: int | None, rankdir: str,
         inputs: tuple[tuple[str | None, tuple[int, ...]], ...], params: dict[str, Any] | None,
         scale: str | None) -> None:
    """Draw SPEC with Graphviz: layers with their op and params, shapes on the edges, blocks
    as clusters. A spec with errors is drawn too (failing layers in red), then its errors
    are printed and the exit status is 1; it is 1 as well when Graphviz is missing. Past
    150 layers without `--depth`, a note names the depth that draws it readably."""
    from netspec.api import diagnose, graph_of
    from netspec.backends.drawing import FORMATS, GraphvizMissing, to_digraph, write

    _one_scale(scale)
    target = Path(out) if out else Path(Path(spec).stem + ".svg")
    if target.suffix.lstrip(".").lower() not in FORMATS:
        raise click.BadParameter(f"{target.name!r}: write a .svg, .png, .pdf or .dot file",
                                 param_hint="--output")
    loaded, report, errors = diagnose(spec, _overrides(inputs), params=params, scale=scale)
    if loaded is None:
        _fail(errors, "table")
    graph = graph_of(loaded)  # type: ignore[arg-type]
    picture = to_digraph(graph, report, errors, depth=depth, rankdir=rankdir)
    try:
        write(picture, target)
    except GraphvizMissing as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {target}", err=True)
    if depth is None:
        _suggest_depth(spec, graph, report)
    if errors:
        _fail(errors, "table")


def _check_scales(spec: str, inputs: Any, fmt: str, fuse_bn: bool, depth: int | None,
                  params: dict[str, Any] | None, sizes: bool, step: dict[str, Any],
                  hint: str | None, training: bool) -> None:
    """`check --scale all`: a row per scale with the sizes each takes, and with `training`
    its training step's figures (`step`: the step's options, as `api.check` takes them;
    `hint`: why a step's time cannot be estimated). JSON: an object of each scale's
    report, as `check --scale NAME` gives it with the same options."""
    from netspec.api import check_scales
    from netspec.errors import SpecError

    try:
        reports = check_scales(spec, inputs, fuse_bn, params=params,
                               sizes=fmt == "table" or sizes, **step)
    except SpecError as exc:
        _fail(exc.errors, fmt)
    for _, report in reports:
        report.step_time_hint = report.step_time_hint or hint
    if fmt == "json":
        click.echo(json.dumps({name: report.to_dict(depth) for name, report in reports}, indent=2))
        return
    click.echo(scales_table(reports, training))


SCALE_COLUMNS: tuple[tuple[str, Callable[[str, Report], str]], ...] = (
    ("scale", lambda name, report: name),
    ("params", lambda name, report: f"{report.params:,}"),
    ("MACs", lambda name, report: f"{report.macs:,}"),
    ("sizes that work", lambda name, report: _sizes_summary(report)),
)
"""`check --scale all`'s columns: a title, and the cell of a scale's row from its report;
with a training step, `report.scale_steps`' columns go before the last."""


def _sizes_summary(report: Report) -> str:
    from netspec.sizes import summary  # analysis: only `check --scale all` needs it

    return summary(report.sizes or [])


def scales_table(reports: list[tuple[str, Report]], training: bool = False) -> str:
    """One row per scale, numbers right-aligned, under the spec's name and input size; with
    `training`, each scale's training step too, and what it assumes under the table."""
    from netspec.report import scale_steps

    titles = [title for title, _ in SCALE_COLUMNS]
    columns = [[cell(name, report) for name, report in reports] for _, cell in SCALE_COLUMNS]
    steps, notes = scale_steps([report for _, report in reports]) if training else ([], [])
    titles[-1:-1] = [title for title, _ in steps]
    columns[-1:-1] = [cells for _, cells in steps]
    rows = [tuple(titles), *zip(*columns, strict=True)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(titles))]
    first = reports[0][1]
    inputs = ", ".join("x".join(map(str, shape)) for shape in first.inputs.values())
    lines = [f"{first.name}: {len(reports)} scales at input {inputs}"]
    for row in rows:
        cells = [row[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(row[1:-1], widths[1:-1],
                                                                          strict=True)), row[-1]]
        lines.append("  ".join(cells).rstrip())
    return "\n".join([*lines, *notes])


def _suggest_depth(spec: str, graph: Graph, report: Report | None) -> None:
    """A note on stderr when a drawing of every layer is too big to read: the deepest
    `--depth` drawing at most READABLE nodes (a note, not a changed default: what `draw`
    draws never depends on the size of the net)."""
    from netspec.collapse import readable_depth

    layers = len(graph.layers())
    if layers <= BIG_PICTURE:
        return
    params = {r.name: r.params for r in report.layers} if report else {}
    choice = readable_depth(graph, params, READABLE)
    if choice is not None:
        depth, nodes = choice
        command = f"netspec draw {shlex.quote(spec)} --depth {depth}"
        click.echo(f"note: {layers} layers make a large picture; `{command}` draws {nodes} "
                   f"nodes, block instances nested deeper than {depth} collapsed", err=True)


@main.command(name="export")
@limit_options
@param_options
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["onnx", "pt2", "python"]), required=True,
              help="ONNX model, torch.export program (.pt2), or standalone PyTorch source.")
@click.option("--output", "-o", "out", type=click.Path(dir_okay=False), default=None,
              help="Output file [default: SPEC's stem + .onnx / .pt2 / .py, here].")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Checkpoint to export (a state_dict, or a dict with one under 'model'); a "
                   "training checkpoint's mean, std and classes go along. The python format "
                   "writes no weights: they are checked to fit and give its constants.")
@click.option("--fuse-bn", is_flag=True, help="Fold each BatchNorm into the conv before it.")
@click.option("--input", "-i", "inputs", type=ShapeParam(), multiple=True,
              help="Export at another input size: C,H,W or NAME=C,H,W (repeatable).")
def export_command(spec: str, fmt: str, out: str | None, weights: str | None, fuse_bn: bool,
                   inputs: tuple[tuple[str | None, tuple[int, ...]], ...],
                   params: dict[str, Any] | None, scale: str | None) -> None:
    """Write SPEC as ONNX, a torch.export program or plain PyTorch source (eval mode, dynamic
    batch). Exit 1 on spec errors, weights that do not fit, or a missing exporter."""
    from netspec.api import diagnose
    from netspec.export import SUFFIXES, export

    _one_scale(scale)
    overrides = _overrides(inputs)
    loaded, _, errors = diagnose(spec, overrides, params=params, scale=scale)
    if errors or loaded is None:
        _fail(errors, "table")
    target = Path(out) if out else Path(Path(spec).stem + SUFFIXES[fmt])  # type: ignore[index]
    try:
        path = export(loaded, fmt, target, weights=weights, fuse_bn=fuse_bn,  # type: ignore[arg-type]
                      inputs=overrides)
    except (ImportError, ValueError) as exc:  # WeightsError is a ValueError
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {path}", err=True)


@main.command(name="import")
@click.argument("source", metavar="MODULE:CALLABLE|FILE.pt2|FILE.onnx")
@click.option("--output", "-o", "out", type=click.Path(dir_okay=False), required=True,
              help="The spec file to write.")
@click.option("--input", "-i", "shape", type=ShapeParam(), default=None,
              help="Per-sample input shape C,H,W the model is traced at [default: 3,224,224 "
                   "for a callable, the file's own for .pt2 and .onnx].")
@click.option("--weights", "weights", type=click.Path(dir_okay=False), default=None,
              help="Where a file's weights go, as a state_dict the built spec loads "
                   "[default: the spec's path with .pt].")
@click.option("--partial", is_flag=True,
              help="Write what can be expressed; mark the rest with placeholders.")
def import_command(source: str, out: str, shape: tuple[str | None, tuple[int, ...]] | None,
                   weights: str | None, partial: bool) -> None:
    """Write the PyTorch model SOURCE (`torchvision.models:resnet50`,
    `mypkg.nets:Net(width=32)`), or a torch.export program (.pt2) or an ONNX model (.onnx)
    and its weights, as a spec. Exit 1, listing each module and op netspec cannot express,
    unless --partial."""
    from netspec.importer import FILE_FORMATS, ImportFailure, import_file, import_model

    is_file = Path(source).suffix.lower() in FILE_FORMATS
    if weights is not None and not is_file:
        raise click.UsageError("--weights is for a .pt2 or .onnx SOURCE (a callable's "
                               "state_dict already fits the spec)")
    try:
        imported = import_file(source, shape[1] if shape else None, partial=partial) if is_file \
            else import_model(source, shape[1] if shape else (3, 224, 224), partial=partial)
    except ImportFailure as exc:
        raise click.ClickException(str(exc)) from None
    Path(out).write_text(imported.text)
    for missing in imported.unexpressed:
        click.echo(f"placeholder: {missing}", err=True)
    click.echo(f"wrote {out}", err=True)
    if imported.weights is not None:
        import torch

        target = Path(weights) if weights else Path(out).with_suffix(".pt")
        torch.save(imported.weights, target)
        click.echo(f"wrote {target} (the file's weights as a state_dict: "
                   f"netspec.build(spec).load_state_dict(torch.load('{target}')))", err=True)


@main.command(name="summary")
@click.argument("source", metavar="MODULE:CALLABLE")
@click.option("--input", "-i", "shape", type=ShapeParam(), required=True,
              help="Per-sample input shape, C,H,W.")
def summary_command(source: str, shape: tuple[str | None, tuple[int, ...]]) -> None:
    """Print SOURCE's layers, shapes, parameters and MACs as `check` does (through
    `import`, running nothing), or a meta-device trace where it cannot be imported."""
    from netspec.importer import ImportFailure
    from netspec.importer.summary import summary

    try:
        click.echo(summary(source, shape[1]))
    except ImportFailure as exc:
        raise click.ClickException(str(exc)) from None


class BatchSizeParam(click.ParamType):
    """`--batch-size`: a positive number of samples, or `auto` (the largest that fits)."""

    name = "n|auto"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None
                ) -> int | str:
        if value == "auto":
            return value
        if str(value).isdigit() and int(value) >= 1:
            return int(value)
        self.fail(f"{value!r} is not a positive integer or `auto`", param, ctx)


@main.command(name="train")
@limit_options
@param_options
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--epochs", type=click.IntRange(min=1), help="Epochs to train (in all, when resuming).")
@click.option("--batch-size", type=BatchSizeParam(),
              help="Samples per step, over all processes; auto: the largest whose step's "
                   "estimated peak takes at most 90% of the memory there is.")
@click.option("--memory", "budget", type=ByteSize(), metavar="SIZE",
              help="The memory a batch size of auto is chosen for, per process (24GiB, 512MiB) "
                   "[default: the GPU's free memory; on the CPU, the available memory].")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), help="Base learning rate.")
@click.option("--device", help="auto (cuda, then mps, then cpu), cpu, mps, cuda or cuda:N.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]),
              help="fp32, or mixed precision with autocast (auto: bf16 on a GPU, else fp32).")
@click.option("--out", type=click.Path(file_okay=False),
              help="Run folder for checkpoints, metrics and plots [default: runs/NAME].")
@click.option("--seed", type=click.IntRange(min=0), help="Seed for weights, split, order, dropout.")
@click.option("--data", help="digits, synthetic, an image folder, a .npz file, a folder of MNIST "
                             "IDX files, or KIND:PATH [default: the spec's, else digits].")
@click.option("--compile/--no-compile", "compile_", default=None, help="torch.compile the model.")
@click.option("--channels-last/--no-channels-last", default=None,
              help="Lay the model and image batches out channels-last (NHWC) [default: the "
                   "spec's, else on a CUDA GPU only].")
@click.option("--resume", type=click.Path(dir_okay=False),
              help="Continue the run saved in this checkpoint (OUT/last.pt).")
@click.option("--init-from", type=click.Path(dir_okay=False),
              help="Start from these weights (a state_dict or checkpoint), loaded by name, "
                   "then order and shape [default: the spec's train.init_from]; not read on "
                   "a resume.")
@click.option("--nproc", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes to train with (signals reach every one).")
@click.option("--strategy", type=click.Choice(["ddp", "fsdp"]),
              help="With several processes: ddp (a whole model on each) or fsdp (sharded "
                   "weights, for a model too big for one device) [default: the spec's, else ddp].")
@click.option("--quiet", "-q", is_flag=True, help="No summary, progress bar or epoch lines.")
def train_command(spec: str, epochs: int | None, batch_size: int | str | None,
                  budget: int | None, lr: float | None, device: str | None,
                  precision: str | None, out: str | None, seed: int | None, data: str | None,
                  compile_: bool | None, channels_last: bool | None, resume: str | None,
                  init_from: str | None, nproc: int, strategy: str | None, quiet: bool,
                  params: dict[str, Any] | None, scale: str | None) -> None:
    """Train SPEC as its `train:` section says, each option overriding it: the check summary,
    a progress bar per epoch, one line per epoch, then OUT/last.pt, best.pt, metrics.jsonl,
    metrics.csv, curves.png and confusion.png. Ctrl-C or SIGTERM saves OUT/last.pt first.

    Exit 0 when training ends, 1 on errors (spec, data, checkpoint, NaN loss), 130 or 143
    when interrupted by SIGINT or SIGTERM."""
    from netspec.api import diagnose, train
    from netspec.errors import PeerLost, SpecError, TrainError

    _one_scale(scale)
    loaded, report, errors = diagnose(spec, params=params, scale=scale)
    if errors or loaded is None or report is None:
        _fail(errors, "table")
    main_rank = os.environ.get("RANK", "0") == "0"
    if nproc > 1 and "LOCAL_RANK" not in os.environ:
        from netspec.training.distributed import launch

        sys.exit(launch(nproc, _command_line(click.get_current_context(), drop="nproc")))
    if not quiet and main_rank:
        click.echo(report.summary() + "\n")  # type: ignore[union-attr]
    missing = [name for name in ("torch", "sklearn", "matplotlib", "PIL")
               if importlib.util.find_spec(name) is None]
    if missing:
        raise click.ClickException(f"netspec train needs {', '.join(missing)}: "
                                   "pip install 'netspec[train]'")
    try:
        result = train(loaded, resume=resume, epochs=epochs, batch_size=batch_size, lr=lr,
                       device=device, precision=precision, out=out, seed=seed, data=data,
                       compile=compile_, strategy=strategy, channels_last=channels_last,
                       memory=budget, verbose=not quiet, init_from=init_from)
    except PeerLost as exc:  # under `--nproc` the launcher names the worker that ended first
        from netspec.training.distributed import LAUNCHED, LOST_PEER

        if LAUNCHED in os.environ:
            sys.exit(LOST_PEER)
        click.echo(f"{spec}: error: {exc}", err=True)
        sys.exit(1)
    except TrainError as exc:  # every rank meets it: rank 0 says it
        if main_rank:
            click.echo(f"{spec}: error: {exc}", err=True)
        sys.exit(1)
    except SpecError as exc:  # a `train:` key found wrong when it is used (init_from's file)
        if main_rank:
            _fail(exc.errors, "table")
        sys.exit(1)
    except KeyboardInterrupt:  # before training started, or a second Ctrl-C
        if main_rank:
            click.echo(f"{spec}: interrupted: stopped at once; the checkpoints already written "
                       "are unchanged", err=True)
        _leave_interrupted()
    if result.stopped in ("SIGINT", "SIGTERM"):
        sys.exit(128 + int(getattr(signal, result.stopped)))
    if not quiet and main_rank:
        best = result.best
        if best is not None:
            value = (f"{best['value']:.2%}" if best["metric"] == "val_acc"
                     else f"{best['value']:.4g}")
            click.echo(f"best {best['metric']} {value} at epoch {best['epoch']}; "
                       f"wrote {result.out}/", err=True)


@main.command(name="predict")
@limit_options
@click.argument("spec", type=click.Path(dir_okay=False))
@click.argument("inputs", metavar="INPUT...", nargs=-1, required=True, type=click.Path())
@click.option("--weights", required=True, type=click.Path(),
              help="The run's checkpoint (best.pt), or its run folder.")
@click.option("--top-k", type=click.IntRange(min=1), default=5, show_default=True,
              help="Classes shown per input, likeliest first.")
def predict_command(spec: str, inputs: tuple[str, ...], weights: str, top_k: int) -> None:
    """Print the likeliest classes of each INPUT (an image, a .npy array, or a folder of
    them) with their probabilities, preparing each as training did: resized to the input
    size, normalised with the mean and std the checkpoint recorded, named by its classes.

    Exit 0 when every input is classified; 1 on spec errors, a checkpoint that does not fit,
    or an input that cannot be read (named)."""
    missing = [name for name in ("torch", "numpy", "PIL") if importlib.util.find_spec(name) is None]
    if missing:
        raise click.ClickException(f"netspec predict needs {', '.join(missing)}: "
                                   "pip install 'netspec[train]'")
    from netspec.errors import SpecError
    from netspec.predict import PredictError, predict

    try:
        predictions = predict(spec, weights, inputs, top_k=top_k)
    except SpecError as exc:
        _fail(exc.errors, "table")
    except PredictError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    for prediction in predictions:
        click.echo(prediction.line())


@main.command(name="sample")
@limit_options
@click.argument("run", type=click.Path())
@click.option("--prompt", help="Text to continue [default: a newline].")
@click.option("--length", type=click.IntRange(min=0), default=200, show_default=True,
              help="Bytes to generate (about one character each for ASCII).")
@click.option("--temperature", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Divides the scores: lower is more predictable, 0 always takes the likeliest.")
@click.option("--top-k", type=click.IntRange(min=1), help="Draw from the K likeliest bytes only.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="The same seed gives the same text.")
@click.option("--spec", "spec_file", type=click.Path(),
              help="The spec file, if the run's own has moved [default: the run's].")
def sample_command(run: str, prompt: str | None, length: int, temperature: float,
                   top_k: int | None, seed: int, spec_file: str | None) -> None:
    """Print the prompt and the text a language model trained on `text` data continues it
    with. RUN is a run folder (its best.pt, else last.pt) or a checkpoint.

    Exit 0 when the text is printed, 1 when RUN holds no language model or cannot be read."""
    if importlib.util.find_spec("torch") is None:
        raise click.ClickException("netspec sample needs torch: pip install 'netspec[train]'")
    from netspec.api import sample
    from netspec.errors import TrainError
    from netspec.training.sample import DEFAULT_PROMPT

    prompt = DEFAULT_PROMPT if prompt is None else prompt
    try:
        text = sample(run, prompt=prompt, length=length, temperature=temperature, top_k=top_k,
                      seed=seed, spec=spec_file)
    except TrainError as exc:
        click.echo(f"{run}: error: {exc}", err=True)
        sys.exit(1)
    click.echo(prompt + text, nl=not text.endswith("\n"))


def _leave_interrupted() -> NoReturn:
    """Exit 130 now. Not sys.exit: a Ctrl-C that surfaced inside code an extension ran through
    PyRun_String (while importing matplotlib's, say) leaves CPython's "unhandled
    KeyboardInterrupt" flag set, and the interpreter would then kill itself with SIGINT at
    exit, whatever the exit code. Training has closed its files and loaders by now."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(128 + signal.SIGINT)


def _command_line(ctx: click.Context, drop: str) -> list[str]:
    """The command's arguments as parsed, written back as a command line without `drop`."""
    args: list[str] = []
    for param in ctx.command.params:
        value = ctx.params.get(param.name or "")
        if param.name == drop or value is None:
            continue
        if isinstance(param, click.Option) and param.multiple:
            args += [part for item in value for part in (param.opts[0], str(item))]
        elif isinstance(param, click.Argument):
            args.append(str(value))
        elif isinstance(param, click.Option) and param.secondary_opts:
            args.append(param.opts[0] if value else param.secondary_opts[0])
        elif isinstance(param, click.Option) and value is not False:
            args += [param.opts[0]] if param.is_flag else [param.opts[0], str(value)]
    return args


@main.command()
@click.option("--output", "-o", type=click.File("w"), default="-",
              help="Write the schema to a file instead of stdout.")
def schema(output: Any) -> None:
    """Print the JSON Schema of the spec language (for editors' YAML language servers)."""
    from netspec.spec.schema import spec_schema

    output.write(json.dumps(spec_schema(), indent=2) + "\n")


@main.command(name="lsp")
def lsp_command() -> None:
    """Serve the language server (LSP) on stdin/stdout, for editors: errors, shapes,
    hover, completion, definitions and renames as you type (needs `netspec[lsp]`)."""
    lsp_main()


def lsp_main() -> None:
    """`netspec lsp`, also installed as `netspec-lsp` for editors that start a server by
    the path of one program, with no arguments."""
    try:
        from netspec.lsp.server import main as serve
    except ImportError as exc:
        click.echo(f"error: netspec lsp needs pygls ({exc}); install it with "
                   "pip install 'netspec[lsp]'", err=True)
        sys.exit(1)
    gc.enable()  # a server runs for hours: its garbage is collected as usual
    serve()


def _overrides(inputs: tuple[tuple[str | None, tuple[int, ...]], ...]) -> Any:
    if not inputs:
        return None
    if len(inputs) == 1 and inputs[0][0] is None:
        return inputs[0][1]
    if any(name is None for name, _ in inputs):
        raise click.BadParameter("with several --input options, name each: NAME=C,H,W",
                                 param_hint="--input")
    return {name: shape for name, shape in inputs}


def _fail(errors: list[Diagnostic], fmt: str, sizes: list[DimSizes] | None = None) -> None:
    """Print `errors` (and, for `check --sizes` at input sizes that fail, which sizes
    work: `sizes`), and exit 1."""
    if fmt == "json":
        found = {} if sizes is None else {"sizes": [d.to_json() for d in sizes]}
        click.echo(json.dumps({"errors": [e.to_dict() for e in errors], **found}, indent=2))
    else:
        for error in errors[:MAX_SHOWN]:
            click.echo(error.format(), err=True)
        count = len(errors)
        more = f" ({count - MAX_SHOWN:,} more not shown)" if count > MAX_SHOWN else ""
        click.echo(f"{count:,} error{'s' if count > 1 else ''}{more}", err=True)
        if sizes is not None:
            from netspec.sizes import lines

            click.echo("\n".join(["", *lines(sizes)]), err=True)
    sys.exit(1)
