"""`netspec export`: a spec, with trained weights or seeded initial ones, as a file other
tools run.

    onnx    an ONNX model (torch's dynamo exporter; needs `pip install 'netspec[export]'`)
    pt2     a `torch.export` program (`torch.export.load(path).module()(x)`)
    python  standalone PyTorch source (`netspec.backends.source.python_source`), the
            preparation as the constants INPUT_SIZE, MEAN, STD and CLASSES

The exported network computes in eval mode (dropout off, batch norm on its running
statistics). Its inputs are the spec's, `(N, *shape)` each with the batch `N` dynamic, and
its outputs the spec's, `(N, *shape)` each; ONNX names them after the spec's inputs and
outputs.
"""

from __future__ import annotations

import importlib
import json
import logging
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from netspec.api import SpecSource, build, check, fuse, load
from netspec.shapes import Shape
from netspec.spec.document import Spec

Format = Literal["onnx", "pt2", "python"]
FORMATS: tuple[Format, ...] = ("onnx", "pt2", "python")
SUFFIXES: dict[Format, str] = {"onnx": ".onnx", "pt2": ".pt2", "python": ".py"}
"""The file extension of each format (the CLI's default output is SPEC's stem + this)."""
EXTRA = "pip install 'netspec[export]'"
ONNX_MODULES = ("onnx", "onnxscript")
"""What torch's ONNX exporter imports; onnxruntime (in the same extra) is for checking."""
EXAMPLE_BATCH = 2
"""Batch of the traced example inputs: not 1, which torch.export would specialise on."""
EXTERNAL_DATA_BYTES = 1_800_000_000
"""Beyond this, ONNX weights go to a side file (a protobuf stops at 2 GiB)."""


def export(spec: SpecSource, fmt: Format, out: str | Path, weights: str | Path | None = None,
           fuse_bn: bool = False, inputs: Mapping[str, Shape] | Shape | None = None) -> Path:
    """Write `spec` to `out` in `fmt` and return `out`'s path.

    `weights` is a checkpoint file read by `netspec.load_weights` (a state_dict, or a dict
    holding one under "model"; keys that differ from the spec's are matched by order and
    shape); without it the weights are `netspec.build(spec, seed=0)`'s. Every format records
    the input's preparation (`preparation`): the input size, and the mean, std and class
    names of a training checkpoint. The python format writes code, not weights: `weights`
    is checked to fit and gives the constants. `inputs` sets the
    input shapes as in `check` (the batch stays dynamic). Raises SpecError for an invalid
    spec, ValueError for an unknown format, WeightsError (a ValueError) listing every tensor
    that does not fit, and ImportError naming the missing packages when the ONNX exporter is
    not installed.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt == "onnx":
        require(*ONNX_MODULES, purpose="ONNX export")
    path = Path(out)
    spec = spec if isinstance(spec, Spec) else load(spec)
    if fmt == "python":
        from netspec.backends.source import python_source

        data = None if weights is None else _trained(spec, inputs, weights)[1]
        path.write_text(python_source(spec, inputs, fuse_bn=fuse_bn,
                                      metadata=preparation(spec, inputs, data)))
        return path
    model, data = _trained(spec, inputs, weights)
    metadata = preparation(spec, inputs, data)
    model = fuse(spec, model, inputs) if fuse_bn else model.eval()
    examples = example_inputs(spec, inputs)
    if fmt == "onnx":
        _to_onnx(spec, model, examples, path, metadata)
    else:
        _to_pt2(model, examples, path, metadata)
    return path


def _trained(spec: Spec, inputs: Mapping[str, Shape] | Shape | None, weights: str | Path | None
             ) -> tuple[Any, Mapping[str, Any] | None]:
    """The spec's module with `weights` loaded strictly (seed 0's without them), and the
    training checkpoint's `data` record (None for a bare state_dict, or no weights)."""
    model = build(spec, seed=0, inputs=inputs)
    if weights is None:
        return model, None
    from netspec.predict import read_trained
    from netspec.weights import load_weights

    state_dict, data = read_trained(weights)
    load_weights(model, state_dict, strict=True)
    return model, data


