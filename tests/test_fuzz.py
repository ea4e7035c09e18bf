"""Fuzzing load -> check -> build -> draw: whatever the document, netspec ends in exit 0 with
a valid report or exit 1 with positioned errors; never a traceback, never a hang.

Documents come from five sources:
    zoo mutations    every zoo spec (or a block file it uses) with 1-3 mutations of its data:
                     a key deleted; a number set to 0, -1, 10**12, 2.5, a string or null; two
                     list items swapped; an item duplicated; a name or reference broken; a run
                     of layers nested into a new block (or a block into itself); a container
                     replaced by a scalar
    text mutations   the zoo's YAML text with lines deleted, duplicated, re-indented or cut
    small mutations  the truth tests' random valid networks (tests/strategies.py), mutated
                     likewise: small enough that the valid ones also run on the CPU
    random specs     mappings built from the spec language's own words (ops, arguments, meta
                     keys) and awkward values
    random bytes     anything at all, invalid UTF-8 included

Each document goes through `netspec check --format json` (the exit code and the JSON), then
`netspec.draw`, and when the check passes, `netspec.build` on torch's meta device (any size
builds, nothing is allocated) with a forward pass whose output shapes and parameter and
buffer counts must equal the report's. Small valid networks also run a real CPU forward.
Each example has TIMEOUT seconds; past it, the example fails as a hang.

NETSPEC_FUZZ_EXAMPLES sets the example count per test (default: 25 each). Examples are
derandomised (tests/conftest.py), so a failure reproduces, at any count; add
`--hypothesis-profile=explore` to draw fresh ones. `NETSPEC_FUZZ_EXAMPLES=4400 python3 -m
pytest tests/test_fuzz.py` is the long run recorded in the README (5 tests: 22,000
examples); NETSPEC_FUZZ_STATS=FILE appends each test's tally (examples, exits 0 and 1,
slowest example) to FILE as JSON lines. Fuzzing is in the full run only (tests/tiers.py).
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import signal
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import chain_specs, fork_specs

import netspec
from netspec.cli import main
from netspec.ops import OPS
from netspec.spec.expand import META

pytestmark = pytest.mark.slow  # the full run's (tests/tiers.py)

SPECS = Path(__file__).resolve().parent.parent / "specs"
ZOO = sorted(SPECS.glob("*.yaml"))
EXAMPLES = int(os.environ.get("NETSPEC_FUZZ_EXAMPLES", "0"))
TIMEOUT = 30  # seconds per example; the largest zoo spec takes well under one
CPU_FORWARD_MACS = 20_000_000  # valid networks this small also run for real on the CPU

NUMBERS = [0, -1, 10**12, 2.5, "abc", None, True, 3, 1e400]
STRINGS = ["", "nope", "x" * 300, "__import__('os')", "{w * 2}", "1 +", "-", "relu", "a.b",
           "same", "max(1, 2)", "layer1", "0 if i == 0 else", "ü", "in", "2 ** 999"]
WORDS = sorted({*OPS, *META, "input", "inputs", "layers", "blocks", "params", "use", "outputs",
                "out", "kernel", "stride", "padding", "groups", "dilation", "bias", "scale",
                "p", "size", "dim", "mode", "in", "train", "epochs", "optimizer"})

LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
FAST = settings(max_examples=EXAMPLES or 25, suppress_health_check=list(HealthCheck))


# -- the pipeline -------------------------------------------------------------------------


class Hang(Exception):
    """An example ran past TIMEOUT."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    def alarm(signum: int, frame: Any) -> None:
        raise Hang(f"no result after {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class Tally:
    """Per test: examples, exits, slowest example (written to NETSPEC_FUZZ_STATS)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.slowest = 0.0


TALLIES: dict[str, Tally] = {}


@pytest.fixture
def tally(request: pytest.FixtureRequest) -> Iterator[Tally]:
    found = TALLIES.setdefault(request.node.name, Tally())
    yield found
    target = os.environ.get("NETSPEC_FUZZ_STATS")
    if target:
        with open(target, "a") as out:
            out.write(json.dumps({"test": request.node.name, **found.counts,
                                  "slowest_s": round(found.slowest, 3)}) + "\n")


def lines_of(path: Path) -> int:
    """Lines as YAML counts them (CR, LF, CRLF, NEL, LS, PS); by LF alone when the file is
    not UTF-8 (netspec positions an encoding error in the bytes)."""
    try:
        raw = path.read_bytes()
    except OSError:
        return 1
    try:
        return len(LINE_BREAK.findall(raw.decode("utf-8"))) + 1
    except UnicodeDecodeError:
        return raw.count(b"\n") + 1


def assert_positioned(errors: list[dict[str, Any]], folder: Path) -> None:
    assert errors, "exit 1 without an error"
    for error in errors:
        assert error["message"] and error["line"] >= 1 and error["column"] >= 1, error
        file = Path(error["file"])
        if file.is_relative_to(folder):
            assert error["line"] <= lines_of(file), f"{error} points past the end of the file"


def assert_valid_report(report: dict[str, Any]) -> None:
    assert report["params"] == sum(layer["params"] for layer in report["layers"])
    assert report["macs"] == sum(layer["macs"] for layer in report["layers"])
    for layer in report["layers"]:
        assert layer["shape"] and min(layer["shape"]) >= 1 and layer["line"] >= 1, layer
    assert report["outputs"] and all(min(s) >= 1 for s in report["outputs"].values())


def assert_builds_like_the_report(path: Path) -> None:
    """Build on the meta device and run it (eval mode: some train-mode paths read values,
    which meta tensors have none of): torch's shapes and counts equal the report's. A small
    network also trains one step's forward on the CPU, at batch 2 (torch refuses to train
    some norms at batch 1, which the report flags)."""
    spec = netspec.load(path)
    report = netspec.check(spec)
    ids = report.token_inputs
    with torch.device("meta"):
        model = netspec.build(spec).eval()
        out = model(*[torch.empty(2, *shape, dtype=torch.long if name in ids else None)
                      for name, shape in report.inputs.items()])
    assert output_shapes(out) == list(report.outputs.values())
    assert sum(p.numel() for p in model.parameters()) == report.params
    assert sum(b.numel() for b in model.buffers()) == report.buffers
    if report.macs <= CPU_FORWARD_MACS and report.params <= CPU_FORWARD_MACS:
        model = netspec.build(spec, seed=0)
        out = model(*[torch.randint(0, ids[name], (2, *shape)) if name in ids
                      else torch.randn(2, *shape) for name, shape in report.inputs.items()])
        assert output_shapes(out) == list(report.outputs.values())


def output_shapes(out: Any) -> list[tuple[int, ...]]:
    outs = list(out) if isinstance(out, tuple | list) else [out]
    return [tuple(o.shape[1:]) for o in outs]


def run_pipeline(path: Path, tally: Tally) -> None:
    """check (CLI, JSON), draw, and for a valid spec build and forward: exit 0 or 1 only."""
    start = time.perf_counter()
    with time_limit(TIMEOUT):
        result = CliRunner().invoke(main, ["check", str(path), "--format", "json"])
        assert result.exit_code in (0, 1), result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            "".join(traceback.format_exception(result.exception)))
        document = json.loads(result.stdout)
        if result.exit_code == 1:
            assert_positioned(document["errors"], path.parent)
        else:
            assert_valid_report(document)
        try:
            assert netspec.draw(path).source.startswith("digraph")
        except netspec.SpecError as exc:
            assert_positioned([e.to_dict() for e in exc.errors], path.parent)
        if result.exit_code == 0:
            assert_builds_like_the_report(path)
    tally.counts[f"exit_{result.exit_code}"] += 1
    tally.counts["examples"] += 1
    tally.slowest = max(tally.slowest, time.perf_counter() - start)


@contextmanager
def zoo_copy() -> Iterator[Path]:
    """A private copy of specs/ (the blocks folder included), removed afterwards."""
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "specs"
        shutil.copytree(SPECS, target)
        yield target


# -- mutations ----------------------------------------------------------------------------

KeyPath = tuple[Any, ...]


def walk(value: Any, path: KeyPath = ()) -> Iterator[tuple[KeyPath, Any]]:
    yield path, value
    items = value.items() if isinstance(value, dict) else enumerate(value) \
        if isinstance(value, list) else ()
    for key, item in items:
        yield from walk(item, (*path, key))


def get(data: Any, path: KeyPath) -> Any:
    for key in path:
        data = data[key]
    return data


def mutate(data: Any, draw: st.DrawFn) -> Any:
    """One random mutation of a spec's data; returns the (possibly new) root."""
    nodes = list(walk(data))
    kind = draw(st.sampled_from(["delete", "number", "swap", "duplicate", "reference", "nest",
                                 "scalar", "string", "key"]))
    if kind == "number":
        numbers = [p for p, v in nodes if isinstance(v, int | float) and not isinstance(v, bool)]
        if numbers:
            path = draw(st.sampled_from(numbers))
            get(data, path[:-1])[path[-1]] = draw(st.sampled_from(NUMBERS))
            return data
    if kind in ("swap", "duplicate"):
        lists = [v for _, v in nodes if isinstance(v, list) and v]
        if lists:
            items = draw(st.sampled_from(lists))
            i, j = draw(st.integers(0, len(items) - 1)), draw(st.integers(0, len(items) - 1))
            if kind == "swap":
                items[i], items[j] = items[j], items[i]
            else:
                items.insert(j, copy.deepcopy(items[i]))
            return data
    if kind in ("reference", "string"):
        strings = [p for p, v in nodes if isinstance(v, str) and p]
        if strings:
            path = draw(st.sampled_from(strings))
            old = get(data, path)
            new = old[:-1] if kind == "reference" and len(old) > 1 else draw(st.sampled_from(STRINGS))
            get(data, path[:-1])[path[-1]] = new
            return data
    if kind == "nest":
        return nest(data, nodes, draw)
    mappings = [p for p, v in nodes if isinstance(v, dict) and v]
    if not mappings:
        return data
    path = draw(st.sampled_from(mappings))
    mapping = get(data, path)
    key = draw(st.sampled_from(sorted(mapping, key=str)))
    if kind == "delete":
        del mapping[key]
    elif kind == "scalar":
        mapping[key] = draw(st.sampled_from([None, 1, "x", [], {}]))
    else:  # a key from the language where it may not belong
        mapping[draw(st.sampled_from(WORDS))] = draw(st.sampled_from([*NUMBERS, *STRINGS]))
    return data


