"""Safe YAML reading that remembers where every value came from.

libyaml composes the document into nodes (with line/column marks); a small constructor of our
own turns the nodes into plain Python (dict, list, str, int, float, bool, None) and nothing
else: no tags beyond the YAML core schema, so no object construction, ever. Each dict and list
keeps a link to its node, so any value found wrong later can be traced back to its line.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import re
import stat
import sys
from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, NoReturn

import yaml

from netspec import limits
from netspec.errors import Diagnostic, SpecError, Where, clipped
from netspec.spec import nesting

_Parser = getattr(getattr(yaml, "cyaml", None), "CParser", None)
_RESOLVER = yaml.resolver.Resolver()
_CORE = "tag:yaml.org,2002:"


_INT, _FLOAT, _STR = f"{_CORE}int", f"{_CORE}float", f"{_CORE}str"
_CORE_INT = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
_CORE_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?"
                         r"|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)")
"""Numbers as YAML 1.2's core schema writes them: `017` is 17, `0o17` 15, `0x1F` 31,
`1e-3` a float; YAML 1.1's `1:0` (base 60), `0b101` and `1_000` are strings."""


@functools.lru_cache(maxsize=8192)
def _resolve_scalar(kind: type, value: str, implicit: tuple[bool, bool]) -> str:
    tag = _RESOLVER.resolve(kind, value, implicit)
    if not implicit[0]:  # quoted: a string, or what its explicit tag says
        return tag
    if _CORE_INT.fullmatch(value):
        return _INT
    if _CORE_FLOAT.fullmatch(value):
        return _FLOAT
    return _STR if tag in (_INT, _FLOAT) else tag


def _resolve(kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
    """A node's tag from its text: PyYAML's resolver for null and booleans, YAML 1.2's core
    schema for numbers, memoised for scalars (specs repeat the same few thousands of times)."""
    if kind is yaml.ScalarNode:
        return _resolve_scalar(kind, value, tuple(implicit))
    return _RESOLVER.resolve(kind, value, implicit)


class _PyParser(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser):
    """PyYAML's pure-Python event parser (no nesting limit of its own, no recursion).

    Its possible simple keys (one per flow level) are saved in the order of their place in
    the text, so the nearest is the first and those gone stale are the oldest: both are
    found without scanning them all on every token, as PyYAML does (quadratic in the
    nesting of `[[[...`, which it reads 1,024 characters ahead)."""

    def __init__(self, stream: str):
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)

    def next_possible_simple_key(self) -> int | None:
        return next((key.token_number for key in self.possible_simple_keys.values()), None)

    def stale_possible_simple_keys(self) -> None:
        keys = self.possible_simple_keys
        while keys:
            level, key = next(iter(keys.items()))
            if key.line == self.line and self.index - key.index <= 1024:
                return
            if key.required:
                raise yaml.scanner.ScannerError("while scanning a simple key", key.mark,
                                                "could not find expected ':'", self.get_mark())
            del keys[level]


if _Parser is not None:

    class _Loader(_Parser, yaml.resolver.Resolver):  # type: ignore[misc, valid-type]
        """libyaml's parser and composer with our tag resolution; construction is ours
        (`_Builder`)."""

        def __init__(self, stream: str):
            _Parser.__init__(self, stream)
            yaml.resolver.Resolver.__init__(self)

        def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
            return _resolve(kind, value, implicit)


def _compose(text: str, max_depth: int) -> yaml.Node | None:
    """The document's root node: composed by libyaml when the text bounds its nesting well
    within both `max_depth` and libyaml's own limits, else event by event (`nesting.compose`),
    refused past `max_depth` whatever PyYAML's version does."""
    if _Parser is not None and not nesting.may_nest_deeper(text, min(max_depth, nesting.LIBYAML_DEPTH)):
        return yaml.compose(text, Loader=_Loader)
    # PyYAML's own parser: libyaml's scans up to 1,024 characters ahead, into its own limit
    return nesting.compose(_PyParser(text), max_depth, _resolve)


_PY310_FRAMES = 20_000
"""Python 3.10 calls Python on the C stack: as deep as it safely goes on an 8 MiB stack."""


@contextlib.contextmanager
def _recursion_room(levels: int) -> Iterator[None]:
    """Room on Python's stack for `_Builder`'s few calls per level of a `levels`-deep document
    (Python 3.11+ keeps Python calls off the C stack; 3.10 up to `_PY310_FRAMES`)."""
    old = sys.getrecursionlimit()
    room = old + 3 * levels
    sys.setrecursionlimit(max(old, room if sys.version_info >= (3, 11) else min(room, _PY310_FRAMES)))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


