"""`netspec predict`: what a trained network says about images, prepared exactly as training
prepared its samples; and that preparation as the metadata exports carry.

A file becomes the model's input as in `netspec.training.data`: an image is converted to the
input's channels (grayscale or RGB) and resized to its height and width with Pillow's
bilinear filter, the whole image (training does not crop, so neither does this); a `.npy`
array is taken as it is when it has the input's shape, else resized like an image. 8-bit
values are scaled to [0, 1], then each channel is normalised with the training split's mean
and std, which the checkpoint records with the class names (`data` in
`netspec.training.checkpoints`). The outputs' softmax gives the probabilities.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netspec.api import SpecSource, build, load
from netspec.limits import Limits, applied, current, raise_hint

BATCH = 32
"""Inputs run through the model at a time."""
NPY = ".npy"


class PredictError(ValueError):
    """An input, a checkpoint or an argument `predict` cannot use; str() names the file."""


@dataclass(frozen=True)
class Preparation:
    """How a deployed model's input is made, as exports record it: resized to `input_size`
    (C, H, W for images), 8-bit values scaled to [0, 1], then `(x - mean) / std` per channel;
    `classes` names the outputs. mean, std and classes are None where no training
    checkpoint said them."""

    input_size: list[int]
    mean: list[float] | None = None
    std: list[float] | None = None
    classes: list[str] | None = None

    @classmethod
    def of(cls, input_size: Iterable[int], data: Mapping[str, Any] | None) -> Preparation:
        """From a checkpoint's `data` record (None: only the input size is known)."""
        if data is None:
            return cls(list(input_size))
        return cls(list(input_size), list(data["mean"]), list(data["std"]), list(data["classes"]))

    def metadata(self) -> dict[str, str]:
        """The known fields as JSON strings, by name (ONNX's metadata_props, the python
        export's constants, the `.pt2` export's `netspec.json`)."""
        fields = {"input_size": self.input_size, "mean": self.mean, "std": self.std,
                  "classes": self.classes}
        return {key: json.dumps(value) for key, value in fields.items() if value is not None}

    def normalise(self, x: Any) -> Any:
        """(N, C, ...) float inputs in the model's scale, normalised per channel."""
        import torch

        if self.mean is None or self.std is None:
            return x
        shape = (len(self.mean),) + (1,) * (x.dim() - 2)
        return (x - torch.tensor(self.mean).view(shape)) / torch.tensor(self.std).view(shape)


@dataclass(frozen=True)
class Prediction:
    """One input's `top` classes, likeliest first, with their probabilities."""

    file: str
    top: list[tuple[str, float]]

    def line(self) -> str:
        """`cat.png: cat 0.9731, dog 0.0204, bird 0.0065`."""
        return f"{self.file}: " + ", ".join(f"{name} {p:.4f}" for name, p in self.top)


def predict(spec: SpecSource, weights: str | Path, files: Iterable[str | Path],
            top_k: int = 5, limits: Limits | None = None) -> list[Prediction]:
    """The `top_k` likeliest classes of each input under `files` (images, `.npy` arrays, and
    folders of them, walked in sorted order), from the network `spec` describes with the
    weights of the netspec checkpoint `weights` (a file, or a run folder: its best.pt, else
    last.pt). The spec is built with the parameters the run was trained with. `limits`
    bounds the spec and the inputs (`predict_files`, `predict_file_bytes`; see
    `netspec.Limits`). Raises SpecError for an invalid spec and PredictError naming the file
    for a checkpoint that does not fit or an input that cannot be read or passes a limit."""
    if type(top_k) is not int or top_k < 1:
        raise PredictError(f"top_k is a positive integer, found {top_k!r}")
    with applied(limits):
        inputs = gather(files)
        return _predict(spec, weights, inputs, top_k)


def _predict(spec: SpecSource, weights: str | Path, inputs: list[Path],
             top_k: int) -> list[Prediction]:
    """`predict` on the gathered input files."""
    import torch

    from netspec.training import checkpoints
    from netspec.weights import WeightsError, load_weights

    try:
        path = checkpoints.locate(Path(weights))
        state = checkpoints.load(path)
        loaded = load(spec, params=state["spec"].get("params") or None,
                      scale=state["spec"].get("scale"))
        checkpoints.check_spec(state, path, loaded.name, checkpoints.architecture_hash(loaded._graph))
        model = build(loaded)
        load_weights(model, state["model"], strict=True)
    except (checkpoints.CheckpointError, WeightsError) as exc:
        raise PredictError(str(exc)) from None
    shape = _input_shape(loaded)
    preparation = Preparation.of(shape, state["data"])
    predictions: list[Prediction] = []
    model.eval()
    for start in range(0, len(inputs), BATCH):
        chunk = inputs[start:start + BATCH]
        x = torch.stack([read_input(f, shape) for f in chunk])
        with torch.no_grad():
            probabilities = model(preparation.normalise(x)).softmax(-1)
        names = _names(preparation.classes, probabilities.shape[-1])
        for f, row in zip(chunk, probabilities, strict=True):
            values, index = row.topk(min(top_k, len(row)))
            predictions.append(Prediction(str(f), [(names[i], float(v)) for v, i in
                                                   zip(values.tolist(), index.tolist(), strict=True)]))
    return predictions