def preparation(spec: Spec, inputs: Mapping[str, Shape] | Shape | None,
                data: Mapping[str, Any] | None) -> dict[str, str]:
    """What an export records of how its input is made (`netspec.predict.Preparation`): the
    input size (C, H, W; by name when there are several inputs) and, from a training
    checkpoint's `data`, the mean, std and class names; each a JSON string."""
    from netspec.predict import Preparation

    sizes = {name: list(shape) for name, shape in check(spec, inputs).inputs.items()}
    size: Any = next(iter(sizes.values())) if len(sizes) == 1 else sizes
    return Preparation.of(size, data).metadata()


def require(*modules: str, purpose: str) -> None:
    """Import `modules`, or raise ImportError saying which are missing and how to get them."""
    missing = []
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ImportError(f"{purpose} needs {', '.join(missing)}, which "
                          f"{'is' if len(missing) == 1 else 'are'} not installed: {EXTRA}")


def example_inputs(spec: Spec, inputs: Mapping[str, Shape] | Shape | None = None,
                   batch: int = EXAMPLE_BATCH) -> tuple[Any, ...]:
    """One random `(batch, *shape)` tensor per spec input, in the order `forward` takes them:
    floats, or int64 ids below the vocabulary for inputs of token ids."""
    import torch

    report = check(spec, inputs)
    vocabs = report.token_inputs
    generator = torch.Generator().manual_seed(0)
    return tuple(torch.randn(batch, *report.inputs[name], generator=generator)
                 if name not in vocabs else
                 torch.randint(0, vocabs[name], (batch, *report.inputs[name]), generator=generator)
                 for name in spec._graph.inputs)


def _dynamic_batch(examples: tuple[Any, ...]) -> tuple[dict[int, Any], ...]:
    """The batch dim of every input, one shared dynamic dimension."""
    import torch

    batch = torch.export.Dim("batch")
    return tuple({0: batch} for _ in examples)


PT2_METADATA = "netspec.json"
"""The extra file of a `.pt2` export holding its preparation: a JSON object of the
metadata's JSON strings (`torch.export.load(path, extra_files={PT2_METADATA: ""})`)."""


def _to_pt2(model: Any, examples: tuple[Any, ...], path: Path, metadata: dict[str, str]) -> None:
    import torch

    program = torch.export.export(model, examples, dynamic_shapes=_dynamic_batch(examples))
    torch.export.save(program, path, extra_files={PT2_METADATA: json.dumps(metadata)})


def _to_onnx(spec: Spec, model: Any, examples: tuple[Any, ...], path: Path,
             metadata: dict[str, str]) -> None:
    """ONNX through `torch.export` (dynamo), at torch's recommended opset; the weights sit in
    the file unless they are too large for one protobuf. `metadata` goes to the model's
    metadata_props."""
    import onnx
    import torch

    graph = spec._graph
    large = sum(t.numel() * t.element_size() for t in model.state_dict().values()) \
        > EXTERNAL_DATA_BYTES
    with _quiet("torch.onnx._internal.exporter._registration"), warnings.catch_warnings():
        # every input's batch is one dimension, "batch": torch notes it names it once
        warnings.filterwarnings("ignore", "The axis name: .* will not be used", UserWarning)
        # torch's own exporter code uses an API torch has deprecated; nothing for a user to do
        warnings.filterwarnings("ignore", r".*LeafSpec.*", FutureWarning)
        torch.onnx.export(model, examples, str(path), dynamo=True, external_data=large,
                          input_names=list(graph.inputs), output_names=list(graph.outputs),
                          dynamic_shapes=_dynamic_batch(examples), verbose=False)
    proto = onnx.load(str(path), load_external_data=False)  # external weights stay where they are
    onnx.helper.set_model_props(proto, metadata)
    onnx.save(proto, str(path))


@contextmanager
def _quiet(name: str) -> Iterator[None]:
    """Silence a logger's warnings (the exporter lists torchvision ops it skips)."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
