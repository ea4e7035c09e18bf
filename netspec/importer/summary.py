"""`netspec summary`: the table `check` prints, for any torch model.

Through the import path where the model can be imported (nothing is run: shapes come from
the spec's analysis); otherwise the model runs once on the meta device (no memory, nothing
computed) with a hook on every leaf module, and the table says so."""

from __future__ import annotations

from typing import Any

from netspec.importer import ImportFailure, import_model


def summary(model: Any, shape: tuple[int, ...]) -> str:
    """The summary table of `model` (a torch.nn.Module or `pkg.mod:factory(args)`) for
    per-sample inputs of `shape`."""
    from netspec.api import check
    from netspec.importer.reference import model_name, resolve

    module = resolve(model) if isinstance(model, str) else model
    try:
        text = import_model(module, shape, name=model_name(model)).text
    except ImportFailure as exc:
        why = str(exc.unexpressed[0]) if exc.unexpressed else str(exc).splitlines()[0]
        return _meta_table(module, shape, model_name(model), why)
    return str(check(text))


def _meta_table(module: Any, shape: tuple[int, ...], name: str, why: str) -> str:
    """Leaf modules in the order they ran on the meta device: name, class, output shape,
    parameters; the totals under them; titled `name` as check's table is."""
    import copy

    import torch

    meta = copy.deepcopy(module).to("meta").eval()
    rows: list[tuple[str, str, str, int]] = []
    names = {m: n for n, m in meta.named_modules()}

    def record(m: torch.nn.Module, args: Any, out: Any) -> None:
        dims = list(out.shape[1:]) if isinstance(out, torch.Tensor) else "-"
        rows.append((names[m], type(m).__name__, str(dims),
                     sum(p.numel() for p in m.parameters(recurse=False))))

    hooks = [m.register_forward_hook(record) for m in meta.modules() if not any(m.children())]
    try:
        with torch.no_grad():
            meta(torch.empty(1, *shape, device="meta"))
    finally:
        for h in hooks:
            h.remove()
    width = max([len(r[0]) for r in rows] + [5])
    lines = [f"{name}: meta-device trace (not imported: {why})",
             f"{'layer':<{width}}  {'torch':<20}  {'shape':<18}  {'params':>12}"]
    lines += [f"{n:<{width}}  {c:<20}  {s:<18}  {p:>12,}" for n, c, s, p in rows]
    total = sum(p.numel() for p in module.parameters())
    lines.append(f"params {total:,}")
    return "\n".join(lines)