def nest(data: Any, nodes: list[tuple[KeyPath, Any]], draw: st.DrawFn) -> Any:
    """Move a run of layers into a new block called in their place, or make a block call
    itself or another block."""
    if not isinstance(data, dict):
        return data
    blocks = data.setdefault("blocks", {})
    if not isinstance(blocks, dict):
        return data
    layer_lists = [v for p, v in nodes if p and p[-1] == "layers" and isinstance(v, list) and v]
    if not layer_lists:
        return data
    layers = draw(st.sampled_from(layer_lists))
    i = draw(st.integers(0, len(layers) - 1))
    j = draw(st.integers(i + 1, len(layers)))
    if blocks and draw(st.booleans()):
        layers.insert(i, draw(st.sampled_from(sorted(blocks, key=str))))
        return data
    name = f"nested{len(blocks)}"
    blocks[name] = {"layers": layers[i:j]}
    layers[i:j] = [name]
    return data


TEXT_EDITS = ["delete", "duplicate", "indent", "dedent", "cut", "insert"]


def edit_text(text: str, draw: st.DrawFn) -> str:
    lines = text.splitlines(keepends=True) or [""]
    i = draw(st.integers(0, len(lines) - 1))
    kind = draw(st.sampled_from(TEXT_EDITS))
    if kind == "delete":
        del lines[i]
    elif kind == "duplicate":
        lines.insert(i, lines[i])
    elif kind == "indent":
        lines[i] = "  " + lines[i]
    elif kind == "dedent":
        lines[i] = lines[i].lstrip()
    elif kind == "cut":
        return "".join(lines)[: draw(st.integers(0, len(text)))]
    else:
        lines.insert(i, draw(st.text(max_size=20)) + "\n")
    return "".join(lines)


