"""The `train:` section of a spec: what to train on and how, validated like the rest of the
document (positioned errors), overridable from the command line. No torch here: loading a
spec must stay torch-free.

Each choice is written as a one-key mapping `{kind: options}`, with a short form where the
options are optional, exactly like layers:

    train:
      epochs: 20
      batch_size: 64                           # or: auto, the largest that fits in memory
      data: {digits: {augment: {crop: 2}}}     # or: data: digits, data: {text: stdlib}
      loss: {cross_entropy: {label_smoothing: 0.1}}
      optimizer: {adamw: {lr: 3e-3, weight_decay: 1e-4}}
      schedule: {onecycle: {}}                 # or: schedule: cosine
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)

from netspec.errors import closest, did_you_mean, shown

PosInt = Annotated[int, Field(strict=True, ge=1)]
NonNegInt = Annotated[int, Field(strict=True, ge=0)]
PosFloat = Annotated[float, Field(gt=0.0)]
NonNegFloat = Annotated[float, Field(ge=0.0)]
Fraction = Annotated[float, Field(ge=0.0, lt=1.0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class _OneOf(_Strict):
    """A choice written `{kind: options}` (exactly one key), or just `kind` when the options
    may all default. Subclasses declare one optional field per kind."""

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str):
            return cls._from_text(value, info)
        if isinstance(value, dict):
            return {k: ({} if v is None else v) for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> _OneOf:
        chosen = [name for name in type(self).model_fields if getattr(self, name) is not None]
        if len(chosen) != 1:
            kinds = ", ".join(f"`{k}`" for k in type(self).model_fields)
            found = " and ".join(f"`{k}`" for k in chosen) or "none"
            raise ValueError(f"choose one of {kinds}; found {found}")
        return self

    @classmethod
    def _from_text(cls, text: str, info: ValidationInfo) -> dict[str, Any]:
        """The mapping a short form stands for: the kind, with default options."""
        return {text: {}}

    @property
    def kind(self) -> str:
        """The chosen kind's name (`sgd`, `digits`, ...)."""
        return next(k for k in type(self).model_fields if getattr(self, k) is not None)

    @property
    def options(self) -> Any:
        """The chosen kind's options."""
        return getattr(self, self.kind)


# -- data ---------------------------------------------------------------------------------

class Augment(_Strict):
    """Training-time augmentation, applied on the device to each batch."""

    crop: NonNegInt = 0
    """Random crop: pad each side by this many pixels, then crop back to the input size."""
    flip: bool = False
    """Random horizontal flip (half of the images)."""


class _HeldOut(_Strict):
    val_split: Fraction = 0.2
    """Share of the samples held out for validation (a seeded split)."""


class _DataOptions(_HeldOut):
    augment: Augment = Field(default_factory=Augment)


class Digits(_DataOptions):
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes), resized to
    the spec's input size; nothing is downloaded."""


class Synthetic(_DataOptions):
    """Random tensors of the spec's input shape with random labels (for benchmarks)."""

    size: PosInt = 1024
    """Number of samples."""
    classes: PosInt | None = None
    """Number of classes (default: the spec's output features)."""


class _Path(_Strict):
    path: str
    """Where the data is, relative to the spec's folder."""

    @model_validator(mode="before")
    @classmethod
    def _path_only(cls, value: Any) -> Any:
        return {"path": value} if isinstance(value, str) else value


class _OnDisk(_DataOptions, _Path):
    pass


class Folder(_OnDisk):
    """Images in one sub-folder per class (`root/cat/1.png`), read with Pillow."""

    stream: bool | None = None
    """Read images from disk each epoch through a DataLoader (else they are decoded once and
    kept on the device); default: stream when they would not fit in 1 GiB."""
    workers: NonNegInt | None = None
    """DataLoader worker processes when streaming (default: the cores less one, at most 8)."""


class Npz(_OnDisk):
    """A NumPy `.npz` file with arrays `x` (N, C, H, W) or (N, H, W) and `y` (N,) labels,
    or (N, K) targets for mse/bce_with_logits."""


class Mnist(_OnDisk):
    """A folder holding MNIST-style IDX files (`train-images-idx3-ubyte`, optionally
    gzipped); `t10k-*` files, when present, are the validation set."""


