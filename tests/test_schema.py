"""`netspec schema`: the JSON Schema editors use is the language the loader reads.

Beyond the zoo and a few mistakes, two properties tie the schema to the loader:

(a) a document drawn from the schema (every op in every form it allows, nulls, lists of
    each length, mappings with any of their keys, blocks, `train:`, `init:`) loads without
    an error of form; errors only `check` can judge (names, expressions, shapes) may follow;
(b) a bad spec whose form the loader refuses is refused by the schema too.

The documents come from `draw_from`, a small generator that walks the schema itself: a
keyword it does not build from (`not`, `if`, `oneOf`'s exclusivity) it enforces by keeping
only the values the schema validates, so every document drawn is one the schema accepts.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netspec.api import parse
from netspec.cli import main
from netspec.ops import LAYER_OPS, OPS

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
BAD = sorted((ROOT / "tests" / "bad").glob("*.yaml"))

FORM = frozenset({"bad-document", "unknown-key", "missing-key", "invalid-value", "bad-short-form",
                  "bad-layer", "bad-name", "bad-init", "bad-indent"})
"""Diagnostic codes of errors of form: the document's shape, whatever its names mean. The
others are judged against the rest of the spec: references (`bad-ref`, `unknown-op`,
`duplicate-name`, block arity and recursion), expressions, limits, shapes."""

SCHEMA_BLIND: dict[str, str] = {
    "wrong_type_string.yaml": "a word where a number goes may be an expression over "
                              "parameters (`sixty - four`); only the loader knows them",
    "wrong_type_bool.yaml": "a word where a boolean goes may name a parameter",
    "expr_true_division.yaml": "what an expression evaluates to (a float from `/`)",
    "block_missing_param.yaml": "a block call's parameters are its definition's, which JSON "
                                "Schema cannot relate the call to",
    "block_unknown_param.yaml": "the same: the block's definition declares its parameters",
}
"""Bad specs whose form errors no JSON Schema can see, and why."""

EXAMPLES = int(os.environ.get("NETSPEC_SCHEMA_EXAMPLES", "2000"))
"""Documents drawn by the slow run of property (a)."""


SCHEMA = json.loads(CliRunner().invoke(main, ["schema"]).output)
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
DEFS = SCHEMA["$defs"]


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    return VALIDATOR


def test_the_schema_is_a_json_schema():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


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


def test_numbered_layers_as_torch_names_them_are_accepted_by_both(validator):
    """A Sequential's children, `name: 0`, read by number in `from:` and `tie:`."""
    doc = {"input": [4], "outputs": [0, 3], "layers": [{"linear": 4, "name": 0}, {"linear": 4, "name": "1"},
                                    {"add": [0, "1"]}, {"linear": 4, "from": 0, "tie": 0}]}
    assert list(validator.iter_errors(doc)) == []
    assert form_errors(doc) == []
    assert not validator.is_valid({"input": [4], "layers": [{"linear": 4, "name": -1}]})


@pytest.mark.parametrize("layer", [
    {"linear": [3]},  # one positional argument: the short form is its value, `linear: 3`
    {"dropout": [0.5]}, {"linear": []}, {"conv2d": []}, {"conv2d": 6}, {"conv2d": [6]},
    {"maxpool2d": [2, None]}, {"maxpool2d": [2, 2, 0, 1]}, {"adaptive_avgpool2d": []},
    "conv2d", {"upsample": {"scale": 2, "size": 4}}, {"upsample": [2, "bilnear"]},
    {"upsample": {"scale": 2, "align_corners": True}}, {"layernorm": {"dims": 1, "shape": [4]}},
    {"relu": None, "frozen": "yes"}, {"relu": None, "if": None}, {"relu": None, "name": "forward"},
    {"relu": None, "init": "kaiming"}, {"name": "x"},
], ids=repr)
def test_both_refuse(validator, layer):
    """Short forms the schema once took and the loader refused; each is now refused by both."""
    doc = {"input": [3, 8, 8], "layers": [layer]}
    assert not validator.is_valid(doc)
    assert form_errors(doc)


@pytest.mark.parametrize("doc", [
    {"layers": ["relu"]},
    {"input": [3], "inputs": {"x": [3]}, "layers": ["relu"]},
    {"inputs": {}, "layers": ["relu"]},
    {"input": [3], "params": {"w": 1}, "scales": {"n": 3}, "layers": ["relu"]},
    {"input": [3], "params": {"w": 1}, "scales": {"all": {"w": 2}}, "layers": ["relu"]},
    {"input": [3], "params": {"w": 1}, "scales": {"0_5": {"w": 2}}, "layers": ["relu"]},
], ids=repr)
def test_both_refuse_a_document(validator, doc):
    assert not validator.is_valid(doc)
    assert form_errors(doc)


