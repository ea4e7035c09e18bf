"""Loading weights into a built model, including weights saved from a differently named
model (a hand-written one, say): tensors are matched by order and shape, as a person
porting weights would match them.

Files are read with `torch.load(..., weights_only=True)` only: a weights file can hold
tensors and plain containers, never code.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class WeightsError(ValueError):
    """The weights do not fit the model; `.mismatches` lists each position that differs."""

    def __init__(self, message: str, mismatches: list[str]):
        self.mismatches = mismatches
        super().__init__("\n".join([message, *(f"  {m}" for m in mismatches)]))


def read_state_dict(path: str | Path) -> dict[str, Any]:
    """A state_dict from a file: a bare one, or a checkpoint holding one under `model` or
    `state_dict`. Only tensors and plain containers are unpickled (weights_only)."""
    import torch

    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise WeightsError(f"{path}: no such weights file", []) from None
    except Exception as exc:  # torch reports refused pickles and corrupt files alike
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"{path}: not a readable weights file ({first})", []) from None
    for key in ("model", "state_dict"):
        if isinstance(data, Mapping) and isinstance(data.get(key), Mapping):
            data = data[key]
    if not isinstance(data, Mapping) or not all(isinstance(k, str) for k in data):
        raise WeightsError(f"{path}: holds no state_dict (a mapping of names to tensors)", [])
    return dict(data)


def load_weights(model: Any, weights: Mapping[str, Any] | str | Path) -> dict[str, str]:
    """Load `weights` (a state_dict or a file) into `model` and return {our key: their key}.

    Keys that match exactly load as they are; otherwise the i-th tensor of `weights` goes to
    the model's i-th, provided every shape agrees, and where shapes do not agree in order,
    the i-th tensor of each shape to the model's i-th of that shape (torchvision's Swin
    creates its patch merging's projection before the norm that runs first). Shapes that
    differ only in leading 1s agree: a learned tensor held as (1, C, 1, 1) here loads a
    (C, 1, 1) one (torchvision's ConvNeXt layer scale), its values unchanged. Raises
    WeightsError listing every key and shape that does not line up, leaving the model
    unchanged.
    """
    import torch

    theirs = read_state_dict(weights) if isinstance(weights, str | Path) else dict(weights)
    ours = model.state_dict()
    same_names = set(theirs) == set(ours)
    pairs = {k: k for k in ours} if same_names else _by_order(ours, theirs)
    mismatches = [f"{k}: {_shape(ours[k])} here, {_shape(theirs[t])} in the weights ({t})"
                  for k, t in pairs.items() if _core(ours[k]) != _core(theirs[t])]
    mismatches += [f"{k} {_shape(ours[k])}: nothing in the weights" for k in list(ours)[len(theirs):]]
    mismatches += [f"{t} {_shape(theirs[t])}: nothing in the model" for t in list(theirs)[len(ours):]]
    if mismatches:
        raise WeightsError(f"the weights do not fit: {len(theirs)} tensors for the model's "
                           f"{len(ours)}, {len(mismatches)} not lining up", mismatches)
    with torch.no_grad():
        model.load_state_dict({k: theirs[t].reshape(ours[k].shape) for k, t in pairs.items()},
                              strict=True)
    return pairs


def _by_order(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> dict[str, str]:
    """Our key -> theirs, position by position; when shapes disagree somewhere and both
    hold as many tensors of each shape, the i-th of each shape to the i-th of that shape
    (the order within a shape kept)."""
    pairs = dict(zip(ours, theirs, strict=False))
    if len(ours) != len(theirs) or all(_core(ours[k]) == _core(theirs[t]) for k, t in pairs.items()):
        return pairs
    queues: dict[str, list[str]] = {}
    for t in theirs:
        queues.setdefault(str(_core(theirs[t])), []).append(t)
    counts = {shape: len(keys) for shape, keys in queues.items()}
    if Counter(str(_core(v)) for v in ours.values()) != counts:
        return pairs  # no pairing by shape either: report the positions that differ
    return {k: queues[str(_core(v))].pop(0) for k, v in ours.items()}


def _shape(value: Any) -> list[int] | str:
    shape = getattr(value, "shape", None)
    return list(shape) if shape is not None else type(value).__name__


def _core(value: Any) -> list[int] | str:
    """A tensor's shape without its leading 1s: what must agree for it to load."""
    shape = _shape(value)
    while isinstance(shape, list) and shape[:1] == [1]:
        shape = shape[1:]
    return shape