_SCALAR_TAGS = {f"{_CORE}{t}" for t in ("str", "int", "float", "bool", "null")}
_BOOL = f"{_CORE}bool"
_BOOLEANS: dict[str, bool] = yaml.constructor.SafeConstructor.bool_values
_SEQ, _MAP, _MERGE = f"{_CORE}seq", f"{_CORE}map", f"{_CORE}merge"

@dataclass(frozen=True, slots=True)
class Pos:
    """A position looked up only when needed (errors are rare; specs can be long)."""

    source: Source
    obj: Any
    keys: tuple[Hashable, ...] = ()

    def at(self) -> Where:
        return self.source.where(self.obj, *self.keys)


class Source:
    """Python data read from YAML, with the position of every mapping, list and key in it."""

    def __init__(self, file: str, data: Any = None, nodes: dict[int, yaml.Node] | None = None,
                 text: str | None = None):
        self.file = file
        self.data = data
        self.text = text
        """The YAML text read (None for a dict), kept with training checkpoints."""
        self._nodes = nodes or {}

    def node(self, obj: Any, *keys: Hashable) -> yaml.Node | None:
        """The YAML node of `obj[keys[0]][keys[1]]...`, as deep as the document allows."""
        node = self._nodes.get(id(obj))
        for key in keys:
            child = _child(node, key) if node is not None else None
            if child is None:
                break
            node = child
        return node

    def pos(self, obj: Any, *keys: Hashable) -> Pos:
        """A lazy `where(obj, *keys)`."""
        return Pos(self, obj, keys)

    def where(self, obj: Any, *keys: Hashable) -> Where:
        """The position of `obj[keys...]`: its value when it exists (its key when the value is
        left empty, as in `- concat:`), else its nearest parent."""
        node = self.node(obj, *keys)
        if keys and isinstance(node, yaml.ScalarNode) and node.value == "" and not node.style:
            return self._key_mark(self.node(obj, *keys[:-1]), keys[-1])
        return self._mark(node)

    def key_where(self, obj: Any, key: Hashable) -> Where:
        """The position of the key `key` itself in the mapping `obj` (for unknown keys)."""
        return self._key_mark(self._nodes.get(id(obj)), key)

    def _key_mark(self, node: yaml.Node | None, key: Hashable) -> Where:
        if isinstance(node, yaml.MappingNode):
            for k, _ in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value == str(key):
                    return self._mark(k)
        return self._mark(node)

    def _mark(self, node: yaml.Node | None) -> Where:
        if node is None:  # a dict given as data (no position), else the document's start
            known = self.text is not None or self.data is None
            return Where(self.file, int(known), int(known))
        end = _first_line_end(node)
        return Where(self.file, node.start_mark.line + 1, node.start_mark.column + 1,
                     end.line + 1, end.column + 1)


def _first_line_end(node: yaml.Node) -> yaml.Mark:
    """Where the text of `node` ends: a scalar's or a flow collection's end, a block
    collection's first key or item's (its other lines are told apart by their own nodes)."""
    while isinstance(node, yaml.CollectionNode) and not node.flow_style and node.value:
        first = node.value[0]
        node = first[0] if isinstance(node, yaml.MappingNode) else first
    return node.end_mark


def _child(node: yaml.Node, key: Hashable) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == str(key):
                return v
    elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and 0 <= key < len(node.value):
        return node.value[key]
    return None


_EDITED: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "edited", default=MappingProxyType({}))


@contextlib.contextmanager
def editing(texts: Mapping[str, str]) -> Iterator[None]:
    """Within it, `read_source` reads these texts instead of the files at their paths
    (absolute, resolved): an editor's unsaved buffers, as `use:` should see them."""
    token = _EDITED.set(texts)
    try:
        yield
    finally:
        _EDITED.reset(token)


def edited_text(path: Path) -> str | None:
    """The editor's text of the file at `path` (absolute, resolved) while `editing`."""
    return _EDITED.get().get(str(path)) if _EDITED.get() else None


