"""`netspec export`: a spec, with trained weights or seeded initial ones, as a file other
tools run.

    onnx    an ONNX model (torch's dynamo exporter; needs `pip install 'netspec[export]'`)
    pt2     a `torch.export` program (`torch.export.load(path).module()(x)`)
    python  standalone PyTorch source (`netspec.backends.source.python_source`)

The exported network computes in eval mode (dropout off, batch norm on its running
statistics). Its inputs are the spec's, `(N, *shape)` each with the batch `N` dynamic, and
its outputs the spec's, `(N, *shape)` each; ONNX names them after the spec's inputs and
outputs.
"""

from __future__ import annotations

import importlib
import logging
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from netspec.api import SpecSource, build, check, load
from netspec.shapes import Shape
from netspec.spec.document import Spec

Format = Literal["onnx", "pt2", "python"]
FORMATS: tuple[Format, ...] = ("onnx", "pt2", "python")
EXTRA = "pip install 'netspec[export]'"
ONNX_MODULES = ("onnx", "onnxscript")
"""What torch's ONNX exporter imports; onnxruntime (in the same extra) is for checking."""
EXAMPLE_BATCH = 2
"""Batch of the traced example inputs: not 1, which torch.export would specialise on."""
EXTERNAL_DATA_BYTES = 1_800_000_000
"""Beyond this, ONNX weights go to a side file (a protobuf stops at 2 GiB)."""
_LISTED = 10


def export(spec: SpecSource, fmt: Format, out: str | Path, weights: str | Path | None = None,
           fuse_bn: bool = False, inputs: Mapping[str, Shape] | Shape | None = None) -> Path:
    """Write `spec` to `out` in `fmt` and return `out`'s path.

    `weights` is a checkpoint (`torch.save` of a state_dict, or of a dict holding one under
    "model") loaded strictly; without it the weights are `netspec.build(spec, seed=0)`'s.
    `inputs` sets the input shapes as in `check` (the batch stays dynamic). Raises SpecError
    for an invalid spec, ValueError for an unknown format or a checkpoint that does not fit,
    ImportError naming the missing packages when the ONNX exporter is not installed.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fuse_bn:
        raise NotImplementedError("fuse_bn lands with BN folding")
    if fmt == "onnx":
        require(*ONNX_MODULES, purpose="ONNX export")
    path = Path(out)
    spec = spec if isinstance(spec, Spec) else load(spec)
    if fmt == "python":
        if weights is not None:
            raise ValueError("the python format writes code, not weights: load the checkpoint "
                             "into the generated module with `load_state_dict`")
        from netspec.backends.source import python_source

        path.write_text(python_source(spec, inputs))
        return path
    model = build(spec, seed=0, inputs=inputs)
    if weights is not None:
        load_weights(model, weights)
    model.eval()
    examples = example_inputs(spec, inputs)
    if fmt == "onnx":
        _to_onnx(spec, model, examples, path)
    else:
        _to_pt2(model, examples, path)
    return path


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
    """One random `(batch, *shape)` tensor per spec input, in the order `forward` takes them."""
    import torch

    shapes = check(spec, inputs).inputs
    generator = torch.Generator().manual_seed(0)
    return tuple(torch.randn(batch, *shapes[name], generator=generator)
                 for name in spec._graph.inputs)


def load_weights(model: Any, checkpoint: str | Path) -> None:
    """Load a checkpoint's state_dict into `model`, strictly.

    The file holds a state_dict or a dict with one under "model" (as `netspec train` saves).
    Raises ValueError listing the keys missing, unexpected and of another shape.
    """
    import torch

    try:
        saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except OSError:  # no such file, a directory...: as is
        raise
    except Exception as exc:  # torch raises several types for files it cannot unpickle
        raise ValueError(f"cannot read the checkpoint {checkpoint}: {exc}") from exc
    state = _state_dict_of(saved, checkpoint)
    problems = _mismatches(model.state_dict(), state)
    if problems:
        raise ValueError(f"the checkpoint {checkpoint} does not fit the spec:\n" + "\n".join(problems))
    model.load_state_dict(state, strict=True)


def _state_dict_of(saved: Any, checkpoint: str | Path) -> Mapping[str, Any]:
    import torch

    state = saved.get("model") if isinstance(saved, Mapping) and "model" in saved else saved
    if not isinstance(state, Mapping) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        found = f"a dict with keys {_listing(list(saved))}" if isinstance(saved, Mapping) \
            else type(saved).__name__
        raise ValueError(f"the checkpoint {checkpoint} holds neither a state_dict nor a dict with "
                         f"one under 'model': found {found}")
    return state


def _mismatches(expected: Mapping[str, Any], found: Mapping[str, Any]) -> list[str]:
    """One line per kind of difference between the model's state_dict and a checkpoint's."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    reshaped = [f"{k} (checkpoint {list(found[k].shape)}, spec {list(v.shape)})"
                for k, v in expected.items() if k in found and found[k].shape != v.shape]
    lines = []
    for what, keys in (("missing from the checkpoint", missing),
                       ("not in the spec", unexpected), ("of another shape", reshaped)):
        if keys:
            lines.append(f"  {len(keys)} {'key' if len(keys) == 1 else 'keys'} {what}: {_listing(keys)}")
    return lines


def _listing(keys: list[Any]) -> str:
    shown = ", ".join(map(str, keys[:_LISTED]))
    return shown + (f" and {len(keys) - _LISTED} more" if len(keys) > _LISTED else "")


def _dynamic_batch(examples: tuple[Any, ...]) -> tuple[dict[int, Any], ...]:
    """The batch dim of every input, one shared dynamic dimension."""
    import torch

    batch = torch.export.Dim("batch")
    return tuple({0: batch} for _ in examples)


def _to_pt2(model: Any, examples: tuple[Any, ...], path: Path) -> None:
    import torch

    program = torch.export.export(model, examples, dynamic_shapes=_dynamic_batch(examples))
    torch.export.save(program, path)


def _to_onnx(spec: Spec, model: Any, examples: tuple[Any, ...], path: Path) -> None:
    """ONNX through `torch.export` (dynamo), at torch's recommended opset; the weights sit in
    the file unless they are too large for one protobuf."""
    import torch

    graph = spec._graph
    large = sum(t.numel() * t.element_size() for t in model.state_dict().values()) \
        > EXTERNAL_DATA_BYTES
    with _quiet("torch.onnx._internal.exporter._registration"), warnings.catch_warnings():
        # every input's batch is one dimension, "batch": torch notes it names it once
        warnings.filterwarnings("ignore", "The axis name: .* will not be used", UserWarning)
        torch.onnx.export(model, examples, str(path), dynamo=True, external_data=large,
                          input_names=list(graph.inputs), output_names=list(graph.outputs),
                          dynamic_shapes=_dynamic_batch(examples), verbose=False)


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
