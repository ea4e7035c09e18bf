"""The library API: `load` a spec, `check` it. Neither imports torch."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from netspec import sizes as input_sizes
from netspec import train_step
from netspec.allocation import gc_paused
from netspec.analysis import analyse
from netspec.errors import Diagnostic, SpecError, TrainError
from netspec.fuse import fold_graph, fold_weights
from netspec.ir import Graph
from netspec.limits import Limits, applied
from netspec.report import LargestBatch, Report
from netspec.shapes import Shape
from netspec.spec.document import ALL_SCALES, Choice, Spec
from netspec.spec.expand import Expander
from netspec.spec.library import collect_blocks
from netspec.spec.source import Source, read_source
from netspec.spec.validation import diagnostics, document_locator

SpecSource = str | Path | Mapping[str, Any] | Spec | Source
"""A spec: a path, YAML text, a mapping, a loaded Spec, or YAML already read (a `Source`:
an editor's text under its file's name, `read_source(path, text)`)."""
Params = Mapping[str, Any]
"""Parameter values by name, each read as a default in the spec's `params:` is."""

if TYPE_CHECKING:
    import graphviz

    from netspec.throughput import Throughput
    from netspec.training.loop import TrainResult


def load(source: SpecSource, limits: Limits | None = None, *, params: Params | None = None,
         scale: str | None = None) -> Spec:
    """Read and validate a spec from a path, YAML text or a dict.

    Raises SpecError listing every problem in the document (syntax, schema, unknown ops
    and keys, bad references, names), each positioned at its YAML line and column.
    `limits` bounds what the document may ask for (`netspec.Limits`; the defaults when
    None); every API function takes it.

    `scale` picks one of the spec's `scales:` by name, and `params` sets parameters by name
    on top of it (`{"classes": 10, "width": "0.5 * 2"}`: each value read as a default in
    `params:` is, of its default's type); parameters computed from them follow. Every API
    function that takes a spec takes both. Given a loaded Spec, the document is expanded
    again without being read again: `scale` replaces its scale and `params` add to its
    values (a sweep loads a file once, then `check(spec, params=...)` per variant).
    """
    spec, errors = parse(source, limits, params=params, scale=scale)
    if errors or spec is None:
        raise SpecError(errors)
    return spec


def check(spec: SpecSource, inputs: Mapping[str, Shape] | Shape | None = None,
          fuse_bn: bool = False, limits: Limits | None = None, *, params: Params | None = None,
          scale: str | None = None, sizes: bool = False, batch: int | None = None,
          memory: int | None = None, device: str = "cpu", throughput: Throughput | None = None,
          samples: int | None = None) -> Report:
    """Infer every shape, count params/buffers/MACs and receptive fields, without torch.

    `inputs` overrides the declared input shapes: one shape for a single-input spec, or a
    mapping of input name to shape. `fuse_bn` reports the network with each BatchNorm
    folded into the conv before it (as `build(..., fuse_bn=True)` compiles it). Raises
    SpecError when a shape does not work out. `print(report)` prints the table of
    `netspec check`; `report.table(depth=1)` collapses the block instances. `params` and
    `scale` choose parameter values (see `load`). With `sizes`, `report.sizes` holds
    which input sizes work, per dimension (`netspec check --sizes`; netspec.sizes).

    A training step's FLOPs and memory are in the report too (netspec.train_step), for
    `batch` samples (default: the spec's `train.batch_size`) on `device` (`cpu` or
    `cuda`); given a `memory` budget in bytes, `report.largest_batch` is the largest
    batch whose step fits in it (`check --batch`, `--memory`, `--device`). Given a device's
    `throughput` (`netspec.throughput.profile("h100-sxm")`, or `measured()` as `netspec
    bench` saved it), `report.step_time` estimates the step's time and an epoch's, of
    `samples` training samples (default: the spec's data's, when known without reading it).
    """
    spec = load(spec, limits, params=params, scale=scale)
    overrides = _input_overrides(spec, inputs)
    with gc_paused(), applied(limits):
        graph = graph_for(spec, overrides)
        report = analyse(fold_graph(graph)[0] if fuse_bn else graph, overrides,
                         previous=spec._analysed.get("report"))
        spec._analysed["report"] = report
        _training(report, spec, batch, memory, device, throughput, samples)
        if (sizes or (spec.sizes() and not overrides)) and not report.errors:
            report.sizes = input_sizes.of(spec, graph, report.inputs)
            report.formulas = None if overrides else input_sizes.formulas(spec, graph)
    if report.errors:
        raise SpecError(report.errors)
    return report


