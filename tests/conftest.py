"""Shared fixtures and the test tiers' machinery.

* Hypothesis runs derandomised (the `netspec` profile): every run draws the same examples,
  so a failure reproduces; the NETSPEC_*_EXAMPLES variables still enlarge a run.
  `--hypothesis-profile=explore` draws fresh examples and prints how to reproduce a failure.
* `@pytest.mark.needs("dot")`: the test runs a system program. Where it is missing the test
  is skipped with how to install it, except in CI (`CI` set to a true value), where it fails.
  `needs("torchvision")` likewise wants torchvision's model code: installed, or the folder
  ../shared/tools/reference-torchvision.sh fills, named by NETSPEC_TORCHVISION (`none`:
  skipped even in CI, where the environment's torch is older than the reference needs).
* `@pytest.mark.slow` (tests/tiers.py): left out of the quick tier, `pytest -m "not slow"`.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import textwrap

import pytest
from hypothesis import settings

import netspec

settings.register_profile("netspec", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("explore", deadline=None, print_blob=True)
settings.load_profile("netspec")

INSTALL = {"dot": "Graphviz's `dot`: apt-get install graphviz (macOS: brew install graphviz)",
           "torchvision": "torchvision's model code: pip install torchvision, or "
                          "../shared/tools/reference-torchvision.sh DIR and NETSPEC_TORCHVISION=DIR"}
"""How to install each program or package a test may need."""


def available(need: str) -> bool:
    """Whether `need` (a program, or torchvision) is there for the tests."""
    if need == "torchvision":
        folder = os.environ.get("NETSPEC_TORCHVISION")
        if folder and folder not in sys.path:
            sys.path.insert(0, folder)
        return importlib.util.find_spec("torchvision") is not None
    return shutil.which(need) is not None


def in_ci() -> bool:
    """True where the environment variable CI holds a true value (CI services set CI=true)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no", "off")


def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers("needs"):
        for need in mark.args:
            if need == "torchvision" and os.environ.get("NETSPEC_TORCHVISION") == "none":
                pytest.skip("NETSPEC_TORCHVISION=none: torchvision 0.28's model code needs a "
                            "newer torch than this environment's")
            if not available(need):
                reason = f"needs {INSTALL[need]}"
                if in_ci():
                    pytest.fail(f"{reason} (CI runs every test: install it there)", pytrace=False)
                pytest.skip(reason)


@pytest.fixture
def spec_text():
    """Load a spec from an indented YAML string (dedented first)."""

    def load(text: str) -> netspec.Spec:
        return netspec.load(textwrap.dedent(text).strip() + "\n")

    return load


@pytest.fixture(scope="module")
def one_thread():
    """torch on one thread for a module of small tensors: a pool's threads waiting on each
    other cost far more than these kernels (a hundred times more on a busy two-core
    machine). `pytestmark = pytest.mark.usefixtures("one_thread")` takes it."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
