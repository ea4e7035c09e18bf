"""What the network is trained to do, given its loss: the loss function, what counts as a
correct answer, which validation number picks the best checkpoint, and the check, before
any training, that the spec's output fits the data's targets.

A language model (text data: next-token ids `[T]` per sample) is classification at every
position: its output `[T, V]` holds V scores per position, the loss is the cross-entropy
averaged over every position of every sample, and accuracy is the share of positions whose
highest score is the next token."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from netspec.report import dims_text
from netspec.training.config import LossConfig


class TaskError(ValueError):
    """The spec's output does not fit the loss or the targets; str() is the message."""


@dataclass(frozen=True)
class Task:
    """`loss(out, y)` (a mean over the batch), `correct(out, y)` (a count, or None when
    accuracy means nothing, as for mse), `units` (answers per sample that accuracy divides
    by) and `classes` for a confusion matrix (0: none)."""

    config: LossConfig
    units: int
    classes: int
    notes: tuple[str, ...] = ()
    """What fits but may not be meant (outputs no label ever names), to show as warnings."""
    language_model: bool = False
    """Next-token ids at every position: perplexity is reported, and val_loss picks the best."""

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """out: (B, K) scores and y: (B,) labels, or (B, T, V) and (B, T) for a language
        model (a mean over every position); (B, ...) and targets of as many values else."""
        if self.config.kind == "cross_entropy":
            return F.cross_entropy(out.flatten(0, -2), y.flatten(),
                                   label_smoothing=self.config.options.label_smoothing)
        if self.config.kind == "bce_with_logits":
            return F.binary_cross_entropy_with_logits(out, self._as_output(y, out))
        return F.mse_loss(out, self._as_output(y, out))

    def correct(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor | None:
        if self.config.kind == "cross_entropy":
            return (out.argmax(-1) == y).sum()
        if self.config.kind == "bce_with_logits":
            return ((out > 0) == (self._as_output(y, out) > 0.5)).sum()
        return None

    @property
    def has_accuracy(self) -> bool:
        return self.config.kind != "mse"

    @property
    def best_metric(self) -> str:
        """The validation number that picks `best.pt`: accuracy when there is one, but the
        loss for a language model, whose token accuracy counts only the top guess at each
        position while the loss (and perplexity, its exponential) scores the whole
        distribution that sampling draws from."""
        return "val_acc" if self.has_accuracy and not self.language_model else "val_loss"

    @staticmethod
    def _as_output(y: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        return y.reshape(out.shape).to(out.dtype)


def make_task(config: LossConfig, output: str, shape: tuple[int, ...], targets: torch.Tensor,
              classes: list[str], vocab: int | None = None) -> Task:
    """Check that the spec's output (`output`, per-sample `shape`) fits `config`'s loss and
    the training `targets` (all labels, (N,) or (N, ...); (N, T) token ids drawn from `vocab`
    ids for text); raise TaskError saying what does not fit and what would."""
    size = 1
    for d in shape:
        size *= d
    per_sample = tuple(targets.shape[1:])
    if vocab is not None:
        if config.kind != "cross_entropy":
            raise TaskError(f"text data trains a language model with cross_entropy, not "
                            f"{config.kind}; use `loss: cross_entropy`")
        check_language_model(output, shape, per_sample[0], vocab)
        return Task(config, per_sample[0], 0, _unused_outputs(output, shape[1], vocab),
                    language_model=True)
    if config.kind == "cross_entropy":
        if len(shape) != 1:
            raise TaskError(f"cross_entropy needs class scores: the output `{output}` has shape "
                            f"{dims_text(shape)}; end the network with a linear layer (or flatten)")
        if targets.is_floating_point() or per_sample:
            raise TaskError(f"cross_entropy needs one class index per sample; the data has "
                            f"{targets.dtype} targets of shape {dims_text(per_sample) or 'scalar'}")
        count = max(len(classes), int(targets.max()) + 1 if len(targets) else 0)
        if count > shape[0] or int(targets.min()) < 0:
            raise TaskError(f"the output `{output}` has {shape[0]} values but the data has "
                            f"{count} classes (labels {int(targets.min())}..{int(targets.max())}); "
                            f"make the last layer `linear: {count}`")
        return Task(config, 1, shape[0], _unused_outputs(output, shape[0], count))
    want = per_sample or (1,)
    if int(torch.tensor(want).prod()) != size:
        raise TaskError(f"{config.kind} compares the output `{output}` ({dims_text(shape)}) with "
                        f"targets of shape {dims_text(want)} per sample; they must have as many values")
    binary = targets.is_floating_point() or (int(targets.min()) >= 0 and int(targets.max()) <= 1)
    if config.kind == "bce_with_logits" and not binary:
        raise TaskError("bce_with_logits needs 0/1 targets; the data's labels go up to "
                            f"{int(targets.max())} (use cross_entropy for classes)")
    return Task(config, size if config.kind == "bce_with_logits" else 1, 0)


def check_language_model(output: str, shape: tuple[int, ...], length: int, vocab: int) -> None:
    """Refuse an output that is not `[length, V]` scores with V >= `vocab`: one score per
    token for each of the `length` positions of the input."""
    if len(shape) != 2 or shape[0] != length or shape[1] < vocab:
        raise TaskError(f"a language model gives {vocab} scores (one per token) at each of its "
                        f"{length} positions: the output `{output}` must be {length}x{vocab}, "
                        f"found {dims_text(shape)}; end the network with `linear: {vocab}` on "
                        f"[{length}, D] vectors")


def _unused_outputs(output: str, values: int, classes: int) -> tuple[str, ...]:
    """A note when the output has more class scores than the data has classes."""
    if values == classes:
        return ()
    unused = f"output {classes} is never the target, and the loss still trains it" \
        if values == classes + 1 else \
        f"outputs {classes}..{values - 1} are never the target, and the loss still trains them"
    return (f"the output `{output}` has {values} values but the data has {classes} classes; "
            f"{unused} towards low scores",)