STDLIB = "stdlib"
"""The `text` path that names the Python standard library's own source."""


class Text(_HeldOut, _Path):
    """Text for a language model, as UTF-8 bytes: one token per byte, so the vocabulary is
    256 and an ASCII character is one token (a character-level model for source code). The
    path is a file, a folder (every file under it, hidden ones aside, in sorted order), or
    `stdlib`: the `.py` files of this Python's standard library (site-packages excluded).
    The spec's input is `{tokens: [T], vocab: 256}` (or a larger vocab) and its output
    `[T, 256]`: scores for the byte after each position. Samples are the text cut into
    windows of T + 1 bytes that do not overlap (x the first T, y the next T: x shifted by
    one); the windows are grouped into contiguous spans and a seeded `val_split` share of
    the spans is held out, so no byte and no stretch of text is in both splits."""


class DataConfig(_OneOf):
    """Where the samples come from: `digits`, `synthetic`, `folder`, `npz`, `mnist` or `text`.
    The short form is what `--data` takes (`parse_data`); validate with the context
    `{"root": FOLDER}` so that a bare path is recognised relative to the spec's folder."""

    digits: Digits | None = None
    synthetic: Synthetic | None = None
    folder: Folder | None = None
    npz: Npz | None = None
    mnist: Mnist | None = None
    text: Text | None = None

    @classmethod
    def _from_text(cls, text: str, info: ValidationInfo) -> dict[str, Any]:
        return parse_data(text, Path((info.context or {}).get("root", ".")))


_BUILT_IN = ("digits", "synthetic")
_ON_DISK = ("folder", "npz", "mnist", "text")


def parse_data(text: str, root: Path) -> dict[str, Any]:
    """`{kind: options}` for a data source written as one string, in a spec's `data:` or
    after `--data`: `digits`, `synthetic`, `KIND:PATH` (kind folder, npz, mnist or text;
    `text:stdlib` for the standard library), or a bare path recognised by type (a `.npz`
    file, a `.txt` file: text, a folder of IDX files: mnist, else an image folder). The
    path is kept as written; `root`, the folder it is relative to, is read only to
    recognise it. Raises ValueError for an unknown kind or a near-miss of one."""
    kind, sep, path = text.partition(":")
    if not sep or len(kind) == 1:  # no kind, or a Windows drive letter
        kind, path = _guess_kind(text, root), text
    if kind in _BUILT_IN:
        if path not in ("", kind):
            raise ValueError(f"`{kind}` takes no path, found {text!r}")
        return {kind: {}}
    if kind not in _ON_DISK:
        raise ValueError(f"unknown kind `{kind}`; use digits, synthetic, folder:PATH, npz:PATH, "
                         "mnist:PATH, text:PATH, text:stdlib or a path")
    return {kind: {"path": path}}


def _guess_kind(text: str, root: Path) -> str:
    if text in _BUILT_IN:
        return text
    path = root / text
    if path.suffix == ".npz":
        return "npz"
    if path.suffix == ".txt":
        return "text"
    if path.is_dir() and any(p.name.startswith(("train-images", "train-labels"))
                             for p in path.iterdir()):
        return "mnist"
    near = closest(text, _BUILT_IN)
    if near and not path.exists():  # `digts` is a typo, not a folder
        raise ValueError(f"no data kind or path named `{text}` found; did you mean `{near}`?")
    return "folder"


# -- loss, optimizer, schedule ------------------------------------------------------------

class CrossEntropy(_Strict):
    """Softmax cross-entropy over class logits; labels are class indices."""

    label_smoothing: Fraction = 0.0


class Mse(_Strict):
    """Mean squared error against float targets of the output's shape."""


class BceWithLogits(_Strict):
    """Sigmoid binary cross-entropy: one logit per label (multi-label targets of 0/1)."""


class LossConfig(_OneOf):
    cross_entropy: CrossEntropy | None = None
    mse: Mse | None = None
    bce_with_logits: BceWithLogits | None = None


class _OptimizerOptions(_Strict):
    weight_decay: NonNegFloat = 0.0
    """L2 regularisation (decoupled for adamw)."""


