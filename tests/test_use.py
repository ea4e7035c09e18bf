"""`use:`: blocks read from other files, relative to the file naming them, kept inside the
spec's folder, with errors pointing into the file they are about."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import netspec

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


def errors(path: Path) -> list[netspec.Diagnostic]:
    with pytest.raises(netspec.SpecError) as info:
        netspec.check(path)
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
