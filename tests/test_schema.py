"""`netspec schema`: the JSON Schema editors use accepts every zoo spec and flags mistakes."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from netspec.cli import main
from netspec.ops import LAYER_OPS

SPECS = sorted((Path(__file__).resolve().parent.parent / "specs").glob("*.yaml"))


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    result = CliRunner().invoke(main, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_every_zoo_spec_validates(validator, path):
    assert list(validator.iter_errors(yaml.safe_load(path.read_text()))) == []


def test_every_op_has_a_layer_form(validator):
    defs = validator.schema["$defs"]
    assert {f"op_{cls.kind()}" for cls in LAYER_OPS} <= set(defs)


@pytest.mark.parametrize("doc", [
    {"input": [1, 8, 8], "layers": [{"conv2d": {"out": 4, "kernal": 3}}]},
    {"input": [1, 8, 8], "layers": [{"conv2d": {"kernel": 3}}]},
    {"input": [1, 8, 8], "layers": [{"dropout": {"p": 1.5}}]},
    {"input": [1, 8, 8], "layers": [{"upsample": {"scale": 2, "mode": "bilnear"}}]},
    {"input": [1, 8, 8], "layers": [{"relu": None, "nmae": "x"}]},
    {"input": [1, 8, 8], "layerz": []},
])
def test_mistakes_are_flagged(validator, doc):
    assert list(validator.iter_errors(doc))


def test_short_forms_and_expressions_are_accepted(validator):
    doc = {"input": [1, 8, 8], "params": {"w": 4}, "layers": [
        "relu", {"conv2d": [4, 3]}, {"maxpool2d": 2}, {"conv2d": {"out": "w * 2", "kernel": 1}},
        {"add": ["conv1", "conv2"]}, {"linear": 3, "name": "head", "repeat": 2},
    ]}
    assert list(validator.iter_errors(doc)) == []
