"""Training data: every source read from tiny files made here, seeded splits, statistics,
DistributedSampler batch order, mid-epoch resume, on-device augmentation, streaming and the
one-line errors. Expected values come from torch, NumPy, Pillow or scikit-learn directly."""

from __future__ import annotations

import gzip
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from netspec import limits
from netspec.limits import Limits
from netspec.training.config import DataConfig
from netspec.training.data import Data, DataError, Loader, load_data

CPU = torch.device("cpu")


# -- helpers ----------------------------------------------------------------------------------

def config(kind: str, **options: object) -> DataConfig:
    return DataConfig.model_validate({kind: options})


def load(kind: str, shape: tuple[int, ...], root: Path, seed: int = 0, **options: object) -> Data:
    return load_data(config(kind, **options), shape, seed=seed, root=root)


def batches(loader: Loader, epoch: int = 0, start: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return list(loader.epoch(epoch, start))


def denormalise(data: Data, x: torch.Tensor) -> torch.Tensor:
    shape = (len(data.mean),) + (1,) * (x.dim() - 2)
    return x * torch.tensor(data.std).view(shape) + torch.tensor(data.mean).view(shape)


def write_ids(path: Path, n: int) -> None:
    """Sample i is a 1x2x2 image filled with i, labelled i: ids survive every step."""
    x = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 1, 2, 2).numpy()
    np.savez(path, x=x, y=np.arange(n))


def write_random(path: Path, n: int, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, *shape)).astype(np.float32)
    np.savez(path, x=x, y=np.arange(n))
    return x


def write_png(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def random_folder(root: Path, per_class: int = 6, classes: tuple[str, ...] = ("a", "b", "c")) -> None:
    rng = np.random.default_rng(0)
    for name in classes:
        for i in range(per_class):
            write_png(root / name / f"{i}.png", rng.integers(0, 256, (5, 7, 3), dtype=np.uint8))


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX as the format describes it: 0, 0, type 0x08 (uint8), rank; big-endian sizes; data."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_mnist(folder: Path, prefix: str, labels: np.ndarray, *, dotted: bool = False,
                gz: bool = False) -> None:
    """Image i is 28x28 filled with 25 * its label."""
    images = np.repeat((labels * 25).astype(np.uint8), 28 * 28).reshape(-1, 28, 28)
    folder.mkdir(exist_ok=True)
    for kind, rank, array in (("images", 3, images), ("labels", 1, labels)):
        name = f"{prefix}-{kind}{'.' if dotted else '-'}idx{rank}-ubyte"
        data = idx_bytes(array)
        (folder / (name + ".gz" if gz else name)).write_bytes(gzip.compress(data) if gz else data)


def raises(match: str, kind: str, shape: tuple[int, ...], root: Path, **options: object) -> str:
    with pytest.raises(DataError, match=match) as info:
        load(kind, shape, root, **options)
    message = str(info.value)
    assert "\n" not in message
    return message


# -- sources ----------------------------------------------------------------------------------

def test_digits_are_sklearn_digits_resized(tmp_path):
    from sklearn.datasets import load_digits

    digits = load_digits()
    data = load("digits", (3, 12, 12), tmp_path)
    assert data.classes == [str(i) for i in range(10)]
    assert data.val_size == round(1797 * 0.2)
    assert data.train_size + data.val_size == 1797
    expected = F.interpolate(torch.from_numpy(digits.images).float().unsqueeze(1) / 16, size=(12, 12),
                             mode="bilinear", align_corners=False).flatten(1)
    for x, y in batches(data.loader("val", 128, CPU)):
        assert x.shape[1:] == (3, 12, 12) and x.dtype == torch.float32
        pixels = denormalise(data, x)
        assert torch.equal(pixels[:, 0], pixels[:, 2])
        distance, nearest = torch.cdist(pixels[:, 0].flatten(1), expected,
                                        compute_mode="donot_use_mm_for_euclid_dist").min(1)
        assert distance.max() < 1e-4
        assert torch.equal(torch.from_numpy(digits.target)[nearest], y)