def check_scales(spec: SpecSource, inputs: Mapping[str, Shape] | Shape | None = None,
                 fuse_bn: bool = False, limits: Limits | None = None, *,
                 params: Params | None = None, sizes: bool = False, batch: int | None = None,
                 memory: int | None = None, device: str = "cpu",
                 throughput: Throughput | None = None, samples: int | None = None
                 ) -> list[tuple[str, Report]]:
    """`check` at each of the spec's `scales:` (`netspec check --scale all`): a (scale,
    report) pair per scale, in the spec's order, `params` set on top of each (`sizes`:
    with the input sizes each takes; `batch`, `memory`, `device`, `throughput` and
    `samples`: each scale's training step, as `check` takes them). The YAML is read once.
    Raises SpecError when the spec declares no scales, or with the errors of every scale
    that fails, each message naming its scale."""
    spec = load(spec, limits, params=params)
    if not spec.scales:
        source = spec._source
        raise SpecError([Diagnostic(source.where(source.data), "", "the spec declares no "
                                    f"`scales:`, so `{ALL_SCALES}` has none to check",
                                    code="unknown-key")])
    reports, errors = [], []
    for name in spec.scales:
        try:
            reports.append((name, check(spec, inputs, fuse_bn, limits, scale=name,
                                        sizes=sizes, batch=batch, memory=memory,
                                        device=device, throughput=throughput,
                                        samples=samples)))
        except SpecError as exc:
            errors += [replace(e, message=f"{e.message} (scale `{name}`)") for e in exc.errors]
    if errors:
        raise SpecError(errors)
    return reports


def build(spec: SpecSource, seed: int | None = None,
          inputs: Mapping[str, Shape] | Shape | None = None, fuse_bn: bool = False,
          limits: Limits | None = None, *, params: Params | None = None,
          scale: str | None = None) -> Any:
    """Compile a spec into a `torch.fx.GraphModule` (this imports torch).

    Submodules carry the spec's layer names, so `state_dict` keys read like the spec; the
    generated `forward` is plain code (`print(model.code)`). `seed` makes the initial
    weights reproducible without touching the global RNG; torch's default initialisation
    is used. `fuse_bn` returns the inference module (eval mode) with each BatchNorm folded
    into the conv before it. Raises the same positioned SpecError as `check` for an
    invalid spec, and TypeError for a seed that is not an integer. `params` and `scale`
    choose parameter values (see `load`).
    """
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise TypeError(f"seed is an integer or None; found {type(seed).__name__}")
    spec = load(spec, limits, params=params, scale=scale)
    report = check(spec, inputs, limits=limits)
    from netspec.backends.torchfx import to_graph_module

    model = to_graph_module(report.graph, report, seed)
    return fuse(spec, model, inputs) if fuse_bn else model


