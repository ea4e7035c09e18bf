"""Loading weights into a built model, including weights saved from a differently named or
a modified model (a hand-written one; a 1000-class network for a 10-class one): tensors are
matched by name, then what is left by order and shape, as a person porting weights would
match them, and every tensor is accounted for in a `WeightsReport`.

Files are read with `torch.load(..., weights_only=True)` only: a weights file can hold
tensors and plain containers, never code.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SHOWN = 8
"""Tensors a report's summary names at most; the rest are counted."""


class WeightsError(ValueError):
    """The weights do not fit the model; `.mismatches` lists each position that differs."""

    def __init__(self, message: str, mismatches: list[str]):
        self.mismatches = mismatches
        super().__init__("\n".join([message, *(f"  {m}" for m in mismatches)]))


@dataclass(frozen=True, eq=False)
class WeightsReport(Mapping[str, str]):
    """Where every tensor went. As a mapping: our key -> the source's key, for each tensor
    that loaded (in the model's order). Shapes are lists of ints (a non-tensor value in the
    source shows as its type's name)."""

    loaded: dict[str, str]
    """Our key -> the source's key it loaded from."""
    skipped: dict[str, tuple[str, Any, Any]]
    """Our key -> (the source's key, our shape, its shape): paired, but the shapes differ,
    so ours kept its initialisation."""
    missing: dict[str, Any]
    """Our key -> our shape: nothing in the source for it; it kept its initialisation."""
    unused: dict[str, Any]
    """The source's key -> its shape: nothing in the model for it."""
    total: int
    """Tensors in the model's state_dict."""

    def __getitem__(self, key: str) -> str:
        return self.loaded[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.loaded)

    def __len__(self) -> int:
        return len(self.loaded)

    @property
    def complete(self) -> bool:
        """Whether every tensor on both sides found its counterpart."""
        return not (self.skipped or self.missing or self.unused)

    def mismatches(self) -> list[str]:
        """One line per tensor that did not line up (WeightsError's list)."""
        return [*(f"{k}: {ours} here, {theirs} in the weights ({t})"
                  for k, (t, ours, theirs) in self.skipped.items()),
                *(f"{k} {shape}: nothing in the weights" for k, shape in self.missing.items()),
                *(f"{t} {shape}: nothing in the model" for t, shape in self.unused.items())]

    def summary(self) -> str:
        """`transferred 120/122: fc.weight [10, 512] vs [1000, 512] kept its initialisation;
        ...`: one line, naming at most SHOWN tensors that did not load or were not used."""
        notes = [*(f"{k} {ours} vs {'' if t == k else t + ' '}{theirs} kept its initialisation"
                   for k, (t, ours, theirs) in self.skipped.items()),
                 *(f"{k} {shape} is not in the weights: kept its initialisation"
                   for k, shape in self.missing.items()),
                 *(f"{t} {shape} in the weights is not used" for t, shape in self.unused.items())]
        more = [f"{len(notes) - SHOWN} more"] if len(notes) > SHOWN else []
        head = f"transferred {len(self.loaded)}/{self.total}"
        return f"{head}: {'; '.join(notes[:SHOWN] + more)}" if notes else head


def read_state_dict(path: str | Path) -> dict[str, Any]:
    """A state_dict from a file: a bare one, or a checkpoint holding one under `model` or
    `state_dict`. Only tensors and plain containers are unpickled (weights_only)."""
    return state_dict_in(read_file(path), path)


def read_file(path: str | Path) -> Any:
    """What a weights file holds, unpickling only tensors and plain containers
    (weights_only); WeightsError for a missing or unreadable file."""
    import torch

    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise WeightsError(f"{path}: no such weights file", []) from None
    except IsADirectoryError:
        raise WeightsError(f"{path}: a folder, not a weights file", []) from None
    except Exception as exc:  # torch reports refused pickles and corrupt files alike
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"{path}: not a readable weights file ({first})", []) from None
    return data


