"""`netspec import`: a PyTorch model read back as a spec (see `trace`, `blocks`, `render`).

    text = import_model("torchvision.models:resnet50", (3, 224, 224)).text

Imports torch: only `netspec import`, `netspec summary` and `netspec.summary` load it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from netspec.importer.errors import ImportFailure, Unexpressed


@dataclass(frozen=True)
class Imported:
    """A spec's text, and what of the model it could not express (placeholders in the text)."""

    text: str
    unexpressed: list[Unexpressed]


def import_model(model: Any, shape: tuple[int, ...], *, partial: bool = False,
                 name: str | None = None) -> Imported:
    """The spec of `model` (a torch.nn.Module, or a reference `pkg.mod:factory(args)`) for
    per-sample inputs of `shape`. Raises ImportFailure listing what the language cannot
    express, unless `partial`: then each such computation is an `identity` placeholder
    marked with a comment naming its module."""
    from netspec.api import check
    from netspec.errors import SpecError
    from netspec.importer.blocks import Writer
    from netspec.importer.reference import model_name, resolve
    from netspec.importer.render import spec_text
    from netspec.importer.trace import read

    source = model if isinstance(model, str) else type(model).__name__
    module = resolve(model) if isinstance(model, str) else model
    traced = read(module, tuple(shape))
    if traced.unexpressed and not partial:
        raise ImportFailure(f"{source}: {len(traced.unexpressed)} computation(s) netspec cannot "
                            "express (--partial writes the rest):", traced.unexpressed)
    writer = Writer(traced)
    writer.build()
    text = spec_text(writer, name or model_name(model), tuple(shape), source)
    try:
        report = check(text)
    except SpecError as exc:  # a structure the writer cannot yet say: refuse, never write it
        raise ImportFailure(f"{source}: the spec written for it does not check (netspec "
                            "import cannot yet express its structure):",
                            [Unexpressed("", d.format()) for d in exc.errors[:5]]) from None
    held = (sum(p.numel() for p in module.parameters()), sum(b.numel() for b in module.buffers()))
    if not traced.unexpressed and (report.params, report.buffers) != held:
        raise ImportFailure(f"{source}: the spec written for it holds {report.params:,} "
                            f"parameters and {report.buffers:,} buffer values, the model "
                            f"{held[0]:,} and {held[1]:,} (netspec import cannot yet express "
                            "its structure)")
    return Imported(text, traced.unexpressed)


__all__ = ["ImportFailure", "Imported", "Unexpressed", "import_model"]
