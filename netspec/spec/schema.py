"""JSON Schema of the spec language as people write it (short forms and all), for editors:
point a YAML language server at `netspec schema > netspec.json`.

It is made from the definitions the loader itself uses: each op's model (its fields, and
the rules across fields it declares next to its validators), its `positional` short form,
the layer keys of `expand`, the `init:` schemes and the `train:` models. A document the
schema accepts loads without an error of form; what a schema cannot see is left to
`check`: whether names resolve (layers, blocks, parameters), what expressions evaluate to,
and shapes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from netspec import init
from netspec.ops import OPS, Op
from netspec.spec.document import IDENTIFIER, LAYER_NAME, BlockDef, Spec
from netspec.spec.expand import META, RESERVED
from netspec.training import config
from netspec.training.config import TrainConfig

_EXPRESSION = {"$ref": "#/$defs/expression"}
_REFERENCE: dict[str, Any] = {"anyOf": [{"type": "string"}, {"type": "integer", "minimum": 0}]}
"""A layer named by its name: a number names a layer named so (`name: 0`)."""
_LAYER_KEYS: dict[str, Any] = {
    "name": {"anyOf": [{"type": "string", "pattern": LAYER_NAME, "not": {"enum": sorted(RESERVED)}},
                       {"type": "integer", "minimum": 0}],
             "description": "the layer's name (else conv1, conv2, ...): an identifier, or a "
                            "number as torch names a Sequential's children"},
    "from": {"anyOf": [_REFERENCE, {"type": "array", "items": _REFERENCE}],
             "description": "the layer(s) it reads (else the previous one)"},
    "repeat": {"anyOf": [{"type": "integer", "minimum": 1}, _EXPRESSION],
               "description": "chain this many copies; `i` is the copy's index"},
    "if": {"anyOf": [{"type": "boolean"}, _EXPRESSION],
           "description": "keep the layer only when this holds"},
    "frozen": {"type": "boolean", "description": "exclude its parameters from training"},
    "tie": {**_REFERENCE, "description": "an earlier layer whose weight this one shares"},
    "init": {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/init"}],
             "description": "how its weights start (else torch's default)"},
    "checkpoint": {"anyOf": [{"type": "boolean"}, _EXPRESSION],
                   "description": "a block call's: keep only its inputs for the backward pass "
                                  "and recompute its layers there"},
}
_META = {key: _LAYER_KEYS[key] for key in META}
"""The keys any layer may have besides its op (`expand.META`, described)."""
_OP_META = {key: value for key, value in _META.items() if key != "checkpoint"}
"""The keys an op's layer may have besides its op (`checkpoint` is a block call's)."""


def layer_keys() -> dict[str, str]:
    """The keys any layer may have besides its op, each with its description (as
    `netspec schema` gives them to editors)."""
    return {key: prop["description"] for key, prop in _META.items()}


def spec_schema() -> dict[str, Any]:
    """The whole language: top-level keys, blocks, and one layer form per op (the
    installed plugins' included)."""
    defs: dict[str, Any] = {f"op_{kind}": _op_layer(cls) for kind, cls in OPS.items()}
    ops = list(OPS)
    block_name = {"type": "string", "pattern": IDENTIFIER, "not": {"enum": ops}}
    defs["expression"] = {"type": "string",
                          "description": "an expression over parameters, e.g. `width * 4`"}
    defs["init"] = init.schema()
    defs["block_call"] = {
        "type": "object",
        "description": "a block from `blocks:` with its parameters",
        "properties": _META,
        "propertyNames": block_name,
        "not": {"propertyNames": {"enum": list(META)}},  # a key besides META names the block
    }
    defs["layer"] = {"anyOf": [
        {"enum": [kind for kind, cls in OPS.items() if not _needs_arguments(cls)],
         "description": "an op without arguments, e.g. `relu`"},
        {**block_name, "description": "a block without parameters"},
        *({"$ref": f"#/$defs/op_{op}"} for op in ops),
        {"$ref": "#/$defs/block_call"},
    ]}
    defs["layers"] = {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/layer"}}
    top = _document(Spec, defs)
    top["properties"]["train"] = _train_section(defs)
    top["properties"]["init"] = _META["init"]
    defs["block"] = _document(BlockDef, defs)
    top["properties"]["blocks"] = {"type": "object", "additionalProperties": {"$ref": "#/$defs/block"}}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "netspec network spec",
        **top,
        "$defs": defs,
    }


def _document(model: type[Spec] | type[BlockDef], defs: dict[str, Any]) -> dict[str, Any]:
    """The model's own keys; the definitions they refer to (`Tokens`) are added to `defs`."""
    schema = model.model_json_schema()
    defs.update(schema.pop("$defs", {}))
    schema.pop("title", None)
    schema["properties"]["layers"] = {"$ref": "#/$defs/layers"}
    schema["additionalProperties"] = False
    for prop in schema["properties"].values():
        prop.pop("title", None)
    return schema


def _train_section(defs: dict[str, Any]) -> dict[str, Any]:
    """The `train:` section, its choices in their short forms too (`optimizer: sgd`,
    `data: {folder: images/}`); its models' definitions are added to `defs`."""
    schema = TrainConfig.model_json_schema()
    for name, definition in schema.pop("$defs").items():
        model = getattr(config, name, None)
        if isinstance(model, type) and issubclass(model, config._OneOf):
            bare = [kind for kind in model.model_fields if _accepts(model, kind)]
            for kind in set(model.model_fields) - set(bare):  # `npz:` alone lacks its path
                options = definition["properties"][kind]
                options["anyOf"] = [o for o in options["anyOf"] if o != {"type": "null"}]
            forms = [{"enum": bare}, {**definition, "minProperties": 1, "maxProperties": 1}]
            if "_from_text" in vars(model):  # a wider short form: `data: images/`
                forms.append({"type": "string", "description": "as `--data` takes it"})
            definition = {"description": definition.get("description", ""), "anyOf": forms}
        elif isinstance(model, type) and issubclass(model, config._Path):  # `npz: data.npz`
            definition = {"anyOf": [{"type": "string", "description": "the path"}, definition]}
        defs[name] = definition
    schema.pop("title", None)
    return schema


def _accepts(model: type[config._OneOf], kind: str) -> bool:
    """Whether the choice may be written as its kind alone (`optimizer: sgd`, or
    `optimizer: {sgd: null}`): asked of the model that reads it."""
    try:
        model.model_validate({kind: None})
    except ValidationError:
        return False
    return True


_RULES = ("required", "oneOf", "anyOf", "allOf", "not", "if", "then", "else")
"""Keywords of an op model's schema that constrain its mapping form (fields and the rules
its validators state)."""


def _op_layer(cls: type[Op]) -> dict[str, Any]:
    """`{conv2d: ARGS, name: ..., from: ...}`: ARGS is a mapping, or a short form when the
    loader (`Expander.arguments`) takes one:

    - null, when the op needs no argument;
    - with one positional argument, that argument's value itself (`linear: 120`,
      `adaptive_avgpool2d: [7, 7]`);
    - with several, the first one alone (`maxpool2d: 2`) or a list of 1 to all of them in
      order (`conv2d: [64, 3]`), as long as that covers the required ones; a list's values
      are never null (a default is written by leaving the value out);
    - for merges, the layers they read (`add: [x, y]`).
    """
    args = cls.model_json_schema(by_alias=True)
    properties = {k: _allow_expression(v) for k, v in args["properties"].items() if k != "op"}
    mapping = {"type": "object", "properties": properties, "additionalProperties": False,
               **{k: v for k, v in args.items() if k in _RULES}}
    required = set(args.get("required", ()))
    forms: list[dict[str, Any]] = [mapping]
    if not _needs_arguments(cls):
        forms.append({"type": "null"})
    names = cls.positional
    if cls.short_inputs:
        forms.append({"type": "array", "items": _REFERENCE, "minItems": 2,
                      "description": "the layers to merge"})
    elif len(names) == 1 and required <= set(names):
        forms.append(properties[names[0]])
    elif names and required <= set(names):
        if required <= {names[0]}:
            forms.append({"allOf": [properties[names[0]], {"not": {"type": ["array", "null"]}}]})
        forms.append({
            "type": "array", "description": "positional: " + ", ".join(names),
            "prefixItems": [{"allOf": [properties[n], {"not": {"type": "null"}}]} for n in names],
            "items": False, "minItems": max((names.index(r) + 1 for r in required), default=1),
        })
    layer = {
        "type": "object",
        "description": (cls.__doc__ or cls.kind()).strip().splitlines()[0],
        "properties": {cls.kind(): {"anyOf": forms}, **_OP_META},
        "required": [cls.kind()],
        "additionalProperties": False,
    }
    if cls.short_inputs:  # its inputs are listed once: in its value or in `from`
        layer["not"] = {"required": ["from"], "properties": {cls.kind(): {"type": "array"}}}
    return layer


def _needs_arguments(cls: type[Op]) -> bool:
    """Whether the op refuses to be written bare (`- relu`, `- upsample:`): asked of its
    model, so required fields and validators alike count."""
    try:
        cls.model_validate({})
    except ValidationError:
        return True
    return False


def _allow_expression(prop: dict[str, Any]) -> dict[str, Any]:
    """Numeric and boolean arguments may be expressions, and so may each item of a list
    (`kernel: [k, 1]`), as `Expander.substitute` reads them; choices (`mode`) stay strict so
    an editor flags `bilnear`, at the price of flagging a parameter passed as a choice."""
    prop = _expression_items({k: v for k, v in prop.items() if k != "title"})
    if prop.get("type") == "string" or "enum" in prop or "const" in prop:
        return prop
    return {"anyOf": [prop, _EXPRESSION], **({"default": prop["default"]} if "default" in prop else {})}


def _expression_items(node: dict[str, Any]) -> dict[str, Any]:
    """`node` with the items of every list it allows open to expressions too."""
    if "anyOf" in node:
        return {**node, "anyOf": [_expression_items(branch) for branch in node["anyOf"]]}
    if node.get("type") == "array" and isinstance(node.get("items"), dict):
        return {**node, "items": _allow_expression(node["items"])}
    return node


@dataclass(frozen=True, slots=True)
class Argument:
    """One argument of an op, as an editor shows it: `kernel`, `int ≥ 1, or a list`."""

    name: str
    type: str
    default: str | None
    """The default as YAML writes it; None when the argument is required."""


def arguments(cls: type[Op]) -> list[Argument]:
    """The op's arguments in the order its model declares them, each with its type and
    default (from the same JSON Schema `netspec schema` gives editors)."""
    schema = cls.model_json_schema(by_alias=True)
    required = set(schema.get("required", ()))
    return [Argument(name, _type_text(prop),
                     None if name in required else _yaml_text(prop.get("default")))
            for name, prop in schema["properties"].items() if name != "op"]


def description(cls: type[Op]) -> str:
    """The first paragraph of the op's docstring, on one line."""
    text = (cls.__doc__ or cls.kind()).strip().split("\n\n")[0]
    return " ".join(text.split())


def _type_text(prop: dict[str, Any]) -> str:
    """A JSON Schema type in words: `int ≥ 1`, `bool`, `one of nearest, bilinear`."""
    if "anyOf" in prop:
        kinds = [_type_text(p) for p in prop["anyOf"] if p.get("type") != "null"]
        return " or ".join(dict.fromkeys(kinds))
    if "enum" in prop:
        return "one of " + ", ".join(str(v) for v in prop["enum"])
    kind = prop.get("type")
    if kind == "array":
        return f"list of {_type_text(prop.get('items', {}))}"
    word = {"integer": "int", "number": "float", "boolean": "bool", "string": "str"}.get(
        str(kind), str(kind or "any"))
    for key, sign in (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"),
                      ("exclusiveMaximum", "<")):
        if key in prop:
            word += f" {sign} {prop[key]}"
    return word


def _yaml_text(value: Any) -> str:
    """A default as YAML writes it (`null`, `true`, `[1, 1]`, `zeros`)."""
    return value if isinstance(value, str) else json.dumps(value)
