"""Training data: read a source once, split it, and serve normalised batches on the device.

Sources (the `data:` kinds of the `train:` section):

    digits      scikit-learn's 8x8 digits, scaled to [0, 1] and resized to the input size
    synthetic   seeded random normal samples of the input shape with uniform random labels
    folder      images in one sub-folder per class (`root/cat/1.png`), read with Pillow; a
                folder holding `train/` and `val/` (each laid out so) is split already
    npz         arrays `x` (N, C, H, W) or (N, H, W) and `y` (N,) labels or (N, K) targets
    mnist       IDX files (`train-images-idx3-ubyte`, ...); `t10k-*` files are the val split
    text        UTF-8 bytes of a file, a folder or the standard library's source, in windows
                of T + 1 bytes for a language model (token ids, see `config.Text`)

Every source becomes a training and a validation split (seeded by the run's seed, the same on
every process, unless the source is split already). Small data is kept as one tensor per split
on the device (uint8 for 8-bit images and bytes of text) and batched by indexing; image folders
too large for memory stream from disk through a DataLoader, one decoded image per item. Either
way each batch is normalised with the training split's per-channel mean and std on the device,
then (training split only) augmented there; token ids are neither, only widened to int64.
A sample's augmentation is a function of the seed, the epoch and the sample's index alone:
each epoch draws every sample's crop offsets and flip from a generator seeded by (seed,
epoch), and a batch takes its samples' rows. So N processes augment exactly as one does,
however the batches are split, and a resumed epoch repeats it.

Batch order follows DistributedSampler: rank r of `world` at batch size b sees its share of
the global batches that one process at batch size b * world sees.
"""

from __future__ import annotations

import contextlib
import gzip
import math
import os
import struct
import sysconfig
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from netspec import limits
from netspec.training.config import STDLIB, Augment, DataConfig, Synthetic, Text

Split = Literal["train", "val"]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff",
                            ".ppm", ".pgm", ".pbm"})
"""File name endings (any case) read as images in a folder; other files are ignored."""
STREAM_ABOVE = 1 << 30
"""Image folders stream (when `stream` is not set) once their decoded uint8 pixels exceed this."""
STATS_SAMPLES = 10_000
"""Streamed folders take the mean and std from a seeded sample of this many training images."""
_MIN_STD = 1e-6
"""A channel that varies less than this (a constant one) is centred but not scaled."""
_CHUNK = 1024
"""Samples converted at a time when resizing or measuring (bounds the float copies)."""
MODES = {1: "L", 3: "RGB"}
"""Pillow mode per input channel count."""
BYTES = 256
"""The vocabulary of text data: a token is one byte of its UTF-8 encoding."""
TEXT_SPANS = 100
"""Text is split by contiguous spans: its windows are grouped into this many runs of
consecutive windows (each its own run when there are fewer), and whole runs are held out."""


class DataError(ValueError):
    """Bad data input; str(err) is a complete one-line message for the user."""


# -- samples ---------------------------------------------------------------------------------

class _ImageFiles(Dataset):
    """Image files decoded on demand: item i is a (C, H, W) uint8 tensor, or, when the file
    cannot be read, the one-line error message (a str crosses worker processes intact)."""

    def __init__(self, files: list[str], mode: str, size: tuple[int, int]) -> None:
        self.files, self.mode, self.size = files, mode, size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> torch.Tensor | str:
        try:
            return read_image(self.files[i], self.mode, self.size)
        except DataError as exc:
            return str(exc)

    def take(self, index: torch.Tensor) -> _ImageFiles:
        return _ImageFiles([self.files[i] for i in index.tolist()], self.mode, self.size)


@dataclass
class _Samples:
    """Samples of a source or a split: `x` a (N, C, H, W) tensor (uint8 for 8-bit images,
    else float32; synthetic samples have the input's shape, whatever its rank), image files
    read on demand, or (N, T) uint8 token ids (bytes of text); `y` (N,) int64 class indices,
    (N, K) float32 targets, or (N, T) uint8 next-token ids."""

    x: torch.Tensor | _ImageFiles
    y: torch.Tensor
    _copies: dict[torch.device, _Samples] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.y)

    def take(self, index: torch.Tensor) -> _Samples:
        return _Samples(self.x.take(index) if isinstance(self.x, _ImageFiles) else self.x[index],
                        self.y[index])

    def to(self, device: torch.device) -> _Samples:
        """These samples on `device` (image files stay on disk); one copy per device."""
        if device not in self._copies:
            x = self.x if isinstance(self.x, _ImageFiles) else self.x.to(device)
            self._copies[device] = _Samples(x, self.y.to(device))
        return self._copies[device]


@dataclass
class _Source:
    """What a reader found: all samples (or the training ones when `val` is given, a split
    made by the source itself), the class names, and how to name the source in messages."""

    samples: _Samples
    classes: list[str]
    what: str
    val: _Samples | None = None
    notes: list[str] = field(default_factory=list)
    """Conversions the reader made that the user may not expect (warnings)."""


# -- the public interface ----------------------------------------------------------------------