def train(spec: SpecSource, *, resume: str | Path | None = None, epochs: int | None = None,
          batch_size: int | str | None = None, lr: float | None = None, device: str | None = None,
          precision: str | None = None, out: str | Path | None = None, seed: int | None = None,
          data: str | Mapping[str, Any] | None = None, compile: bool | None = None,
          strategy: str | None = None, channels_last: bool | str | None = None,
          memory: int | None = None, on_epoch: Callable[[dict[str, Any]], bool | None] | None = None,
          verbose: bool = True, progress: bool | None = None,
          limits: Limits | None = None, params: Params | None = None,
          scale: str | None = None, init_from: str | Path | None = None) -> TrainResult:
    """Train a spec's network as its `train:` section says (see `netspec.training.config`),
    each keyword overriding that section; returns a `TrainResult` (run folder, metrics
    history, best epoch, trained model). This imports torch.

    `resume` continues the run saved in a checkpoint (`OUT/last.pt`) exactly where it
    stopped. `data` is what `--data` takes (`digits`, `synthetic`, a path, `KIND:PATH`) or
    a `data:` mapping. `on_epoch(row)` is called after each epoch with its metrics; return
    True to stop there (the checkpoint is written first). Raises SpecError for an invalid
    spec and TrainError (a ValueError) for anything that keeps training from starting or
    going on, such as bad data, an output that does not fit the labels, a NaN loss or an
    unreadable checkpoint. `params` and `scale` choose parameter values (see `load`); the
    checkpoints record them, and `sample` builds the model with them. `batch_size="auto"`
    trains with the largest batch that fits in `memory` bytes (default: what the device has
    free; see `netspec.training.autobatch`). `init_from` overrides `train.init_from`: weights
    to start from (relative to the working directory, not the spec), loaded by name, then
    order and shape (`load_weights`); `TrainResult.transferred` says where each went. It is
    not read on a resume.
    """
    if memory is not None and (type(memory) is not int or memory < 1):
        raise TypeError(f"memory is a positive number of bytes or None; found {memory!r}")
    spec = load(spec, limits, params=params, scale=scale)
    report = check(spec, limits=limits)
    from netspec.training.config import DataConfig, data_from_arg
    from netspec.training.loop import run

    overrides: dict[str, Any] = {"epochs": epochs, "batch_size": batch_size, "lr": lr,
                                 "device": device, "precision": precision, "seed": seed,
                                 "compile": compile, "strategy": strategy,
                                 "channels_last": channels_last,
                                 "out": None if out is None else str(out),
                                 "init_from": None if init_from is None
                                 else str(Path(init_from).absolute())}
    if data is not None:
        try:
            overrides["data"] = (data_from_arg(data, spec.training.data) if isinstance(data, str)
                                 else DataConfig.model_validate(dict(data)))
        except (ValueError, ValidationError) as exc:
            raise TrainError(str(exc)) from None
    with applied(limits):  # the data's limits too
        return run(spec, report, overrides, None if resume is None else Path(resume), on_epoch,
                   verbose, progress, memory)


def sample(run: str | Path, *, prompt: str = "\n", length: int = 200, temperature: float = 1.0,
           top_k: int | None = None, seed: int = 0, spec: str | Path | None = None,
           limits: Limits | None = None) -> str:
    """`length` bytes of text generated after `prompt` by the language model a run trained
    on `text` data (`run`: a checkpoint, or a run folder: its best.pt, else last.pt), decoded
    as UTF-8 with errors replaced; the same text for the same seed. `temperature` divides
    the scores (0: always the likeliest byte), `top_k` draws from the k likeliest bytes only.
    `spec`: the spec file to build the model from, when the run's own has moved.
    See `netspec.training.sample`. This imports torch. Raises TrainError for a checkpoint
    that cannot be read or holds no language model, and for a bad argument."""
    from netspec.training.sample import sample as generate

    with applied(limits):
        return generate(Path(run), prompt, length, temperature, top_k, seed,
                        Path(spec) if spec is not None else None)


def fuse(spec: SpecSource, model: Any, inputs: Mapping[str, Shape] | Shape | None = None,
         limits: Limits | None = None, *, params: Params | None = None,
         scale: str | None = None) -> Any:
    """The inference copy of a module built from `spec` (trained, say), each BatchNorm that
    follows a conv folded into it; outputs equal the original's in eval mode. `params` and
    `scale` choose parameter values (see `load`)."""
    spec = load(spec, limits, params=params, scale=scale)
    from netspec.backends.torchfx import to_graph_module

    report = check(spec, inputs, fuse_bn=True, limits=limits)
    with applied(limits):
        pairs = fold_graph(graph_for(spec, _input_overrides(spec, inputs)))[1]
    folded = to_graph_module(report.graph, report)
    return fold_weights(model, folded, pairs)