class Sgd(_OptimizerOptions):
    lr: PosFloat = 0.1
    momentum: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.9
    nesterov: bool = False

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self) -> Sgd:
        if self.nesterov and self.momentum == 0:
            raise ValueError("`nesterov: true` needs a `momentum` above 0")
        return self


class Adam(_OptimizerOptions):
    lr: PosFloat = 1e-3
    betas: Annotated[list[Fraction], Field(min_length=2, max_length=2)] = [0.9, 0.999]


class AdamW(Adam):
    weight_decay: NonNegFloat = 0.01


class OptimizerConfig(_OneOf):
    sgd: Sgd | None = None
    adam: Adam | None = None
    adamw: AdamW | None = None


class _ScheduleOptions(_Strict):
    warmup: NonNegFloat = 0.0
    """Epochs (fractions allowed) of linear warm-up from 0 to the base learning rate."""


class Constant(_ScheduleOptions):
    pass


class Step(_ScheduleOptions):
    every: PosInt = 30
    """Multiply the learning rate by `gamma` every this many epochs."""
    gamma: PosFloat = 0.1


class Cosine(_ScheduleOptions):
    min_lr: NonNegFloat = 0.0


class OneCycle(_Strict):
    """Leslie Smith's one-cycle policy (torch's OneCycleLR): the rate rises to the
    optimizer's `lr` over `pct_start` of training, then anneals."""

    pct_start: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.3


class ScheduleConfig(_OneOf):
    constant: Constant | None = None
    step: Step | None = None
    cosine: Cosine | None = None
    onecycle: OneCycle | None = None


# -- the section ----------------------------------------------------------------------------

_DEVICE = r"auto|cpu|mps|cuda(:\d+)?"


def _device(name: str) -> str:
    if not re.fullmatch(_DEVICE, name):
        raise ValueError(f"must be `auto`, `cpu`, `mps`, `cuda` or `cuda:N`, found {name!r}")
    return name


Device = Annotated[str, AfterValidator(_device),
                   WithJsonSchema({"type": "string", "pattern": f"^({_DEVICE})$"})]
Precision = Literal["auto", "fp32", "bf16", "fp16"]
AUTO = "auto"


def _batch_size(value: Any) -> int | str:
    if value == AUTO or (type(value) is int and value >= 1):
        return value
    near = did_you_mean(value, [AUTO])
    raise ValueError(f"expects a positive integer or `{AUTO}`, found {shown(value)}"
                     + (f"; {near}" if near else ""))


BatchSize = Annotated[int | str, PlainValidator(_batch_size), WithJsonSchema(
    {"anyOf": [{"type": "integer", "minimum": 1}, {"const": AUTO}]})]
Strategy = Literal["ddp", "fsdp"]


