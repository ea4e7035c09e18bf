"""YAML nesting bounded by netspec's `yaml_depth`, whatever PyYAML and libyaml do.

libyaml's composer recurses once per level in C (PyYAML 6.0 crashes near 90,000 levels), and
libyaml 0.2.5 onwards stops at 1,000 levels with a message of its own. So libyaml composes only
documents whose text bounds their nesting well below both (every real spec); any other
document is composed here, one parser event at a time on an explicit stack, and refused at the
first value nested deeper than the limit, after reading no more of it than that.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from itertools import accumulate
from typing import Any

import yaml

LIBYAML_DEPTH = 500
"""The deepest nesting left to libyaml's composer (its own limit is 1,000 levels)."""

_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_BRACKET_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
_LINE_START = r"(?:^|[\r\x85\u2028\u2029])"  # YAML's line breaks, beyond \n


class TooDeep(Exception):
    """A value nested deeper than allowed; `mark` is where it starts."""

    def __init__(self, mark: yaml.Mark):
        super().__init__(mark)
        self.mark = mark


def may_nest_deeper(text: str, depth: int) -> bool:
    """False only when no value of the YAML `text` can be nested more than `depth` levels deep.

    An upper bound read at C speed, never an under-count (an over-count only costs the slower,
    exact composition): flow collections nest at most as deep as the running count of open
    brackets (quoted ones included); a block collection nests at most two levels per column
    of indentation (a mapping, and a sequence at its key's column), and a line opens more
    only in its leading run of spaces and indicators (`- - x`, `? - x`), plus one for a
    `key: value` on it.
    """
    brackets = _NOT_BRACKET.sub("", text)
    flow = brackets.count("[") + brackets.count("{")
    if flow > depth // 2:
        flow = max(accumulate(map(_BRACKET_STEP.__getitem__, brackets)))
    prefix = (depth - flow - 3) // 2  # block depth <= 2 * (prefix + 1) + 1
    if prefix < 1:
        return True
    return re.search(rf"{_LINE_START}[ \t?:-]{{{prefix + 1}}}", text, re.MULTILINE) is not None


def compose(loader: Any, max_depth: int, resolve: Callable[[type, Any, Any], str]) -> yaml.Node | None:
    """The single document of `loader`'s event stream as nodes, as PyYAML's composer builds
    them, without recursion; raises TooDeep at the first node nested past `max_depth`
    collections, and yaml.composer.ComposerError as PyYAML does."""
    loader.get_event()  # stream start
    if loader.check_event(yaml.StreamEndEvent):
        return None
    loader.get_event()  # document start
    anchors: dict[str, yaml.Node] = {}
    open_nodes: list[yaml.CollectionNode] = []
    pending_keys: list[yaml.Node | None] = []
    root: yaml.Node | None = None
    while not loader.check_event(yaml.DocumentEndEvent):
        event = loader.get_event()
        if isinstance(event, yaml.CollectionEndEvent):
            open_nodes.pop().end_mark = event.end_mark
            pending_keys.pop()
            continue
        if len(open_nodes) > max_depth:
            raise TooDeep(event.start_mark)
        node = _node(event, anchors, resolve)
        if not open_nodes:
            root = node
        elif isinstance(open_nodes[-1], yaml.SequenceNode):
            open_nodes[-1].value.append(node)
        elif pending_keys[-1] is None:
            pending_keys[-1] = node
        else:
            open_nodes[-1].value.append((pending_keys[-1], node))
            pending_keys[-1] = None
        if isinstance(event, yaml.CollectionStartEvent):
            open_nodes.append(node)  # type: ignore[arg-type]
            pending_keys.append(None)
    loader.get_event()  # document end
    if not loader.check_event(yaml.StreamEndEvent):
        event = loader.get_event()
        raise yaml.composer.ComposerError("expected a single document in the stream",
                                          root.start_mark if root else None,
                                          "but found another document", event.start_mark)
    return root


def _node(event: yaml.Event, anchors: dict[str, yaml.Node],
          resolve: Callable[[type, Any, Any], str]) -> yaml.Node:
    """The node an alias, scalar or collection-start event begins (registering its anchor)."""
    if isinstance(event, yaml.AliasEvent):
        if event.anchor not in anchors:
            raise yaml.composer.ComposerError(None, None, f"found undefined alias {event.anchor!r}",
                                              event.start_mark)
        return anchors[event.anchor]
    if event.anchor is not None and event.anchor in anchors:
        raise yaml.composer.ComposerError(f"found duplicate anchor {event.anchor!r}; first occurrence",
                                          anchors[event.anchor].start_mark, "second occurrence",
                                          event.start_mark)
    kind = {yaml.ScalarEvent: yaml.ScalarNode, yaml.SequenceStartEvent: yaml.SequenceNode,
            yaml.MappingStartEvent: yaml.MappingNode}[type(event)]
    tag = event.tag
    if tag is None or tag == "!":
        tag = resolve(kind, event.value if kind is yaml.ScalarNode else None, event.implicit)
    node: yaml.Node
    if kind is yaml.ScalarNode:
        node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, style=event.style)
    else:
        node = kind(tag, [], event.start_mark, None, flow_style=event.flow_style)
    if event.anchor is not None:
        anchors[event.anchor] = node
    return node