def state_dict_in(data: Any, path: str | Path) -> dict[str, Any]:
    """The state_dict in what the file `path` held (`read_file`): the whole, or the one
    under `model` or `state_dict`; WeightsError when there is none."""
    for key in ("model", "state_dict"):
        if isinstance(data, Mapping) and isinstance(data.get(key), Mapping):
            data = data[key]
    if not isinstance(data, Mapping) or not all(isinstance(k, str) for k in data):
        raise WeightsError(f"{path}: holds no state_dict (a mapping of names to tensors)", [])
    return dict(data)


def load_weights(model: Any, source: Mapping[str, Any] | str | Path | Any,
                 strict: bool = False) -> WeightsReport:
    """Load `source` (a state_dict, a module, or a file `read_state_dict` reads) into `model`
    and return the report of where every tensor went.

    A tensor whose key is in both loads by name. The rest are paired by order and shape: the
    i-th tensor of each shape left in the source goes to the i-th of that shape left in the
    model (which is plain position when every shape agrees; torchvision's Swin creates its
    patch merging's projection before the norm that runs first). What no shape pairs is
    paired by position, to show both shapes, and skipped. Shapes that differ only in leading
    1s agree: a learned tensor held as (1, C, 1, 1) here loads a (C, 1, 1) one (torchvision's
    ConvNeXt layer scale), its values unchanged. A tensor that is skipped or missing keeps
    its initialisation.

    `strict=True` raises WeightsError listing every tensor that does not line up (skipped,
    missing or unused), and leaves the model unchanged.
    """
    import torch

    if isinstance(source, str | Path):
        theirs = read_state_dict(source)
    else:
        theirs = dict(source.state_dict() if hasattr(source, "state_dict") else source)
    ours = model.state_dict()
    report = match(ours, theirs)
    if strict and not report.complete:
        raise WeightsError(f"the weights do not fit: {len(theirs)} tensors for the model's "
                           f"{len(ours)}, {len(report.mismatches())} not lining up",
                           report.mismatches())
    loaded = {k: theirs[t].reshape(ours[k].shape) for k, t in report.loaded.items()}
    with torch.no_grad():
        model.load_state_dict({**ours, **loaded}, strict=True)
    return report


def match(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> WeightsReport:
    """The report of loading `theirs` into `ours` (two state_dicts), as `load_weights`
    pairs them; nothing is loaded."""
    pairs = {k: k for k in ours if k in theirs}
    pairs.update(_by_order({k: v for k, v in ours.items() if k not in theirs},
                           {t: v for t, v in theirs.items() if t not in ours}))
    paired = set(pairs.values())
    loaded, skipped = {}, {}
    for k in ours:
        if k not in pairs:
            continue
        t = pairs[k]
        if _core(ours[k]) == _core(theirs[t]):
            loaded[k] = t
        else:
            skipped[k] = (t, _shape(ours[k]), _shape(theirs[t]))
    return WeightsReport(loaded, skipped,
                         missing={k: _shape(v) for k, v in ours.items() if k not in pairs},
                         unused={t: _shape(v) for t, v in theirs.items() if t not in paired},
                         total=len(ours))


def _by_order(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> dict[str, str]:
    """Our key -> theirs: the i-th of each shape to the i-th of that shape (the order within
    a shape kept), then what is left on both sides position by position."""
    queues: dict[str, list[str]] = {}
    for t, value in theirs.items():
        queues.setdefault(str(_core(value)), []).append(t)
    pairs = {k: queues[str(_core(v))].pop(0) for k, v in ours.items() if queues.get(str(_core(v)))}
    used = set(pairs.values())
    pairs.update(zip([k for k in ours if k not in pairs],
                     [t for t in theirs if t not in used], strict=False))
    return pairs


def _shape(value: Any) -> list[int] | str:
    shape = getattr(value, "shape", None)
    return list(shape) if shape is not None else type(value).__name__


def _core(value: Any) -> list[int] | str:
    """A tensor's shape without its leading 1s: what must agree for it to load."""
    shape = _shape(value)
    while isinstance(shape, list) and shape[:1] == [1]:
        shape = shape[1:]
    return shape
