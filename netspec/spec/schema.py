"""JSON Schema of the spec language as people write it (short forms and all), generated from
the op models, for editors: point a YAML language server at `netspec schema > netspec.json`.
"""

from __future__ import annotations

from typing import Any

from netspec.ops import LAYER_OPS, Op
from netspec.spec.document import BlockDef, Spec
from netspec.training import config
from netspec.training.config import TrainConfig

_EXPRESSION = {"type": "string", "description": "an expression over parameters, e.g. `width * 4`"}
_META: dict[str, Any] = {
    "name": {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$",
             "description": "the layer's name (else conv1, conv2, ...)"},
    "from": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
             "description": "the layer(s) it reads (else the previous one)"},
    "repeat": {"anyOf": [{"type": "integer", "minimum": 1}, _EXPRESSION],
               "description": "chain this many copies; `i` is the copy's index"},
    "if": {"anyOf": [{"type": "boolean"}, _EXPRESSION],
           "description": "keep the layer only when this holds"},
    "frozen": {"type": "boolean", "description": "exclude its parameters from training"},
    "init": {"description": "weight initialisation: a scheme (`kaiming_normal`), "
                            "`{scheme: {args}}` or `{weight: ..., bias: ...}`"},
}


def spec_schema() -> dict[str, Any]:
    """The whole language: top-level keys, blocks, and one layer form per op."""
    defs: dict[str, Any] = {f"op_{cls.kind()}": _op_layer(cls) for cls in LAYER_OPS}
    ops = [cls.kind() for cls in LAYER_OPS]
    defs["block_call"] = {
        "type": "object",
        "description": "a block from `blocks:` with its parameters",
        "properties": _META,
        "propertyNames": {"not": {"enum": ops}},
        "minProperties": 1,
    }
    defs["layer"] = {"anyOf": [
        {"type": "string", "description": "an op (or block) without arguments, e.g. `relu`"},
        *({"$ref": f"#/$defs/op_{op}"} for op in ops),
        {"$ref": "#/$defs/block_call"},
    ]}
    defs["layers"] = {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/layer"}}
    top = _document(Spec)
    top["properties"]["train"] = _train_section(defs)
    defs["block"] = _document(BlockDef)
    top["properties"]["blocks"] = {"type": "object", "additionalProperties": {"$ref": "#/$defs/block"}}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "netspec network spec",
        **top,
        "$defs": defs,
    }


def _document(model: type[Spec] | type[BlockDef]) -> dict[str, Any]:
    schema = model.model_json_schema()
    schema.pop("$defs", None)
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
            kinds = list(model.model_fields)
            definition = {"description": definition.get("description", ""), "anyOf": [
                {"enum": kinds}, {**definition, "minProperties": 1, "maxProperties": 1}]}
        elif isinstance(model, type) and issubclass(model, config._OnDisk):
            definition = {"anyOf": [{"type": "string", "description": "the path"}, definition]}
        defs[name] = definition
    schema.pop("title", None)
    return schema


def _op_layer(cls: type[Op]) -> dict[str, Any]:
    """`{conv2d: ARGS, name: ..., from: ...}` where ARGS is a mapping or a short form."""
    args = cls.model_json_schema(by_alias=True)
    properties = {k: _allow_expression(v) for k, v in args.get("properties", {}).items() if k != "op"}
    mapping = {"type": "object", "properties": properties, "additionalProperties": False}
    required = [r for r in args.get("required", []) if r != "op"]
    if required:
        mapping["required"] = required
    forms: list[dict[str, Any]] = [mapping]
    if not required:
        forms.append({"type": "null"})
    if cls.short_inputs:
        forms.append({"type": "array", "items": {"type": "string"}, "minItems": 2,
                      "description": "the layers to merge"})
    elif cls.positional:
        forms.append(properties[cls.positional[0]])
        forms.append({"type": "array", "maxItems": len(cls.positional),
                      "description": "positional: " + ", ".join(cls.positional)})
    return {
        "type": "object",
        "description": (cls.__doc__ or cls.kind()).strip().splitlines()[0],
        "properties": {cls.kind(): {"anyOf": forms}, **_META},
        "required": [cls.kind()],
        "additionalProperties": False,
    }


def _allow_expression(prop: dict[str, Any]) -> dict[str, Any]:
    """Numeric and boolean arguments may be expressions; choices (`mode`) stay strict so an
    editor flags `bilnear`, at the price of flagging a parameter passed as a choice."""
    prop = {k: v for k, v in prop.items() if k != "title"}
    if prop.get("type") == "string" or "enum" in prop or "const" in prop:
        return prop
    return {"anyOf": [prop, _EXPRESSION], **({"default": prop["default"]} if "default" in prop else {})}
