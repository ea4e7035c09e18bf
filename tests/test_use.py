"""`use:`: blocks read from other files, relative to the file naming them, kept inside the
spec's folder, with errors pointing into the file they are about."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

import netspec
from netspec.limits import Limits
from netspec.spec import library

UNIT = """
    blocks:
      unit:
        params: {c: null}
        layers:
          - conv2d: {out: c, kernel: 3, padding: 1}
          - relu
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).strip() + "\n")
    return path


def spec(tmp_path: Path, use: str, layers: str = "[{unit: {c: 4}}]") -> Path:
    return write(tmp_path / "net" / "net.yaml", f"input: [3, 8, 8]\nuse: {use}\nlayers: {layers}\n")


def errors(path: Path, limits: Limits | None = None) -> list[netspec.Diagnostic]:
    with pytest.raises(netspec.SpecError) as info:
        netspec.check(path, limits=limits)
    return info.value.errors


def test_blocks_come_from_a_file_relative_to_the_spec(tmp_path):
    write(tmp_path / "net" / "lib" / "units.yaml", UNIT)
    report = netspec.check(spec(tmp_path, "[lib/units.yaml]"))
    assert [r.name for r in report.layers] == ["unit1.conv1", "unit1.relu1"]


def test_used_files_may_use_files_relative_to_themselves(tmp_path):
    write(tmp_path / "net" / "lib" / "units.yaml", UNIT)
    write(tmp_path / "net" / "lib" / "more.yaml", """
        use: [units.yaml]
        blocks:
          twice:
            layers: [{unit: {c: 2}}, {unit: {c: 2}}]
    """)
    report = netspec.check(spec(tmp_path, "[lib/more.yaml]", "[twice]"))
    assert report.layers[-1].name == "twice1.unit2.relu1"


def test_the_specs_own_block_overrides_a_used_one(tmp_path):
    write(tmp_path / "net" / "units.yaml", UNIT)
    path = write(tmp_path / "net" / "net.yaml", """
        input: [3, 8, 8]
        use: [units.yaml]
        blocks:
          unit:
            params: {c: null}
            layers: [{conv2d: [c, 1]}]
        layers: [{unit: {c: 4}}]
    """)
    assert [r.name for r in netspec.check(path).layers] == ["unit1.conv1"]


def test_an_error_inside_a_used_block_points_into_its_file(tmp_path):
    lib = write(tmp_path / "net" / "units.yaml", UNIT.replace("kernel: 3", "kernal: 3"))
    [error] = errors(spec(tmp_path, "[units.yaml]"))
    assert (error.where.file, error.where.line) == (str(lib), 5)
    assert error.path == "unit1.conv1" and "unknown key `kernal`" in error.message


@pytest.mark.parametrize(("use", "message"), [
    ("[../outside.yaml]", "is outside the spec's folder"),
    ("[missing.yaml]", "no such file `missing.yaml`"),
    ("[net.yaml]", "uses itself"),
    (f"[{'x' * 300}.yaml]", "File name too long"),
    ('["a\\0b.yaml"]', "embedded null byte"),
])
def test_bad_uses_are_positioned_errors(tmp_path, use, message):
    write(tmp_path / "outside.yaml", UNIT)
    found = errors(spec(tmp_path, use))
    assert message in found[0].message and found[0].where.line == 2


def test_a_cycle_between_files_is_refused(tmp_path):
    write(tmp_path / "net" / "a.yaml", "use: [b.yaml]\nblocks: {}\n")
    write(tmp_path / "net" / "b.yaml", "use: [a.yaml]\nblocks: {}\n")
    assert any("uses itself" in e.message for e in errors(spec(tmp_path, "[a.yaml]", "[relu]")))


def test_two_used_files_defining_one_block_is_an_error(tmp_path):
    write(tmp_path / "net" / "a.yaml", UNIT)
    write(tmp_path / "net" / "b.yaml", UNIT)
    [error] = errors(spec(tmp_path, "[a.yaml, b.yaml]"))
    assert "block `unit` is defined in both" in error.message


def test_a_used_file_is_validated_like_a_spec(tmp_path):
    write(tmp_path / "net" / "units.yaml", "blocks:\n  unit:\n    layerz: []\n")
    found = errors(spec(tmp_path, "[units.yaml]", "[relu]"))
    assert found[0].where.file.endswith("units.yaml") and "layerz" in found[0].message


def test_an_unreadable_spec_path_is_an_error():
    with pytest.raises(netspec.SpecError, match="cannot read spec: embedded null byte"):
        netspec.load("specs/a\0b.yaml")


def test_a_spec_given_as_text_cannot_use_files():
    with pytest.raises(netspec.SpecError, match="needs a spec read from a file"):
        netspec.load("input: [3, 8, 8]\nuse: [x.yaml]\nlayers: [relu]\n")


def test_a_directory_is_named_as_one(tmp_path):
    (tmp_path / "net" / "blocks").mkdir(parents=True)
    [error] = errors(spec(tmp_path, "[blocks]", "[relu]"))
    assert error.message == (f"`blocks` is a directory, not a file of blocks "
                             f"({tmp_path / 'net' / 'blocks'})")
    assert (error.where.line, error.where.column) == (2, 7)


def test_a_named_pipe_is_not_read(tmp_path):
    (tmp_path / "net").mkdir()
    os.mkfifo(tmp_path / "net" / "units.yaml")  # reading it would wait for a writer
    [error] = errors(spec(tmp_path, "[units.yaml]", "[relu]"))
    assert "`units.yaml` is a named pipe, not a file of blocks" in error.message


def fan_out(folder: Path, files: int, uses: int) -> None:
    """b0.yaml ... b{files-1}.yaml, each using the next `uses` times; the last one defines
    the block `unit`."""
    for i in range(files - 1):
        write(folder / f"b{i}.yaml", f"use: [{', '.join([f'b{i + 1}.yaml'] * uses)}]\n")
    write(folder / f"b{files - 1}.yaml", UNIT)


def test_each_used_file_is_read_once_per_load(tmp_path, monkeypatch):
    fan_out(tmp_path / "net", 7, 10)  # 10**7 includes as the tree unfolds, 7 files
    read: list[Path] = []
    original = library.read_source
    monkeypatch.setattr(library, "read_source", lambda path: read.append(path) or original(path))
    report = netspec.check(spec(tmp_path, "[b0.yaml]"), limits=Limits(use_includes=10**8))
    assert [r.name for r in report.layers] == ["unit1.conv1", "unit1.relu1"]
    assert sorted(p.name for p in read) == [f"b{i}.yaml" for i in range(7)]


def test_includes_past_the_limit_are_refused_with_the_chain_of_files(tmp_path):
    fan_out(tmp_path / "net", 4, 10)  # 1 + 10 + 100 + 1,000 includes
    path = spec(tmp_path, "[b0.yaml]")
    assert netspec.check(path, limits=Limits(use_includes=1_111)).layers
    [error] = errors(path, Limits(use_includes=1_110))
    assert error.message.startswith("`use` includes more than 1,110 files in one load "
                                    "(limit `use_includes`")
    # b0.yaml's tenth use of b1.yaml brings the 111 includes beneath b1.yaml once more
    assert error.message.endswith(": net.yaml → b0.yaml → b1.yaml")
    assert error.where.file == str(tmp_path / "net" / "b0.yaml") and error.code == "limit"
