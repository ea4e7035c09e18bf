"""Ops from other packages, through the entry-point group `netspec.ops`.

A package adds ops without forking netspec: it defines each one as the built-ins are, one
`Op` subclass holding its arguments, shape rule, costs, receptive field, label and torch
builder, and names it in its `pyproject.toml`:

    [project.entry-points."netspec.ops"]
    scaled_tanh = "netspec_scaled.ops:ScaledTanh"

An entry point names an op class (named after its op by convention, so that a problem
with it can name the op a spec misses), a list or tuple of op classes, or a module (the op
classes it defines). `OPS` (netspec.ops) loads them once per process, and only when it must:
when a spec names an op no built-in has, or when every op is listed (`netspec schema`,
completion, the "did you mean" hint). A plugin's module must not import torch when it is
imported (`netspec check` stays torch-free): its `to_torch` imports it, as the built-ins do.

An entry point that fails to import, names something that is not an op class, or gives an
op whose name a built-in or another plugin has, is refused with a `PluginProblem` naming
the entry point and its distribution: issued as a `PluginWarning` (a broken plugin no spec
uses breaks nothing), and the hint of the error when a spec names the op it concerns.
"""

from __future__ import annotations

import re
import sys
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint
from types import ModuleType
from typing import Any, NamedTuple

from netspec.errors import clipped
from netspec.ops.base import Op

GROUP = "netspec.ops"
"""The entry-point group plugins declare their ops in."""

OP_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")
"""What an op's name may be: the built-ins' style, and a valid layer key."""


class PluginWarning(UserWarning):
    """A plugin entry point was refused, or a plugin's module imports torch (see `PluginProblem`)."""


@dataclass(frozen=True, slots=True)
class PluginProblem:
    """What is wrong with one entry point: `origin` names it and its distribution, `ops`
    the op names it concerns (the entry point's own name when it failed to load)."""

    origin: str
    message: str
    ops: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"plugin {self.origin}: {self.message}"


class Plugins(NamedTuple):
    """The plugins' ops by name, and the entry points refused or worth a warning."""

    ops: dict[str, type[Op]]
    problems: tuple[PluginProblem, ...]


def discover(builtin: Mapping[str, type[Op]]) -> Plugins:
    """The ops of every installed distribution's `netspec.ops` entry points."""
    from importlib.metadata import entry_points

    return load(entry_points(group=GROUP), builtin)


def load(entry_points: Iterable[EntryPoint], builtin: Mapping[str, type[Op]]) -> Plugins:
    """Import each entry point and keep the ops it gives, unless their name is taken by a
    built-in (in `builtin`) or by another entry point's op (then neither is kept)."""
    given: dict[str, dict[type[Op], str]] = {}
    problems: list[PluginProblem] = []
    for entry in entry_points:
        origin = _origin(entry)
        had_torch = "torch" in sys.modules
        try:
            classes = op_classes(entry.load())
        except _NotOps as exc:
            problems.append(PluginProblem(origin, str(exc), (entry.name,)))
            continue
        except Exception as exc:  # a broken plugin must not break the commands that do without it
            problems.append(PluginProblem(origin, f"failed to import: {type(exc).__name__}: "
                                                  f"{clipped(str(exc), 200)}", (entry.name,)))
            continue
        if not had_torch and "torch" in sys.modules:
            problems.append(PluginProblem(origin, "imports torch when loaded, which makes "
                                          "`netspec check` slow: import it inside `to_torch`"))
        for cls in classes:
            given.setdefault(cls.kind(), {}).setdefault(cls, origin)
    ops: dict[str, type[Op]] = {}
    for kind, origins in given.items():
        if kind in builtin:
            problems += [PluginProblem(o, f"gives op `{kind}`, which netspec has built in: "
                                          "the built-in is used; rename the plugin's op", (kind,))
                         for o in origins.values()]
        elif len(origins) > 1:
            names = " and ".join(origins.values())
            problems.append(PluginProblem(names, f"both give op `{kind}`, so neither is used: "
                                                 "uninstall one", (kind,)))
        else:
            ops[kind] = next(iter(origins))
    return Plugins(ops, tuple(problems))


class _NotOps(Exception):
    """An entry point loaded, but what it names is not op classes."""


def op_classes(value: Any) -> list[type[Op]]:
    """The op classes an entry point's object gives: itself, its items, or a module's own
    op classes; `_NotOps` saying why when it is none of those."""
    if isinstance(value, ModuleType):
        classes = [v for v in vars(value).values() if _is_op_class(v)
                   and v.__module__ == value.__name__ and isinstance(_default_op(v), str)]
        if not classes:
            raise _NotOps(f"module {value.__name__} defines no op class (a subclass of "
                          "netspec.ops.Op with `op: Literal[NAME] = NAME`)")
        items = classes
    else:
        items = list(value) if isinstance(value, list | tuple) else [value]
    for item in items:
        _check_class(item)
    return items


def _is_op_class(value: Any) -> bool:
    """Whether `value` is a subclass of Op; not a generic alias such as `list[int]`, which
    Python 3.10 takes for a type that issubclass then refuses."""
    try:
        return isinstance(value, type) and issubclass(value, Op)
    except TypeError:
        return False


def _check_class(item: Any) -> None:
    """Refuse what is not a concrete op class with a usable name."""
    if not _is_op_class(item) or item is Op:
        raise _NotOps(f"names {clipped(repr(item), 80)}, not an op class (a subclass of "
                      "netspec.ops.Op), a list of them or a module")
    kind = _default_op(item)
    literal = typing.get_origin(item.model_fields["op"].annotation) is typing.Literal
    if not (isinstance(kind, str) and literal and typing.get_args(
            item.model_fields["op"].annotation) == (kind,)):
        raise _NotOps(f"{item.__name__} declares no op name: write `op: Literal[\"NAME\"] = "
                      "\"NAME\"` in its class")
    from netspec.spec.expand import META  # the layer keys an op's name would shadow

    if not OP_NAME.match(kind) or kind in META:
        raise _NotOps(f"{item.__name__}'s op name `{clipped(kind, 40)}` is not one a spec can "
                      f"write: lower case letters, digits and `_`, and none of {', '.join(META)}")
    try:  # builds the model too: what loading, the schema, completion and hover all read
        item.model_json_schema(by_alias=True)
    except Exception as exc:
        raise _NotOps(f"{item.__name__}'s arguments have no JSON Schema, which editors read: "
                      f"{type(exc).__name__}: {clipped(str(exc).splitlines()[0], 120)}") from None


def _default_op(cls: type[Op]) -> Any:
    field = cls.model_fields.get("op")
    return None if field is None else field.default


def _origin(entry: EntryPoint) -> str:
    """`entry point `scaled_tanh = pkg.ops:ScaledTanh` of netspec-scaled 0.1`."""
    dist = entry.dist
    owner = f"{dist.name} {dist.version}" if dist is not None else "an unknown distribution"
    return f"entry point `{entry.name} = {entry.value}` of {owner}"
