"""A model named on the command line: `pkg.module:factory`, `pkg.module:Class(width=32)`.

The part after the colon is parsed with `ast`: a name, or a call of one whose arguments are
literals (numbers, strings, booleans, None, lists, tuples, dicts), each read with
`ast.literal_eval`. Nothing of it is evaluated as code; the module is imported (the current
directory searched first, as `python -m` does) and the callable called with those
arguments."""

from __future__ import annotations

import ast
import importlib
import os
import sys
from types import ModuleType
from typing import Any

from netspec.importer.errors import ImportFailure


def parse_reference(text: str) -> tuple[str, str, list[Any], dict[str, Any]]:
    """`pkg.mod:Name(1, k=2)` -> ("pkg.mod", "Name", [1], {"k": 2}); ImportFailure when
    `text` is not of that form or an argument is not a literal."""
    module, colon, call = text.partition(":")
    if not colon or not module or not call:
        raise ImportFailure(f"{text!r} names no model: write MODULE:CALLABLE, e.g. "
                            "torchvision.models:resnet50 or mypkg.nets:Net(width=32)")
    try:
        tree = ast.parse(call.strip(), mode="eval").body
    except SyntaxError as exc:
        raise ImportFailure(f"{text!r}: {call!r} is not a callable or a call "
                            f"(column {exc.offset})") from None
    if isinstance(tree, ast.Name):
        return module, tree.id, [], {}
    if not isinstance(tree, ast.Call) or not isinstance(tree.func, ast.Name):
        raise ImportFailure(f"{text!r}: after the colon, a name or a call of one, such as "
                            "Net or Net(width=32)")
    try:
        args = [ast.literal_eval(a) for a in tree.args]
        kwargs = {k.arg: ast.literal_eval(k.value) for k in tree.keywords if k.arg is not None}
    except ValueError:
        raise ImportFailure(f"{text!r}: arguments must be literals (numbers, strings, lists, "
                            "True, False, None)") from None
    if len(kwargs) != len(tree.keywords):
        raise ImportFailure(f"{text!r}: `**` arguments are not literals")
    return module, tree.func.id, args, kwargs


def model_name(model: Any) -> str:
    """The name a model's spec takes: the callable a reference names (`resnet50` for
    `torchvision.models:resnet50`, `net` for `mypkg:Net(width=32)`), else the module's
    class (`resnet`)."""
    return (parse_reference(model)[1] if isinstance(model, str) else type(model).__name__).lower()


def _imported(name: str) -> ModuleType:
    """The module `name`, the current directory searched first (`mypkg.nets` in the project
    one runs `netspec import` in), as `python -m` finds modules."""
    here = os.getcwd()
    added = here not in sys.path
    if added:
        sys.path.insert(0, here)
    try:
        return importlib.import_module(name)
    finally:
        if added:
            sys.path.remove(here)


def resolve(text: str) -> Any:
    """The torch module `text` names, made by importing its module and calling it."""
    import torch

    module_name, attr, args, kwargs = parse_reference(text)
    try:
        module = _imported(module_name)
    except ImportError as exc:
        raise ImportFailure(f"{text!r}: cannot import {module_name} ({exc})") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ImportFailure(f"{text!r}: {module_name} has no callable {attr}")
    try:
        made = factory(*args, **kwargs)
    except Exception as exc:  # the user's code: report whatever it raised, in one line
        raise ImportFailure(f"{text!r}: calling {attr} raised {type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
    if not isinstance(made, torch.nn.Module):
        raise ImportFailure(f"{text!r}: {attr} gave a {type(made).__name__}, not a torch.nn.Module")
    return made