def read_trained(path: str | Path) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The state_dict in the weights file `path` and, when it is a netspec training
    checkpoint, its `data` record (the checkpoint verified and validated as a resume
    verifies it); None for a bare state_dict. WeightsError or PredictError saying what is
    wrong."""
    from netspec.training import checkpoints
    from netspec.weights import read_file, state_dict_in

    held = read_file(path)
    if not (isinstance(held, dict) and held.get("format") == checkpoints.FORMAT):
        return state_dict_in(held, path), None
    try:
        state = checkpoints.load(Path(path))
    except checkpoints.CheckpointError as exc:
        raise PredictError(str(exc)) from None
    return state["model"], state["data"]


def _input_shape(spec: Any) -> tuple[int, ...]:
    """The only input's shape of a classifier (one input, one output of class scores)."""
    from netspec.api import check

    report = check(spec)
    outputs = list(report.outputs.values())
    if len(report.inputs) != 1 or len(outputs) != 1 or len(outputs[0]) != 1:
        raise PredictError("netspec predict needs a classifier: one input and one output of "
                           f"class scores; this spec has inputs {dict(report.inputs)} and "
                           f"outputs {dict(report.outputs)}")
    return tuple(next(iter(report.inputs.values())))


def _names(classes: list[str] | None, count: int) -> list[str]:
    """Class names for `count` outputs: the checkpoint's, then the indices of the rest."""
    known = list(classes or [])[:count]
    return known + [str(i) for i in range(len(known), count)]


def gather(paths: Iterable[str | Path]) -> list[Path]:
    """The input files: each path given, and the images and `.npy` files under each folder
    (hidden ones aside, sorted). PredictError for a path that does not exist, a folder with
    no inputs, more files than the limit `predict_files` (counted as folders are walked), or
    a file larger than `predict_file_bytes` (from its size: nothing is read here)."""
    from netspec.training.data import IMAGE_SUFFIXES

    most, found = current().predict_files, []
    for given in map(Path, paths):
        if given.is_dir():
            inside = []
            for path in given.rglob("*"):
                if path.is_file() and not path.name.startswith(".") and \
                        (path.suffix.lower() in IMAGE_SUFFIXES or path.suffix == NPY):
                    inside.append(path)
                    _count(len(found) + len(inside), most, given)
            if not inside:
                raise PredictError(f"{given}: a folder with no images or .npy files")
            found += sorted(inside)
        elif given.is_file():
            found.append(given)
            _count(len(found), most, given)
        else:
            raise PredictError(f"{given}: no such file or folder")
    largest = current().predict_file_bytes
    for path in found:
        size = path.stat().st_size
        if size > largest:
            raise PredictError(f"{path}: {size:,} bytes, more than {largest:,}, the limit "
                               f"`predict_file_bytes`; {raise_hint('predict_file_bytes')}")
    return found


def _count(count: int, most: int, given: Path) -> None:
    """PredictError when `count` inputs, the last from `given`, pass the limit `most`."""
    if count > most:
        raise PredictError(f"more than {most:,} inputs (at {given}), the limit `predict_files`; "
                           f"{raise_hint('predict_files')}")


def read_input(path: Path, shape: tuple[int, ...]) -> Any:
    """One input of `shape` (C, H, W for images), in the model's scale before
    normalisation; PredictError naming the file when it cannot be used."""
    from netspec.training.data import MODES, DataError, as_float, read_image

    try:
        if path.suffix == NPY:
            return as_float(_fit_array(_read_array(path), shape, path))
        if len(shape) != 3 or shape[0] not in MODES:
            raise PredictError(f"{path}: images fit inputs of 1 or 3 channels (C, H, W); the "
                               f"spec's input is {list(shape)}: give .npy arrays")
        return as_float(read_image(str(path), MODES[shape[0]], shape[1:]))
    except DataError as exc:
        raise PredictError(str(exc)) from None


def _read_array(path: Path) -> Any:
    import numpy as np
    import torch

    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise PredictError(f"{path}: not a readable .npy array ({exc})") from None
    if array.dtype != np.uint8 and not np.issubdtype(array.dtype, np.floating):
        raise PredictError(f"{path}: holds {array.dtype} values; give uint8 or floats")
    return torch.from_numpy(array)


def _fit_array(x: Any, shape: tuple[int, ...], path: Path) -> Any:
    """An array of the input's shape as it is; an image array ((H, W) or (C, h, w)) resized
    as training resizes arrays (`netspec.training.data`)."""
    from netspec.training.data import fit_images

    if tuple(x.shape) == shape:
        return x
    if len(shape) == 3 and x.dim() in (2, 3):
        image = x[None, None] if x.dim() == 2 else x[None]
        return fit_images(image, shape, f"{path}: an array of shape {list(x.shape)}")[0]
    raise PredictError(f"{path}: an array of shape {list(x.shape)} does not fit the input "
                       f"{list(shape)}")