@dataclass
class Data:
    """A source split for training: class names, split sizes and the training split's
    per-channel mean and std (in the scale the model sees before normalisation: [0, 1] for
    8-bit images; empty for token ids, which are not normalised)."""

    classes: list[str]
    """Class names in label order; [] when the targets are float vectors."""
    train_size: int
    val_size: int
    mean: list[float]
    std: list[float]
    _splits: dict[str, _Samples] = field(repr=False)
    _augment: Augment = field(repr=False)
    _seed: int = field(repr=False)
    _workers: int = field(repr=False)
    notes: list[str] = field(default_factory=list)
    """What the data was converted to fit the input (RGB images to grayscale, ...), to show
    as warnings."""
    vocab: int | None = None
    """For token ids (text): how many ids there are (256, the byte values); else None."""

    def loader(self, split: Split, batch_size: int, device: torch.device, rank: int = 0,
               world: int = 1) -> Loader:
        """Batches of `split` for process `rank` of `world`, `batch_size` samples per batch
        on this process; "train" is shuffled (and augmented when configured), "val" is not."""
        train = split == "train"
        transform = _TokenIds() if self.vocab else self._transform(split, device)
        return Loader(self._splits[split].to(device), batch_size, device, rank, world,
                      shuffle=train, seed=self._seed, transform=transform, workers=self._workers)

    def targets(self, split: Split) -> torch.Tensor:
        """Every label of `split` in stored order, on the CPU: (N,) int64, (N, K) float32, or
        (N, T) uint8 next-token ids."""
        return self._splits[split].y

    def _transform(self, split: Split, device: torch.device) -> _Transform:
        """Normalisation with the training split's statistics, and augmentation for "train"."""
        augment = self._augment if split == "train" else Augment()
        shape = (len(self.mean),) + (1,) * (_sample_rank(self._splits[split]) - 1)
        return _Transform(torch.tensor(self.mean, device=device).view(shape),
                          torch.tensor(self.std, device=device).view(shape),
                          augment.crop, augment.flip, self._seed)


