"""Passes that allocate many long-lived objects and no garbage cycles (expansion, analysis,
the report's table) run with Python's cyclic collector paused: it would only rescan what they
build, doubling their time on large specs."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """The block runs without the cyclic collector; it is restored as it was."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
