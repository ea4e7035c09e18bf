"""YAML nesting: netspec's `yaml_depth` holds whatever PyYAML does (its 6.0 crashes composing
90,000 levels; 6.0.4's libyaml stops at 1,000 with a message of its own), the cheap text bound
never under-counts, and the event-by-event composer builds PyYAML's own nodes."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import netspec
from netspec.spec import nesting
from netspec.spec.source import _PyParser, _resolve, read_source


def depth_of(value: Any) -> int:
    """How many lists and mappings enclose the deepest value (a scalar alone: 0)."""
    deepest, todo = 0, [(value, 0)]
    while todo:
        value, depth = todo.pop()
        if isinstance(value, dict):
            value = [*value.keys(), *value.values()]
        if isinstance(value, list):
            todo.extend((item, depth + 1) for item in value)
            deepest = max(deepest, depth + 1)
    return deepest


def nested(style: str, levels: int) -> str:
    """A document whose innermost value is `levels` collections deep."""
    if style == "flow lists":
        return "[" * levels + "1" + "]" * levels
    if style == "flow mappings":
        return "{a: " * levels + "1" + "}" * levels
    if style == "compact block lists":
        return "- " * levels + "1\n"
    return "".join(" " * i + "a:\n" for i in range(levels - 1)) + " " * levels + "a: 1\n"


STYLES = ["flow lists", "flow mappings", "compact block lists", "indented mappings"]
LIMIT = netspec.Limits().yaml_depth


@pytest.mark.parametrize("style", STYLES)
def test_the_limit_holds_exactly_in_every_style(style: str) -> None:
    assert depth_of(read_source("ok.yaml", nested(style, LIMIT)).data) == LIMIT
    with pytest.raises(netspec.SpecError) as caught:
        read_source("deep.yaml", nested(style, LIMIT + 1))
    (error,) = caught.value.errors
    assert error.code == "limit" and f"nested more than {LIMIT} levels deep" in error.message
    assert "yaml_depth" in error.message and "yaml_depth" in (error.hint or "")


@pytest.mark.parametrize("style", STYLES)
def test_a_refusal_points_at_the_first_value_too_deep(style: str) -> None:
    text = nested(style, 5000 if style != "indented mappings" else 400)
    with pytest.raises(netspec.SpecError) as caught:
        read_source("deep.yaml", text)
    where = caught.value.errors[0].where
    loader, enclosing = yaml.SafeLoader(text), 0  # the first value inside LIMIT + 1 collections
    while not isinstance(event := loader.get_event(), yaml.NodeEvent) or enclosing <= LIMIT:
        enclosing += isinstance(event, yaml.CollectionStartEvent)
        enclosing -= isinstance(event, yaml.CollectionEndEvent)
    mark = event.start_mark
    assert (where.line, where.column) == (mark.line + 1, mark.column + 1)


@pytest.mark.parametrize("style", [pytest.param(s, marks=pytest.mark.slow) if s.startswith("flow")
                                   else s for s in STYLES])  # PyYAML's own scanner: seconds
def test_a_raised_limit_reads_past_libyamls_own(style: str) -> None:
    levels = 1100  # libyaml 0.2.5 refuses more than 1,000
    with netspec.limits.applied(netspec.Limits(yaml_depth=levels)):
        assert depth_of(read_source("deep.yaml", nested(style, levels)).data) == levels
    with pytest.raises(netspec.SpecError, match="limit `yaml_depth`"):
        read_source("deep.yaml", nested(style, levels))


@pytest.mark.slow
def test_a_raised_limit_works_through_the_cli(tmp_path) -> None:
    from click.testing import CliRunner

    from netspec.cli import main

    path = tmp_path / "deep.yaml"
    path.write_text("input: [1, 8, 8]\nlayers: [relu]\ndescription: " + nested("flow lists", 1200))
    refused = CliRunner().invoke(main, ["check", str(path)])
    raised = CliRunner().invoke(main, ["check", str(path), "--limit", "yaml_depth=5000"])
    assert refused.exit_code == 1 and "limit `yaml_depth`" in refused.stderr
    assert raised.exit_code == 1 and "yaml_depth" not in raised.stderr  # past YAML: a string expected
    assert "description" in raised.stderr


values = st.recursive(st.integers(0, 9) | st.sampled_from(["a", "b c", "[x]", "{y}", "- z"]),
                      lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.sampled_from(["k", "l", "m"]), inner, max_size=3),
                      max_leaves=40)


@settings(max_examples=300, deadline=None)
@given(value=values, flow=st.sampled_from([True, False, None]), indent=st.integers(2, 9),
       width=st.sampled_from([20, 80, 10**6]))
def test_the_text_bound_never_under_counts(value: Any, flow: bool | None, indent: int,
                                           width: int) -> None:
    text = yaml.safe_dump(value, default_flow_style=flow, indent=indent, width=width)
    depth = depth_of(value)
    assert all(nesting.may_nest_deeper(text, d) for d in range(depth))


def tree(node: yaml.Node | None) -> Any:
    """A node tree as comparable data: kind, tag, value, marks."""
    if node is None:
        return None
    marks = (node.start_mark.index, node.end_mark.index)
    if isinstance(node, yaml.ScalarNode):
        return ("scalar", node.tag, node.value, node.style, marks)
    if isinstance(node, yaml.SequenceNode):
        return ("seq", node.tag, node.flow_style, marks, [tree(n) for n in node.value])
    return ("map", node.tag, node.flow_style, marks, [(tree(k), tree(v)) for k, v in node.value])


@settings(max_examples=300, deadline=None)
@given(value=values, flow=st.sampled_from([True, False, None]), indent=st.integers(2, 9))
def test_the_event_composer_builds_pyyamls_nodes(value: Any, flow: bool | None, indent: int) -> None:
    text = yaml.safe_dump(value, default_flow_style=flow, indent=indent)
    ours = nesting.compose(_PyParser(text), 10**6, _resolve)

    class Reference(yaml.SafeLoader):
        def resolve(self, kind, value, implicit):
            return _resolve(kind, value, implicit)

    assert tree(ours) == tree(yaml.compose(text, Loader=Reference))


@pytest.mark.parametrize(("text", "message"), [
    ("a: &x 1\nb: &x 2\n", "found duplicate anchor 'x'"),
    ("a: *nowhere\n", "found undefined alias 'nowhere'"),
    ("a: 1\n---\nb: 2\n", "expected a single document in the stream"),
])
def test_the_event_composer_refuses_what_pyyaml_refuses(text: str, message: str) -> None:
    for compose in (lambda: nesting.compose(_PyParser(text), 10**6, _resolve),
                    lambda: yaml.compose(text, Loader=yaml.SafeLoader)):
        with pytest.raises(yaml.composer.ComposerError, match=message):
            compose()


def test_aliases_share_nodes_as_pyyaml_does() -> None:
    root = nesting.compose(_PyParser("a: &x [1, 2]\nb: *x\n"), 10**6, _resolve)
    (_, first), (_, second) = root.value
    assert first is second
