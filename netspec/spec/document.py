"""The spec document: the top-level YAML keys, validated by pydantic.

Layers stay raw here because they may hold expressions over block parameters; expansion
(`netspec.spec.expand`) validates each one as its op's canonical model once its
parameters are known.
"""


import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainValidator,
    PrivateAttr,
    StringConstraints,
    Tag,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from netspec import limits
from netspec.errors import did_you_mean, quote_list
from netspec.ops.base import PosInt


def _bounded(name: str) -> str:
    """A name within the limit `name_length`; a `limit` error past it."""
    longest = limits.current().name_length
    if len(name) > longest:
        raise PydanticCustomError("limit", "has {length} characters, more than {longest} "
                                  "(limit `{limit}`)", {"length": f"{len(name):,}",
                                  "longest": f"{longest:,}", "limit": "name_length"})
    return name


IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"
Identifier = Annotated[str, StringConstraints(pattern=IDENTIFIER), AfterValidator(_bounded)]
"""A block's, a parameter's or an input's name."""
LAYER_NAME = r"^(?:[A-Za-z_][A-Za-z0-9_-]*|0|[1-9][0-9]*)$"
"""A layer's name: a word of letters, digits, `_` and `-` that starts with a letter or `_`
(`conv1`, `block1-0` as torchvision's RegNet names its blocks), or a non-negative integer
as torch names the children of nn.Sequential and nn.ModuleList (`name: 0`), so a layer can
take its module's name and `state_dict` keys follow. An integer has one spelling (`0`, not
`00`): `name: 0` and `name: '0'` are one name. A dot stays out: it separates a block's
layer (`layer1.0.conv1`) or a piece of a split (`chunk.1`) in references and keys."""
LAYER_NAME_RULE = "must be letters, digits, _ and -, first a letter or _ (`block1-0`), or an " \
    "integer such as 0"
"""What LAYER_NAME asks, as errors say it."""


def as_name(value: Any) -> Any:
    """A layer name or reference as written: a YAML integer (`name: 0`, `from: 0`) is the
    name of its digits, the one `name: '0'` gives (netspec has no positional references, so
    an integer can only be a name); anything else is left to be checked as it is."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    return value


LayerRef = Annotated[str, BeforeValidator(as_name), WithJsonSchema(
    {"anyOf": [{"type": "string"}, {"type": "integer", "minimum": 0}]})]
"""A reference to a layer (`outputs`): its name, `block.layer` or `split.0`."""
def _layer_name(name: str) -> str:
    """`name` if it is a layer name within the length limit; a `layer_name` error if not."""
    if not re.match(LAYER_NAME, name):
        raise PydanticCustomError("layer_name", LAYER_NAME_RULE)
    return _bounded(name)


LayerName = Annotated[str, BeforeValidator(as_name), AfterValidator(_layer_name), WithJsonSchema(
                          {"anyOf": [{"type": "string", "pattern": LAYER_NAME},
                                     {"type": "integer", "minimum": 0}]})]
SIZE_RANGE = re.compile(r"^\s*([1-9]\d*)\s*\.\.\s*(\d*)\s*$")
"""`32..1024`, or `32..` (no end): the sizes a named dimension may take (an end below the
start leaves none: `netspec.sizes.choose_examples` says so)."""


@dataclass(frozen=True, slots=True)
class Named:
    """An input dimension the spec calls by a name (`H`): every dimension of that name
    is one size, of `low..high` (None: no end), with `example` as given (`H: 224`) or
    chosen (netspec.api: the least size in range that works and reads every row)."""

    name: str
    low: int = 1
    high: int | None = None
    example: int | None = None


def _dim(value: Any) -> int | Named:
    """One dimension of an input: a size, a name (`H`), a name with an example (`H: 224`)
    or with a range (`H: 32..1024`)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise PydanticCustomError("greater_than_equal", "must be at least {ge}", {"ge": 1})
        return value
    if isinstance(value, str) and re.match(IDENTIFIER, value):
        return Named(_bounded(value))
    if isinstance(value, dict) and len(value) == 1:
        (name, size), = value.items()
        if isinstance(name, str) and re.match(IDENTIFIER, name):
            if isinstance(size, int) and not isinstance(size, bool) and size >= 1:
                return Named(_bounded(name), example=size)
            found = SIZE_RANGE.match(size) if isinstance(size, str) else None
            if found:
                return Named(_bounded(name), int(found[1]), int(found[2]) if found[2] else None)
            raise PydanticCustomError("size_range", "`{name}: {size}` is not a size or a range "
                                      "of sizes such as `{name}: 32..1024`",
                                      {"name": name, "size": str(size)})
    raise PydanticCustomError("dim", "a dimension is a positive size, a name (`H`), or a name "
                              "with an example (`H: 224`) or a range (`H: 32..1024`); found "
                              "{value}", {"value": repr(value)})