def draw(spec: SpecSource, depth: int | None = None, rankdir: str = "TB",
         inputs: Mapping[str, Shape] | Shape | None = None,
         limits: Limits | None = None, *, params: Params | None = None,
         scale: str | None = None) -> graphviz.Digraph:
    """The network as a `graphviz.Digraph` (render it with `.pipe(format="svg")`, or write
    `.source`; rendering needs Graphviz's `dot`, the source does not).

    Nodes show each layer's name, op and parameters, edges the shape on them, block
    instances are clusters; `depth` N collapses instances nested deeper than N into one
    node each (0: every top-level instance), None draws them all. `rankdir` is "TB" or "LR".
    An invalid spec still draws, its failing layers in red with their errors; raises
    SpecError only when the document cannot be read at all. `params` and `scale` choose
    parameter values (see `load`).
    """
    loaded, report, errors = diagnose(spec, inputs, limits=limits, params=params, scale=scale)
    if loaded is None:
        raise SpecError(errors)
    from netspec.backends.drawing import to_digraph

    return to_digraph(loaded._graph, report, errors, depth=depth, rankdir=rankdir)


def diagnose(source: SpecSource, inputs: Mapping[str, Shape] | Shape | None = None,
             fuse_bn: bool = False, limits: Limits | None = None, *,
             params: Params | None = None, scale: str | None = None, sizes: bool = False,
             previous: Report | None = None, batch: int | None = None,
             memory: int | None = None, device: str = "cpu",
             throughput: Throughput | None = None, samples: int | None = None
             ) -> tuple[Spec | None, Report | None, list[Diagnostic]]:
    """Everything wrong with a spec in one go: document errors and the shape errors of
    every layer they leave intact. For tools that show all problems (check, draw). With
    `sizes`, the report holds the input sizes that work (see `check`): when it has no
    errors, or when the input shapes given (`inputs`) are what fails.
    `previous`, the report of an earlier text of the spec (an editor's, before an edit):
    the layers an edit left alone are taken from it, not analysed again. `batch`, `memory`,
    `device`, `throughput` and `samples`: a training step's, as `check` takes them."""
    spec, errors = parse(source, limits, params=params, scale=scale)
    if spec is None:
        return None, None, errors
    with gc_paused(), applied(limits):
        try:
            overrides = _input_overrides(spec, inputs)
            graph = graph_for(spec, overrides)
        except SpecError as exc:
            return spec, None, [*errors, *exc.errors]
        report = analyse(fold_graph(graph)[0] if fuse_bn and not errors else graph, overrides,
                         None if fuse_bn else previous)
        _training(report, spec, batch, memory, device, throughput, samples)
        if (sizes or (spec.sizes() and not overrides)) and not errors and not report.errors:
            report.sizes = input_sizes.of(spec, graph, report.inputs)
            report.formulas = None if overrides else input_sizes.formulas(spec, graph)
        elif sizes and overrides and not errors:  # the sizes asked for fail: which work
            report.sizes = input_sizes.of(spec, graph, report.inputs)
    return spec, report, sorted([*errors, *report.errors],
                                key=lambda d: (d.where.file, d.where.line, d.where.column))


