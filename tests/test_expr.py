"""The safe evaluator of block-parameter expressions: arithmetic works, code does not run."""

from __future__ import annotations

import math

import pytest

from netspec.spec.expr import ExprError, evaluate, make_divisible, names_in


@pytest.mark.parametrize(("text", "env", "value"), [
    ("width * 4", {"width": 16}, 64),
    ("c // 2 + 1", {"c": 9}, 5),
    ("2 if i == 0 else 1", {"i": 0}, 2),
    ("2 if i == 0 else 1", {"i": 3}, 1),
    ("max(8, c // 4)", {"c": 16}, 8),
    ("int(64 * alpha)", {"alpha": 0.75}, 48),
    ("64 * alpha", {"alpha": 0.5}, 32),          # integral floats come back as ints
    ("64 * alpha", {"alpha": 0.3}, 64 * 0.3),
    ("ceil(n / 3)", {"n": 10}, 4),
    ("stride != 1 or cin != cout", {"stride": 1, "cin": 4, "cout": 4}, False),
    ("not first", {"first": True}, False),
    ("2 ** depth", {"depth": 5}, 32),
    ("-k % 3", {"k": 1}, 2),
    ("[k, k + 2]", {"k": 3}, [3, 5]),
    ("1 < x <= 3", {"x": 3}, True),
    # lists: indexed by an integer, read whole by sum, len, min and max
    ("rates[i]", {"rates": [1, 6, 12, 18], "i": 2}, 12),
    ("rates[-1] * 2", {"rates": [1, 6, 12, 18]}, 36),
    ("[3, 4, 6, 3][i]", {"i": 1}, 4),
    ("sum(depths) + len(depths)", {"depths": [3, 4, 6, 3]}, 3 + 4 + 6 + 3 + 4),
    ("max(rates) - min(rates)", {"rates": [6, 12, 18]}, 18 - 6),
    ("sum([])", {}, 0),
    # RegNet's quantised widths: w_0 * w_m ** round(log(u / w_0) / log(w_m))
    ("int(48 * 2.52 ** round(log(100 / 48) / log(2.52)))", {}, int(48 * 2.52 ** 1)),
    ("log2(64) + sqrt(16) + exp(0)", {}, 6 + 4 + 1),
])
def test_arithmetic(text, env, value):
    assert evaluate(text, env) == value


@pytest.mark.parametrize(("text", "why"), [
    ("width.__class__", "attribute access"),
    ("(1).__class__.__bases__", "attribute access"),
    ("params[0:1]", "slices"),
    ("width[0]", "only a list can be indexed, found 1"),
    ("params[1]", "index 1 is out of range for a list of 1"),
    ("params[0.5]", "a list index is an integer"),
    ("max([])", "max\\(\\) of an empty list"),
    ("sum([1, [2]])", "expected a number, found \\[2\\]"),
    ("log(0)", "log\\(\\): math domain error"),
    ("sqrt(-1)", "sqrt\\(\\): math domain error"),
    ("exp(1000)", "exp\\(\\): math range error"),
    ("exp(40)", "out of range"),
    ("__import__('os')", "not an allowed function call"),
    ("open('/etc/passwd')", "not an allowed function call"),
    ("eval('1')", "not an allowed function call"),
    ("lambda: 1", "lambdas"),
    ("[x for x in range(9)]", "comprehensions"),
    ("(y := 3)", "assignment"),
    ("9 ** 9 ** 9", "power is too large"),
    ("10 ** 60", "out of range"),
    ("1 / 0", "division by zero"),
    ("import os", "not a valid expression"),
    ("x" * 300, "longer than"),
])
def test_refused(text, why):
    with pytest.raises(ExprError, match=why):
        evaluate(text, {"width": 1, "params": [1], "x": 1})


def test_unknown_names_suggest_the_closest_parameter():
    with pytest.raises(ExprError, match="unknown parameter `widht`") as info:
        evaluate("widht * 4", {"width": 16})
    assert info.value.hint == "did you mean `width`?"


def test_names_in_lists_parameters_not_functions():
    assert names_in("max(a, b // 2) + ceil(c)") == {"a", "b", "c"}


@pytest.mark.parametrize("value", [3.2, 8, 11.9, 12, 23.99, 32 * 0.75, 96 * 1.4, 1280 * 0.35])
def test_make_divisible_rounds_to_a_multiple_within_ten_percent(value):
    out = make_divisible(value, 8)
    assert out % 8 == 0 and out >= 8
    assert out >= 0.9 * value
    assert abs(out - value) <= 8 or out == 8
    assert out in {8 * math.floor(value / 8 + 0.5), 8 * math.floor(value / 8 + 0.5) + 8, 8}


def test_a_list_parameter_sets_each_repeated_layer(tmp_path):
    """DeepLab's atrous rates as one list: copy i of a repeated layer reads `rates[i]`, and
    the number of copies is `len(rates)`."""
    import netspec

    rates = [1, 6, 12, 18]
    spec = tmp_path / "aspp.yaml"
    spec.write_text(f"input: [8, 33, 33]\nparams: {{rates: {rates}}}\nlayers:\n"
                    "  - conv2d: {out: 4, kernel: 3, padding: 'rates[i]', dilation: 'rates[i]'}\n"
                    "    repeat: len(rates)\n")
    convs = [layer.node.op for layer in netspec.check(spec).layers if layer.op == "conv2d"]
    assert [(c.dilation, c.padding) for c in convs] == [(r, r) for r in rates]