Dim = Annotated[int | Named, PlainValidator(_dim), WithJsonSchema({"anyOf": [
    {"type": "integer", "minimum": 1},
    {"type": "string", "pattern": IDENTIFIER},
    {"type": "object", "minProperties": 1, "maxProperties": 1,
     "propertyNames": {"pattern": IDENTIFIER},
     "additionalProperties": {"anyOf": [{"type": "integer", "minimum": 1},
                                        {"type": "string", "pattern": SIZE_RANGE.pattern}]}},
]})]
Dims = Annotated[list[Dim], Field(min_length=1, max_length=5)]
ALL_SCALES = "all"
"""`--scale all`: every scale of the spec, so no scale may take this name."""


def _scale_name(name: str) -> str:
    if name == ALL_SCALES:
        raise PydanticCustomError("reserved", "`{name}` means every scale (`--scale all`); "
                                  "name the scale otherwise", {"name": name})
    return name


def _declared_param(name: str, info: ValidationInfo) -> str:
    """A parameter a scale sets: one of the spec's `params` (when those are valid)."""
    declared = info.data.get("params")
    if declared is not None and name not in declared:
        hint = did_you_mean(name, declared) or (
            f"the spec's parameters: {quote_list(declared, near=name)}" if declared
            else "declare it in `params:` first")
        raise PydanticCustomError("unknown_name", "a scale sets `{name}`, which is not one of "
                                  "the spec's `params`", {"name": name, "hint": hint})
    return name


ScaleName = Annotated[Identifier, AfterValidator(_scale_name)]
Scale = dict[Annotated[Identifier, AfterValidator(_declared_param)], Any]
"""A named set of parameter values (`s: {depth: 0.33, width: 0.5}`), each written as a
default in `params:` is (a number, a list, a word, an expression)."""


@dataclass(frozen=True, slots=True)
class Choice:
    """The parameter values a load chose: a scale of the spec's `scales:` by name, then
    `values` set by parameter name (`--set NAME=VALUE`, `load(..., params=...)`), which win.
    A value is read as a default in `params:` is and keeps its default's type."""

    scale: str | None = None
    values: Mapping[str, Any] = field(default_factory=dict)


class Tokens(BaseModel):
    """An input of integer token ids: `{tokens: [T], vocab: V}` holds T ids per sample
    (any dims), each in 0..V-1."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    tokens: Dims
    vocab: PosInt


InputDecl = Annotated[
    Annotated[Dims, Tag("list[dims]")] | Annotated[Tokens, Tag("tokens[ids]")],
    Discriminator(lambda v: "tokens[ids]" if isinstance(v, dict | Tokens) else "list[dims]"),
]
"""An input's declaration: its per-sample shape (float values), or token ids. The tags
read as union members (`validation._is_member_tag`), so messages and positions skip them."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class BlockDef(_Strict):
    """A reusable sub-network: `params` (name: default, null = required), its `inputs`
    (names its layers can read), its `layers`, and which layer is its `output` (the last
    by default)."""

    description: str | None = None
    params: dict[Identifier, Any] = Field(default_factory=dict)
    inputs: list[Identifier] = Field(default_factory=lambda: ["input"], min_length=1)
    layers: list[Any] = Field(min_length=1)
    output: LayerName | None = None