def read_source(origin: str | Path, text: str | None = None) -> Source:
    """Parse YAML text (read from `origin` when `text` is None) into a positioned `Source`.

    Raises SpecError for unreadable files, invalid UTF-8 or YAML syntax, duplicate keys,
    tags outside the YAML core schema and documents that expand beyond the safety limits.
    """
    file = str(origin)
    max_bytes = limits.current().spec_bytes
    if text is None and _EDITED.get():
        text = edited_text(Path(origin).resolve())
    if text is None:
        try:
            raw = read_bytes(origin, max_bytes + 1)
        except (OSError, ValueError) as exc:  # ValueError: a NUL in the name
            message = f"cannot read spec: {getattr(exc, 'strerror', None) or exc}"
            raise SpecError([Diagnostic(Where(file, 1, 1), "", message)]) from None
    if len(raw if text is None else text) > max_bytes:
        message = (f"the spec is larger than {max_bytes:,} bytes (limit `spec_bytes`; "
                   "a 10,000-layer spec takes about 0.3 MiB)")
        raise SpecError([Diagnostic(Where(file, 1, 1), "", message, limits.raise_hint("spec_bytes"),
                                    code="limit")]) from None
    if text is None:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
            message = "the file is not valid UTF-8"
            raise SpecError([Diagnostic(Where(file, line, col), "", message)]) from None
    max_depth = limits.current().yaml_depth
    try:
        root = _compose(text, max_depth)
    except nesting.TooDeep as exc:
        where = Where(file, exc.mark.line + 1, exc.mark.column + 1)
        raise SpecError([_too_deep(where, max_depth)]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = _end_of(file, text) if mark is None or mark.index >= len(text) \
            else Where(file, mark.line + 1, mark.column + 1)
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.context_mark and exc.problem and exc.context_mark != mark:
            problem += (f" ({exc.context} that starts at line {exc.context_mark.line + 1}, "
                        f"column {exc.context_mark.column + 1})")
        hint = _bare_item_hint(text, where.line)
        if mark and text[mark.index:mark.index + 1] == "\t":
            hint = "YAML indents with spaces only: replace the tab"
        error = _misindented_item(file, text, where.line) if hint is None else None
        raise SpecError([error or Diagnostic(where, "", f"invalid YAML: {problem}", hint)]) from None
    except yaml.YAMLError as exc:
        raise SpecError([Diagnostic(Where(file, 1, 1), "", f"invalid YAML: {exc}")]) from None
    builder = _Builder(file)
    try:
        with _recursion_room(max_depth):
            if root is not None and "*" in text:  # an alias can repeat a whole subtree
                builder.check_size(root)
            data = builder.build(root, 0) if root is not None else None
    except _TooBig:
        data = None
    except RecursionError:  # Python 3.10 only, when `yaml_depth` is raised past its stack
        message = ("values are nested too deeply for Python 3.10's stack (`yaml_depth` was "
                   "raised past it); Python 3.11 or newer reads them")
        raise SpecError([Diagnostic(Where(file, 1, 1), "", message, code="limit")]) from None
    if builder.errors:
        raise SpecError(builder.errors)
    return Source(file, data, builder.nodes, text)


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


def not_regular(mode: int) -> str | None:
    """What a file of `mode` is when it is not a regular file ("a named pipe", ...), else
    None: only regular files are read, since reading a pipe or a device can block forever
    or never end."""
    if stat.S_ISREG(mode):
        return None
    return next((kind for test, kind in _KINDS if test(mode)), "not a regular file")


def read_bytes(path: str | Path, size: int) -> bytes:
    """At most `size` bytes of the regular file `path`; OSError for anything else. The file
    is checked before it is opened and again once open (it may have been swapped), and
    opened without blocking, so a named pipe cannot hang the reader."""
    kind = not_regular(os.stat(path).st_mode)
    if kind is None:
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
        fd = os.open(path, flags | getattr(os, "O_BINARY", 0))
        with open(fd, "rb") as stream:
            kind = not_regular(os.fstat(fd).st_mode)
            if kind is None:
                return stream.read(size)
    raise OSError(0, f"{path} is not a regular file ({kind})")


def _children(node: yaml.Node) -> list[yaml.Node]:
    """The nodes `_Builder.build` builds under `node`, in order (a merge key is not built)."""
    if isinstance(node, yaml.SequenceNode):
        return node.value
    if isinstance(node, yaml.MappingNode):
        return [n for k, v in node.value for n in ((v,) if k.tag == _MERGE else (k, v))]
    return []


def _end_of(file: str, text: str) -> Where:
    """The position just after the last character (PyYAML's end-of-stream mark can be one
    line further, past the end of the file)."""
    end = len(text.rstrip("\n")) if text.strip() else 0
    start = text.rfind("\n", 0, end) + 1
    return Where(file, text.count("\n", 0, end) + 1, end - start + 1)


_BARE_ITEM = re.compile(r"\s*-\s+([A-Za-z_]\w*)\s*(#.*)?")
_KEY_LINE = re.compile(r"\s+[A-Za-z_]\w*\s*:")


def _bare_item_hint(text: str, line: int) -> str | None:
    """`- relu` followed by `  name: x` is invalid YAML; say how to write it."""
    lines = text.splitlines()
    for number in (line - 1, line):  # the parser stops on the key line or just after it
        if 2 <= number <= len(lines):
            item = _BARE_ITEM.fullmatch(lines[number - 2])
            if item and _KEY_LINE.match(lines[number - 1]):
                return (f"to give `{item.group(1)}` keys such as `name:`, write "
                        f"`- {item.group(1)}:` with a colon (line {number - 1})")
    return None


_ITEM = re.compile(r"( *)- ")


def _misindented_item(file: str, text: str, line: int) -> Diagnostic | None:
    """A list item on `line` (or the line before it, where the parser stops late) indented
    unlike the item before it: say which, and how far each is indented."""
    lines = text.splitlines()
    for number in (line, line - 1):
        item = _ITEM.match(lines[number - 1]) if 1 <= number <= len(lines) else None
        if item is None:
            continue
        indent = len(item[1])
        earlier: list[tuple[int, int]] = []  # (line, indent) of the items above, nearest first
        for n in range(number - 1, 0, -1):
            stripped = lines[n - 1].lstrip(" ")
            depth = len(lines[n - 1]) - len(stripped)
            if _ITEM.match(lines[n - 1]):
                earlier.append((n, depth))
            elif stripped and not stripped.startswith("#") and depth < min(
                    [indent, *(i for _, i in earlier[:1])]):
                break  # the key that holds the list(s) this item could belong to
        if not earlier or any(i == indent for _, i in earlier):
            return None  # aligned with an item above it: not this mistake
        before, want = earlier[0]
        return Diagnostic(Where(file, number, indent + 1), "",
                          f"invalid YAML: this list item is indented {_spaces(indent)}, the item "
                          f"before it (line {before}) {_spaces(want)}",
                          f"indent the items of one list alike: {_spaces(want)}", code="bad-indent")
    return None


def _spaces(count: int) -> str:
    return f"{count} space{'s' * (count != 1)}"


def _too_deep(where: Where, max_depth: int) -> Diagnostic:
    return Diagnostic(where, "", f"values are nested more than {max_depth} levels deep "
                      "(limit `yaml_depth`)", limits.raise_hint("yaml_depth"), code="limit")


class _TooBig(Exception):
    """The document expands beyond the limits (reported); stop reading it."""


def _tag(tag: str) -> str:
    """A tag as YAML writes it, `!!python/object` for `tag:yaml.org,2002:python/object`,
    shortened for a message."""
    return clipped("!!" + tag.removeprefix(_CORE) if tag.startswith(_CORE) else tag, 60)


class _Builder:
    """Turns composed YAML nodes into plain Python, recording each container's node."""

    def __init__(self, file: str):
        self.file = file
        self.limits = limits.current()
        self.nodes: dict[int, yaml.Node] = {}
        self.errors: list[Diagnostic] = []
        self.count = 0
        self._scalars = yaml.constructor.SafeConstructor()

    def error(self, node: yaml.Node, message: str, hint: str | None = None,
              code: str = "") -> None:
        where = Where(self.file, node.start_mark.line + 1, node.start_mark.column + 1)
        self.errors.append(Diagnostic(where, "", message, hint, code=code))

    def too_many(self, node: yaml.Node) -> NoReturn:
        self.error(node, f"the document expands to more than {self.limits.yaml_values:,} "
                   "values (limit `yaml_values`; aliases repeating aliases?)",
                   limits.raise_hint("yaml_values"), code="limit")
        raise _TooBig

    def check_size(self, root: yaml.Node) -> None:
        """Refuse a document with aliases that expands past `yaml_values` before building
        any of it (`build` counts the values of one without).

        Aliases share nodes, so each distinct node is sized once (an alias bomb of 10**9
        values is measured in microseconds); the error points where building would pass
        the limit."""
        sizes: dict[int, int] = {}

        def size(node: yaml.Node, depth: int) -> int:
            known = sizes.get(id(node))
            if known is None:
                deeper = depth <= self.limits.yaml_depth  # past it, build() reports the depth
                known = 1 + (sum(size(c, depth + 1) for c in _children(node)) if deeper else 0)
                sizes[id(node)] = known
            return known

        budget = self.limits.yaml_values
        if size(root, 0) <= budget:
            return
        node = root
        while (budget := budget - 1) >= 0:
            for child in _children(node):
                if sizes[id(child)] > budget:
                    node = child
                    break
                budget -= sizes[id(child)]
        self.too_many(node)

    def build(self, node: yaml.Node, depth: int) -> Any:
        self.count += 1
        if self.count > self.limits.yaml_values:
            self.too_many(node)
        if depth > self.limits.yaml_depth:  # only through aliases: see `_compose`
            where = Where(self.file, node.start_mark.line + 1, node.start_mark.column + 1)
            self.errors.append(_too_deep(where, self.limits.yaml_depth))
            raise _TooBig
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ:
                self.error(node, f"unsupported YAML tag `{_tag(node.tag)}`", "specs use plain YAML only")
            out: list[Any] = [self.build(item, depth + 1) for item in node.value]
            self.nodes[id(out)] = node
            return out
        return self.mapping(node, depth)

    def scalar(self, node: yaml.ScalarNode) -> Any:
        tag = node.tag
        if tag == _STR:  # most values: built here, not by PyYAML's general constructor
            return node.value
        if tag not in _SCALAR_TAGS:
            self.error(node, f"unsupported YAML tag `{_tag(tag)}`",
                       "specs use plain YAML values: strings, numbers, booleans, null")
            return None
        if tag in (_INT, _FLOAT):
            return self.number(node)
        if tag == _BOOL:
            return self.boolean(node)
        return None  # null, whatever its text (`!!null x` as PyYAML reads it)

    def boolean(self, node: yaml.ScalarNode) -> bool | None:
        """`true`, `false` and the other words PyYAML's resolver takes for booleans (None
        after an error: only with an explicit tag, `!!bool maybe`)."""
        value = _BOOLEANS.get(node.value.lower())
        if value is None:
            self.error(node, f"`{clipped(node.value)}` is not a boolean", "write true or false")
        return value

    def number(self, node: yaml.ScalarNode) -> int | float | None:
        """The value of a number as YAML 1.2's core schema reads it (None after an error):
        digits past `number_digits` are refused before converting."""
        text, most = node.value, self.limits.number_digits
        digits = len(text) - 2 if text.startswith("0x") else sum(c.isdigit() for c in text)
        if digits > most:
            self.error(node, f"a number of {digits:,} digits is longer than {most:,} digits "
                       "(limit `number_digits`)", limits.raise_hint("number_digits"),
                       code="limit")
            return None
        pattern = _CORE_INT if node.tag == _INT else _CORE_FLOAT
        if not pattern.fullmatch(text):  # only with an explicit tag: `!!int 1_000`
            what = "an integer" if node.tag == _INT else "a number"
            self.error(node, f"`{clipped(text)}` is not {what} (YAML 1.2 core schema)",
                       "write integers as 42, 0o17 or 0x1F, numbers as 0.5, 1e-3 or .inf")
            return None
        if node.tag == _INT:
            base = {"0o": 8, "0x": 16}.get(text[:2], 10)
            return int(text[2:] if base != 10 else text, base)
        return self._scalars.construct_yaml_float(node)

    def mapping(self, node: yaml.MappingNode, depth: int) -> dict[Any, Any]:
        if node.tag != _MAP:
            self.error(node, f"unsupported YAML tag `{_tag(node.tag)}`", "specs use plain YAML only")
        out: dict[Any, Any] = {}
        self.nodes[id(out)] = node
        merged: list[dict[Any, Any]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merged.extend(self.merge_sources(value_node, depth))
                continue
            key = self.build(key_node, depth + 1)
            if not isinstance(key, str | int | float | bool) and key is not None:
                self.error(key_node, "a mapping key must be a plain value")
                continue
            if key in out:
                self.error(key_node, f"duplicate key `{clipped(str(key))}`",
                           "each key may appear once")
                continue
            out[key] = self.build(value_node, depth + 1)
        for extra in merged:  # YAML merge keys (<<: *defaults): explicit keys win
            for key, value in extra.items():
                out.setdefault(key, value)
        return out

    def merge_sources(self, node: yaml.Node, depth: int) -> Sequence[dict[Any, Any]]:
        items = node.value if isinstance(node, yaml.SequenceNode) else [node]
        sources = []
        for item in items:
            value = self.build(item, depth + 1)
            if isinstance(value, dict):
                sources.append(value)
            else:
                self.error(item, "`<<` merges mappings only")
        return sources
