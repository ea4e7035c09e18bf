"""Language models on text: byte windows and their shift, the seeded split by spans, the
standard library as a corpus, the limits on text, perplexity, `netspec sample`, and every
refusal as one line with exit 1. Expected values come from the text itself, Python's
sysconfig, or torch."""

from __future__ import annotations

import math
import os
import sysconfig
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

import netspec
from netspec import limits
from netspec.cli import main
from netspec.limits import Limits
from netspec.training.config import DataConfig, LossConfig
from netspec.training.data import TEXT_SPANS, DataError, load_data
from netspec.training.task import make_task

CPU = torch.device("cpu")
T = 32
TINY = f"""
    name: tinylm
    input: {{tokens: [{T}], vocab: 256}}
    layers:
      - embedding: [256, 32]
      - linear: 64
      - relu
      - linear: 256
    train:
      epochs: 1
      batch_size: 32
      device: cpu
      optimizer: {{adamw: {{lr: 3e-3}}}}
      data: {{text: corpus.txt}}
"""


def text_bytes(n: int) -> bytes:
    """`n` bytes of lines of source-like ASCII text that differ from line to line."""
    lines = (f"x{i} = foo(x{i - 1}, {i % 7})  # step {i}\n" for i in range(n))
    return "".join(lines).encode()[:n]


def load(tmp_path: Path, text: bytes, seed: int = 0, **options: object):
    (tmp_path / "corpus.txt").write_bytes(text)
    config = DataConfig.model_validate({"text": {"path": "corpus.txt", **options}})
    return load_data(config, (T,), seed=seed, root=tmp_path, vocab=256)