class Spec(_Strict):
    """A network spec: its inputs, parameters, blocks and layers.

    `input: [C, H, W]` declares one input named `input`; `inputs: {name: [dims]}` several.
    An input of token ids is declared `{tokens: [T], vocab: V}` instead of its dims.
    `outputs` lists the layers whose tensors the network returns (the last by default);
    `auxiliary` the layers it returns after them in training only (GoogLeNet's auxiliary
    classifiers): the layers only they read run in training only.
    """

    name: str = "net"
    description: str | None = None
    input: InputDecl | None = None
    inputs: Annotated[dict[Identifier, InputDecl], Field(min_length=1)] | None = None
    outputs: list[LayerRef] | None = None
    auxiliary: list[LayerRef] = Field(
        default_factory=list,
        description="layers the network returns after its outputs in training only, each "
                    "trained by a loss of weight `train.auxiliary_weight` (GoogLeNet's "
                    "auxiliary classifiers); the layers only they read run in training only")
    params: dict[Identifier, Any] = Field(default_factory=dict)
    scales: dict[ScaleName, Scale] = Field(
        default_factory=dict,
        description="named sets of parameter values (`n: {depth: 0.33, width: 0.25}`), one "
                    "chosen with `--scale NAME`",
        json_schema_extra={"propertyNames": {"pattern": IDENTIFIER, "not": {"const": ALL_SCALES}}})
    """Named size variants: each maps some of `params` to other values."""
    use: list[str] = Field(default_factory=list)
    """Files whose `blocks` this spec may call, relative to it (see `spec.library`)."""
    blocks: dict[Identifier, BlockDef] = Field(default_factory=dict)
    layers: list[Any] = Field(min_length=1)
    init: Any = None
    """Weight initialisation for the whole net (see `netspec.init`); checked on expansion."""
    train: Any = None
    """How `netspec train` trains it: checked by `api.parse` against
    `netspec.training.config.TrainConfig` (imported only for specs that have the section)."""

    model_config = ConfigDict(json_schema_extra={"oneOf": [  # the two validators below
        {"required": ["input"], "properties": {"input": {"type": ["array", "object"]}}},
        {"required": ["inputs"], "properties": {"inputs": {"type": "object"}}},
    ]})

    _source: Any = PrivateAttr(default=None)
    _graph: Any = PrivateAttr(default=None)
    _blocks: Any = PrivateAttr(default=None)
    _training: Any = PrivateAttr(default=None)
    _choice: Choice = PrivateAttr(default_factory=Choice)
    _examples: dict[str, int] = PrivateAttr(default_factory=dict)
    """The example size chosen for each named size without one (netspec.api)."""
    _analysed: dict[str, Any] = PrivateAttr(default_factory=dict)
    """The last report `check` made of this document or of a copy of it with other
    parameter values (the copies share it): its findings are lent to the next, so a sweep
    analyses again only the layers a variant changes (netspec.api.check)."""

    @field_validator("inputs")
    @classmethod
    def _not_both(cls, inputs: Any, info: ValidationInfo) -> Any:
        if inputs is not None and info.data.get("input") is not None:
            raise ValueError("found both `input` and `inputs`; keep one")
        return inputs

    @model_validator(mode="after")
    def _an_input(self) -> "Spec":
        if self.input is None and self.inputs is None:
            raise ValueError("declare the input shape: `input: [C, H, W]`, or "
                             "`inputs: {name: [C, H, W]}` for several")
        return self

    @property
    def choice(self) -> Choice:
        """The scale and parameter values this spec was loaded with (`netspec.load`)."""
        return self._choice

    @property
    def training(self) -> Any:
        """The validated `train:` section, a `TrainConfig` (defaults where it is silent)."""
        if self._training is None:
            from netspec.training.config import TrainConfig

            self._training = TrainConfig.model_validate(self.train or {})
        return self._training

    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        """Declared input shapes by name (`input` for the single-input form); a named
        dimension at its example size (`sizes()`)."""
        examples = {n: self._examples.get(n, d.example or d.low) for n, d in self.sizes().items()}
        return {name: tuple(examples[d.name] if isinstance(d, Named) else d for d in dims)
                for name, dims in self._dims().items()}

    def sizes(self) -> dict[str, Named]:
        """The sizes the inputs name (`input: [3, H, W]`), each as first declared with
        a range or an example (else as first named)."""
        found: dict[str, Named] = {}
        for dims in self._dims().values():
            for d in dims:
                if isinstance(d, Named) and (d.name not in found or (
                        found[d.name] == Named(d.name) and d != found[d.name])):
                    found[d.name] = d
        return found

    def size_places(self) -> dict[str, list[tuple[str, int]]]:
        """Where each named size is: (input, dim index) pairs."""
        places: dict[str, list[tuple[str, int]]] = {}
        for name, dims in self._dims().items():
            for i, d in enumerate(dims):
                if isinstance(d, Named):
                    places.setdefault(d.name, []).append((name, i))
        return places

    def _dims(self) -> dict[str, list[int | Named]]:
        return {name: list(d.tokens if isinstance(d, Tokens) else d)
                for name, d in self._declared().items()}

    def input_vocabs(self) -> dict[str, int]:
        """The vocabulary size of each input of token ids, by name."""
        return {name: d.vocab for name, d in self._declared().items() if isinstance(d, Tokens)}

    def _declared(self) -> dict[str, InputDecl]:
        if self.inputs is not None:
            return dict(self.inputs)
        return {"input": self.input or []}