# -- (a) documents drawn from the schema load without errors of form ----------------------

def form_errors(doc: Any) -> list[str]:
    """The loader's errors of form for `doc`, as text."""
    return [d.format() for d in parse(doc)[1] if d.code in FORM]


def draw_from(node: Any, depth: int = 0) -> st.SearchStrategy[Any]:
    """Values `node` (a part of the schema) accepts."""
    if node is True or node == {}:
        return st.one_of(st.integers(1, 4), st.booleans(), st.none())
    if "$ref" in node:
        return st.deferred(lambda: draw_from(_resolve(node["$ref"]), depth + 1))
    base = _build(node, depth)
    if any(k in node for k in ("not", "if", "oneOf", "allOf", "minProperties", "maxProperties")):
        check = VALIDATOR.evolve(schema=node)
        return base.filter(lambda value: check.is_valid(value))
    return base


def _resolve(ref: str) -> Any:
    return DEFS[ref.removeprefix("#/$defs/")]


def _build(node: dict[str, Any], depth: int) -> st.SearchStrategy[Any]:
    """Values from the keywords that say what to build; `draw_from` filters by the rest."""
    if "enum" in node:
        return st.sampled_from(node["enum"])
    if "const" in node:
        return st.just(node["const"])
    branches = node.get("anyOf") or node.get("oneOf")
    if branches and "type" not in node:  # else they constrain what the type builds
        plain = [b for b in branches if b != {"$ref": "#/$defs/expression"}]
        values = st.one_of([draw_from(b, depth) for b in plain])
        return st.one_of(values, values.map(_as_expression)) if len(plain) < len(branches) else values
    if "allOf" in node:
        return draw_from(node["allOf"][0], depth)
    kind = node.get("type")
    if isinstance(kind, list):
        return st.one_of([_build({**node, "type": k}, depth) for k in kind])
    return _BUILDERS[kind](node, depth) if kind in _BUILDERS else draw_from(True)


def _as_expression(value: Any) -> Any:
    """An expression string that evaluates to `value` (values it cannot spell stay as they are)."""
    if isinstance(value, bool):
        return "1 == 1" if value else "1 == 0"
    if isinstance(value, int | float):
        return repr(value)
    return value


def _integers(node: dict[str, Any], depth: int) -> st.SearchStrategy[int]:
    low = node.get("minimum", -3)
    return st.integers(low, node.get("maximum", max(low, 1) + 3))


def _numbers(node: dict[str, Any], depth: int) -> st.SearchStrategy[float | int]:
    low = node.get("minimum", node.get("exclusiveMinimum", -2.0))
    high = node.get("maximum", low + 4.0)
    floats = st.floats(low, high, exclude_min="exclusiveMinimum" in node)
    return st.one_of(floats, st.integers(int(low) + 1, int(high)))


def _strings(node: dict[str, Any], depth: int) -> st.SearchStrategy[str]:
    if "pattern" in node:
        # `$` lets a final newline through in Python's regexes, not in ECMA-262's
        return st.from_regex(node["pattern"], fullmatch=True).filter(
            lambda s: len(s) < 12 and "\n" not in s)
    return st.text("abcxyz_", min_size=1, max_size=6)


def _arrays(node: dict[str, Any], depth: int) -> st.SearchStrategy[list[Any]]:
    low = node.get("minItems", 0)
    if "prefixItems" in node:
        prefix = [draw_from(item, depth + 1) for item in node["prefixItems"]]
        return st.integers(low, len(prefix)).flatmap(lambda n: st.tuples(*prefix[:n]).map(list))
    high = min(node.get("maxItems", low + 3), low + 3 if depth < 4 else low)
    return st.lists(draw_from(node.get("items", True), depth + 1), min_size=low, max_size=high)


def _objects(node: dict[str, Any], depth: int) -> st.SearchStrategy[dict[str, Any]]:
    properties = node.get("properties", {})
    required = set(node.get("required", ()))
    fixed = st.fixed_dictionaries(
        {k: draw_from(v, depth + 1) for k, v in properties.items() if k in required},
        optional={k: draw_from(v, depth + 1) for k, v in properties.items() if k not in required})
    extra = node.get("additionalProperties", True)
    if extra is False:
        return fixed
    keys = _strings(node.get("propertyNames", {}), depth).filter(lambda k: k not in properties)
    more = st.dictionaries(keys, draw_from(extra, depth + 1), max_size=1 if depth < 4 else 0)
    return st.tuples(fixed, more).map(lambda parts: {**parts[1], **parts[0]})


