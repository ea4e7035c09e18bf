"""The training loop: epochs of steps, validation, checkpoints, metrics and plots.

One `Trainer` per run. The hot path is the plain PyTorch step (forward under autocast, loss,
backward, optional clipping, optimizer and schedule step); bookkeeping stays on the device
and is read back every `LOG_EVERY` steps, so a GPU is never stalled by it.

Resuming is exact: the batch order is a function of (seed, epoch), and the checkpoint holds
every state a step reads (weights, optimizer, schedule, scaler, random generators, the
position in the epoch), so a run stopped and resumed ends with the weights of a run that
never stopped, bit for bit, on the same machine.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import ValidationError

from netspec import train_step
from netspec.errors import Diagnostic, SpecError, TrainError
from netspec.report import Report, dims_text
from netspec.spec.document import Spec
from netspec.training import autobatch, checkpoints
from netspec.training import resume as resumption
from netspec.training.config import AUTO, TrainConfig, data_root
from netspec.training.data import Data, DataError, load_data
from netspec.training.devices import Precision, memory_format, pick_device, tune
from netspec.training.distributed import World, join, peer_errors, placement
from netspec.training.metrics import MetricsLog, TensorBoardLog, epoch_line, perplexity
from netspec.training.optim import (
    apply_changed_options,
    load_schedule,
    make_optimizer,
    make_schedule,
    rebase,
)
from netspec.training.plots import plot_confusion, plot_curves
from netspec.training.progress import ProgressBar
from netspec.training.runs import RunFolder
from netspec.training.task import TaskError, make_task
from netspec.weights import WeightsError, WeightsReport, load_weights

LOG_EVERY = 10
"""Steps between reads of the running loss (progress bar, NaN check, stop requests)."""

EpochEnd = Callable[[dict[str, Any]], bool | None]


@dataclass
class TrainResult:
    """What a run left: its folder, one metrics row per epoch, the best epoch's row, and the
    trained model (the final weights, not the best). `stopped` is None when every epoch ran,
    the signal's name when one interrupted it, `callback` when `on_epoch` asked to stop."""

    out: Path
    history: list[dict[str, Any]]
    best: dict[str, Any] | None
    model: torch.nn.Module
    stopped: str | None = None
    warnings: list[str] = field(default_factory=list)
    """What training accepted but may not be meant (images converted to the input's
    channels, outputs no label names); each was printed as `warning: ...` when it started."""
    transferred: WeightsReport | None = None
    """Where each tensor of `init_from` went (None without one, and on a resume)."""


class _Tally:
    """An epoch's running sums: loss x samples and correct answers on the device (added
    without a sync), samples and answers counted on the host, and the last steps' losses,
    kept by reference, for the NaN check."""

    def __init__(self, device: torch.device, saved: dict[str, Any] | None = None) -> None:
        saved = saved or {}
        self.loss = saved.get("loss", torch.zeros(())).to(device)
        self.correct = saved.get("correct", torch.zeros(())).to(device)
        self.samples: int = saved.get("samples", 0)
        self.units: int = saved.get("units", 0)
        self.recent: list[tuple[int, torch.Tensor]] = []

    def add(self, step: int, loss: torch.Tensor, correct: torch.Tensor | None, samples: int,
            units: int) -> None:
        self.loss.add_(loss, alpha=samples)
        if correct is not None:
            self.correct.add_(correct)
        self.samples += samples
        self.units += units
        self.recent.append((step, loss))

    def first_nonfinite(self) -> int | None:
        """The first step since the last call whose loss was NaN or infinite."""
        steps, losses = zip(*self.recent, strict=True) if self.recent else ((), ())
        self.recent = []
        if not losses:
            return None
        bad = (~torch.isfinite(torch.stack(losses))).nonzero()
        return steps[int(bad[0])] if len(bad) else None

    def totals(self, world: World) -> tuple[float, float, int, int]:
        """(loss x samples, correct, samples, units) summed over every rank."""
        sums = torch.cat([torch.stack([self.loss, self.correct]).cpu().double(),
                          torch.tensor([self.samples, self.units], dtype=torch.float64)])
        if world.distributed:
            sums = world.sum(sums.to(self.loss.device)).cpu()
        loss, correct, samples, units = sums.tolist()
        return loss, correct, int(samples), int(units)

    def saved(self) -> dict[str, Any]:
        return {"loss": self.loss.cpu(), "correct": self.correct.cpu(), "samples": self.samples,
                "units": self.units}


