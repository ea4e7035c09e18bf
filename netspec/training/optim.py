"""The optimizer and the learning-rate schedule a `train:` section names.

Every schedule steps once per training step (not per epoch), so warm-up and one-cycle are
smooth and a run resumed mid-epoch continues on the same curve.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch

from netspec.training.config import OptimizerConfig, ScheduleConfig


def make_optimizer(config: OptimizerConfig, params: Iterable[torch.nn.Parameter]
                   ) -> torch.optim.Optimizer:
    """SGD (momentum, nesterov), Adam (L2 weight decay) or AdamW (decoupled decay)."""
    o = config.options
    if config.kind == "sgd":
        return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, nesterov=o.nesterov,
                               weight_decay=o.weight_decay)
    cls = torch.optim.AdamW if config.kind == "adamw" else torch.optim.Adam
    return cls(params, lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay)


def apply_changed_options(optimizer: torch.optim.Optimizer, saved: OptimizerConfig,
                          config: OptimizerConfig) -> None:
    """After a restore (which brings back the saved groups' settings), use each option of
    `config` that differs from `saved`, the run's own; the rate is `rebase`'s."""
    old, new = saved.options.model_dump(), config.options.model_dump()
    for key, value in new.items():
        if key != "lr" and value != old.get(key):
            for group in optimizer.param_groups:
                group[key] = tuple(value) if isinstance(value, list) else value


def make_schedule(config: ScheduleConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int,
                  epochs: int) -> torch.optim.lr_scheduler.LRScheduler:
    """The learning-rate schedule over `epochs * steps_per_epoch` steps."""
    total = epochs * steps_per_epoch
    o = config.options
    if config.kind == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=[g["lr"] for g in optimizer.param_groups], total_steps=total,
            pct_start=o.pct_start)
    warmup = o.warmup * steps_per_epoch
    base = optimizer.param_groups[0]["lr"]
    shape = _shape(config, steps_per_epoch, total, base)

    def factor(step: int) -> float:
        ramp = min(1.0, (step + 1) / warmup) if warmup else 1.0
        return ramp * shape(step)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _shape(config: ScheduleConfig, steps_per_epoch: int, total: int, base: float
           ) -> Callable[[int], float]:
    """The schedule's multiplier of the base rate at a step, before warm-up."""
    o = config.options
    if config.kind == "step":
        return lambda step: o.gamma ** (step // (o.every * steps_per_epoch))
    if config.kind == "cosine":
        floor = o.min_lr / base
        return lambda step: floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(step, total) / total))
    return lambda step: 1.0


def rebase(schedule: torch.optim.lr_scheduler.LRScheduler, lr: float) -> None:
    """Move a restored schedule onto the base rate `lr` at the step it is at (a run resumed
    with another `--lr`): its whole curve scales; unchanged when `lr` is its rate already."""
    groups = schedule.optimizer.param_groups
    if isinstance(schedule, torch.optim.lr_scheduler.OneCycleLR):
        ratio = lr / groups[0]["max_lr"]
        for group in groups:
            for key in ("max_lr", "initial_lr", "min_lr", "lr"):
                group[key] *= ratio
    else:
        ratio = lr / schedule.base_lrs[0]
        schedule.base_lrs = [base * ratio for base in schedule.base_lrs]
        for group in groups:
            group["initial_lr"] *= ratio
            group["lr"] *= ratio
    schedule._last_lr = [group["lr"] for group in groups]  # what get_last_lr() reports



def load_schedule(schedule: torch.optim.lr_scheduler.LRScheduler, state: dict[str, Any]) -> None:
    """Restore a saved schedule's `state` into `schedule`, which was built for this run's
    length: the step reached comes from the state, the layout over the run's steps stays
    the new one's. So a run resumed with other epochs takes, from its next step, the rate a
    run planned for that length from the start has there: constant and step schedules do
    not depend on the length; cosine's curve is a function of the new length (not state);
    one-cycle keeps the new warm-up and annealing phases and total."""
    layout = {key: getattr(schedule, key) for key in ("total_steps", "_schedule_phases")
              if hasattr(schedule, key)}
    schedule.load_state_dict(state)
    schedule.__dict__.update(layout)
