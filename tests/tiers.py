"""The two tiers of the suite.

    python3 -m pytest -m "not slow"   # quick: under a minute on two idle cores, while working
    python3 -m pytest                 # everything (CI)

A test is slow (`@pytest.mark.slow`) when it trains, exports to ONNX, spawns processes or
runs a network at full size. Tests over the whole zoo take their specs through `zoo()`:
the quick tier keeps the small representatives in QUICK_ZOO and leaves the rest to the full
run, so it stays quick however many specs the zoo gains.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from _pytest.mark.structures import ParameterSet

QUICK_ZOO = frozenset({"lenet5", "resnet18"})
"""The zoo specs the quick tier runs: the smallest chain, and a graph of repeated blocks."""
ZOO = frozenset(p.stem for p in (Path(__file__).resolve().parent.parent / "specs").glob("*.yaml"))


def _spec_name(value: Any) -> str:
    if isinstance(value, tuple):
        return _spec_name(value[0])
    return value.stem if isinstance(value, Path) else str(value)


def zoo(values: Iterable[Any]) -> list[ParameterSet]:
    """`values` as pytest params, each marked slow unless its spec is in QUICK_ZOO.

    A value is a spec path or name, or a tuple of arguments (for several argnames) whose
    first is one. Names not in the zoo (the tests' inline specs) count as quick."""
    return [pytest.param(*(v if isinstance(v, tuple) else (v,)),
                         marks=pytest.mark.slow if _spec_name(v) in ZOO - QUICK_ZOO else ())
            for v in values]
