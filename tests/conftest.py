"""Shared fixtures: the repository's paths, and a spec built from YAML text."""

from __future__ import annotations

import textwrap

import pytest

import netspec


@pytest.fixture
def spec_text():
    """Load a spec from an indented YAML string (dedented first)."""

    def load(text: str) -> netspec.Spec:
        return netspec.load(textwrap.dedent(text).strip() + "\n")

    return load