def every_batch(data, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = zip(*data.loader(split, 1000, CPU).epoch(0), strict=True)
    return torch.cat(x), torch.cat(y)


def spec_file(tmp_path: Path, text: str = TINY, corpus: bytes | None = None) -> Path:
    path = tmp_path / "lm.yaml"
    path.write_text(textwrap.dedent(text))
    (tmp_path / "corpus.txt").write_bytes(text_bytes(4000) if corpus is None else corpus)
    return path


def refused(args: list[str]) -> str:
    """The one line a refused command prints, once it exited 1 without a traceback."""
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


# -- windows and split -------------------------------------------------------------------------

def test_windows_do_not_overlap_and_y_is_x_shifted_by_one(tmp_path):
    text = text_bytes(100 * (T + 1) + 5)  # 5 bytes past the last whole window are dropped
    data = load(tmp_path, text, val_split=0.2)
    assert data.train_size + data.val_size == 100 and data.vocab == 256
    assert data.mean == [] and data.std == []  # ids are never normalised
    x, y = every_batch(data, "val")
    assert x.dtype == y.dtype == torch.int64 and x.shape == y.shape == (data.val_size, T)
    assert torch.equal(y[:, :-1], x[:, 1:])
    windows = torch.tensor(list(text[:100 * (T + 1)])).view(100, T + 1)
    for row_x, row_y in zip(x, y, strict=True):  # each is one whole window of the text
        [index] = (windows[:, :-1] == row_x).all(1).nonzero()[:, 0].tolist()
        assert torch.equal(windows[index, 1:], row_y)


def test_training_batches_are_ids_neither_normalised_nor_augmented(tmp_path):
    text = text_bytes(50 * (T + 1))
    x, y = every_batch(load(tmp_path, text), "train")
    assert x.dtype == torch.int64 and torch.equal(y[:, :-1], x[:, 1:])
    assert set(bytes(x.flatten().tolist())) <= set(text)


def test_the_split_holds_out_whole_spans_seeded_and_disjoint(tmp_path):
    count = 3 * TEXT_SPANS  # three windows per span
    text = text_bytes(count * (T + 1))
    windows = torch.tensor(list(text)).view(count, T + 1)[:, :-1]

    def held_out(seed: int) -> list[int]:
        x, _ = every_batch(load(tmp_path, text, seed=seed), "val")
        return sorted((windows == row).all(1).nonzero()[0, 0].item() for row in x)

    val = held_out(0)
    assert len(val) == 3 * round(0.2 * TEXT_SPANS)
    assert all({i - i % 3, i - i % 3 + 1, i - i % 3 + 2} <= set(val) for i in val)  # whole spans
    assert held_out(0) == val and held_out(1) != val
    x, _ = every_batch(load(tmp_path, text), "train")
    train = {(windows == row).all(1).nonzero()[0, 0].item() for row in x}
    assert train.isdisjoint(val) and len(train) + len(val) == count


def test_the_standard_library_is_read_from_its_own_files():
    folder = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(Path(top, name) for top, dirs, names in os.walk(folder)
                   for name in names if name.endswith(".py") and not name.startswith(".")
                   and not {"site-packages", "dist-packages"} & set(Path(top).parts)
                   and not any(part.startswith(".") for part in Path(top).relative_to(folder).parts))
    corpus = b"".join(f.read_bytes() for f in files)
    count = len(corpus) // (T + 1)
    data = load_data(DataConfig.model_validate({"text": "stdlib"}), (T,), seed=0, root=Path("/"),
                     vocab=256)
    assert data.train_size + data.val_size == count
    x, y = next(data.loader("val", 4, CPU).epoch(0))
    windows = torch.frombuffer(bytearray(corpus[:count * (T + 1)]), dtype=torch.uint8).view(count, -1)
    found = torch.cat([x[:, :1], y], 1).to(torch.uint8)
    assert all((windows == row).all(1).any() for row in found)


def test_a_folder_is_read_recursively_in_sorted_order_hidden_and_binary_files_aside(tmp_path):
    corpus = tmp_path / "corpus"
    (corpus / "b").mkdir(parents=True)
    (corpus / ".git").mkdir()
    (corpus / "__pycache__").mkdir()
    parts = {"a.txt": text_bytes(T + 1), "b/c.txt": b"C" * (T + 1), ".hidden": b"H" * (T + 1),
             ".git/x": b"G" * (T + 1),
             "__pycache__/a.pyc": b"\xa7\r\r\n\x00\xff" * (T + 1)}  # not UTF-8: bytecode
    for name, content in parts.items():
        (corpus / name).write_bytes(content)
    config = DataConfig.model_validate({"text": {"path": "corpus", "val_split": 0.5}})
    data = load_data(config, (T,), seed=0, root=tmp_path, vocab=256)
    rows = {bytes(r.tolist()) for split in ("train", "val") for r in every_batch(data, split)[0]}
    assert rows == {parts["a.txt"][:T], b"C" * T}


# -- limits and refusals of data -----------------------------------------------------------------

def test_text_past_the_byte_limit_is_refused_naming_it(tmp_path):
    text = text_bytes(10 * (T + 1))
    with limits.applied(Limits(text_bytes=len(text) - 1)), pytest.raises(DataError) as info:
        load(tmp_path, text)
    assert str(info.value) == (f"text {(tmp_path / 'corpus.txt').resolve()} has more than "
                               f"{len(text) - 1:,} bytes, the limit `text_bytes`; raise the limit "
                               "with `--limit text_bytes=N`, or `limits=Limits(text_bytes=N)` in "
                               "the API")
    with limits.applied(Limits(text_bytes=len(text))):
        assert load(tmp_path, text).train_size == 8


def test_a_folder_past_the_file_limit_is_refused_naming_it(tmp_path):
    for i in range(3):
        (tmp_path / "many" / str(i)).mkdir(parents=True)
        (tmp_path / "many" / str(i) / "f.txt").write_bytes(text_bytes(T + 1))
    config = DataConfig.model_validate({"text": {"path": "many", "val_split": 0.5}})
    with limits.applied(Limits(text_files=2)), pytest.raises(DataError, match=(
            r"holds more than 2 files, the limit `text_files`; raise the limit with "
            r"`--limit text_files=N`")):
        load_data(config, (T,), seed=0, root=tmp_path, vocab=256)
    assert load_data(config, (T,), seed=0, root=tmp_path, vocab=256).train_size == 1


@pytest.mark.parametrize(("text", "match"), [
    (b"", r"text .*corpus.txt is empty"),
    (b"x" * T, rf"has {T} bytes, too few for one window of {T + 1} \(the input's {T} tokens and "
               "the byte after them\\)"),
    (b"x" * (T + 1), r"val_split 0.2 of the 1 spans of text .* leaves no validation samples")])
def test_text_too_small_for_a_window_or_a_split_is_refused(tmp_path, text, match):
    with pytest.raises(DataError, match=match):
        load(tmp_path, text)


@pytest.mark.parametrize(("shape", "vocab", "match"), [
    ((T,), None, r"text data gives token ids \(bytes\); the spec's input holds float values \[32\]"),
    ((4, 8), 256, r"a window of T token ids per sample; the spec's input is tokens \[4, 8\]"),
    ((T,), 100, r"text data is UTF-8 bytes \(ids 0..255\); the spec's input has vocab 100")])
def test_text_needs_an_input_of_t_token_ids_over_every_byte(tmp_path, shape, vocab, match):
    (tmp_path / "c.txt").write_bytes(text_bytes(1000))
    with pytest.raises(DataError, match=match + r": declare it as `input: \{tokens: \[T\], vocab: 256\}`"):
        load_data(DataConfig.model_validate({"text": "c.txt"}), shape, seed=0, root=tmp_path,
                  vocab=vocab)


def test_token_ids_are_refused_from_any_other_source(tmp_path):
    with pytest.raises(DataError, match=r"the spec's input holds token ids \(vocab 256\): they are "
                                        r"read from `text` data, not from synthetic"):
        load_data(DataConfig.model_validate("synthetic"), (T,), seed=0, root=tmp_path, classes=10,
                  vocab=256)


def test_text_from_the_command_line(tmp_path, monkeypatch):
    from netspec.training.config import data_from_arg

    monkeypatch.chdir(tmp_path)
    spec_text = DataConfig.model_validate({"text": {"path": "a", "val_split": 0.1}})
    assert data_from_arg("text:stdlib", spec_text).text.model_dump() == {"path": "stdlib",
                                                                         "val_split": 0.1}
    assert data_from_arg("notes.txt", DataConfig.model_validate("digits")).text.path == str(
        tmp_path / "notes.txt")
    assert data_from_arg("digits", spec_text).digits.val_split == 0.1


# -- the task and its metrics --------------------------------------------------------------------

def test_loss_accuracy_and_perplexity_are_torch_s_over_every_position():
    from netspec.training.metrics import perplexity

    generator = torch.Generator().manual_seed(0)
    out = torch.randn(3, T, 256, generator=generator)
    y = torch.randint(0, 256, (3, T), generator=generator)
    task = make_task(LossConfig.model_validate("cross_entropy"), "fc2", (T, 256),
                     y.to(torch.uint8), [], vocab=256)
    expected = F.cross_entropy(out.permute(0, 2, 1), y)  # torch's (B, C, T) form
    assert torch.allclose(task.loss(out, y), expected)
    assert int(task.correct(out, y)) == int((out.argmax(2) == y).sum()) and task.units == T
    assert perplexity(float(expected)) == pytest.approx(float(expected.exp()), rel=1e-6)
    assert perplexity(1e4) == math.inf
    assert task.best_metric == "val_loss" and task.classes == 0


@pytest.mark.parametrize(("shape", "found"), [((T * 256,), "8192"), ((T, 200), "32x200"),
                                              ((16, 256), "16x256")])
def test_an_output_that_is_not_t_by_256_scores_is_refused(shape, found):
    from netspec.training.task import TaskError

    with pytest.raises(TaskError) as info:
        make_task(LossConfig.model_validate("cross_entropy"), "fc2", shape,
                  torch.zeros(4, T, dtype=torch.uint8), [], vocab=256)
    assert str(info.value) == (f"a language model gives 256 scores (one per token) at each of its "
                               f"{T} positions: the output `fc2` must be {T}x256, found {found}; "
                               f"end the network with `linear: 256` on [{T}, D] vectors")


def test_a_wider_output_is_noted_and_other_losses_are_refused():
    from netspec.training.task import TaskError

    task = make_task(LossConfig.model_validate("cross_entropy"), "fc2", (T, 300),
                     torch.zeros(4, T, dtype=torch.uint8), [], vocab=256)
    assert task.notes == ("the output `fc2` has 300 values but the data has 256 classes; outputs "
                          "256..299 are never the target, and the loss still trains them towards "
                          "low scores",)
    with pytest.raises(TaskError, match="text data trains a language model with cross_entropy, "
                                        "not mse; use `loss: cross_entropy`"):
        make_task(LossConfig.model_validate("mse"), "fc2", (T, 256),
                  torch.zeros(4, T, dtype=torch.uint8), [], vocab=256)


def test_the_epoch_line_shows_perplexity():
    from netspec.training.metrics import epoch_line

    row = {"epoch": 1, "lr": 1e-3, "train_loss": 2.0, "val_loss": 1.5, "train_acc": 0.25,
           "val_acc": 0.5, "train_ppl": math.exp(2.0), "val_ppl": math.exp(1.5),
           "images_per_s": 100.0, "seconds": 1.0}
    line = epoch_line(row, 2, True)
    assert "train loss 2.0000 acc 25.00% ppl   7.39" in line
    assert "val loss 1.5000 acc 50.00% ppl   4.48" in line


# -- refusals through the command line -----------------------------------------------------------

@pytest.mark.parametrize(("change", "message"), [
    (("vocab: 256}", "vocab: 100}"), "text data is UTF-8 bytes (ids 0..255); the spec's input has "
                                     "vocab 100: declare it as `input: {tokens: [T], vocab: 256}`"),
    (("linear: 256", "linear: 200"), "a language model gives 256 scores (one per token) at each of "
                                     "its 32 positions: the output `fc2` must be 32x256, found "
                                     "32x200; end the network with `linear: 256` on [32, D] vectors"),
])
def test_netspec_train_refuses_a_spec_that_is_no_byte_language_model(tmp_path, change, message):
    spec = spec_file(tmp_path, TINY.replace(*change))
    assert refused(["train", str(spec), "--quiet", "--out", str(tmp_path / "run")]) == \
        f"{spec}: error: {message}"
    assert not (tmp_path / "run").exists()


def test_netspec_train_refuses_text_for_an_image_input(tmp_path):
    spec = spec_file(tmp_path, "name: img\ninput: [1, 4, 4]\nlayers: [flatten, {linear: 10}]\n"
                               "train: {device: cpu, data: {text: corpus.txt}}\n")
    assert refused(["train", str(spec), "--quiet", "--out", str(tmp_path / "run")]) == (
        f"{spec}: error: text data gives token ids (bytes); the spec's input holds float values "
        "[1, 4, 4]: declare it as `input: {tokens: [T], vocab: 256}`")


def test_netspec_sample_refuses_what_holds_no_language_model(tmp_path):
    assert refused(["sample", str(tmp_path)]) == (
        f"{tmp_path}: error: no checkpoint in {tmp_path} (best.pt or last.pt): is it a run folder?")
    assert refused(["sample", str(tmp_path / "x.pt")]) == (
        f"{tmp_path / 'x.pt'}: error: no checkpoint at {tmp_path / 'x.pt'}")
    (tmp_path / "bad.pt").write_bytes(b"not a zip")
    assert refused(["sample", str(tmp_path / "bad.pt")]).startswith(
        f"{tmp_path / 'bad.pt'}: error: cannot read checkpoint")


# -- training and sampling -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A run of the tiny per-position model: one epoch on 8 KB of text (a few seconds)."""
    folder = tmp_path_factory.mktemp("lm")
    spec = spec_file(folder, corpus=text_bytes(8000))
    netspec.train(spec, out=folder / "run", verbose=False)
    return folder / "run"


def test_a_run_on_text_records_perplexity_and_keeps_the_best_by_loss(trained):
    import json

    rows = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["val_ppl"] == pytest.approx(math.exp(rows[0]["val_loss"]))
    assert rows[0]["train_ppl"] == pytest.approx(math.exp(rows[0]["train_loss"]))
    state = torch.load(trained / "best.pt", weights_only=True)
    assert state["best"]["metric"] == "val_loss"
    assert not (trained / "confusion.png").exists()


def test_sample_is_deterministic_for_a_seed_and_as_long_as_asked(trained):
    first = netspec.sample(trained, prompt="x1 = ", length=40, seed=3)
    assert netspec.sample(trained, prompt="x1 = ", length=40, seed=3) == first
    assert netspec.sample(trained, prompt="x1 = ", length=40, seed=4) != first
    assert 0 < len(first) <= 40  # a byte decodes to one character at most (U+FFFD for a bad one)
    assert netspec.sample(trained, length=0) == ""
    greedy = netspec.sample(trained / "last.pt", prompt="x", length=10, temperature=0, seed=1)
    assert greedy == netspec.sample(trained, prompt="x", length=10, temperature=0, seed=2)
    assert greedy.isascii() and len(greedy) == 10  # the likeliest bytes of an ASCII text


def test_sample_draws_each_byte_from_the_scores_at_the_last_prompt_position(trained):
    """The first byte at temperature 0 is the argmax of the model's scores at the prompt's
    last position, the window filled from its start (computed here with the model itself)."""
    from netspec.training.sample import language_model

    model, window = language_model(trained)
    prompt = b"x12 = foo"
    x = torch.zeros(1, window, dtype=torch.int64)
    x[0, :len(prompt)] = torch.tensor(list(prompt))
    with torch.no_grad():
        expected = int(model(x)[0, len(prompt) - 1].argmax())
    assert netspec.sample(trained, prompt=prompt.decode(), length=1, temperature=0) == \
        bytes([expected]).decode(errors="replace")


def test_netspec_sample_prints_the_prompt_and_its_continuation(trained):
    result = CliRunner().invoke(main, ["sample", str(trained), "--prompt", "x3", "--length", "20",
                                       "--seed", "5", "--top-k", "5"])
    assert result.exit_code == 0, result.output
    expected = netspec.sample(trained, prompt="x3", length=20, seed=5, top_k=5)
    assert result.stdout.rstrip("\n") == ("x3" + expected).rstrip("\n")


def test_sample_refuses_a_run_that_is_no_language_model_and_bad_arguments(tmp_path, trained):
    spec = tmp_path / "net.yaml"
    spec.write_text("name: net\ninput: [4]\nlayers: [{linear: 3}]\n"
                    "train: {epochs: 1, device: cpu, data: {synthetic: {size: 20}}}\n")
    netspec.train(spec, out=tmp_path / "run", verbose=False)
    assert refused(["sample", str(tmp_path / "run")]) == (
        f"{tmp_path / 'run'}: error: {tmp_path / 'run' / 'best.pt'} is not a language model: it "
        "was trained on synthetic data; netspec sample needs a run trained on `text` data")
    assert refused(["sample", str(trained), "--prompt", ""]) == (
        f"{trained}: error: the prompt is empty: give at least one character (each byte is drawn "
        "from the ones before it)")
    with pytest.raises(netspec.TrainError, match="top_k must be 1 or more, found 0"):
        netspec.sample(trained, top_k=0)


def test_a_spec_that_uses_block_files_samples_from_its_file_or_the_one_named(tmp_path):
    """The checkpoint records the spec's file, whose `use:` files lie beside it; once the
    file has moved, `--spec` names it, and the text alone says to."""
    (tmp_path / "blocks.yaml").write_text(textwrap.dedent("""
        blocks:
          head:
            layers: [{linear: 64}, relu, {linear: 256}]
    """))
    spec = spec_file(tmp_path, TINY.replace("    layers:\n", "    use: [blocks.yaml]\n    layers:\n")
                     .replace("      - linear: 64\n      - relu\n      - linear: 256\n",
                              "      - head\n"), corpus=text_bytes(2000))
    netspec.train(spec, out=tmp_path / "run", verbose=False)
    expected = netspec.sample(tmp_path / "run", prompt="ab", length=8, seed=1)
    assert expected
    moved = tmp_path / "moved"
    moved.mkdir()
    for name in ("lm.yaml", "blocks.yaml"):
        (tmp_path / name).rename(moved / name)
    message = refused(["sample", str(tmp_path / "run")])
    assert "`use` needs a spec read from a file" in message and "--spec SPEC" in message
    result = CliRunner().invoke(main, ["sample", str(tmp_path / "run"), "--prompt", "ab",
                                       "--length", "8", "--seed", "1", "--spec",
                                       str(moved / "lm.yaml")])
    assert result.exit_code == 0, result.output
    assert result.stdout.rstrip("\n") == ("ab" + expected).rstrip("\n")


@pytest.mark.slow  # two epochs of training
def test_the_tiny_model_learns_the_text_below_a_uniform_guess(tmp_path):
    spec = spec_file(tmp_path, TINY.replace("epochs: 1", "epochs: 2"), text_bytes(40_000))
    result = netspec.train(spec, out=tmp_path / "run", verbose=False)
    last = result.history[-1]
    assert last["val_loss"] < math.log(256) / 2, last
    assert last["val_ppl"] == pytest.approx(math.exp(last["val_loss"]))