class TrainConfig(_Strict):
    """How to train the spec's network. Every key has a default: `train:` may be omitted."""

    data: DataConfig = Field(default_factory=lambda: DataConfig(digits=Digits()))
    loss: LossConfig = Field(default_factory=lambda: LossConfig(cross_entropy=CrossEntropy()))
    optimizer: OptimizerConfig = Field(default_factory=lambda: OptimizerConfig(adamw=AdamW()))
    schedule: ScheduleConfig = Field(default_factory=lambda: ScheduleConfig(cosine=Cosine()))
    epochs: PosInt = 10
    batch_size: BatchSize = 64
    """Samples per step, over all processes. `auto`: the largest batch whose training step's
    estimated peak (netspec.train_step) takes at most 90% of the memory there is, chosen
    when `netspec train` starts: the device's free memory on a CUDA GPU, the machine's
    available memory on the CPU (Linux's MemAvailable, shared by the processes on the
    machine), or a budget given with `--memory SIZE`; at most the training set. With
    several processes, each one's batch is found (the smallest over the ranks) and the
    batch is that times the process count. The run's checkpoints record the number chosen,
    and a resume keeps it."""
    auxiliary_weight: NonNegFloat = 0.3
    """The weight of each auxiliary output's loss (the spec's `auxiliary`, GoogLeNet's
    0.3): a step's loss is the output's plus this times each auxiliary output's, every one
    against the same targets."""
    clip_grad: PosFloat | None = None
    """Clip the gradients' global L2 norm to this value."""
    seed: NonNegInt = 0
    """Seeds the initial weights, the split, the batch order, augmentation and dropout."""
    device: Device = "auto"
    """`auto` picks cuda, then mps, then cpu."""
    precision: Precision = "auto"
    """`auto`: bf16 on a GPU that has it, else fp32. Mixed precision uses autocast (and a
    gradient scaler for fp16)."""
    compile: bool = False
    """Compile the model with torch.compile."""
    channels_last: bool | Literal["auto"] = "auto"
    """Lay the model's weights and each input batch out channels-last (NHWC: torch's
    `channels_last` for image inputs (C, H, W), `channels_last_3d` for volumes (C, D, H, W);
    other inputs keep their layout): faster convolutions on GPUs' tensor cores. The same
    bytes either way, so the memory estimate holds for both. `auto`: on a CUDA GPU only."""
    strategy: Strategy = "ddp"
    """How several processes share the model (`--nproc`): `ddp` keeps a whole copy on each
    and averages the gradients; `fsdp` shards the weights, gradients and optimizer state
    between them (torch's FSDP2), for a model that does not fit one device. One process
    trains alone either way."""
    out: str | None = None
    """Run folder for checkpoints, metrics and plots (default: runs/NAME, numbered when it
    exists already)."""
    init_from: Annotated[str, Field(min_length=1)] | None = None
    """Weights to start from, relative to the spec's folder: a state_dict file, or a
    checkpoint holding one (a netspec run's `best.pt`). Loaded before the first step, by name,
    then by order and shape (`netspec.load_weights`); a tensor whose shape differs (a new
    classifier) keeps its initialisation, and the run says which did. Not read on a resume,
    which restores the run's own weights. Checked when training starts: a missing or
    unreadable file, or one holding no state_dict, is an error at this key."""

    @property
    def lr(self) -> float:
        """The optimizer's base learning rate."""
        return self.optimizer.options.lr

    def override(self, **changes: Any) -> TrainConfig:
        """A copy with command-line overrides applied (None = keep): `epochs`,
        `batch_size` (a number or `auto`), `lr`, `device`, `precision`, `out`, `seed`,
        `compile`, `channels_last`, `strategy`, `init_from`, and `data` (an already-validated
        DataConfig).
        Raises pydantic's ValidationError for bad values."""
        values = {k: v for k, v in changes.items() if v is not None}
        lr = values.pop("lr", None)
        data = self.model_dump(exclude_none=True)
        data.update(values)
        if lr is not None:
            data["optimizer"] = {self.optimizer.kind: {**data["optimizer"][self.optimizer.kind],
                                                       "lr": lr}}
        if isinstance(data.get("data"), DataConfig):
            data["data"] = data["data"].model_dump(exclude_none=True)
        return TrainConfig.model_validate(data, strict=False)


def data_from_arg(text: str, base: DataConfig) -> DataConfig:
    """The data named on the command line (`--data`, see `parse_data`), paths taken from
    the current folder. `val_split` and `augment` carry over from `base`, the spec's own
    data, where both kinds have them. Raises ValueError saying what is wrong."""
    try:
        ((kind, options),) = parse_data(text, Path.cwd()).items()
    except ValueError as exc:
        raise ValueError(f"--data {text!r}: {exc}") from None
    if "path" in options and (kind, options["path"]) != ("text", STDLIB):
        options = {"path": str(Path(options["path"]).absolute())}
    fields = type(DataConfig.model_validate({kind: options}).options).model_fields
    common = {key: value for key, value in base.options.model_dump().items()
              if key in ("val_split", "augment") and key in fields}
    return DataConfig.model_validate({kind: {**common, **options}})


def data_root(spec_file: str) -> Path:
    """The folder a spec's data paths are relative to: the spec's own, or the current one
    for a spec given as text or a dict (`<string>`, `<dict>`)."""
    return Path.cwd() if spec_file.startswith("<") else Path(spec_file).parent


class TrainSection(_Strict):
    """A document's `train:` key alone, so validation errors carry the `train.` path."""

    train: TrainConfig
