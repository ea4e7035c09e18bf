"""Pydantic validation errors turned into positioned, human diagnostics."""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ValidationError

from netspec import limits
from netspec.errors import Diagnostic, Where, clipped, closest, did_you_mean, shown
from netspec.spec.source import Source

Locate = Callable[[tuple[Any, ...], bool], Where]
"""(loc, at_key) -> position: the value at `loc`, or the key itself when `at_key`."""


def document_locator(source: Source) -> Locate:
    """Positions in a whole YAML document, for errors about its top-level model."""

    def locate(loc: tuple[Any, ...], at_key: bool) -> Where:
        loc = tuple(p for p in loc if not _is_member_tag(p))
        if at_key and loc:
            container: Any = source.data
            for key in loc[:-1]:
                try:
                    container = container[key]
                except (KeyError, IndexError, TypeError):
                    break
            if not isinstance(container, dict | list):  # a short form: `optimizer: sgdd`
                return source.where(source.data, *loc[:-1])
            return source.key_where(container, loc[-1])
        return source.where(source.data, *loc)

    return locate


def model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel]:
    """The nested model an error location is inside (`blocks.unit` -> BlockDef)."""
    current: Any = model
    for part in loc:
        if _is_member_tag(part):
            current = _bare(_member(current, part))
            continue
        if _is_model(current):
            if part not in current.model_fields:
                break
            current = current.model_fields[part].annotation
        elif typing.get_origin(current) in (dict, list):
            current = typing.get_args(current)[-1]
        else:
            break
        current = _bare(current)
    return current if _is_model(current) else model


def _bare(annotation: Any) -> Any:
    """The type under `Annotated[...]` and `| None` wrappers, in any order."""
    while True:
        inner = (typing.get_args(annotation)[0] if typing.get_origin(annotation) is Annotated
                 else _optional_of(annotation))
        if inner is annotation:
            return annotation
        annotation = inner


def _member(union: Any, tag: str) -> Any:
    """The member of a discriminated union tagged `tag`; the union itself for other tags."""
    for member in typing.get_args(union):
        if typing.get_origin(member) is Annotated and any(
                getattr(m, "tag", None) == tag for m in member.__metadata__):
            return typing.get_args(member)[0]
    return union


def _is_model(annotation: Any) -> bool:
    """Whether an annotation is a pydantic model (Python 3.10 takes `list[X]` for a type)."""
    return (isinstance(annotation, type) and typing.get_origin(annotation) is None
            and issubclass(annotation, BaseModel))


def _optional_of(annotation: Any) -> Any:
    """`X` for `X | None` (the options of a `train:` choice), else the annotation itself."""
    if typing.get_origin(annotation) in (types.UnionType, typing.Union):
        kept = [a for a in typing.get_args(annotation) if a is not type(None)]
        return kept[0] if len(kept) == 1 else annotation
    return annotation


def field_names(model: type[BaseModel]) -> list[str]:
    """The keys a model accepts, as specs write them (aliases where set)."""
    return [f.alias or name for name, f in model.model_fields.items() if name != "op"]


def diagnostics(exc: ValidationError, model: type[BaseModel], what: str, path: str,
                locate: Locate, written: Mapping[Any, Any] | None = None) -> list[Diagnostic]:
    """One diagnostic per offending key of `model` (union alternatives folded together).
    `written` maps top-level keys to their values as the spec wrote them, when those were
    expressions, so that a message can quote the expression rather than its value."""
    errors = exc.errors(include_url=False)
    by_key: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for err in errors:
        loc = tuple(err["loc"])
        key = _before_tags(loc) if err["type"] != "extra_forbidden" else loc
        by_key.setdefault(key, []).append(err)
    # `kernal: 3` both misses `kernel` and adds an unknown key: report the typo once.
    missing = [tuple(e["loc"]) for e in errors if e["type"] == "missing"]
    misspelt = set()
    for e in errors:
        if e["type"] == "extra_forbidden":
            *where, key = e["loc"]
            near = closest(key, [m[-1] for m in missing if list(m[:-1]) == where])
            misspelt.add((*where, near))
    return [_one(errs, model, what, path, locate, written or {}) for errs in by_key.values()
            if not (errs[0]["type"] == "missing" and tuple(errs[0]["loc"]) in misspelt)]