_BUILDERS = {"integer": _integers, "number": _numbers, "string": _strings, "array": _arrays,
             "object": _objects, "boolean": lambda node, depth: st.booleans(),
             "null": lambda node, depth: st.none()}

QUICK = settings(derandomize=True, deadline=None, max_examples=6,
                 suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])


def _forms(kind: str) -> list[Any]:
    return DEFS[f"op_{kind}"]["properties"][kind]["anyOf"]


@pytest.mark.parametrize(("kind", "form"), [(k, i) for k in OPS for i in range(len(_forms(k)))],
                         ids=lambda v: str(v))
def test_every_form_of_every_op_loads(kind, form):
    """Each form the schema allows an op (mapping, null, value, list) loads without an
    error of form, with any of its keys and any list length it allows."""
    layer = {**DEFS[f"op_{kind}"], "properties": {
        **DEFS[f"op_{kind}"]["properties"], kind: _forms(kind)[form]}}

    @QUICK
    @given(draw_from(layer))
    def loads(entry: dict[str, Any]) -> None:
        doc = {"input": [3, 8, 8], "params": {"p": 2}, "layers": [entry]}
        assert VALIDATOR.is_valid(doc)
        assert form_errors(doc) == []

    loads()


@pytest.mark.parametrize("kind", [k for k, cls in OPS.items() if cls.positional])
def test_short_forms_near_misses_agree(kind):
    """Around every valid short form (one value more or fewer, empty, a null inside, a
    one-item list), the schema and the loader give the same verdict."""
    short = [f for f in _forms(kind) if f.get("type") != "object"]

    @QUICK
    @given(st.one_of([draw_from(f) for f in short]))
    def agree(value: Any) -> None:
        items = value if isinstance(value, list) else [value]
        for near in ([], [value], [None], items[:-1], [*items, *items[-1:]], [*items[:-1], None]):
            if _nested_string(near):
                continue
            doc = {"input": [3, 8, 8], "layers": [{kind: near}]}
            assert VALIDATOR.is_valid(doc) == (form_errors(doc) == []), near

    agree()


def _nested_string(value: Any) -> bool:
    """Whether a list holds a list holding a string (`[[2, nearest]]`, `[[1, "0"]]`): in a
    number's place, only the loader knows whether it names a parameter or what it
    evaluates to."""
    return isinstance(value, list) and any(
        isinstance(item, list) and any(isinstance(v, str) for v in item) for item in value)


def _documents(examples: int) -> None:
    @settings(QUICK, max_examples=examples)
    @given(draw_from(VALIDATOR.schema))
    def loads(doc: dict[str, Any]) -> None:
        assert VALIDATOR.is_valid(doc)
        assert form_errors(doc) == []

    loads()


LARGE_REPR = pytest.mark.filterwarnings("ignore:Generating overly large repr")
"""Hypothesis shows the strategy of a whole document in a warning; it is the schema."""


@LARGE_REPR
def test_documents_from_the_schema_load():
    """Whole documents: blocks, parameters, layer keys, `init:`, `train:`."""
    _documents(12)


@LARGE_REPR
@pytest.mark.slow
def test_many_documents_from_the_schema_load():
    """The same with NETSPEC_SCHEMA_EXAMPLES documents (2,000 by default)."""
    _documents(EXAMPLES)


# -- (b) what the loader refuses for its form, the schema refuses -------------------------

def _refused_for_form(path: Path) -> bool:
    """Whether the loader refuses a bad spec for its form (YAML that reads, errors of form);
    the other bad specs fail later than any schema could see (references, shapes, limits)."""
    try:
        yaml.safe_load(path.read_text())
    except yaml.YAMLError:
        return False
    return any(e.code in FORM for e in parse(path)[1])


@pytest.mark.parametrize("path", [p for p in BAD if _refused_for_form(p)], ids=lambda p: p.name)
def test_bad_forms_are_refused_by_the_schema(path):
    doc = yaml.safe_load(path.read_text())
    if path.name in SCHEMA_BLIND:
        assert VALIDATOR.is_valid(doc), "the schema now sees it: drop it from SCHEMA_BLIND"
    else:
        assert not VALIDATOR.is_valid(doc)
