"""The spec document: the top-level YAML keys, validated by pydantic.

Layers stay raw here because they may hold expressions over block parameters; expansion
(`netspec.spec.expand`) validates each one as its op's canonical model once its
parameters are known.
"""


from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from netspec import limits
from netspec.ops.base import PosInt


def _bounded(name: str) -> str:
    """A name within the limit `name_length`; a `limit` error past it."""
    longest = limits.current().name_length
    if len(name) > longest:
        raise PydanticCustomError("limit", "has {length} characters, more than {longest} "
                                  "(limit `{limit}`)", {"length": f"{len(name):,}",
                                  "longest": f"{longest:,}", "limit": "name_length"})
    return name


Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$"),
                       AfterValidator(_bounded)]
"""A block's, a parameter's or an input's name."""
Dims = Annotated[list[PosInt], Field(min_length=1, max_length=5)]


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
    output: Identifier | None = None


class Spec(_Strict):
    """A network spec: its inputs, parameters, blocks and layers.

    `input: [C, H, W]` declares one input named `input`; `inputs: {name: [dims]}` several.
    `outputs` lists the layers whose tensors the network returns (the last by default).
    """

    name: str = "net"
    description: str | None = None
    input: Dims | None = None
    inputs: Annotated[dict[Identifier, Dims], Field(min_length=1)] | None = None
    outputs: list[str] | None = None
    params: dict[Identifier, Any] = Field(default_factory=dict)
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
        {"required": ["input"], "properties": {"input": {"type": "array"}}},
        {"required": ["inputs"], "properties": {"inputs": {"type": "object"}}},
    ]})

    _source: Any = PrivateAttr(default=None)
    _graph: Any = PrivateAttr(default=None)
    _blocks: Any = PrivateAttr(default=None)
    _training: Any = PrivateAttr(default=None)

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
    def training(self) -> Any:
        """The validated `train:` section, a `TrainConfig` (defaults where it is silent)."""
        if self._training is None:
            from netspec.training.config import TrainConfig

            self._training = TrainConfig.model_validate(self.train or {})
        return self._training

    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        """Declared input shapes by name (`input` for the single-input form)."""
        if self.inputs is not None:
            return {name: tuple(dims) for name, dims in self.inputs.items()}
        return {"input": tuple(self.input or ())}