class Loader:
    """One process's batches of one split, epoch after epoch (one epoch at a time)."""

    def __init__(self, samples: _Samples, batch_size: int, device: torch.device, rank: int,
                 world: int, *, shuffle: bool, seed: int, transform: _Transform | _TokenIds,
                 workers: int) -> None:
        if batch_size < 1 or not 0 <= rank < world:
            raise ValueError(f"bad loader: batch size {batch_size}, rank {rank} of {world}")
        self.batch_size, self.device = batch_size, device
        self._samples, self._rank, self._world = samples, rank, world
        self._shuffle, self._seed, self._transform = shuffle, seed, transform
        self._workers, self._plan = workers, _Plan()
        self._stream: DataLoader | None = None

    def __len__(self) -> int:
        """Batches per epoch for this rank."""
        return math.ceil(self._share() / self.batch_size)

    def epoch(self, epoch: int, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The batches (x, y) of `epoch` from batch `start` on (the earlier ones are skipped
        without reading them, as a resumed epoch needs). x: (B, C, H, W) float32 on the
        device, normalised (and augmented), or (B, T) int64 token ids; y: (B,) int64, (B, K)
        float32 or (B, T) int64 on the device."""
        order = self._order(epoch)[start * self.batch_size:]
        index = order.to(self.device).split(self.batch_size)
        draws = self._transform.draws(epoch, len(self._samples), self.device)
        for i, x in zip(index, self._rows(order.split(self.batch_size), index), strict=True):
            y = self._samples.y[i]
            yield (self._transform(x, None if draws is None else draws[i]),
                   y.long() if y.dtype == torch.uint8 else y)

    def close(self) -> None:
        """Stop a streaming loader's worker processes now (the next epoch starts new ones).
        Freeing the loader or ending the process stops them too, but torch's shutdown stalls
        for seconds when the cycle collector is the one that frees them."""
        self._stream = None

    def _share(self) -> int:
        """Samples this rank sees per epoch (training ranks are padded to equal shares)."""
        n = len(self._samples)
        return math.ceil(n / self._world) if self._shuffle else len(range(self._rank, n, self._world))

    def _order(self, epoch: int) -> torch.Tensor:
        """This rank's sample indices for `epoch`, CPU int64: DistributedSampler's shuffled
        share for training, every `world`-th sample from `rank` on (no padding) otherwise."""
        n = len(self._samples)
        if not self._shuffle:
            return torch.arange(self._rank, n, self._world)
        sampler = DistributedSampler(range(n), num_replicas=self._world, rank=self._rank,
                                     shuffle=True, seed=self._seed, drop_last=False)
        sampler.set_epoch(epoch)
        return torch.tensor(list(sampler), dtype=torch.int64)

    def _rows(self, batches: tuple[torch.Tensor, ...],
              on_device: tuple[torch.Tensor, ...]) -> Iterator[torch.Tensor]:
        """The samples of each batch on the device, as stored (uint8 or float32)."""
        if isinstance(self._samples.x, torch.Tensor):
            yield from (self._samples.x[i] for i in on_device)
            return
        if self._stream is None:
            self._stream = _image_loader(self._samples.x, self._plan, self._workers, self._seed,
                                         self.device, persistent=True)
        self._plan.batches = [b.tolist() for b in batches]
        try:
            for batch in self._stream:
                yield _unwrap(batch).to(self.device, non_blocking=True)
        except DataError:
            self.close()  # the epoch is lost: stop its workers while the error holds no reference
            raise


@dataclass(frozen=True)
class _Transform:
    """What happens to each batch on the device: normalise with `mean` and `std` (each (C, 1,
    ..., 1)), then augment (a random crop after padding `crop` pixels, a random flip) as the
    epoch's draws, made from `seed`, say."""

    mean: torch.Tensor
    std: torch.Tensor
    crop: int
    flip: bool
    seed: int

    def draws(self, epoch: int, n: int, device: torch.device) -> torch.Tensor | None:
        """The augmentation of each of the `n` samples in `epoch`: (n, 3) int64 on `device`,
        per sample the crop's row and column offsets in [0, 2 * crop] and the flip (0 or 1),
        drawn from a CPU generator seeded by (seed, epoch) alone; None when not augmenting."""
        if not (self.crop or self.flip):
            return None
        state = np.random.SeedSequence((self.seed, epoch)).generate_state(1, np.uint64)
        generator = torch.Generator().manual_seed(int(state[0]))
        offsets = torch.randint(0, 2 * self.crop + 1, (n, 2), generator=generator)
        flips = torch.randint(0, 1 + self.flip, (n, 1), generator=generator)
        return torch.cat([offsets, flips], 1).to(device)

    def __call__(self, x: torch.Tensor, draws: torch.Tensor | None) -> torch.Tensor:
        """x: (B, ...) samples as stored; draws: (B, 3) their rows of `draws`, or None."""
        x = (as_float(x) - self.mean) / self.std
        return x if draws is None else _augment(x, self.crop, self.flip, draws)


class _TokenIds:
    """What happens to a batch of token ids on the device: widened to int64 (the index type
    of an embedding), never normalised nor augmented."""

    def draws(self, epoch: int, n: int, device: torch.device) -> None:
        return None

    def __call__(self, x: torch.Tensor, draws: None) -> torch.Tensor:
        """x: (B, T) uint8 ids -> (B, T) int64."""
        return x.long()


def load_data(config: DataConfig, input_shape: tuple[int, ...], *, seed: int, root: Path,
              classes: int | None = None, vocab: int | None = None) -> Data:
    """Read the configured source for a network whose samples have `input_shape` ((C, H, W)
    for every source but synthetic and text; (T,) token ids for text), split it with `seed`
    and measure the training split. `root` is the spec's folder (paths are relative to it);
    `classes` is the network's class count (its output features when they are class scores):
    synthetic's default; `vocab` is the vocabulary of an input of token ids, None for float
    values. Labels are bounded by the limit `classes` (see `netspec.limits`), checked on the
    labels as read, before anything is allocated for the classes; whether they fit the
    network's output is the task's to say (`netspec.training.task`). Raises DataError for
    any bad input."""
    options, shape = config.options, tuple(input_shape)
    if isinstance(options, Text):
        return _text(options, shape, vocab, seed, root)
    if vocab is not None:
        raise DataError(f"the spec's input holds token ids (vocab {vocab}): they are read from "
                        f"`text` data, not from {config.kind}")
    if (options.augment.crop or options.augment.flip) and len(shape) != 3:
        raise DataError(f"augment needs image inputs (C, H, W); the spec's input is {shape}")
    source = _read(config, shape, seed, root, classes)
    if source.val is None:
        train, val = _split(source.samples, options.val_split, seed, source.what)
    else:
        train, val = source.samples, source.val
        for samples, name in ((train, "training"), (val, "validation")):
            if not len(samples):
                raise DataError(f"{source.what} has no {name} samples")
    workers = _workers(getattr(options, "workers", None))
    if isinstance(train.x, _ImageFiles) and not _streams(getattr(options, "stream", None), train, val):
        train, val = (_Samples(_decode(s.x, workers, seed), s.y) for s in (train, val))
    mean, std = _channel_stats(_stats_chunks(train, workers, seed))
    return Data(source.classes, len(train), len(val), mean, std, _splits={"train": train, "val": val},
                _augment=options.augment, _seed=seed, _workers=workers, notes=source.notes)


# -- sources -----------------------------------------------------------------------------------

def _read(config: DataConfig, shape: tuple[int, ...], seed: int, root: Path,
          classes: int | None) -> _Source:
    kind, options = config.kind, config.options
    if kind == "synthetic":
        return _synthetic(options, shape, seed, classes)
    image = _image_shape(shape, kind)
    if kind == "digits":
        return _digits(image)
    path = _on_disk(root, options.path, kind)
    readers = {"folder": _folder, "npz": _npz, "mnist": _mnist}
    return readers[kind](path, image)


def _synthetic(options: Synthetic, shape: tuple[int, ...], seed: int,
               classes: int | None) -> _Source:
    count = options.classes or classes
    if not count:
        raise DataError("synthetic data needs a class count: set `classes` under `synthetic` "
                        "(the network's output is not a flat vector of class scores)")
    _check_class_count(count, "synthetic data: `classes`")
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn((options.size, *shape), generator=generator)
    y = torch.randint(0, count, (options.size,), generator=generator)
    return _Source(_Samples(x, y), [str(i) for i in range(count)], "synthetic data")


def _digits(shape: tuple[int, int, int]) -> _Source:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.from_numpy(digits.images).float().div(16).unsqueeze(1)
    samples = _Samples(fit_images(x, shape, "digits"), torch.from_numpy(digits.target).long())
    return _Source(samples, [str(i) for i in range(10)], "digits")


def _folder(path: Path, shape: tuple[int, int, int]) -> _Source:
    """Class folders under `path`, or under `path/train` and `path/val` when both exist."""
    if not path.is_dir():
        raise DataError(f"folder data: {path} is not a folder")
    mode = MODES.get(shape[0])
    if mode is None:
        raise DataError(f"image folders give 1 (grayscale) or 3 (RGB) channels; the spec's input "
                        f"has {shape[0]}")
    split = (path / "train").is_dir() and (path / "val").is_dir()
    classes = _class_folders(path / "train" if split else path)
    _check_class_count(len(classes), f"folder {path}: its class folders")
    files = [_image_files(folder, classes, mode, shape[1:]) for folder in
             ((path / "train", path / "val") if split else (path,))]
    note = _conversion(files[0], shape)
    return _Source(files[0], classes, f"folder {path}", files[1] if split else None,
                   [note] if note else [])


_MODE_NAMES = {"1": "black-and-white", "L": "grayscale", "LA": "grayscale with alpha",
               "P": "palette", "I;16": "16-bit grayscale"}
"""Pillow modes in words (others, such as RGB and RGBA, are their own names)."""
_LOSSLESS = {"L": {"L", "1"}, "RGB": {"RGB", "P"}}
"""Modes that convert to the input's mode (the key) without losing anything."""


def _conversion(samples: _Samples, shape: tuple[int, int, int]) -> str | None:
    """What converting a folder's images to the input's channels loses, judged by the first
    image of each class (its header alone is read), or None when nothing is."""
    assert isinstance(samples.x, _ImageFiles)
    first: dict[int, str] = {}
    for file, label in zip(samples.x.files, samples.y.tolist(), strict=True):
        first.setdefault(label, file)
    modes = set()
    for file in first.values():
        # an unreadable file is reported when it is decoded
        with contextlib.suppress(OSError, SyntaxError, ValueError, Image.DecompressionBombError), \
                Image.open(file) as image:
            modes.add(image.mode)
    found = sorted(modes - _LOSSLESS[samples.x.mode])
    if not found:
        return None
    target = "1 channel (grayscale)" if shape[0] == 1 else "3 channels (RGB)"
    return (f"images are {' and '.join(_MODE_NAMES.get(m, m) for m in found)}; converted to "
            f"{target} for input [{','.join(map(str, shape))}]")


def _class_folders(path: Path) -> list[str]:
    names = sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not names:
        raise DataError(f"folder {path} has no class sub-folders (expected {path}/<class>/<image>)")
    return names


def _image_files(path: Path, classes: list[str], mode: str, size: tuple[int, int]) -> _Samples:
    """The images under `path`/<class>/ (any depth, sorted), labelled by their class's index."""
    files: list[str] = []
    labels: list[int] = []
    for name in _class_folders(path):
        if name not in classes:
            raise DataError(f"folder {path / name} is not one of the training classes ({', '.join(classes)})")
        found = sorted(str(p) for p in (path / name).rglob("*")
                       if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not found:
            raise DataError(f"class folder {path / name} has no images "
                            f"({', '.join(sorted(IMAGE_SUFFIXES))})")
        files += found
        labels += [classes.index(name)] * len(found)
    return _Samples(_ImageFiles(files, mode, size), torch.tensor(labels, dtype=torch.int64))


def _npz(path: Path, shape: tuple[int, int, int]) -> _Source:
    what = f"npz {path}"
    x, y = _npz_arrays(path, what)
    for name, array in (("x", x), ("y", y)):
        if array.dtype.kind not in "biuf":
            raise DataError(f"{what}: `{name}` must hold numbers, found dtype {array.dtype}")
    if x.ndim not in (3, 4):
        raise DataError(f"{what}: `x` must be (N, C, H, W) or (N, H, W), found shape {x.shape}")
    if len(x) != len(y):
        raise DataError(f"{what}: `x` has {len(x)} samples but `y` has {len(y)}")
    targets, classes = _targets(y, what)
    images = torch.from_numpy(x if x.dtype == np.uint8 else x.astype(np.float32))
    images = images.unsqueeze(1) if x.ndim == 3 else images
    return _Source(_Samples(fit_images(images, shape, what), targets), classes, what)


def _npz_arrays(path: Path, what: str) -> tuple[np.ndarray, np.ndarray]:
    """The arrays `x` and `y` of the archive at `path`."""
    unreadable = (OSError, EOFError, ValueError, zipfile.BadZipFile)
    try:
        archive = np.load(path, allow_pickle=False)
    except unreadable as exc:
        raise DataError(f"cannot read {what}: {exc}") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{path} is a single .npy array, not an .npz archive with `x` and `y`")
    with archive:
        missing = [k for k in ("x", "y") if k not in archive.files]
        if missing:
            found = ", ".join(archive.files) or "none"
            raise DataError(f"{what} has no array `{missing[0]}` (found: {found})")
        try:
            return archive["x"], archive["y"]
        except unreadable as exc:
            raise DataError(f"cannot read {what}: {exc}") from None


def _targets(y: np.ndarray, what: str) -> tuple[torch.Tensor, list[str]]:
    """(N,) labels: class indices (classes '0'..max, see `_labels`); (N, K): float targets."""
    if y.ndim == 2:
        return torch.from_numpy(y.astype(np.float32)), []
    if y.ndim != 1:
        raise DataError(f"{what}: `y` must be (N,) labels or (N, K) targets, found shape {y.shape}")
    labels = _labels(y, what)
    return labels, _class_names(labels)


def _labels(y: np.ndarray, what: str) -> torch.Tensor:
    """(N,) labels as int64 class indices, once each is a whole number from 0 and below the
    limit `classes`. Checked on the array
    as read, before anything is allocated for the classes; the error names the row."""
    bad = (y < 0) | (y != np.round(y))  # NaN is never equal to itself
    if bad.any():
        row = int(bad.argmax())
        raise DataError(f"{what}: label {y[row]} in row {row} is not a class index; labels must be "
                        f"whole numbers from 0 (give (N, K) float targets for regression)")
    count, why = _class_bound()
    if len(y) and y.max() >= count:
        row = int((y >= count).argmax())
        raise DataError(f"{what}: label {_whole(y[row])} in row {row} {why}")
    return torch.from_numpy(y.astype(np.int64))


def _check_class_count(count: int, what: str) -> None:
    """Refuse `count` classes past the limit `classes`."""
    most, why = _class_bound()
    if count > most:
        raise DataError(f"{what}: {count:,} classes, so label {count - 1:,} {why}")


def _class_bound() -> tuple[int, str]:
    """How many classes labels may name (the limit `classes`), and what a label past it is told."""
    limit = limits.current().classes
    return limit, (f"is past the limit `classes` ({limit:,} classes: labels 0..{limit - 1:,}); "
                   f"{limits.raise_hint('classes')}")


def _whole(value: np.generic) -> int | float:
    """A label already known to be whole, as Python prints it (inf stays inf)."""
    return int(value) if np.isfinite(value) else float(value)


def _class_names(labels: torch.Tensor) -> list[str]:
    """'0'..the largest label (already bounded by `_labels`)."""
    return [str(i) for i in range(int(labels.max()) + 1 if len(labels) else 0)]


def _mnist(path: Path, shape: tuple[int, int, int]) -> _Source:
    """`train-*` IDX files under `path`, with `t10k-*` ones as the validation split."""
    if not path.is_dir():
        raise DataError(f"mnist data: {path} is not a folder of IDX files")
    what = f"mnist {path}"
    train = _idx_pair(path, "train", shape)
    if train is None:
        raise DataError(f"{what} has no train-images-idx3-ubyte and train-labels-idx1-ubyte files")
    val = _idx_pair(path, "t10k", shape)
    labels = train.y if val is None else torch.cat([train.y, val.y])
    return _Source(train, _class_names(labels), what, val)


def _idx_pair(folder: Path, prefix: str, shape: tuple[int, int, int]) -> _Samples | None:
    """The images and labels named `prefix`, None when neither file is there."""
    images, labels = _idx_path(folder, prefix, "images", 3), _idx_path(folder, prefix, "labels", 1)
    if images is None and labels is None:
        return None
    if images is None or labels is None:
        found, lacking = (images, "labels") if labels is None else (labels, "images")
        raise DataError(f"mnist {folder}: found {found} but no {prefix} {lacking} file")
    x, y = _read_idx(images), _read_idx(labels)
    if x.ndim != 3 or y.ndim != 1:
        raise DataError(f"IDX files {images.name} and {labels.name} must hold (N, H, W) images and "
                        f"(N,) labels, found shapes {x.shape} and {y.shape}")
    if len(x) != len(y):
        raise DataError(f"mnist {folder}: {images.name} has {len(x)} images but {labels.name} has "
                        f"{len(y)} labels")
    targets = _labels(y, f"IDX file {labels}")
    pixels = torch.from_numpy(x if x.dtype == np.uint8 else x.astype(np.float32)).unsqueeze(1)
    return _Samples(fit_images(pixels, shape, f"mnist {folder}"), targets)


def _idx_path(folder: Path, prefix: str, kind: str, rank: int) -> Path | None:
    for name in (f"{prefix}-{kind}-idx{rank}-ubyte", f"{prefix}-{kind}.idx{rank}-ubyte"):
        for suffix in ("", ".gz"):
            if (folder / (name + suffix)).is_file():
                return folder / (name + suffix)
    return None


_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
"""IDX's element type codes (the magic number's third byte), as big-endian NumPy types."""


def _read_idx(path: Path) -> np.ndarray:
    """An IDX file (optionally gzipped): magic 0x0000TTNN (type, rank), N big-endian uint32
    sizes, then the big-endian elements."""
    try:
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read IDX file {path}: {exc}") from None
    if len(data) < 4:
        raise DataError(f"IDX file {path} is truncated: {len(data)} bytes, not even a header")
    if data[0] or data[1] or data[2] not in _IDX_TYPES:
        raise DataError(f"IDX file {path} has a bad magic number 0x{data[:4].hex()} "
                        f"(expected 0x0000TTNN: 08 for uint8 data, NN dimensions)")
    header = 4 + 4 * data[3]
    if len(data) < header:
        raise DataError(f"IDX file {path} is truncated: its header needs {header} bytes, found {len(data)}")
    dims = struct.unpack(f">{data[3]}I", data[4:header])
    dtype = np.dtype(_IDX_TYPES[data[2]])
    need = math.prod(dims) * dtype.itemsize
    if len(data) - header < need:
        raise DataError(f"IDX file {path} is truncated: its header promises {need} bytes of data "
                        f"{dims}, found {len(data) - header}")
    array = np.frombuffer(data, dtype, count=math.prod(dims), offset=header).reshape(dims)
    return array.astype(dtype.newbyteorder("="))


# -- text -------------------------------------------------------------------------------------

def _text(options: Text, shape: tuple[int, ...], vocab: int | None, seed: int, root: Path) -> Data:
    """The text's bytes in windows of T + 1 for an input of T token ids, split by spans."""
    length = token_length(shape, vocab)
    text, what = _read_text(options.path, root)
    train, val = _split(_windows(text, length, what), options.val_split, seed, what, TEXT_SPANS)
    return Data([], len(train), len(val), [], [], _splits={"train": train, "val": val},
                _augment=Augment(), _seed=seed, _workers=0, vocab=BYTES)


def token_length(shape: tuple[int, ...], vocab: int | None) -> int:
    """T, once an input of per-sample `shape` is T token ids whose vocabulary (`vocab`; None
    for float values) holds every byte; DataError saying what to declare instead."""
    want = f"`input: {{tokens: [T], vocab: {BYTES}}}`"
    if vocab is None:
        raise DataError(f"text data gives token ids (bytes); the spec's input holds float values "
                        f"{list(shape)}: declare it as {want}")
    if len(shape) != 1:
        raise DataError(f"text data gives a window of T token ids per sample; the spec's input is "
                        f"tokens {list(shape)}: declare it as {want}")
    if vocab < BYTES:
        raise DataError(f"text data is UTF-8 bytes (ids 0..{BYTES - 1}); the spec's input has "
                        f"vocab {vocab}: declare it as {want}")
    return shape[0]


def _read_text(path: str, root: Path) -> tuple[bytes, str]:
    """The bytes of `path` (a file, every text file under a folder, or `stdlib`: the standard
    library's `.py` files, site-packages aside), files joined in sorted order, and the
    source's name for messages. In a folder, files that are not UTF-8 text (compiled
    `__pycache__/*.pyc`, images) are passed over."""
    if path == STDLIB:
        folder = Path(sysconfig.get_paths()["stdlib"])
        skip = {"site-packages", "dist-packages"}
        files = _files_under(folder, lambda top, name: not skip & set(top.parts)
                             and name.endswith(".py"))
        what = f"the standard library's source ({folder})"
    else:
        full = _on_disk(root, path, "text")
        files = _files_under(full, lambda top, name: True) if full.is_dir() else [full]
        what = f"text {full}"
        return _read_bytes(files, what, text_only=full.is_dir()), what
    return _read_bytes(files, what), what


def _files_under(folder: Path, keep: Callable[[Path, str], bool]) -> list[Path]:
    """The files under `folder` that `keep(folder it is in, name)` accepts, in sorted order,
    hidden ones (a name starting with `.`, or in such a folder) aside. Refused past the limit
    `text_files`, counted as the folder is walked."""
    most, found = limits.current().text_files, []
    for top, folders, names in os.walk(folder):
        folders[:] = [name for name in folders if not name.startswith(".")]
        found += [Path(top, name) for name in names
                  if not name.startswith(".") and keep(Path(top), name)]
        if len(found) > most:
            raise DataError(f"text {folder} holds more than {most:,} files, the limit "
                            f"`text_files`; {limits.raise_hint('text_files')}")
    return sorted(found)


def _read_bytes(files: list[Path], what: str, text_only: bool = False) -> bytes:
    """The files' bytes, one after the other (with `text_only`, of the files that are UTF-8
    text); never more than the limit `text_bytes` plus one is read (a file that grows while
    it is read, or a device, cannot make it more)."""
    most, text = limits.current().text_bytes, bytearray()
    for file in files:
        if not file.is_file():
            raise DataError(f"{what}: {file} is not a regular file")
        try:
            with file.open("rb") as stream:
                read = stream.read(most + 1 - len(text))
        except OSError as exc:
            raise DataError(f"cannot read {file}: {exc.strerror or exc}") from None
        if text_only and len(text) + len(read) <= most and not _is_utf8(read):
            continue
        text += read
        if len(text) > most:
            raise DataError(f"{what} has more than {most:,} bytes, the limit `text_bytes`; "
                            f"{limits.raise_hint('text_bytes')}")
    return bytes(text)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _windows(text: bytes, length: int, what: str) -> _Samples:
    """The text cut into windows of `length` + 1 bytes that do not overlap (the bytes left
    after the last whole window are dropped): x the first `length` of each, y the last
    `length` (y[:, t] == x[:, t + 1]), (N, length) uint8 views of one tensor."""
    size = length + 1
    if not text:
        raise DataError(f"{what} is empty")
    count = len(text) // size
    if not count:
        raise DataError(f"{what} has {len(text)} bytes, too few for one window of {size} (the "
                        f"input's {length} tokens and the byte after them)")
    windows = torch.frombuffer(bytearray(text[:count * size]), dtype=torch.uint8).view(count, size)
    return _Samples(windows[:, :-1], windows[:, 1:])


# -- checks and shapes -------------------------------------------------------------------------

def _on_disk(root: Path, path: str, kind: str) -> Path:
    full = (root / path).resolve()
    if not full.exists():
        raise DataError(f"{kind} data: {path!r} does not exist (resolved relative to the spec's "
                        f"folder: {full})")
    return full


def _image_shape(shape: tuple[int, ...], kind: str) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise DataError(f"{kind} data gives images (C, H, W); the spec's input is {shape}")
    return shape[0], shape[1], shape[2]


def fit_images(x: torch.Tensor, shape: tuple[int, int, int], what: str) -> torch.Tensor:
    """(N, c, h, w) images resized to the input's (H, W), one channel repeated for three."""
    channels = x.shape[1]
    if channels != shape[0] and (channels, shape[0]) != (1, 3):
        raise DataError(f"{what} has {channels}-channel images but the spec's input has "
                        f"{shape[0]} channel{'s' * (shape[0] != 1)}")
    x = _resize(x, shape[1:])
    return x.repeat(1, shape[0] // channels, 1, 1) if channels != shape[0] else x


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, C, h, w) to (N, C, *size), bilinear (align_corners=False, antialiased when
    shrinking), in the same dtype (uint8 rounded)."""
    if tuple(x.shape[-2:]) == size:
        return x
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    out = torch.empty((*x.shape[:2], *size), dtype=x.dtype)
    for i in range(0, len(x), _CHUNK):
        chunk = F.interpolate(x[i:i + _CHUNK].float(), size=size, mode="bilinear", align_corners=False,
                              antialias=shrink)
        out[i:i + _CHUNK] = chunk.round().clamp(0, 255) if x.dtype == torch.uint8 else chunk
    return out


def _sample_rank(samples: _Samples) -> int:
    return 3 if isinstance(samples.x, _ImageFiles) else samples.x.dim() - 1


def _split(samples: _Samples, share: float, seed: int, what: str,
           spans: int | None = None) -> tuple[_Samples, _Samples]:
    """A seeded split: `share` of the samples (rounded) for validation, each side in stored
    order. With `spans`, the samples are first grouped into that many runs of consecutive
    samples (sizes differing by one at most; one sample each when there are fewer), and
    `share` of the runs is held out whole."""
    n = len(samples)
    if not n:
        raise DataError(f"{what} has no samples")
    groups = min(n, spans or n)
    n_val = round(groups * share)
    if n_val in (0, groups):
        side = "validation" if n_val == 0 else "training"
        unit = "spans" if spans else "samples"
        raise DataError(f"val_split {share} of the {groups} {unit} of {what} leaves no {side} samples")
    order = torch.randperm(groups, generator=torch.Generator().manual_seed(seed))
    held = torch.zeros(groups, dtype=torch.bool)
    held[order[:n_val]] = True
    sizes = torch.full((groups,), n // groups)
    sizes[:n % groups] += 1  # as torch.tensor_split sizes them
    held = held.repeat_interleave(sizes)
    return samples.take((~held).nonzero()[:, 0]), samples.take(held.nonzero()[:, 0])


def _streams(stream: bool | None, *splits: _Samples) -> bool:
    """Whether image files stream: as configured, else when decoded they would pass STREAM_ABOVE."""
    if stream is not None:
        return stream
    files = [s.x for s in splits if isinstance(s.x, _ImageFiles)]
    return sum(len(f) * len(f.mode) * math.prod(f.size) for f in files) > STREAM_ABOVE


def _workers(configured: int | None) -> int:
    """DataLoader workers for image files: as configured, else the cores less one, at most 8."""
    return configured if configured is not None else min(8, max(0, (os.cpu_count() or 1) - 1))


# -- statistics, normalisation, augmentation ---------------------------------------------------

def as_float(x: torch.Tensor) -> torch.Tensor:
    """Samples in the model's scale: 8-bit images in [0, 1], anything else as float32."""
    return x.float() / 255 if x.dtype == torch.uint8 else x.float()


def _stats_chunks(train: _Samples, workers: int, seed: int) -> Iterator[torch.Tensor]:
    """The training samples in chunks: all of them, or a seeded sample of STATS_SAMPLES when
    they stream from disk."""
    if isinstance(train.x, torch.Tensor):
        yield from train.x.split(_CHUNK)
        return
    index = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:STATS_SAMPLES]
    yield from _decode_chunks(train.x.take(index.sort().values), workers, seed)


def _channel_stats(chunks: Iterable[torch.Tensor]) -> tuple[list[float], list[float]]:
    """Per-channel mean and unbiased std (torch's default) over chunks (n, C, ...) in the
    model's scale, merged chunk by chunk in float64 (Chan et al.). A channel that barely
    varies gets std 1."""
    count, mean, m2 = 0, torch.zeros(()), torch.zeros(())
    for chunk in chunks:
        values = as_float(chunk).double().transpose(0, 1).reshape(chunk.shape[1], -1)
        var, avg = torch.var_mean(values, dim=1, correction=0)
        n = values.shape[1]
        delta, total = avg - mean, count + n
        mean = mean + delta * n / total
        m2 = m2 + var * n + delta ** 2 * count * n / total
        count = total
    std = (m2 / max(count - 1, 1)).sqrt()
    return mean.tolist(), torch.where(std < _MIN_STD, 1.0, std).tolist()


def _augment(x: torch.Tensor, crop: int, flip: bool, draws: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) normalised images, each cropped back to (H, W) after zero-padding `crop`
    pixels per side, at the offsets `draws[:, 0]` (rows) and `draws[:, 1]` (columns), then
    flipped left-right where `draws[:, 2]` is 1 (when `flip`). draws: (B, 3) int64."""
    if crop:
        b, c, h, w = x.shape
        padded = F.pad(x, (crop,) * 4)
        rows = draws[:, 0, None, None, None] + torch.arange(h, device=x.device)[:, None]
        cols = draws[:, 1, None, None, None] + torch.arange(w, device=x.device)
        x = padded[torch.arange(b, device=x.device)[:, None, None, None],
                   torch.arange(c, device=x.device)[:, None, None], rows, cols]
    if flip:
        x = torch.where(draws[:, 2, None, None, None].bool(), x.flip(3), x)
    return x


# -- image files -------------------------------------------------------------------------------

def read_image(path: str, mode: str, size: tuple[int, int]) -> torch.Tensor:
    """One image as a (C, H, W) uint8 tensor: converted to `mode`, resized (bilinear) to `size`
    (H, W). Raises DataError naming the file when Pillow cannot read it."""
    try:
        with Image.open(path) as image:
            image = image.convert(mode)
            if image.size != size[::-1]:
                image = image.resize(size[::-1], Image.Resampling.BILINEAR)
            pixels = np.array(image, dtype=np.uint8)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"cannot read image {path}: {exc}") from None
    return torch.from_numpy(pixels.reshape(*size, -1)).permute(2, 0, 1).contiguous()


class _Plan(Sampler[list[int]]):
    """The batches of indices a streaming DataLoader reads next; set before each epoch."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def _image_loader(files: _ImageFiles, plan: Sampler[list[int]], workers: int, seed: int,
                  device: torch.device, *, persistent: bool) -> DataLoader:
    """A DataLoader decoding `files` in `workers` processes, batch by batch as `plan` lists
    them. Its own generator keeps it from drawing on the global RNG (which dropout uses)."""
    return DataLoader(files, batch_sampler=plan, num_workers=workers, collate_fn=_collate,
                      pin_memory=device.type == "cuda", persistent_workers=persistent and workers > 0,
                      generator=torch.Generator().manual_seed(seed))