@dataclass
class _Position:
    """Where training is: epochs finished, steps finished in the next one, and that
    epoch's running sums."""

    epoch: int = 0
    step: int = 0
    tally: _Tally | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] | None = None


class _Stop:
    """Set by SIGINT/SIGTERM: the loop finishes its step, saves, and returns. A second
    Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        self.signal: str | None = None

    @contextmanager
    def installed(self) -> Iterator[_Stop]:
        if threading.current_thread() is not threading.main_thread():
            yield self  # signals reach only the main thread: nothing to install
            return
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

        def handle(signum: int, frame: Any) -> None:
            self.signal = signal.Signals(signum).name
            signal.signal(signal.SIGINT, signal.default_int_handler)

        for s in previous:
            signal.signal(s, handle)
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)


def _by_ctrl_c(error: BaseException | None) -> bool:
    """Whether `error` is a Ctrl-C or was caused by one: a KeyboardInterrupt raised while a
    C extension initialises (matplotlib's, imported to draw the plots) comes out as an
    ImportError chained to it."""
    while error is not None:
        if isinstance(error, KeyboardInterrupt):
            return True
        error = error.__cause__ or error.__context__
    return False


def run(spec: Spec, report: Report, overrides: dict[str, Any], resume: Path | None = None,
        on_epoch: EpochEnd | None = None, verbose: bool = True,
        progress: bool | None = None, memory: int | None = None) -> TrainResult:
    """Train `spec` (already checked: `report`) with its `train:` section changed by
    `overrides` (see `TrainConfig.override`), or continue the run saved in `resume` with
    those settings (see `netspec.training.resume`). The run folder is claimed before anything
    is written (see `netspec.training.runs`). `memory`: the budget in bytes a `batch_size:
    auto` is chosen for (netspec.training.autobatch; default: what the device has free).
    Raises TrainError for anything that stops a run from starting or going on; the message
    says what and where."""
    try:
        config = spec.training.override(**overrides)
    except ValidationError as exc:
        raise TrainError("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                   for e in exc.errors())) from None
    _require_gradients(spec, report)
    resumed = _Resumed.read(Path(resume), spec, config) if resume is not None else None
    if resumed is not None:
        config = resumed.config
    folder = _claim(spec.name, overrides.get("out") or (None if resume else config.out),
                    Path(resume) if resume is not None else None)
    try:
        if folder.claimed:
            checkpoints.remove_temporary(folder.path)
        return Trainer(spec, report, config, folder.path, resumed, verbose, progress,
                       memory).fit(on_epoch)
    finally:
        folder.release()


def _require_gradients(spec: Spec, report: Report) -> None:
    """TrainError unless a gradient reaches some trained parameter (a network with none,
    every layer frozen or no weights, or whose outputs depend on none has nothing to
    train); SpecError, positioned, unless the backward pass can run (no in-place layer
    overwrites what another keeps for it: check's `inplace-conflict` warning)."""
    conflicts = [replace(w, severity="error") for w in report.warnings
                 if w.code == "inplace-conflict"]
    if conflicts:
        raise SpecError(conflicts)
    if not report.trainable_params:
        raise TrainError(f"{spec.name} has nothing to train: no layer has trainable parameters "
                         "(every one frozen, or none has weights)")
    untrained = train_step.without_gradient(report)
    if sum(row.trainable for row in untrained) == report.trainable_params:
        raise TrainError(f"{spec.name} has nothing to train: no gradient reaches its trained "
                         f"parameters, as no output depends on their values "
                         f"({', '.join(row.name for row in untrained)})")


@dataclass(frozen=True)
class _Resumed:
    """A checkpoint to continue: its state, the run's own settings, the settings it
    continues with (`batch_size: auto` is the run's batch), and what differs."""

    path: Path
    state: dict[str, Any]
    saved: TrainConfig
    config: TrainConfig
    changes: list[str]

    @classmethod
    def read(cls, path: Path, spec: Spec, config: TrainConfig) -> _Resumed:
        """Load and verify the checkpoint, and compare its settings with `config`; TrainError
        for a damaged or foreign checkpoint, or a change the run cannot take."""
        try:
            state = checkpoints.load(path)
            checkpoints.check_spec(state, path, spec.name,
                                   checkpoints.architecture_hash(spec._graph))
        except checkpoints.CheckpointError as exc:
            raise TrainError(str(exc)) from None
        saved = resumption.saved_settings(state["config"], str(path))
        config = resumption.same_batch(saved, config)
        return cls(path, state, saved, config, resumption.changes(saved, config, state["step"]))


def _claim(name: str, chosen: str | None, resume: Path | None) -> RunFolder:
    """Claim the folder the run writes: the one asked for, the resumed run's own, or
    runs/NAME (runs/NAME-2, -3, ... when taken). A folder holding another run is refused,
    never overwritten. Only rank 0 writes, so only rank 0 claims."""
    main = int(os.environ.get("RANK", "0")) == 0
    if chosen is not None:
        out = Path(chosen)
        if not main:
            return RunFolder.unclaimed(out)
        if resume is not None and out.resolve() == resume.parent.resolve():
            return RunFolder.reenter(out)
        return RunFolder.claim_new(out)
    if resume is not None:
        return RunFolder.reenter(resume.parent) if main else RunFolder.unclaimed(resume.parent)
    return RunFolder.claim_default(name) if main else RunFolder.unclaimed(Path("runs") / name)


@contextmanager
def _data_errors() -> Iterator[None]:
    """A sample found unreadable mid-run (a corrupt image in a streamed folder) ends the run
    with its message; the last checkpoint stays as it was."""
    try:
        yield
    except DataError as exc:
        raise TrainError(str(exc)) from None


class Trainer:
    """Trains `spec`'s network as `config` says, writing into `out` (rank 0 only)."""

    def __init__(self, spec: Spec, report: Report, config: TrainConfig, out: Path,
                 resume: _Resumed | None = None, verbose: bool = True,
                 progress: bool | None = None, memory: int | None = None) -> None:
        from netspec.api import build

        self.spec, self.config, self.out = spec, config, out
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        try:
            self.device = pick_device(config.device, local_rank)
            self.precision = Precision.resolve(config.precision, self.device)
        except ValueError as exc:
            raise TrainError(str(exc)) from None
        self.world: World = join(self.device.type)
        self.verbose = verbose and self.world.main
        self.progress = progress
        (name, shape), = self._single(report.inputs, "input").items()
        (output, out_shape), = self._single(report.outputs, "output").items()
        self.auxiliary = self._auxiliary_like(report.auxiliary, output, out_shape)
        tune(self.device)
        self.memory_format = memory_format(config.channels_last, self.device, len(shape))
        self.data = self._load_data(shape, out_shape, report.token_inputs.get(name))
        if config.batch_size == AUTO:
            self.config = config = self._auto_batch(report, memory)
        if config.batch_size % self.world.size:
            raise TrainError(f"batch size {config.batch_size} does not split over "
                             f"{self.world.size} processes; use a multiple of {self.world.size}")
        try:
            self.task = make_task(config.loss, output, out_shape, self.data.targets("train"),
                                  self.data.classes, self.data.vocab)
        except TaskError as exc:
            raise TrainError(str(exc)) from None
        self.warnings = [*self.data.notes, *self.task.notes]
        if resume is not None and resume.changes:
            self.warnings.append("resuming with settings that differ from the run's: "
                                 + "; ".join(resume.changes))
        if self.verbose:
            for warning in self.warnings:
                print(f"warning: {warning}", file=sys.stderr)

        self._seed()
        self.model = build(spec, seed=config.seed)
        self.transferred = self._init_from() if resume is None else None
        self.model = self.model.to(self.device)
        if self.memory_format is not None:
            self.model = self.model.to(memory_format=self.memory_format)
        self.placement = placement(config.strategy, self.world, self.device)
        self.placement.prepare(self.model)
        local_batch = config.batch_size // self.world.size
        self.train_loader = self.data.loader("train", local_batch, self.device,
                                             self.world.rank, self.world.size)
        self.val_loader = self.data.loader("val", 2 * local_batch, self.device,  # no grads kept
                                           self.world.rank, self.world.size)
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = make_optimizer(config.optimizer, trainable)
        self.schedule = make_schedule(config.schedule, self.optimizer, len(self.train_loader),
                                      config.epochs)
        self.scaler = self.precision.scaler()
        self.position = _Position()
        self.writer = checkpoints.Writer()
        self._confusion: torch.Tensor | None = None
        self._epoch_time = (0.0, 0)
        if resume is not None:
            self._restore(resume)
        self.net = self._wrap(self.model)

    # -- setting up ------------------------------------------------------------------------

    @staticmethod
    def _single(tensors: dict[str, tuple[int, ...]], what: str) -> dict[str, tuple[int, ...]]:
        if len(tensors) != 1:
            raise TrainError(f"netspec train needs a spec with one {what}; this one has "
                             f"{len(tensors)}: {', '.join(tensors)}")
        return tensors

    @staticmethod
    def _auxiliary_like(auxiliary: dict[str, tuple[int, ...]], output: str,
                        shape: tuple[int, ...]) -> int:
        """How many auxiliary outputs the network returns in training, each of the output's
        shape (it is trained against the same targets)."""
        for name, other in auxiliary.items():
            if other != shape:
                raise TrainError(f"the auxiliary output `{name}` is {dims_text(other)} and the "
                                 f"output `{output}` {dims_text(shape)}; netspec train trains "
                                 "each auxiliary output against the output's targets, so they "
                                 "need its shape")
        return len(auxiliary)

    def _step_loss(self, returned: torch.Tensor | tuple[torch.Tensor, ...], y: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """The output (in float32) and the loss of a training forward's result: the
        output's loss, plus `auxiliary_weight` times each auxiliary output's (a network with
        auxiliary outputs returns them after its output in training)."""
        out, *extra = (r.float() for r in returned) if self.auxiliary else (returned.float(),)
        loss = self.task.loss(out, y)
        for scores in extra:
            loss = loss + self.config.auxiliary_weight * self.task.loss(scores, y)
        return out, loss

    def _load_data(self, shape: tuple[int, ...], out_shape: tuple[int, ...],
                   vocab: int | None) -> Data:
        root = data_root(self.spec._source.file if self.spec._source else "<dict>")
        try:
            return load_data(self.config.data, tuple(shape), seed=self.config.seed, root=root,
                             classes=out_shape[0] if len(out_shape) == 1 else None, vocab=vocab)
        except DataError as exc:
            raise TrainError(str(exc)) from None

    def _init_from(self) -> WeightsReport | None:
        """Load `init_from` into the new model (see `netspec.load_weights`) and print where
        its tensors went. A file that cannot be read, holds no state_dict, or of which nothing
        fits is an error at the spec's `init_from` (a SpecError), or a TrainError when the
        path came from an override rather than the spec."""
        path = self.config.init_from
        if path is None:
            return None
        source = self.spec._source
        try:
            transferred = load_weights(self.model, data_root(source.file if source else "<dict>")
                                       / path)
        except WeightsError as exc:
            raise self._init_error(str(exc)) from None
        if not transferred:
            raise self._init_error(f"{path}: nothing in it fits this model "
                                   f"({transferred.summary()})")
        if self.verbose:
            print(transferred.summary(), flush=True)
        return transferred

    def _init_error(self, message: str) -> SpecError | TrainError:
        """An error about `init_from`, at its place in the spec when the spec set it."""
        spec, source = self.spec, self.spec._source
        written = spec.train.get("init_from") if isinstance(spec.train, dict) else None
        if source is None or written != self.config.init_from:
            return TrainError(f"init_from: {message}")
        return SpecError([Diagnostic(source.where(spec.train, "init_from"), "",
                                     f"`train.init_from`: {message}")])

    def _auto_batch(self, report: Report, memory: int | None) -> TrainConfig:
        """The settings with `batch_size: auto` chosen (netspec.training.autobatch), at the
        precision this run resolved; the choice is printed."""
        with_precision = self.config.model_copy(update={"precision": self.precision.name})
        batch, line = autobatch.choose(report, with_precision, self.device, self.world,
                                       self.data.train_size, memory)
        if self.verbose:
            print(line, flush=True)
        return self.config.model_copy(update={"batch_size": batch})

    def _seed(self) -> None:
        """Seed every generator, each rank its own stream: it draws dropout's masks alone, as
        augmentation depends on (seed, epoch, sample) only (see `netspec.training.data`). A
        resumed run gets its generators back from the checkpoint instead."""
        seed = self.config.seed + self.world.rank
        torch.manual_seed(seed)
        random.seed(seed)
        np.random.seed(seed)

    def _wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        net = self.placement.wrap(model)
        return torch.compile(net) if self.config.compile else net

    def _restore(self, resume: _Resumed) -> None:
        """Put the run's state back; TrainError when the checkpoint's parts do not fit."""
        state = resume.state
        try:
            self.placement.load(self.model, self.optimizer, state["model"], state["optimizer"])
            load_schedule(self.schedule, state["scheduler"])
            self.scaler.load_state_dict(state["scaler"])
            rng = state["rng"]
            if len(rng) == self.world.size:
                checkpoints.restore_rng(rng[self.world.rank])
        except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise TrainError(f"cannot resume from {resume.path}: its state does not fit this "
                             f"run ({reason[:300]})") from None
        apply_changed_options(self.optimizer, resume.saved.optimizer, self.config.optimizer)
        rebase(self.schedule, self.config.lr)
        if len(rng) != self.world.size and self.verbose:
            print(f"note: the checkpoint was written by {len(rng)} process(es), this run has "
                  f"{self.world.size}; random streams restart, so the run will not be "
                  f"bit-identical to an uninterrupted one")
        partial = state["partial"]
        self.position = _Position(state["epoch"], state["step"],
                                  _Tally(self.device, partial) if partial else None,
                                  list(state["history"]), state["best"])

    # -- running -----------------------------------------------------------------------------

    def fit(self, on_epoch: EpochEnd | None = None) -> TrainResult:
        """Train the remaining epochs; save `last.pt` each epoch and `best.pt` on a new best,
        write metrics and, at the end, plots. Stops cleanly (checkpoint written) on SIGINT
        or SIGTERM, or when `on_epoch(row)` returns True."""
        pos, stopped = self.position, None
        if pos.epoch >= self.config.epochs and self.verbose:
            print(f"already trained {pos.epoch} epochs (of {self.config.epochs}); nothing to do")
        logs = self._open_logs()
        try:
            with _Stop().installed() as stop, _data_errors(), peer_errors(self.world):
                while pos.epoch < self.config.epochs and stopped is None:
                    if not self._train_epoch(stop):
                        stopped = stop.signal
                        self._save(self._state(self._gather_rng()), "last.pt")
                        break
                    row = self._end_epoch(logs)
                    if on_epoch is not None and on_epoch(row):
                        stopped = "callback"
            self._flush()
            if self.world.main and pos.history:
                self._plot()
        except BaseException as exc:
            if not _by_ctrl_c(exc):
                raise
            self.writer = checkpoints.Writer()  # out at once: a write in flight is abandoned
            raise KeyboardInterrupt from exc
        finally:
            self.writer.wait_quietly()
            for log in logs:
                log.close()
            self.train_loader.close()
            self.val_loader.close()
            self.world.close()
        if stopped and self.verbose and stopped != "callback":
            print(f"stopped by {stopped} at epoch {pos.epoch + 1}, step {pos.step}; "
                  f"resume with --resume {self.out / 'last.pt'}")
        return TrainResult(self.out, pos.history, pos.best, self.model, stopped, self.warnings,
                           self.transferred)

    def _train_epoch(self, stop: _Stop) -> bool:
        """Run the current epoch from its current step; False when stopped by a signal."""
        pos, loader, task = self.position, self.train_loader, self.task
        epoch = pos.epoch + 1
        self.net.train()
        if pos.tally is None:
            pos.tally = _Tally(self.device)
        tally = pos.tally
        bar = ProgressBar(len(loader), f"epoch {epoch}/{self.config.epochs}", enabled=self.progress
                          if self.verbose else False, start=pos.step)
        start_time, start_images = time.perf_counter(), 0
        steps = enumerate(loader.epoch(epoch, pos.step), pos.step + 1)
        for step, (x, y) in steps:
            if self.memory_format is not None:
                x = x.contiguous(memory_format=self.memory_format)
            with self.precision.autocast():
                out, loss = self._step_loss(self.net(x), y)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if self.config.clip_grad is not None:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.clip_grad)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.schedule.step()
            samples = len(y)
            tally.add(step, loss.detach(), task.correct(out.detach(), y), samples,
                      samples * task.units)
            pos.step = step
            start_images += samples
            if step % LOG_EVERY == 0 or step == len(loader):
                self._check_finite(tally.first_nonfinite(), epoch)
                bar.update(step, start_images * self.world.size, **self._stats(
                    tally.loss.item(), tally.correct.item(), tally.samples, tally.units))
                if self.world.any(stop.signal is not None, self.device):
                    bar.close()
                    stop.signal = stop.signal or "a signal on another rank"
                    return False
        bar.close()
        self._epoch_time = (time.perf_counter() - start_time, start_images * self.world.size)
        return True

    def _stats(self, loss: float, correct: float, samples: int, units: int) -> dict[str, float]:
        """Mean loss and, where they mean something, accuracy and perplexity, from running
        sums."""
        stats = {"loss": loss / max(samples, 1)}
        if self.task.has_accuracy:
            stats["acc"] = correct / max(units, 1)
        if self.task.language_model:
            stats["ppl"] = perplexity(stats["loss"])
        return stats

    def _check_finite(self, bad_step: int | None, epoch: int) -> None:
        if bad_step is not None:
            self._flush()
            last = self.out / "last.pt"
            kept = (f"the last good checkpoint is {last} (epoch {self.position.epoch})"
                    if last.exists() else "no checkpoint was written yet")
            raise TrainError(f"the loss became NaN or infinite at epoch {epoch}, step {bad_step}; "
                             f"training stopped and {kept}. Lower the learning rate, set "
                             f"`clip_grad`, or use fp32")

    def _end_epoch(self, logs: list[Any]) -> dict[str, Any]:
        """Validate, record the row, save checkpoints, print the summary line."""
        pos = self.position
        train = self._stats(*pos.tally.totals(self.world))  # type: ignore[union-attr]
        val = self.evaluate()
        seconds, images = self._epoch_time
        pos.epoch, pos.step, pos.tally = pos.epoch + 1, 0, None
        row = {"epoch": pos.epoch, "lr": self.schedule.get_last_lr()[0],
               "train_loss": train["loss"], "train_acc": train.get("acc"),
               "val_loss": val["loss"], "val_acc": val.get("acc"),
               "train_ppl": train.get("ppl"), "val_ppl": val.get("ppl"),
               "images_per_s": images / seconds if seconds else 0.0, "seconds": seconds}
        pos.history.append(row)
        metric = self.task.best_metric
        better = pos.best is None or (row[metric] > pos.best["value"] if metric == "val_acc"
                                      else row[metric] < pos.best["value"])
        if better:
            pos.best = {"metric": metric, "value": row[metric], "epoch": pos.epoch}
        state = self._state(self._gather_rng())  # on every rank: sharded weights are gathered
        if self.world.main:
            self._submit(state, "last.pt", ("best.pt",) if better else ())
            for log in logs:
                log.append(row)
        if self.verbose:
            print(epoch_line(row, self.config.epochs, better), flush=True)
        return row

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Mean validation `loss` and `acc` (none for mse) over every rank's share of the
        validation set; keeps the confusion matrix (rows: true class) for cross_entropy."""
        self.net.eval()
        task, k = self.task, self.task.classes
        tally = _Tally(self.device)
        confusion = torch.zeros(k * k, dtype=torch.long, device=self.device) if k else None
        for x, y in self.val_loader.epoch(0):
            if self.memory_format is not None:
                x = x.contiguous(memory_format=self.memory_format)
            with self.precision.autocast():
                out = self.net(x).float()
            tally.add(0, task.loss(out, y), task.correct(out, y), len(y), len(y) * task.units)
            if confusion is not None:
                confusion += torch.bincount(y * k + out.argmax(1), minlength=k * k)
        if confusion is not None:
            self._confusion = self.world.sum(confusion).reshape(k, k).cpu()
        return self._stats(*tally.totals(self.world))

    # -- files -------------------------------------------------------------------------------

    def _gather_rng(self) -> list[dict[str, Any]]:
        """Every rank's generator states, in rank order (collected on every rank)."""
        mine = checkpoints.rng_states()
        if not self.world.distributed:
            return [mine]
        import torch.distributed as dist

        states: list[Any] = [None] * self.world.size
        dist.all_gather_object(states, mine)
        return states

    def _state(self, rng: list[dict[str, Any]]) -> dict[str, Any]:
        """The checkpoint (whole on rank 0; every rank must call this, see `Placement`)."""
        pos, source = self.position, self.spec._source
        model, optimizer = self.placement.state(self.model, self.optimizer)
        text = source.text if source is not None and source.text is not None else ""
        file = Path(source.file) if source is not None else None
        return {
            "format": checkpoints.FORMAT,
            "spec": {"name": self.spec.name, "text": text,
                     "file": str(file.resolve()) if file is not None and file.is_file() else "",
                     "hash": checkpoints.architecture_hash(self.spec._graph),
                     "scale": self.spec.choice.scale, "params": dict(self.spec.choice.values)},
            "config": self.config.model_dump(mode="json", exclude_none=True),
            "epoch": pos.epoch, "step": pos.step,
            "partial": pos.tally.saved() if pos.tally is not None and pos.step else {},
            "model": model,
            "optimizer": optimizer,
            "scheduler": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rng,
            "history": pos.history, "best": pos.best,
            "data": {"mean": self.data.mean, "std": self.data.std, "classes": self.data.classes},
        }

    def _save(self, state: dict[str, Any], name: str) -> None:
        """Write the checkpoint `name` now (rank 0), after any pending background write."""
        if self.world.main:
            self._submit(state, name)
            self._flush()

    def _submit(self, state: dict[str, Any], name: str, copies: tuple[str, ...] = ()) -> None:
        """Start writing checkpoint `name` (and `copies` of it) in the background, once the
        previous write is done; a failed write ends the run."""
        try:
            self.writer.submit(state, self.out / name, tuple(self.out / c for c in copies))
        except checkpoints.CheckpointError as exc:
            raise TrainError(str(exc)) from None

    def _flush(self) -> None:
        """Wait for the checkpoints being written; a failed write ends the run."""
        try:
            self.writer.wait()
        except checkpoints.CheckpointError as exc:
            raise TrainError(str(exc)) from None

    def _open_logs(self) -> list[Any]:
        if not self.world.main:
            return []
        logs: list[Any] = [MetricsLog(self.out, self.position.history)]
        board = TensorBoardLog.open(self.out)
        return [*logs, board] if board is not None else logs

    def _plot(self) -> None:
        pos = self.position
        plot_curves(pos.history, self.out / "curves.png")
        if self._confusion is not None:
            names = self.data.classes + [str(i) for i in range(len(self.data.classes),
                                                               self.task.classes)]
            plot_confusion(self._confusion.tolist(), names, self.out / "confusion.png")

