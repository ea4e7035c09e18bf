"""`netspec import`: a PyTorch model read back as a spec (see `trace`, `blocks`, `render`),
or a file of one: a torch.export program or an ONNX model (`exported`, `onnxfile`, through
`graphs`), read into the same scopes and written by the same steps.

    text = import_model("torchvision.models:resnet50", (3, 224, 224)).text
    imported = import_file("resnet18.onnx")  # .text, and .weights for the built spec

Imports torch: only `netspec import`, `netspec summary` and `netspec.summary` load it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netspec.importer.errors import ImportFailure, Unexpressed

if TYPE_CHECKING:
    from netspec.importer.trace import Traced


@dataclass(frozen=True)
class Imported:
    """A spec's text, and what of the model it could not express (placeholders in the text)."""

    text: str
    unexpressed: list[Unexpressed]
    weights: dict[str, Any] | None = None
    """A file's tensors (torch.Tensor) by the built spec's `state_dict` keys; None for a
    torch model (its own `state_dict` fits the spec)."""


def import_model(model: Any, shape: tuple[int, ...], *, partial: bool = False,
                 name: str | None = None) -> Imported:
    """The spec of `model` (a torch.nn.Module, or a reference `pkg.mod:factory(args)`) for
    per-sample inputs of `shape`. Raises ImportFailure listing what the language cannot
    express, unless `partial`: then each such computation is an `identity` placeholder
    marked with a comment naming its module."""
    from netspec.importer.reference import model_name, resolve
    from netspec.importer.trace import read

    source = model if isinstance(model, str) else type(model).__name__
    module = resolve(model) if isinstance(model, str) else model
    traced = read(module, tuple(shape))
    held = (sum(p.numel() for p in module.parameters()), sum(b.numel() for b in module.buffers()))
    text = _written(traced, source, name or model_name(model), tuple(shape), held, partial)
    return Imported(text, traced.unexpressed)


FILE_FORMATS = {".pt2": "exported", ".onnx": "onnxfile"}
"""A file's suffix -> the front-end module reading it (`netspec.importer.exported`, ...)."""


def import_file(path: str | Path, shape: tuple[int, ...] | None = None, *, partial: bool = False,
                name: str | None = None) -> Imported:
    """The spec of a torch.export program (`.pt2`) or an ONNX model (`.onnx`) for per-sample
    inputs of `shape` (default: the file's own, where static), and its `weights`: the file's
    tensors under the built spec's `state_dict` keys, so the built module computes as the
    file does. Raises ImportFailure as `import_model` does."""
    import importlib

    path = Path(path)
    front = FILE_FORMATS.get(path.suffix.lower())
    if front is None:
        raise ImportFailure(f"{path}: netspec import reads .pt2 and .onnx files "
                            f"(or MODULE:CALLABLE), not {path.suffix or 'a file without a suffix'}")
    if not path.is_file():
        raise ImportFailure(f"{path}: " + ("a folder, not a file" if path.is_dir() else "no such file"))
    reader = importlib.import_module(f"netspec.importer.{front}")
    try:  # an ONNX model's shapes are inferred (at `shape` where given); a program's are in it
        scopes, traced, own = reader.read(path, shape) if front == "onnxfile" else reader.read(path)
    except ImportFailure:
        raise
    except Exception as exc:  # a graph the reader did not foresee: say so in one line, no traceback
        said = str(exc).splitlines()[0] if str(exc) else ""
        raise ImportFailure(f"{path}: netspec import cannot read its graph ({type(exc).__name__}: "
                            f"{said})") from None
    if shape is None and own is None:
        raise ImportFailure(f"{path}: its input's shape is not static; give it with --input C,H,W")
    text = _written(traced, path.name, name or _snake_name(path.stem), tuple(shape or own),
                    (scopes.params, scopes.buffers), partial)
    return Imported(text, traced.unexpressed, scopes.weights)


def _snake_name(stem: str) -> str:
    """A spec's name from a file's stem: `resnet18-v1` -> `resnet18_v1`."""
    return re.sub(r"\W", "_", stem).lower() or "model"


def _written(traced: Traced, source: str, name: str, shape: tuple[int, ...],
             held: tuple[int, int], partial: bool) -> str:
    """The spec text of `traced`, checked: it holds `held` (parameters, buffer values)
    unless some computation is a placeholder. Raises ImportFailure listing the unexpressed
    computations unless `partial`, or when the written spec does not check."""
    from netspec.api import check
    from netspec.errors import SpecError
    from netspec.importer.blocks import Writer
    from netspec.importer.render import spec_text

    if traced.unexpressed and not partial:
        raise ImportFailure(f"{source}: {len(traced.unexpressed)} computation(s) netspec cannot "
                            "express (--partial writes the rest):", traced.unexpressed)
    writer = Writer(traced)
    writer.build()
    text = spec_text(writer, name, shape, source)
    try:
        report = check(text)
    except SpecError as exc:  # a structure the writer cannot yet say: refuse, never write it
        raise ImportFailure(f"{source}: the spec written for it does not check (netspec "
                            "import cannot yet express its structure):",
                            [Unexpressed("", d.format()) for d in exc.errors[:5]]) from None
    if not traced.unexpressed and (report.params, report.buffers) != held:
        raise ImportFailure(f"{source}: the spec written for it holds {report.params:,} "
                            f"parameters and {report.buffers:,} buffer values, the model "
                            f"{held[0]:,} and {held[1]:,} (netspec import cannot yet express "
                            "its structure)")
    return text

__all__ = ["ImportFailure", "Imported", "Unexpressed", "import_file", "import_model"]
