"""The library API misused: a wrong argument type is a TypeError naming what was given, and a
bad input shape is a positioned SpecError, never an error from deep inside netspec."""

from __future__ import annotations

from pathlib import Path

import pytest

import netspec

LENET = Path(__file__).resolve().parent.parent / "specs" / "lenet5.yaml"
INPUT_LINE = next(n for n, line in enumerate(LENET.read_text().splitlines(), 1)
                  if line.startswith("input:"))


@pytest.mark.parametrize("source", [None, 123, [1, 2], 4.5, b"input: [1]"])
def test_a_spec_of_the_wrong_type_is_a_type_error(source: object) -> None:
    with pytest.raises(TypeError, match=f"found {type(source).__name__}$"):
        netspec.load(source)  # type: ignore[arg-type]


@pytest.mark.parametrize("shape", [(0, 0, 0), (1, -28, 28), (1.5, 28, 28), (True, 28, 28),
                                   "1,28,28", (), [[1, 28, 28]]])
def test_a_bad_input_shape_is_a_positioned_spec_error(shape: object) -> None:
    with pytest.raises(netspec.SpecError) as caught:
        netspec.check(LENET, inputs=shape)  # type: ignore[arg-type]
    (error,) = caught.value.errors
    assert error.code == "bad-input" and "must be positive integers" in error.message
    assert (error.where.file, error.where.line) == (str(LENET), INPUT_LINE)


def test_an_unknown_input_name_lists_the_inputs() -> None:
    with pytest.raises(netspec.SpecError, match="no input named `image`; the spec's inputs: input"):
        netspec.check(LENET, inputs={"image": (1, 28, 28)})


@pytest.mark.parametrize("shape", [(1, 28, 28), [1, 28, 28], {"input": [1, 28, 28]}])
def test_a_good_input_shape_is_taken_in_any_sequence(shape: object) -> None:
    report = netspec.check(LENET, inputs=shape)  # type: ignore[arg-type]
    assert report.inputs == {"input": (1, 28, 28)}
    side = ((28 - 4) // 2 - 4) // 2  # two 5x5 convs, each followed by a 2x2 pool
    assert report.layer("flatten1").shape == (16 * side * side,)


@pytest.mark.parametrize("seed", ["x", 1.5, True])
def test_a_seed_that_is_not_an_integer_is_a_type_error(seed: object) -> None:
    with pytest.raises(TypeError, match=f"seed is an integer or None; found {type(seed).__name__}"):
        netspec.build(LENET, seed=seed)  # type: ignore[arg-type]
