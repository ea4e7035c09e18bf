"""Limits as named settings: each one refuses what passes it with an error naming the limit
and how to raise it; raised through the API (`limits=`) or the CLI (`--limit NAME=N`), the
same spec goes through. Each case sits just past the default and just within a raised one."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import netspec
from netspec import limits
from netspec.cli import _command_line, main
from netspec.limits import DEFAULTS, Limits

HEAD = "input: [1, 8, 8]\n"


def chain(depth: int) -> str:
    """Blocks b0 -> b1 -> ... nested `depth` deep, b{depth-1} being a relu."""
    blocks = [f"  b{i}:\n    layers: [b{i + 1}]\n" for i in range(depth - 1)]
    blocks.append(f"  b{depth - 1}:\n    layers: [relu]\n")
    return HEAD + "blocks:\n" + "".join(blocks) + "layers: [b0]\n"


def write_uses(folder: Path, depth: int) -> Path:
    """A spec using u1.yaml, which uses u2.yaml, ... `depth` files deep."""
    for i in range(1, depth + 1):
        use = f"use: [u{i + 1}.yaml]\n" if i < depth else ""
        (folder / f"u{i}.yaml").write_text(use + "blocks: {}\n")
    spec = folder / "net.yaml"
    spec.write_text(HEAD + "use: [u1.yaml]\nlayers: [relu]\n")
    return spec


# limit: (a spec just past the default, the value that lets it through)
CASES = {
    "layers": (HEAD + f"layers:\n  - relu: {{}}\n    repeat: {DEFAULTS.layers + 1}\n",
               DEFAULTS.layers + 1),
    "block_depth": (chain(DEFAULTS.block_depth + 1), DEFAULTS.block_depth + 1),
    "expression_length": (
        HEAD + "params: {w: 4}\nlayers:\n  - conv2d: {out: '"
        + "+".join(["w"] * (DEFAULTS.expression_length // 2 + 1)) + "', kernel: 1}\n",
        DEFAULTS.expression_length + 2),
    "tensor_elements": (  # weights 2**16 x 2**15 and 2**15 biases: just over 2**31
        "input: [65536]\nlayers:\n  - linear: 32768\n", 2**31 + 2**15),
    "yaml_depth": (HEAD + "x: " + "[" * (DEFAULTS.yaml_depth + 1)  # x itself is at depth 1
                   + "]" * (DEFAULTS.yaml_depth + 1) + "\nlayers: [relu]\n", DEFAULTS.yaml_depth + 2),
    "number_digits": (HEAD + "layers:\n  - dropout: 0." + "1" * DEFAULTS.number_digits + "\n",
                      DEFAULTS.number_digits + 1),
    "name_length": (HEAD + "layers:\n  - relu: {}\n    name: " + "a" * (DEFAULTS.name_length + 1)
                    + "\n", DEFAULTS.name_length + 1),
}


def errors_of(text: str, chosen: Limits | None = None) -> list[netspec.Diagnostic]:
    with pytest.raises(netspec.SpecError) as info:
        netspec.check(text, limits=chosen)
    return info.value.errors


@pytest.mark.parametrize("name", list(CASES))
def test_each_limit_is_named_with_how_to_raise_it(name: str) -> None:
    text, _ = CASES[name]
    found = [e for e in errors_of(text) if e.code == "limit"]
    assert len(found) == 1
    assert f"(limit `{name}`" in found[0].message
    assert f"--limit {name}=N" in found[0].hint and f"Limits({name}=N)" in found[0].hint
    assert found[0].where.line >= 1


@pytest.mark.parametrize("name", [pytest.param("layers", marks=pytest.mark.slow),  # 100,000 layers
                                  "block_depth", "expression_length", "tensor_elements",
                                  "number_digits", "name_length"])
def test_a_raised_limit_lets_the_spec_through(name: str) -> None:
    text, enough = CASES[name]
    report = netspec.check(text, limits=Limits(**{name: enough}))
    assert report.layers


def test_yaml_depth_raised_moves_past_reading() -> None:
    """The document is read; what remains wrong with it (the unknown key) is not the limit."""
    text, enough = CASES["yaml_depth"]
    spec, _, errors = netspec.diagnose(text, limits=Limits(yaml_depth=enough))
    assert spec is None and [e.code for e in errors] != ["limit"]


def test_yaml_values_counts_every_value() -> None:
    text = HEAD + "layers: [" + ", ".join(["relu"] * 100) + "]\n"  # 100 + 8 values
    [error] = netspec.diagnose(text, limits=Limits(yaml_values=100))[2]
    assert "more than 100 values (limit `yaml_values`" in error.message
    assert len(netspec.check(text, limits=Limits(yaml_values=108)).layers) == 100


def test_the_tensor_limit_counts_one_output_per_sample() -> None:
    # 32 x 4096 x 4096 upsampled 2x is 2**31 elements: within the limit; 33 channels pass it.
    text = "input: [32, 4096, 4096]\nlayers:\n  - upsample: {scale: 2}\n"
    netspec.check(text)
    [error] = errors_of(text.replace("[32, ", "[33, "))
    elements = 33 * 8192 * 8192
    assert f"has {elements:,} elements per sample, more than {2**31:,}" in error.message
    assert error.code == "limit" and error.where.line == 3


def test_a_kernel_of_10_to_the_12_is_refused_without_allocating() -> None:
    text = HEAD + "layers:\n  - conv2d: {out: 1000000, kernel: 1000}\n"
    params = 10**6 * 1000 * 1000 + 10**6  # weight out*in*k*k, bias out
    [error] = errors_of(text.replace("[1, 8, 8]", "[1, 1000, 1000]"))
    assert f"holds {params:,} parameters" in error.message


def test_spec_bytes_is_the_file_size(tmp_path: Path) -> None:
    path = tmp_path / "net.yaml"
    path.write_text(HEAD + "layers: [relu]\n" + "#" * 200 + "\n")
    size = path.stat().st_size
    [error] = errors_of(str(path), Limits(spec_bytes=size - 1))
    assert f"larger than {size - 1:,} bytes (limit `spec_bytes`" in error.message
    assert netspec.check(path, limits=Limits(spec_bytes=size)).layers


def test_use_depth(tmp_path: Path) -> None:
    spec = write_uses(tmp_path, DEFAULTS.use_depth + 1)
    [error] = errors_of(str(spec))
    assert "(limit `use_depth`)" in error.message and error.where.file.endswith(".yaml")
    assert netspec.check(spec, limits=Limits(use_depth=DEFAULTS.use_depth + 1)).layers


def test_use_folders_allow_an_include_outside_the_spec_tree(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "units.yaml").write_text(textwrap.dedent("""\
        blocks:
          unit:
            layers: [relu]
    """))
    (tmp_path / "net").mkdir()
    spec = tmp_path / "net" / "net.yaml"
    spec.write_text(HEAD + "use: [../shared/units.yaml]\nlayers: [unit]\n")
    error = errors_of(str(spec))[0]
    assert "outside the spec's folder" in error.message and "--allow-use" in error.hint
    assert netspec.check(spec, limits=Limits(use_folders=(shared,))).layers
    ok = CliRunner().invoke(main, ["check", str(spec), "--allow-use", str(shared)])
    assert ok.exit_code == 0, ok.output


@pytest.mark.slow
def test_the_cli_takes_limits_and_refuses_unknown_ones(tmp_path: Path) -> None:
    path = tmp_path / "net.yaml"
    path.write_text(CASES["layers"][0])
    refused = CliRunner().invoke(main, ["check", str(path)])
    assert refused.exit_code == 1 and "--limit layers=N" in refused.stderr
    raised = CliRunner().invoke(main, ["check", str(path), "--limit", f"layers={10**5 + 1:_}"])
    assert raised.exit_code == 0, raised.output
    for bad, why in [("layer=5", "no limit `layer`"), ("layers=0", "positive integer"),
                     ("layers=many", "NAME=N")]:
        result = CliRunner().invoke(main, ["check", str(path), "--limit", bad])
        assert result.exit_code == 2 and why in result.output


@pytest.mark.parametrize("command", ["draw", "export", "train", "predict"])
def test_every_command_that_reads_a_spec_takes_limits(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"])
    assert "--limit NAME=N" in result.output and "--allow-use DIR" in result.output


def predict_with(tmp_path: Path, *args: str) -> Result:
    """`netspec predict` of a small classifier with weights that are not there: a limit
    refuses the inputs before the weights are looked for."""
    spec = tmp_path / "net.yaml"
    spec.write_text(HEAD + "layers: [flatten, {linear: 3}]\n")
    return CliRunner().invoke(main, ["predict", str(spec), "--weights", str(tmp_path / "no.pt"),
                                     *args])


def test_predict_files_counts_the_inputs_in_folders(tmp_path: Path) -> None:
    folder = tmp_path / "inputs"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.npy").write_bytes(b"")
    refused = predict_with(tmp_path, "--limit", "predict_files=2", str(folder))
    assert (refused.exit_code, refused.stderr) == (1, (
        f"error: more than 2 inputs (at {folder}), the limit `predict_files`; "
        f"{limits.raise_hint('predict_files')}\n"))
    raised = predict_with(tmp_path, "--limit", "predict_files=3", str(folder))
    assert raised.exit_code == 1 and "limit `predict_files`" not in raised.stderr
    assert "no.pt" in raised.stderr  # past the limit, to the weights
    with pytest.raises(netspec.PredictError, match="limit `predict_files`"):
        netspec.predict(tmp_path / "net.yaml", tmp_path / "no.pt", [folder],
                        limits=Limits(predict_files=2))


def test_predict_file_bytes_is_each_input_s_size(tmp_path: Path) -> None:
    big = tmp_path / "big.npy"
    with big.open("wb") as sparse:  # no bytes written: only the size is read
        sparse.truncate(DEFAULTS.predict_file_bytes + 1)
    refused = predict_with(tmp_path, str(big))
    assert (refused.exit_code, refused.stderr) == (1, (
        f"error: {big}: {DEFAULTS.predict_file_bytes + 1:,} bytes, more than "
        f"{DEFAULTS.predict_file_bytes:,}, the limit `predict_file_bytes`; "
        f"{limits.raise_hint('predict_file_bytes')}\n"))
    raised = predict_with(tmp_path, "--limit", f"predict_file_bytes={DEFAULTS.predict_file_bytes + 1}",
                          str(big))
    assert raised.exit_code == 1 and "limit `predict_file_bytes`" not in raised.stderr
    assert "no.pt" in raised.stderr


@pytest.mark.slow
def test_limits_hold_only_for_the_call() -> None:
    text = CASES["layers"][0]
    netspec.check(text, limits=Limits(layers=DEFAULTS.layers + 1))
    assert limits.current() == DEFAULTS
    with limits.applied(Limits(layers=DEFAULTS.layers + 1)):
        assert netspec.check(text).layers  # the limits in force apply without `limits=`
    assert errors_of(text)


def test_limits_validate_their_values() -> None:
    with pytest.raises(ValueError, match="`layers` must be a positive integer"):
        Limits(layers=0)
    assert Limits().with_settings(["tensor-elements=1_000"]).tensor_elements == 1000


def test_nproc_passes_limits_on_to_every_process() -> None:
    train = main.get_command(main.make_context("netspec", ["train"]), "train")
    args = ["x.yaml", "--limit", "layers=5", "--limit", "block_depth=3", "--nproc", "2"]
    with train.make_context("train", args) as ctx:
        line = _command_line(ctx, drop="nproc")
    assert "x.yaml" in line and "--nproc" not in line
    passed = [a for i, a in enumerate(line) if a == "--limit" or line[i - 1] == "--limit"]
    assert passed == ["--limit", "layers=5", "--limit", "block_depth=3"]