def _collate(items: list[torch.Tensor | str]) -> torch.Tensor | str:
    """Stack decoded images into (B, C, H, W), or pass the first read error on."""
    errors = [item for item in items if isinstance(item, str)]
    return errors[0] if errors else torch.stack(items)


def _unwrap(batch: torch.Tensor | str) -> torch.Tensor:
    """A decoded batch, or DataError for the read error it carries instead."""
    if isinstance(batch, str):
        raise DataError(batch)
    return batch


def _decode_chunks(files: _ImageFiles, workers: int, seed: int) -> Iterator[torch.Tensor]:
    """All of `files`, decoded in order in chunks of (n, C, H, W) uint8 on the CPU."""
    plan = _Plan()
    plan.batches = [list(range(i, min(i + _CHUNK, len(files)))) for i in range(0, len(files), _CHUNK)]
    for batch in _image_loader(files, plan, workers, seed, torch.device("cpu"), persistent=False):
        yield _unwrap(batch)


def _decode(files: _ImageFiles, workers: int, seed: int) -> torch.Tensor:
    """All of `files` as one (N, C, H, W) uint8 tensor."""
    out = torch.empty((len(files), len(files.mode), *files.size), dtype=torch.uint8)
    for i, chunk in zip(range(0, len(files), _CHUNK), _decode_chunks(files, workers, seed), strict=True):
        out[i:i + len(chunk)] = chunk
    return out