def target_of(spec: Path, draw: st.DrawFn) -> Path:
    """The spec itself, or one of the block files it uses."""
    data = yaml.safe_load(spec.read_text())
    used = [spec.parent / u for u in data.get("use", []) if (spec.parent / u).is_file()]
    return draw(st.sampled_from([spec, *used]))


# -- random documents ---------------------------------------------------------------------

scalars = st.one_of(st.sampled_from(NUMBERS), st.sampled_from(STRINGS), st.sampled_from(WORDS),
                    st.integers(-3, 300), st.floats(allow_nan=True), st.booleans(), st.none())
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=5),
    st.dictionaries(st.sampled_from(WORDS), inner, max_size=4)), max_leaves=25)
layers = st.lists(st.one_of(st.sampled_from(sorted(OPS)), st.dictionaries(
    st.sampled_from(WORDS), values, min_size=1, max_size=3)), max_size=8)
random_specs = st.fixed_dictionaries(
    {"input": st.one_of(st.lists(st.integers(-1, 40), max_size=4), values), "layers": layers},
    optional={"blocks": st.dictionaries(st.sampled_from(["b", "c", *OPS]), st.fixed_dictionaries(
        {"layers": layers}, optional={"params": values}), max_size=2),
              "params": values, "outputs": values, "init": values, "train": values})