def test_synthetic_shapes_classes_and_seed(tmp_path):
    data = load_data(config("synthetic", size=40), (5,), seed=3, root=tmp_path, classes=7)
    assert (data.classes, data.train_size, data.val_size) == ([str(i) for i in range(7)], 32, 8)
    x, y = next(data.loader("train", 16, CPU).epoch(0))
    assert x.shape == (16, 5) and y.dtype == torch.int64 and y.min() >= 0 and y.max() < 7
    again = load_data(config("synthetic", size=40), (5,), seed=3, root=tmp_path, classes=7)
    assert torch.equal(again.targets("train"), data.targets("train"))
    own = load_data(config("synthetic", size=40, classes=3), (1, 4, 4), seed=3, root=tmp_path, classes=7)
    assert own.classes == ["0", "1", "2"]
    with pytest.raises(DataError, match="synthetic data needs a class count"):
        load_data(config("synthetic"), (1, 4, 4), seed=0, root=tmp_path)


def test_npz_labels_targets_channels_and_resize(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (10, 6, 6), dtype=np.uint8)
    np.savez(tmp_path / "gray.npz", x=x, y=np.arange(10) * 3)
    data = load("npz", (3, 3, 3), tmp_path, path="gray.npz", val_split=0.2)
    assert (data.classes, data.train_size, data.val_size) == ([str(i) for i in range(28)], 8, 2)
    expected = F.interpolate(torch.from_numpy(x).float().unsqueeze(1), size=(3, 3), mode="bilinear",
                             align_corners=False, antialias=True).round() / 255
    images, labels = next(data.loader("train", 8, CPU).epoch(0))
    assert images.shape == (8, 3, 3, 3)
    pixels = denormalise(data, images)
    assert torch.equal(pixels[:, 0], pixels[:, 2])
    assert torch.allclose(pixels[:, :1], expected[labels // 3], atol=1e-6)

    np.savez(tmp_path / "targets.npz", x=np.zeros((6, 1, 2, 2), np.float32), y=np.ones((6, 3)))
    targets = load("npz", (1, 2, 2), tmp_path, path="targets.npz", val_split=0.5)
    assert targets.classes == [] and targets.targets("train").shape == (3, 3)
    assert targets.targets("train").dtype == torch.float32


def test_folder_classes_pixels_and_layout(tmp_path):
    colours = {"owl": (200, 10, 30), "cat": (0, 120, 255), "dog": (60, 60, 60)}
    for name, colour in colours.items():
        for i in range(4):
            write_png(tmp_path / "pics" / name / f"{i}.png", np.full((6, 5, 3), colour, np.uint8))
    write_png(tmp_path / "pics" / "dog" / "deeper" / "x.JPG", np.full((6, 5, 3), (60, 60, 60), np.uint8))
    (tmp_path / "pics" / "cat" / "notes.txt").write_text("not an image")
    data = load("folder", (3, 4, 4), tmp_path, path="pics", val_split=0.25, workers=0)
    assert data.classes == ["cat", "dog", "owl"]
    assert (data.train_size, data.val_size) == (10, 3)
    for x, y in batches(data.loader("train", 4, CPU)) + batches(data.loader("val", 4, CPU)):
        for pixels, label in zip(denormalise(data, x), y, strict=True):
            colour = torch.tensor(colours[data.classes[label]], dtype=torch.float32) / 255
            assert torch.allclose(pixels, colour.view(3, 1, 1).expand(3, 4, 4), atol=2 / 255)

    gray = load("folder", (1, 4, 4), tmp_path, path="pics", workers=0)
    x, y = next(gray.loader("val", 16, CPU).epoch(0))
    for pixels, label in zip(denormalise(gray, x), y, strict=True):
        r, g, b = colours[gray.classes[label]]
        assert torch.allclose(pixels, torch.full((1, 4, 4), (r * 299 + g * 587 + b * 114) / 1000 / 255),
                              atol=1 / 255)


def test_converting_a_folder_s_images_to_the_input_s_channels_is_noted(tmp_path):
    random_folder(tmp_path / "rgb")  # RGB pngs
    for name in ("a", "b"):
        for i in range(3):
            write_png(tmp_path / "gray" / name / f"{i}.png", np.zeros((5, 7), np.uint8))  # mode L
    assert load("folder", (1, 4, 4), tmp_path, path="rgb", workers=0).notes == [
        "images are RGB; converted to 1 channel (grayscale) for input [1,4,4]"]
    assert load("folder", (3, 4, 4), tmp_path, path="gray", workers=0).notes == [
        "images are grayscale; converted to 3 channels (RGB) for input [3,4,4]"]
    assert load("folder", (3, 4, 4), tmp_path, path="rgb", workers=0).notes == []
    assert load("folder", (1, 4, 4), tmp_path, path="gray", workers=0).notes == []


def test_folder_with_train_and_val_folders_is_split_already(tmp_path):
    random_folder(tmp_path / "set" / "train", per_class=3)
    random_folder(tmp_path / "set" / "val", per_class=2, classes=("a", "c"))
    data = load("folder", (3, 4, 4), tmp_path, path="set", val_split=0.5, workers=0)
    assert (data.classes, data.train_size, data.val_size) == (["a", "b", "c"], 9, 4)
    assert data.targets("val").tolist() == [0, 0, 2, 2]
    random_folder(tmp_path / "set" / "val", per_class=1, classes=("zebra",))
    raises(r"set/val/zebra is not one of the training classes \(a, b, c\)", "folder", (3, 4, 4),
           tmp_path, path="set", workers=0)


def test_mnist_idx_files_split_or_t10k(tmp_path):
    labels = np.arange(30) % 10
    write_mnist(tmp_path / "m", "train", labels, dotted=True)
    data = load("mnist", (1, 14, 14), tmp_path, path="m", val_split=0.2)
    assert (data.classes, data.train_size, data.val_size) == ([str(i) for i in range(10)], 24, 6)
    for x, y in batches(data.loader("train", 10, CPU)):
        assert x.shape[1:] == (1, 14, 14)
        expected = (y * 25).float().view(-1, 1, 1, 1).expand_as(x) / 255
        assert torch.allclose(denormalise(data, x), expected, atol=1e-6)

    write_mnist(tmp_path / "m", "t10k", np.arange(12) % 10, gz=True)
    with_test = load("mnist", (3, 28, 28), tmp_path, path="m", val_split=0.2)
    assert (with_test.train_size, with_test.val_size) == (30, 12)
    assert torch.equal(with_test.targets("val"), torch.arange(12) % 10)
    assert torch.equal(with_test.targets("train"), torch.from_numpy(labels))


# -- split, statistics, batch order -----------------------------------------------------------

def test_split_is_seeded_disjoint_and_pairs_x_with_y(tmp_path):
    write_ids(tmp_path / "ids.npz", 50)
    data = load("npz", (1, 2, 2), tmp_path, path="ids.npz", val_split=0.2)
    train, val = data.targets("train"), data.targets("val")
    assert (len(train), len(val)) == (40, 10)
    assert sorted(train.tolist() + val.tolist()) == list(range(50))
    same = load("npz", (1, 2, 2), tmp_path, path="ids.npz", val_split=0.2)
    assert torch.equal(same.targets("val"), val)
    other = load("npz", (1, 2, 2), tmp_path, seed=1, path="ids.npz", val_split=0.2)
    assert not torch.equal(other.targets("val"), val)
    for x, y in batches(data.loader("train", 16, CPU)):
        assert torch.allclose(denormalise(data, x)[:, 0, 0, 0], y.float(), atol=1e-4)


@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
def test_mean_and_std_are_torch_s_over_the_training_split(tmp_path, dtype):
    x = np.random.default_rng(1).uniform(0, 255, (40, 3, 5, 5)).astype(dtype)
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(40))
    data = load("npz", (3, 5, 5), tmp_path, path="d.npz", val_split=0.25)
    train = torch.from_numpy(x)[data.targets("train")].double()
    train = train / 255 if dtype == np.uint8 else train
    per_channel = train.transpose(0, 1).reshape(3, -1)
    assert torch.allclose(torch.tensor(data.mean, dtype=torch.float64), per_channel.mean(1), rtol=1e-9)
    assert torch.allclose(torch.tensor(data.std, dtype=torch.float64), per_channel.std(1), rtol=1e-9)
    x_val, _ = next(data.loader("val", 100, CPU).epoch(0))
    assert x_val.dtype == torch.float32


def test_two_ranks_at_half_batch_see_what_one_rank_sees(tmp_path):
    write_ids(tmp_path / "ids.npz", 48)
    data = load("npz", (1, 2, 2), tmp_path, path="ids.npz", val_split=0.25)
    one = data.loader("train", 8, CPU)
    ranks = [data.loader("train", 4, CPU, rank=r, world=2) for r in range(2)]
    assert len(one) == len(ranks[0]) == len(ranks[1]) == 36 // 8 + 1
    orders = []
    for epoch in (0, 1):
        whole = [y for _, y in batches(one, epoch)]
        halves = [[y for _, y in batches(rank, epoch)] for rank in ranks]
        for step, y in enumerate(whole):
            assert sorted(halves[0][step].tolist() + halves[1][step].tolist()) == sorted(y.tolist())
        orders.append(torch.cat(whole))
        assert sorted(orders[-1].tolist()) == sorted(data.targets("train").tolist())
    assert not torch.equal(orders[0], orders[1])


def test_validation_is_in_order_and_split_over_ranks_without_padding(tmp_path):
    write_ids(tmp_path / "ids.npz", 44)
    data = load("npz", (1, 2, 2), tmp_path, path="ids.npz", val_split=0.25)
    val = data.targets("val")
    assert len(val) == 11
    assert torch.equal(torch.cat([y for _, y in batches(data.loader("val", 4, CPU))]), val)
    for rank in (0, 1):
        loader = data.loader("val", 2, CPU, rank=rank, world=2)
        seen = torch.cat([y for _, y in batches(loader)])
        assert torch.equal(seen, val[rank::2])
        assert len(loader) == -(-len(val[rank::2]) // 2)


@pytest.mark.parametrize("source", ["npz", "stream"])
def test_start_resumes_an_epoch_bit_exactly(tmp_path, source):
    augment = {"crop": 1, "flip": True}
    if source == "npz":
        write_random(tmp_path / "d.npz", 40, (1, 4, 4))
        options = {"path": "d.npz", "augment": augment}
    else:
        random_folder(tmp_path / "pics")
        options = {"path": "pics", "augment": augment, "stream": True, "workers": 0}
    kind = "npz" if source == "npz" else "folder"
    loader = load(kind, (1, 4, 4), tmp_path, **options).loader("train", 3, CPU)
    full = batches(loader, 2)

    torch.manual_seed(7)  # the global generator plays no part: (seed, epoch, start) is enough
    resumed = load(kind, (1, 4, 4), tmp_path, **options).loader("train", 3, CPU)
    tail = batches(resumed, 2, start=2)
    assert len(tail) == len(full) - 2 == len(loader) - 2
    for (x, y), (x_full, y_full) in zip(tail, full[2:], strict=True):
        assert torch.equal(x, x_full) and torch.equal(y, y_full)


# -- augmentation ---------------------------------------------------------------------------

@pytest.fixture
def plain_and_augmented(tmp_path):
    """The same random images twice: plain, and with `crop`/`flip` augmentation."""
    write_random(tmp_path / "d.npz", 80, (1, 6, 6))

    def make(**augment: object) -> tuple[Data, Data]:
        return (load("npz", (1, 6, 6), tmp_path, path="d.npz"),
                load("npz", (1, 6, 6), tmp_path, path="d.npz", augment=augment))

    return make


def test_crop_shifts_each_image_by_its_own_offset(plain_and_augmented):
    plain, augmented = plain_and_augmented(crop=2)
    x, y = next(plain.loader("train", 64, CPU).epoch(0))
    shifted, y_shifted = next(augmented.loader("train", 64, CPU).epoch(0))
    assert torch.equal(y, y_shifted)
    padded = F.pad(x, (2, 2, 2, 2))
    windows = torch.stack([padded[:, :, i:i + 6, j:j + 6] for i in range(5) for j in range(5)])
    matches = (windows == shifted).flatten(2).all(2)  # (offsets, batch)
    assert torch.equal(matches.sum(0), torch.ones(64, dtype=torch.long))
    assert len(set(matches.int().argmax(0).tolist())) > 10


def augmented_by_sample(loaders: list[Loader], epoch: int) -> dict[int, torch.Tensor]:
    """Each training sample's image in `epoch`, by its label (write_random labels sample i i),
    over every rank's loader."""
    return {int(label): image for loader in loaders for x, y in loader.epoch(epoch)
            for image, label in zip(x, y, strict=True)}


def test_a_sample_s_augmentation_depends_on_seed_epoch_and_sample_alone(plain_and_augmented):
    _, augmented = plain_and_augmented(crop=2, flip=True)
    one = augmented_by_sample([augmented.loader("train", 64, CPU)], 3)
    torch.manual_seed(12345)  # the global generator plays no part
    two = augmented_by_sample([augmented.loader("train", 16, CPU, rank=r, world=2) for r in (0, 1)], 3)
    small = augmented_by_sample([augmented.loader("train", 5, CPU)], 3)
    assert one.keys() == two.keys() == small.keys() and len(one) == augmented.train_size
    for label, image in one.items():
        assert torch.equal(two[label], image) and torch.equal(small[label], image), label
    later = augmented_by_sample([augmented.loader("train", 64, CPU)], 4)
    assert sum(not torch.equal(later[k], one[k]) for k in one) > len(one) // 2


def test_flip_mirrors_about_half_the_images(plain_and_augmented):
    plain, augmented = plain_and_augmented(flip=True)
    x, _ = next(plain.loader("train", 64, CPU).epoch(0))
    flipped, _ = next(augmented.loader("train", 64, CPU).epoch(0))
    same = (flipped == x).flatten(1).all(1)
    mirrored = (flipped == x.flip(3)).flatten(1).all(1)
    assert torch.all(same ^ mirrored)
    assert 0 < int(mirrored.sum()) < 64


def test_validation_is_not_augmented(plain_and_augmented):
    plain, augmented = plain_and_augmented(crop=2, flip=True)
    for (x, y), (x_aug, y_aug) in zip(batches(plain.loader("val", 8, CPU)),
                                      batches(augmented.loader("val", 8, CPU)), strict=True):
        assert torch.equal(x, x_aug) and torch.equal(y, y_aug)


# -- streaming --------------------------------------------------------------------------------

def test_streaming_reads_the_same_batches_as_memory(tmp_path):
    random_folder(tmp_path / "pics")
    streamed = load("folder", (3, 4, 4), tmp_path, path="pics", stream=True, workers=1)
    in_memory = load("folder", (3, 4, 4), tmp_path, path="pics", stream=False, workers=0)
    assert (streamed.mean, streamed.std, streamed.classes) == (in_memory.mean, in_memory.std,
                                                              in_memory.classes)
    for split, epochs in (("train", (0, 1)), ("val", (0,))):
        a, b = streamed.loader(split, 4, CPU), in_memory.loader(split, 4, CPU)
        for epoch in epochs:
            for (x, y), (x_mem, y_mem) in zip(batches(a, epoch), batches(b, epoch), strict=True):
                assert torch.equal(x, x_mem) and torch.equal(y, y_mem)


def test_corrupt_image_while_streaming_is_a_clean_data_error(tmp_path):
    random_folder(tmp_path / "pics", per_class=2)
    bad = tmp_path / "pics" / "b" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    data = load("folder", (3, 4, 4), tmp_path, path="pics", stream=True, workers=1, val_split=0.3)
    loaders = [data.loader(split, 2, CPU) for split in ("train", "val")]
    with pytest.raises(DataError) as info:
        for loader in loaders:
            batches(loader)
    assert str(info.value).startswith(f"cannot read image {bad}: ")
    assert "\n" not in str(info.value) and "Traceback" not in str(info.value)
    write_png(bad, np.zeros((5, 7, 3), np.uint8))  # repaired: the next epoch reads it
    assert sum(len(y) for loader in loaders for _, y in batches(loader, 1)) == 7
    for loader in loaders:  # now, not when the cycle through `info` is collected (seconds per worker)
        loader.close()


# -- errors -----------------------------------------------------------------------------------

def test_missing_path_names_where_it_was_looked_for(tmp_path):
    message = raises("does not exist", "npz", (1, 2, 2), tmp_path, path="nope/d.npz")
    assert "'nope/d.npz'" in message and "relative to the spec's folder" in message
    assert str(tmp_path.resolve() / "nope" / "d.npz") in message


def test_folder_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    raises(r"empty has no class sub-folders", "folder", (3, 4, 4), tmp_path, path="empty")
    random_folder(tmp_path / "pics", per_class=1)
    (tmp_path / "pics" / "d").mkdir()
    (tmp_path / "pics" / "d" / "readme.txt").write_text("no images here")
    raises(f"class folder {tmp_path.resolve() / 'pics' / 'd'} has no images", "folder", (3, 4, 4),
           tmp_path, path="pics")
    (tmp_path / "pics" / "d" / "bad.jpg").write_bytes(b"garbage")
    raises(f"cannot read image {tmp_path.resolve() / 'pics' / 'd' / 'bad.jpg'}: ", "folder", (3, 4, 4),
           tmp_path, path="pics", stream=False, workers=0)
    raises("image folders give 1 .* or 3 .* channels; the spec's input has 2", "folder", (2, 4, 4),
           tmp_path, path="pics")


@pytest.mark.parametrize(("arrays", "match"), [
    ({"y": np.arange(4)}, "has no array `x` .found: y."),
    ({"x": np.zeros((4, 1, 2, 2))}, "has no array `y` .found: x."),
    ({"x": np.zeros((4, 1, 2, 2)), "y": np.arange(3)}, "`x` has 4 samples but `y` has 3"),
    ({"x": np.zeros((4, 4)), "y": np.arange(4)},
     r"`x` must be \(N, C, H, W\) or \(N, H, W\), found shape \(4, 4\)"),
    ({"x": np.zeros((4, 1, 2, 2)), "y": np.zeros((4, 1, 1))},
     r"`y` must be \(N,\) labels or \(N, K\) targets"),
    ({"x": np.zeros((4, 1, 2, 2)), "y": np.array([0, 1.5, 2, 3])}, "labels must be whole numbers"),
    ({"x": np.zeros((4, 3, 2, 2)), "y": np.arange(4)},
     "has 3-channel images but the spec's input has 1 channel"),
])
def test_npz_errors(tmp_path, arrays, match):
    np.savez(tmp_path / "d.npz", **arrays)
    message = raises(match, "npz", (1, 2, 2), tmp_path, path="d.npz")
    assert str(tmp_path.resolve() / "d.npz") in message


def test_not_an_npz_archive_and_augmenting_flat_inputs(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros(3))
    raises("a.npy is a single .npy array, not an .npz archive", "npz", (1, 2, 2), tmp_path, path="a.npy")
    (tmp_path / "b.npz").write_bytes(b"PK\x03\x04 truncated")
    raises("cannot read npz .*b.npz: ", "npz", (1, 2, 2), tmp_path, path="b.npz")
    raises(r"augment needs image inputs \(C, H, W\); the spec's input is \(5,\)", "synthetic", (5,),
           tmp_path, classes=2, augment={"flip": True})


def test_idx_errors(tmp_path):
    folder = tmp_path / "m"
    write_mnist(folder, "train", np.arange(5))
    images = folder / "train-images-idx3-ubyte"
    good = images.read_bytes()
    images.write_bytes(b"\x00\x00\x07\x03" + good[4:])
    raises(f"IDX file {images.resolve()} has a bad magic number 0x00000703", "mnist", (1, 28, 28), tmp_path,
           path="m")
    images.write_bytes(good[:-100])
    raises(f"IDX file {images.resolve()} is truncated: its header promises {5 * 28 * 28} bytes",
           "mnist", (1, 28, 28), tmp_path, path="m")
    images.unlink()
    (folder / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip")
    raises(f"cannot read IDX file {images.resolve()}.gz: ", "mnist", (1, 28, 28), tmp_path, path="m")
    (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(good))
    (folder / "train-labels-idx1-ubyte").unlink()
    raises("found .*train-images-idx3-ubyte.gz but no train labels file", "mnist", (1, 28, 28), tmp_path,
           path="m")


# -- labels are bounded before anything is allocated for them ----------------------------------

def write_labels(path: Path, labels: np.ndarray) -> None:
    np.savez(path, x=np.zeros((len(labels), 1, 2, 2), dtype=np.float32), y=labels)


@pytest.mark.parametrize("label", [2**40, 2**62, np.inf])
def test_a_huge_npz_label_is_refused_naming_its_row_and_the_limit(tmp_path, label):
    write_labels(tmp_path / "d.npz", np.array([3, 1, label, 0], dtype=np.float64 if label == np.inf
                                              else np.int64))
    shown = "inf" if label == np.inf else str(label)
    message = raises(f"npz {tmp_path.resolve() / 'd.npz'}: label {shown} in row 2 is past the limit "
                     r"`classes` \(100,000 classes: labels 0..99,999\); raise the limit with "
                     r"`--limit classes=N`, or `limits=Limits\(classes=N\)` in the API",
                     "npz", (1, 2, 2), tmp_path, path="d.npz")
    assert message.startswith("npz ") and message.endswith(" in the API")


def test_labels_are_bounded_by_the_limit_and_left_to_the_task_below_it(tmp_path):
    """Below the limit, labels past the network's classes load: the task refuses them with
    the output's name and the fix (tests/test_train.py)."""
    write_labels(tmp_path / "d.npz", np.array([0, 9, 10, 4]))
    assert load_data(config("npz", path="d.npz"), (1, 2, 2), seed=0, root=tmp_path,
                     classes=10).classes == [str(i) for i in range(11)]
    with limits.applied(Limits(classes=10)):
        raises(r"label 10 in row 2 is past the limit `classes` \(10 classes: labels 0..9\)",
               "npz", (1, 2, 2), tmp_path, path="d.npz")
        with pytest.raises(DataError, match="past the limit `classes`"):
            load_data(config("npz", path="d.npz"), (1, 2, 2), seed=0, root=tmp_path, classes=50)
    with limits.applied(Limits(classes=11)):
        assert len(load("npz", (1, 2, 2), tmp_path, path="d.npz").classes) == 11


def test_a_label_that_is_no_class_index_is_named_with_its_row(tmp_path):
    write_labels(tmp_path / "d.npz", np.array([0, 1, -1, 2]))
    raises(r"label -1 in row 2 is not a class index; labels must be whole numbers from 0",
           "npz", (1, 2, 2), tmp_path, path="d.npz")
    write_labels(tmp_path / "d.npz", np.array([0, 1, 2, np.nan]))
    raises(r"label nan in row 3 is not a class index", "npz", (1, 2, 2), tmp_path, path="d.npz")


def test_idx_labels_folder_classes_and_synthetic_classes_are_bounded(tmp_path):
    folder = tmp_path / "m"
    write_mnist(folder, "train", np.arange(5))
    labels = np.array([0, 1, 2, 2**31 - 1, 4], dtype=">i4")  # IDX type 0x0C: int32
    (folder / "train-labels-idx1-ubyte").write_bytes(struct.pack(">BBBBI", 0, 0, 0x0C, 1, 5)
                                                      + labels.tobytes())
    raises(f"IDX file {(folder / 'train-labels-idx1-ubyte').resolve()}: label 2147483647 in row 3 "
           "is past the limit `classes`", "mnist", (1, 28, 28), tmp_path, path="m")

    random_folder(tmp_path / "pics", per_class=1, classes=("a", "b", "c"))
    with limits.applied(Limits(classes=2)):
        raises(r"folder .*pics: its class folders: 3 classes, so label 2 is past the limit "
               r"`classes` \(2 classes", "folder", (3, 4, 4), tmp_path, path="pics")
        raises(r"synthetic data: `classes`: 3 classes, so label 2 is past the limit `classes`",
               "synthetic", (5,), tmp_path, classes=3)


@pytest.mark.slow  # a process of its own
def test_a_label_of_2_to_the_40_stops_netspec_train_at_once_in_little_memory(tmp_path):
    """The whole process, as a user runs it: exit 1, one line naming the file, the label
    and its row, and a peak RSS far below what a class list of 2**40 names would take."""
    write_labels(tmp_path / "d.npz", np.array([0, 1, 2**40, 3] * 8))
    spec = tmp_path / "net.yaml"
    spec.write_text("name: net\ninput: [1, 2, 2]\nlayers: [flatten, {linear: 10}]\n"
                    "train: {epochs: 1, device: cpu, data: {npz: {path: d.npz}}}\n")
    # VmHWM is the process's own peak (getrusage's would include pytest's at the fork)
    measure = ("import re, sys\nfrom netspec.cli import main\ntry:\n    main(sys.argv[1:])\n"
               "finally:\n    status = open('/proc/self/status').read()\n"
               "    print('peak_kb=' + re.search(r'VmHWM:\\s*(\\d+)', status).group(1), "
               "file=sys.stderr)\n")
    process = subprocess.run([sys.executable, "-c", measure, "train", str(spec), "--quiet",
                              "--out", str(tmp_path / "run")], capture_output=True, text=True,
                             timeout=300)
    *lines, peak = process.stderr.splitlines()
    assert process.returncode == 1, process.stderr
    assert lines == [f"{spec}: error: npz {(tmp_path / 'd.npz').resolve()}: label "
                     f"{2**40} in row 2 is past the limit `classes` (100,000 "
                     "classes: labels 0..99,999); raise the limit with `--limit "
                     "classes=N`, or `limits=Limits(classes=N)` in the API"]
    assert int(peak.removeprefix("peak_kb=")) * 1024 < 1.5 * 2**30  # torch ~0.4 GB; the list ~80 TB
    assert not (tmp_path / "run" / "last.pt").exists()


@pytest.mark.parametrize(("n", "share", "side"), [(10, 0.0, "validation"), (2, 0.9, "training")])
def test_val_split_leaving_a_split_empty(tmp_path, n, share, side):
    write_ids(tmp_path / "ids.npz", n)
    raises(f"val_split {share} of the {n} samples of npz .* leaves no {side} samples", "npz", (1, 2, 2),
           tmp_path, path="ids.npz", val_split=share)
