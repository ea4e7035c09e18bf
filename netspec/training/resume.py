"""What a resumed run trains with, and what it says about it.

A resume trains with the settings a new run would get: the spec's `train:` section as it is
now, with the command's options on top. Nothing stored in the checkpoint chooses a file to
read: the data is the spec's (or `--data`'s), resolved against the spec's folder. Where the
settings differ from the run's own (the checkpoint's), each key is listed, old -> new, with
what it does; those a run cannot change are refused before anything is loaded into it.
A `batch_size: auto` is the run's own batch, chosen when it started, wherever it resumes.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from netspec.errors import TrainError
from netspec.training.config import AUTO, TrainConfig

_CHOICES = ("data", "loss", "optimizer", "schedule")
"""Settings written `{kind: options}`: another kind is one change, not one per option."""
_NOT_COMPARED = {"out", "init_from"}
"""Where a run writes is chosen by `--out` and `--resume`, not compared; `init_from` is read
only when a run starts (a resume restores the run's own weights), so another one changes
nothing."""


def saved_settings(saved: Any, path: str) -> TrainConfig:
    """The run's own settings, from its checkpoint; TrainError when they are not valid."""
    try:
        return TrainConfig.model_validate(saved)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"])) or "train"
        raise TrainError(f"{path}: its training settings are not valid ({where}: "
                         f"{first['msg'][:200]}); it is not a checkpoint netspec wrote") from None


def same_batch(saved: TrainConfig, config: TrainConfig) -> TrainConfig:
    """`config`, its `batch_size: auto` replaced by the run's batch (`saved`'s)."""
    if config.batch_size != AUTO:
        return config
    return config.model_copy(update={"batch_size": saved.batch_size})


def changes(saved: TrainConfig, config: TrainConfig, step: int) -> list[str]:
    """One line per setting that differs, `key: old -> new: what it does`. Raises TrainError
    naming every change a run cannot take: another optimizer or schedule (their state belongs
    to the run), another batch size (the position and the schedule count its steps), or
    another one-cycle shape (its phases were laid out at the start)."""
    whole = {group for group in _CHOICES
             if getattr(saved, group).kind != getattr(config, group).kind}
    old, new = _flat(_dumped(saved), whole), _flat(_dumped(config), whole)
    refused, lines = [], []
    for key in sorted(old.keys() | new.keys(), key=_order(new)):
        before, after = old.get(key, "(unset)"), new.get(key, "(unset)")
        if before == after:
            continue
        change = f"{key}: {_show(before)} -> {_show(after)}"
        reason = _refusal(key, saved, config)
        if reason:
            refused.append(f"{change} ({reason})")
        else:
            lines.append(f"{change}: {_effect(key, config, step)}")
    if refused:
        raise TrainError("cannot resume with these changes to the run's settings: "
                         + "; ".join(refused) + ". Start a new run to change them")
    return lines


def _dumped(config: TrainConfig) -> dict[str, Any]:
    return {k: v for k, v in config.model_dump(mode="json", exclude_none=True).items()
            if k not in _NOT_COMPARED}


def _flat(tree: dict[str, Any], whole: set[str], prefix: str = "") -> dict[str, Any]:
    """`{"optimizer": {"adamw": {"lr": 3e-3}}}` -> `{"optimizer.adamw.lr": 3e-3}`; the keys
    in `whole` (choices of another kind) stay one value."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value and f"{prefix}{key}" not in whole:
            flat.update(_flat(value, whole, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _order(keys: dict[str, Any]) -> Any:
    """Keys in the order the spec's section lists them, then any it lacks."""
    position = {key: n for n, key in enumerate(keys)}
    return lambda key: (position.get(key, len(position)), key)


def _show(value: Any) -> str:
    """A setting as the spec would write it: `{digits: {val_split: 0.2}}`, `'a/b.npz'`."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(map(_show, value)) + "]"
    return repr(value) if isinstance(value, str) else str(value)


def _refusal(key: str, saved: TrainConfig, config: TrainConfig) -> str | None:
    """Why the run cannot take a change of `key`, or None when it can."""
    group = key.split(".")[0]
    if group == "optimizer" and saved.optimizer.kind != config.optimizer.kind:
        return "a run keeps its optimizer: the optimizer's state belongs to it"
    if group == "schedule" and saved.schedule.kind != config.schedule.kind:
        return "a run keeps its schedule kind: the schedule's state belongs to it"
    if group == "schedule" and config.schedule.kind == "onecycle":
        return "a one-cycle run keeps its shape: its phases were laid out when it started"
    if group == "batch_size":
        return "a run keeps its batch size: its position and its schedule count its steps"
    return None


def _effect(key: str, config: TrainConfig, step: int) -> str:
    """What a change of `key` does to the run from here."""
    group, kind = key.split(".")[0], config.schedule.kind
    if group == "epochs":
        laid = ("" if kind in ("constant", "step") else
                f"; the {kind} schedule is laid over {config.epochs} epochs: from the next "
                f"step the rate is what a run planned for {config.epochs} epochs has there")
        return f"training runs to epoch {config.epochs}{laid}"
    if key.endswith(".lr") and group == "optimizer":
        return "the schedule's whole curve scales to the new base rate from this step"
    if group == "optimizer":
        return "the optimizer keeps its state and uses the new value from the next step"
    if group == "schedule":
        return "the schedule follows the new curve from this step"
    mid_epoch = " (the rest of the interrupted epoch follows the new order)" if step else ""
    if group == "data":
        return ("the data is read as the spec says now: its split, statistics and batch order "
                f"follow it{mid_epoch}")
    if group == "seed":
        return f"the split, batch order and augmentation follow the new seed{mid_epoch}"
    return "applies from the next step"