# -- the tests ----------------------------------------------------------------------------


def dump(document: Any) -> str:
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def mutated(document: Any, draw: st.DrawFn) -> Any:
    for _ in range(draw(st.integers(1, 3))):
        document = mutate(document, draw)
    return document


def edited(text: str, draw: st.DrawFn) -> str:
    for _ in range(draw(st.integers(1, 3))):
        text = edit_text(text, draw)
    return text


def fuzz_zoo(data: st.DataObject, tally: Tally, change: Callable[[str, st.DrawFn], str]) -> None:
    """Change a zoo spec, or a block file it uses, in a private copy of specs/; run it."""
    with zoo_copy() as specs:
        spec = specs / data.draw(st.sampled_from(ZOO)).name
        target = target_of(spec, data.draw)
        target.write_text(change(target.read_text(), data.draw))
        run_pipeline(spec, tally)


@FAST
@given(data=st.data())
def test_mutated_zoo_specs(data: st.DataObject, tally: Tally) -> None:
    fuzz_zoo(data, tally, lambda text, draw: dump(mutated(yaml.safe_load(text), draw)))


@FAST
@given(data=st.data())
def test_edited_zoo_text(data: st.DataObject, tally: Tally) -> None:
    fuzz_zoo(data, tally, edited)


@FAST
@given(case=st.one_of(chain_specs(), fork_specs()), data=st.data())
def test_mutated_small_networks(case: Any, data: st.DataObject, tally: Tally) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "small.yaml"
        path.write_text(dump(mutated(copy.deepcopy(case.spec), data.draw)))
        run_pipeline(path, tally)


@FAST
@given(document=random_specs)
def test_random_specs(document: dict[str, Any], tally: Tally) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "random.yaml"
        path.write_text(dump(document))
        run_pipeline(path, tally)


@FAST
@given(content=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode)))
def test_random_bytes(content: bytes, tally: Tally) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "garbage.yaml"
        path.write_bytes(content)
        run_pipeline(path, tally)