def _training(report: Report, spec: Spec, batch: int | None, budget: int | None,
              device: str, throughput: Throughput | None = None, samples: int | None = None
              ) -> None:
    """A training step's costs at `batch` on `device`, and the largest batch in `budget`;
    with a `throughput`, the time of the step and of an epoch of `samples`."""
    for name, value in (("batch", batch), ("memory", budget), ("samples", samples)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                  or value < 1):
            raise TypeError(f"{name} is a positive integer or None; found {value!r}")
    if device not in train_step.MASK_BYTES:
        raise ValueError(f"device is one of {', '.join(train_step.MASK_BYTES)}; found {device!r}")
    train_step.cost(report, spec._training, batch, device)
    if budget is not None:
        found = train_step.largest_batch(report, budget, spec._training, device)
        report.largest_batch = LargestBatch(found, budget, train_step.MARGIN, device)
        if batch is not None:  # the step as asked, its largest batch apart
            train_step.memory(report, spec._training, batch, device)
    if throughput is not None:
        from netspec.throughput import estimate

        timed = estimate(report, spec._training, throughput, samples)
        report.step_time, report.step_time_hint = (None, timed) if isinstance(timed, str) \
            else (timed, None)


def parse(source: SpecSource, limits: Limits | None = None, *, params: Params | None = None,
          scale: str | None = None) -> tuple[Spec | None, list[Diagnostic]]:
    """Lenient load: the spec (with its expanded graph) when the document is readable,
    and every error found; the graph keeps invalid layers as op-less nodes."""
    choice = _choice(source, params, scale)
    if isinstance(source, Spec) and choice == source.choice:
        return source, []
    with gc_paused(), applied(limits):
        if isinstance(source, Spec):
            return _chosen(source, choice)
        return _parse(source, choice)


def _choice(source: SpecSource, params: Params | None, scale: str | None) -> Choice:
    """The parameter values asked for, over those a loaded spec already has."""
    if params is not None and not (isinstance(params, Mapping)
                                   and all(isinstance(k, str) for k in params)):
        raise TypeError(f"params maps parameter names to values; found {type(params).__name__}")
    if scale is not None and not isinstance(scale, str):
        raise TypeError(f"scale is a scale's name or None; found {type(scale).__name__}")
    before = source.choice if isinstance(source, Spec) else Choice()
    if params is None and scale is None:
        return before
    return Choice(before.scale if scale is None else scale, {**before.values, **(params or {})})


def _chosen(spec: Spec, choice: Choice) -> tuple[Spec, list[Diagnostic]]:
    """A loaded spec expanded again with other parameter values (its YAML not read again)."""
    chosen = spec.model_copy()
    chosen._choice, chosen._examples = choice, {}
    return chosen, _expand(chosen)


def _expand(spec: Spec) -> list[Diagnostic]:
    """Expand a parsed spec into its graph (`spec._graph`); the errors. A spec that names
    sizes (`input: [3, H, W]`) is expanded at an example of each (netspec.sizes)."""
    expander = Expander(spec, spec._source, spec._blocks)
    spec._graph = expander.graph(spec.input_shapes())
    if spec.sizes() and not expander.errors:
        with gc_paused():
            return _once(input_sizes.choose_examples(spec))
    return _once(expander.errors)


def _parse(source: str | Path | Mapping[str, Any] | Source, choice: Choice
           ) -> tuple[Spec | None, list[Diagnostic]]:
    try:
        src = _read(source)
    except SpecError as exc:
        return None, exc.errors
    if not isinstance(src.data, dict):
        found = "an empty file" if src.data is None else type(src.data).__name__
        return None, [Diagnostic(src.where(src.data), "", f"a spec is a mapping with `input` "
                                 f"and `layers`, found {found}", code="bad-document")]
    try:
        spec = Spec.model_validate(src.data)
    except ValidationError as exc:
        return None, diagnostics(exc, Spec, "a spec", "", document_locator(src))
    train_errors = _check_train(spec, src)
    blocks, use_errors = collect_blocks(spec, src)
    spec._source, spec._blocks, spec._choice = src, blocks, choice
    return spec, _once([*train_errors, *use_errors, *_expand(spec)])


def _check_train(spec: Spec, src: Source) -> list[Diagnostic]:
    """Validate the `train:` section, when there is one (only then is its model imported:
    checking a spec without it stays as fast as before)."""
    if spec.train is None:
        return []
    from netspec.training.config import TrainSection, data_root

    try:
        spec._training = TrainSection.model_validate(
            {"train": spec.train}, context={"root": data_root(src.file)}).train
    except ValidationError as exc:
        return diagnostics(exc, TrainSection, "a spec", "", document_locator(src))
    return []