def _one(errs: list[dict[str, Any]], model: type[BaseModel], what: str, path: str,
         locate: Locate, written: Mapping[Any, Any]) -> Diagnostic:
    err = errs[0]
    loc, kind, found = tuple(err["loc"]), err["type"], err.get("input")
    key = ".".join(clipped(str(p)) for p in loc if not _is_member_tag(p))
    hint = None
    text = written.get(loc[0]) if loc else None
    if (isinstance(text, str) and "/" in text.replace("//", "") and isinstance(found, float)
            and any(e["type"].startswith("int_") or "an integer" in e["msg"] for e in errs)):
        return Diagnostic(locate(loc, False), path, f"`{key}`: `{text}` is {round(found, 2)!r}, "
                          "not an integer", "use `//` for integer division", code="invalid-value")
    if kind == "extra_forbidden":
        name, owner = loc[-1], model_at(model, loc[:-1])
        where = what if owner is model else "`" + ".".join(
            clipped(str(p)) for p in loc[:-1] if not _is_member_tag(p)) + "`"
        hint = did_you_mean(name, field_names(owner)) or f"{where} takes: " + ", ".join(
            f"`{f}`" for f in field_names(owner))
        return Diagnostic(locate(loc, True), path, f"unknown key `{clipped(str(name))}` for "
                          f"{where}", hint, code="unknown-key")
    if kind == "limit":  # a name past `name_length` (`document._bounded`), maybe a key
        at_key = loc[-1:] == ("[key]",)
        return Diagnostic(locate(loc[:-1] if at_key else loc, at_key), path, f"`{key}` {err['msg']}",
                          limits.raise_hint(err["ctx"]["limit"]), code="limit")
    if kind in _AT_KEY and loc[-1:] == ("[key]",):  # a name a key validator refused
        return Diagnostic(locate(loc[:-1], True), path, err["msg"], err["ctx"].get("hint"),
                          code=_AT_KEY[kind])
    if kind == "missing":
        return Diagnostic(locate(loc, False), path, f"{what} needs `{key}`", code="missing-key")
    if len(errs) > 1:
        wanted = _expected(errs)
        message = f"`{key}` expects {wanted}, found {shown(found)}"
    elif kind == "literal_error":
        message = f"`{key}` must be {err['ctx']['expected']}, found {shown(found)}"
        hint = did_you_mean(found, _literal_choices(err))
    elif kind in _PLAIN:
        message = f"`{key}` {_PLAIN[kind].format(**err.get('ctx', {}))}, found {shown(found)}"
    else:
        text = err["msg"].removeprefix("Value error, ")
        if not key:
            message = text
        elif "found" in text or isinstance(found, dict):
            message = f"`{key}`: {text}"
        else:
            message = f"`{key}`: {_lower(text)}, found {shown(found)}"
    return Diagnostic(locate(loc, False), path, message, hint, code="invalid-value")


_AT_KEY = {"unknown_name": "bad-ref", "reserved": "invalid-value"}
"""Errors of `document`'s key validators, whole sentences positioned at the key, with the
code of their diagnostic (a scale naming no parameter is a reference, judged against the
spec's `params`)."""
_PLAIN = {
    "int_type": "expects an integer",
    "int_parsing": "expects an integer",
    "int_from_float": "expects a whole number",
    "float_type": "expects a number",
    "float_parsing": "expects a number",
    "bool_type": "expects true or false",
    "bool_parsing": "expects true or false",
    "string_type": "expects a string",
    "list_type": "expects a list",
    "dict_type": "expects a mapping",
    "tuple_type": "expects a list",
    "greater_than_equal": "must be at least {ge}",
    "greater_than": "must be greater than {gt}",
    "less_than_equal": "must be at most {le}",
    "less_than": "must be less than {lt}",
    "too_short": "needs at least {min_length} item(s)",
    "too_long": "takes at most {max_length} items",
    "string_pattern_mismatch": "must be an identifier (letters, digits and _)",
}
"""Pydantic error types in a spec's words ("input" would read as the network's input)."""


def _before_tags(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """The location up to its first union tag: the alternatives of one value fold into one
    error, while errors of distinct keys stay apart."""
    for i, part in enumerate(loc):
        if _is_member_tag(part):
            return loc[:i]
    return loc


def _is_member_tag(part: Any) -> bool:
    """Union branches appear in pydantic locations as tags such as `list[int]`."""
    return isinstance(part, str) and ("[" in part or part in _TYPE_TAGS)


_TYPE_TAGS = {"int", "float", "str", "bool", "none", "function-plain", "literal", "tuple"}


def _expected(errs: Iterable[dict[str, Any]]) -> str:
    kinds = []
    for err in errs:
        tags = [p for p in err["loc"] if _is_member_tag(p)]
        label = tags[0] if tags else err["type"].removesuffix("_type")
        label = {"none": "null", "int": "an integer", "float": "a number", "bool": "true or false",
                 "str": "a string"}.get(label, label)
        if label not in kinds:
            kinds.append(label)
    return " or ".join(kinds)


def _literal_choices(err: dict[str, Any]) -> list[str]:
    return [c.strip().strip("'") for c in str(err["ctx"]["expected"]).replace(" or ", ",").split(",")]


def _lower(text: str) -> str:
    return text[:1].lower() + text[1:]
