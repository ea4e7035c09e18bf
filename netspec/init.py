"""Weight initialisation a spec can ask for: for the whole net (top-level `init:`), for a
block call or for one layer (the `init:` layer key); the nearest one wins, and layers that
name none keep torch's default initialisation.

    init: kaiming_normal                                  # every weight it applies to
    init: {kaiming_normal: {mode: fan_out, nonlinearity: relu}}
    init: {weight: xavier_uniform, bias: zeros}           # weights and biases separately
    init: {weight: {normal: {std: 0.01}}, bias: {constant: {val: 0.1}}}

A scheme applies to every parameter it can: fan-based schemes (kaiming, xavier) to weights
of two or more dimensions (conv and linear), the others to any weight or bias. This module
validates without torch; `apply` receives the `torch` package from the backend.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any, NamedTuple

from netspec.errors import did_you_mean, quote_list

SCHEMES: dict[str, dict[str, Any]] = {
    "kaiming_normal": {"a": 0.0, "mode": "fan_in", "nonlinearity": "leaky_relu"},
    "kaiming_uniform": {"a": 0.0, "mode": "fan_in", "nonlinearity": "leaky_relu"},
    "xavier_normal": {"gain": 1.0},
    "xavier_uniform": {"gain": 1.0},
    "normal": {"mean": 0.0, "std": 1.0},
    "uniform": {"a": 0.0, "b": 1.0},
    "constant": {"val": 0.0},
    "zeros": {},
    "ones": {},
}
"""Each scheme's arguments and defaults, as torch.nn.init names them."""
FAN_BASED = {"kaiming_normal", "kaiming_uniform", "xavier_normal", "xavier_uniform"}
_CHOICES = {"mode": ("fan_in", "fan_out"),
            "nonlinearity": ("linear", "conv1d", "conv2d", "sigmoid", "tanh", "relu", "leaky_relu",
                             "selu")}


class Scheme(NamedTuple):
    """One torch.nn.init function and its arguments."""

    name: str
    args: dict[str, Any]


class Init(NamedTuple):
    """How to initialise a layer's weights and biases (None: torch's default)."""

    weight: Scheme | None = None
    bias: Scheme | None = None

    def over(self, outer: Init | None) -> Init:
        """This init, falling back to `outer` for what it leaves unset."""
        if outer is None:
            return self
        return Init(self.weight or outer.weight, self.bias or outer.bias)


class InitError(ValueError):
    """An `init:` value is malformed; `hint` suggests the fix. `keys` lead from the `init:`
    value to the wrong part, and `at_key` says whether that part is a mapping key (an
    unknown name) rather than a value."""

    def __init__(self, message: str, hint: str | None = None, keys: tuple[str, ...] = (),
                 at_key: bool = False):
        super().__init__(message)
        self.hint = hint
        self.keys = keys
        self.at_key = at_key


def parse(value: Any) -> Init:
    """An Init from any of the spec's forms; raises InitError with what is wrong."""
    if isinstance(value, Mapping) and set(value) <= {"weight", "bias"} and value:
        return Init(*(_scheme(value[k], (k,)) if value.get(k) is not None else None
                      for k in ("weight", "bias")))
    return Init(weight=_scheme(value, ()))


def _scheme(value: Any, at: tuple[str, ...]) -> Scheme:
    """The scheme written at the keys `at` of the `init:` value."""
    if isinstance(value, str):
        name, args = value, {}
    elif isinstance(value, Mapping) and len(value) == 1:
        name, args = next(iter(value.items()))
        args = {} if args is None else args
    else:
        raise InitError(f"an init is a scheme name or `{{scheme: {{args}}}}`, found {value!r}",
                        "e.g. `kaiming_normal` or `{weight: xavier_uniform, bias: zeros}`", at)
    named = at if isinstance(value, str) else (*at, name)
    if name not in SCHEMES:
        raise InitError(f"unknown init scheme `{name}`",
                        did_you_mean(name, SCHEMES) or f"schemes: {quote_list(SCHEMES, near=name)}",
                        named, at_key=not isinstance(value, str))
    if not isinstance(args, Mapping):
        raise InitError(f"`{name}` takes a mapping of arguments, found {args!r}", keys=named)
    defaults = SCHEMES[name]
    for key, arg in args.items():
        if key not in defaults:
            hint = did_you_mean(key, defaults) or (
                f"`{name}` takes {quote_list(defaults, near=key)}" if defaults
                else f"`{name}` takes no arguments")
            raise InitError(f"unknown argument `{key}` for init `{name}`", hint, (*named, key),
                            at_key=True)
        if key in _CHOICES and arg not in _CHOICES[key]:
            raise InitError(f"`{key}` of `{name}` must be one of {quote_list(_CHOICES[key])}, "
                            f"found {arg!r}", did_you_mean(arg, _CHOICES[key]), (*named, key))
        if key not in _CHOICES and (isinstance(arg, bool) or not isinstance(arg, int | float)):
            raise InitError(f"`{key}` of `{name}` expects a number, found {arg!r}",
                            keys=(*named, key))
    return Scheme(name, {**defaults, **args})


def schema() -> dict[str, Any]:
    """JSON Schema of every form `parse` takes, made from the same table of schemes."""
    def arguments(defaults: dict[str, Any]) -> dict[str, Any]:
        return {"type": "object", "additionalProperties": False, "properties": {
            key: {"enum": list(_CHOICES[key])} if key in _CHOICES else {"type": "number"}
            for key in defaults}}

    scheme = {"anyOf": [
        {"enum": list(SCHEMES)},
        {"type": "object", "minProperties": 1, "maxProperties": 1, "additionalProperties": False,
         "properties": {name: {"anyOf": [{"type": "null"}, arguments(defaults)]}
                        for name, defaults in SCHEMES.items()}},
    ]}
    apart = {"type": "object", "minProperties": 1, "additionalProperties": False,
             "properties": {"weight": {"anyOf": [scheme, {"type": "null"}]},
                            "bias": {"anyOf": [scheme, {"type": "null"}]}}}
    return {"description": "weight initialisation: a scheme (`kaiming_normal`), "
                           "`{scheme: {args}}` or `{weight: ..., bias: ...}`",
            "anyOf": [scheme, apart]}

def apply(torch: ModuleType, module: Any, init: Init) -> None:
    """Initialise `module`'s own `weight` and `bias` (where present) as `init` says."""
    for attr, scheme in (("weight", init.weight), ("bias", init.bias)):
        tensor = getattr(module, attr, None)
        if scheme is None or not isinstance(tensor, torch.nn.Parameter):
            continue
        if scheme.name in FAN_BASED and tensor.dim() < 2:
            continue
        with torch.no_grad():
            getattr(torch.nn.init, f"{scheme.name}_")(tensor, **scheme.args)