def _once(errors: list[Diagnostic]) -> list[Diagnostic]:
    """One error per place and message: a mistake inside a block definition is the same
    mistake in every instance (the first instance's path names it)."""
    seen: set[tuple[Any, str]] = set()
    unique = []
    for error in errors:
        if (error.where, error.message) not in seen:
            seen.add((error.where, error.message))
            unique.append(error)
    return unique


def graph_of(spec: Spec) -> Graph:
    """The expanded IR of a loaded spec."""
    return spec._graph


def graph_for(spec: Spec, inputs: Mapping[str, Shape] | None) -> Graph:
    """The IR for these input shapes: the loaded one, unless a block read a shape while
    expanding that these inputs change (ResNet's blocks read channels, which a new image
    size leaves alone); the spec then expands again for them. Raises SpecError when it no
    longer expands (a parameter computed from a shape fails)."""
    graph: Graph = spec._graph
    declared = spec.input_shapes()
    if not inputs or not graph.reads_shapes or all(
            tuple(declared[n]) == tuple(s) for n, s in inputs.items()) or \
            _reads_alike(graph, declared, inputs):
        return graph
    expander = Expander(spec, spec._source, spec._blocks)
    graph = expander.graph({**declared, **inputs})
    if expander.errors:
        raise SpecError(_once(expander.errors))
    return graph


def _reads_alike(graph: Graph, declared: Mapping[str, Shape], inputs: Mapping[str, Shape]
                 ) -> bool:
    """Whether every shape the blocks read while expanding `graph` is the same with these
    inputs (then so is every choice they made: the graph is theirs too)."""
    if any(len(declared[n]) != len(s) for n, s in inputs.items()):
        return False
    at = {(n, d): size for n, shape in inputs.items() for d, size in enumerate(shape)}
    shapes = input_sizes.trace(graph, at).shapes
    return all(node in shapes and (shapes[node][0] if dim == 0 else tuple(shapes[node])) == read
               for (node, dim), read in graph.shape_reads.items())


def _read(source: str | Path | Mapping[str, Any] | Source) -> Source:
    if isinstance(source, Source):
        return source
    if not isinstance(source, str | Path | Mapping):
        raise TypeError(f"a spec is a path, YAML text, a mapping or a Spec; found "
                        f"{type(source).__name__}")
    if isinstance(source, Mapping):
        return Source("<dict>", dict(source))
    if isinstance(source, Path) or ("\n" not in source and not source.lstrip().startswith("{")):
        return read_source(source)
    return read_source("<string>", source)


def _input_overrides(spec: Spec, inputs: Mapping[str, Shape] | Shape | None
                     ) -> dict[str, Shape] | None:
    if inputs is None:
        return None
    names = list(spec.input_shapes())
    if not isinstance(inputs, Mapping):
        if len(names) != 1:
            raise SpecError([_input_error(spec, f"the spec has {len(names)} inputs; name the "
                                          "one to set", f"e.g. {names[0]}=3,224,224")])
        inputs = {names[0]: inputs}
    shapes = {}
    for name, shape in inputs.items():
        if name not in names:
            raise SpecError([_input_error(spec, f"no input named `{name}`; the spec's inputs: "
                                          + ", ".join(names))])
        if not (isinstance(shape, Sequence) and not isinstance(shape, str) and shape
                and all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in shape)):
            raise SpecError([_input_error(spec, f"the shape given for `{name}` must be positive "
                                          f"integers, one per dimension, found {shape!r}")])
        shapes[name] = tuple(shape)
    return shapes


def _input_error(spec: Spec, message: str, hint: str | None = None) -> Diagnostic:
    """An error about input shapes given to the API, positioned at the spec's input."""
    source = spec._source
    key = "inputs" if "inputs" in source.data else "input"
    return Diagnostic(source.where(source.data, key), "", message, hint, code="bad-input")
