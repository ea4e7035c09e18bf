"""Plugin ops (netspec.ops.plugins): a package's `netspec.ops` entry points add ops that
check, draw, build, export, schema, the language server and the hints all see, with the
figures the plugin's own torch module gives; broken plugins are named, not crashes.

The plugin is tests/plugin_pkg (netspec-gates: `swish_gate`, a module with a parameter,
and `scaled_tanh`, a function call). In-process tests hand the
registry entry points directly and restore it after; the others run netspec in a
subprocess over a real distribution: installed with pip (slow), or a dist-info folder
written here, which is all `importlib.metadata` reads of an installed one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

import netspec
from netspec.ops import OPS, plugins, unknown_op_hint

PLUGIN = Path(__file__).resolve().parent / "plugin_pkg"
SPEC = (PLUGIN / "gated.yaml").read_text()


GATES = {"swish_gate": "netspec_gates.ops:SwishGate", "scaled_tanh": "netspec_gates.ops:ScaledTanh"}
"""netspec-gates' entry points (tests/plugin_pkg/pyproject.toml)."""


def entry(name: str, value: str) -> EntryPoint:
    return EntryPoint(name, value, plugins.GROUP)


@pytest.fixture
def gates(monkeypatch: pytest.MonkeyPatch) -> None:
    """netspec-gates' entry point loaded into the registry, for this test only."""
    monkeypatch.syspath_prepend(str(PLUGIN))
    monkeypatch.setattr(OPS, "plugins", plugins.load(
        [entry(name, value) for name, value in GATES.items()], OPS.builtin))


def torch_figures(layer_module, shape) -> tuple[tuple[int, ...], int, int]:
    """(output shape, parameters, MACs) of a module at a per-sample input shape, from torch."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = layer_module(torch.randn(1, *shape))
    return (tuple(out.shape[1:]), sum(p.numel() for p in layer_module.parameters()),
            counter.get_total_flops() // 2)


def test_a_plugin_op_is_checked_and_built_from_its_one_class(gates):
    from netspec_gates.modules import SwishGate

    report = netspec.check(netspec.load(SPEC))
    rows = {r.name: r for r in report.layers}
    gate = rows["swish_gate1"]
    assert (gate.op, gate.label, gate.torch) == ("swish_gate", "swish_gate 5x5", "SwishGate")
    assert (gate.shape, gate.params, gate.macs) == torch_figures(SwishGate(6, 5), (6, 10, 8))
    assert (rows["swish_gate2"].params, rows["swish_gate2"].macs) == \
        torch_figures(SwishGate(6, 3), (6, 10, 8))[1:]
    model = netspec.build(netspec.load(SPEC))
    assert type(model.swish_gate1) is SwishGate
    assert sum(p.numel() for p in model.parameters()) == report.params
    chain = (model.conv1, model.swish_gate1, model.swish_gate2)
    assert rows["swish_gate2"].rf == {"size": [seen(chain)] * 2, "stride": [1, 1]}
    capped = rows["scaled_tanh1"]
    assert (capped.label, capped.torch, capped.params) == ("scaled_tanh 2.5", None, 0)
    from netspec_gates.functional import scaled_tanh

    [call] = [n for n in model.graph.nodes if n.name == "scaled_tanh1"]
    assert (call.target, call.kwargs) == (scaled_tanh, {"scale": 2.5})


def seen(chain) -> int:
    """How many input rows the centre unit of `chain`'s output reads, by its gradient."""
    import torch

    x = torch.randn(1, 3, 21, 21, requires_grad=True)
    y = x
    for module in chain:
        y = module(y)
    y[0, :, y.shape[2] // 2, y.shape[3] // 2].sum().backward()
    rows = x.grad.abs().sum(dim=(0, 1, 3)).nonzero()
    return int(rows.max() - rows.min() + 1)


def test_the_schema_completion_hover_and_hints_list_a_plugin_op(gates):
    from netspec.lsp.complete import complete
    from netspec.lsp.features import op_markdown
    from netspec.spec.schema import spec_schema

    schema = spec_schema()
    form = schema["$defs"]["op_swish_gate"]
    assert form["properties"]["swish_gate"]["anyOf"][0]["properties"]["kernel"]["anyOf"][0] == \
        {"type": "integer", "minimum": 1, "default": 3}
    assert "swish_gate" in schema["$defs"]["layer"]["anyOf"][0]["enum"]  # `- swish_gate` alone
    text = "input: [3, 8, 8]\nlayers:\n  - swi"
    assert "swish_gate" in {i.label for i in complete("a.yaml", text, [], 3, 8) if i.kind == "op"}
    assert "| `kernel` | int ≥ 1 | `3` |" in op_markdown("swish_gate")
    assert unknown_op_hint("swish_gat").startswith("did you mean `swish_gate` (x * sigmoid(")
    assert unknown_op_hint("xyzzy") == (f"`netspec schema` lists the {len(OPS.builtin) + 2} ops "
                                        f"({len(OPS.builtin)} built in, as the README's ops "
                                        "table, and 2 from plugins)")


def test_a_plugin_op_s_arguments_are_validated_by_its_model(gates):
    with pytest.raises(netspec.SpecError) as caught:
        netspec.check(netspec.load(SPEC.replace("{kernel: 5}", "{kernel: 4}")))
    assert "must be odd to keep the map's size, found 4" in str(caught.value)


def test_looking_up_built_in_ops_loads_no_plugin(monkeypatch):
    monkeypatch.setattr(OPS, "plugins", None)
    netspec.check(netspec.load("input: [3, 8, 8]\nlayers: [relu, flatten, {linear: 2}]"))
    assert OPS.plugins is None


def test_a_spec_s_own_block_wins_over_a_plugin_op_of_its_name(gates, monkeypatch):
    """Installing a plugin never changes what a spec means, and a spec of built-ins and
    blocks loads no plugin."""
    text = ("input: [4, 8]\nblocks:\n  swish_gate:\n    layers: [relu, {linear: 3}]\n"
            "layers:\n  - swish_gate\n")
    report = netspec.check(netspec.load(text))
    assert [row.op for row in report.layers] == ["relu", "linear"]
    monkeypatch.setattr(OPS, "plugins", None)
    netspec.check(netspec.load(text.replace("swish_gate", "head")))
    assert OPS.plugins is None


def test_the_python_export_says_when_it_cannot_import_a_plugin_s_torch_code(monkeypatch):
    """A module class defined inside a function has no import path to write."""
    from typing import Literal

    from netspec.backends.source import python_source
    from netspec.ops.base import Op

    class Local(Op):
        op: Literal["local"] = "local"
        torch_class = "Scale"

        def to_torch(self, torch, x, y):
            class Scale(torch.nn.Module):
                def forward(self, x):
                    return 2 * x

            return Scale()

    monkeypatch.setattr(OPS, "plugins", plugins.Plugins({"local": Local}, ()))
    with pytest.raises(ValueError, match=r"the python export imports a plugin op's torch code, "
                       r"but (tests\.)?test_plugins\.test_the_python_export_says.*<locals>\.Scale "
                       r"cannot be imported by that name"):
        python_source(netspec.load("input: [4]\nlayers: [local]"))


def test_an_entry_point_may_name_a_module_or_a_list_of_op_classes(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGIN))
    from netspec_gates.ops import ScaledTanh, SwishGate

    module = plugins.load([entry("gates", "netspec_gates.ops")], OPS.builtin)
    assert module == ({"swish_gate": SwishGate, "scaled_tanh": ScaledTanh}, ())
    monkeypatch.setattr(sys.modules["netspec_gates.ops"], "ALL", [ScaledTanh, SwishGate],
                        raising=False)
    listed = plugins.load([entry("gates", "netspec_gates.ops:ALL")], OPS.builtin)
    assert listed == ({"scaled_tanh": ScaledTanh, "swish_gate": SwishGate}, ())


def test_the_readme_shows_the_plugin_s_ops_as_they_are():
    readme = (PLUGIN.parent.parent / "README.md").read_text()
    shown = readme.split("# tests/plugin_pkg/netspec_gates/ops.py")[1].split("```")[0]
    source = (PLUGIN / "netspec_gates" / "ops.py").read_text()
    assert source.endswith(shown.partition("\n")[2])


def test_an_op_whose_arguments_have_no_schema_is_refused(tmp_path, monkeypatch):
    (tmp_path / "opaque.py").write_text(textwrap.dedent("""\
        from collections.abc import Callable
        from typing import Literal
        from netspec.ops.base import Op

        class Opaque(Op):
            op: Literal["opaque"] = "opaque"
            fn: Callable[[int], int] = abs
        """))
    monkeypatch.syspath_prepend(str(tmp_path))
    [problem] = plugins.load([entry("opaque", "opaque:Opaque")], OPS.builtin).problems
    assert problem.message.startswith("Opaque's arguments have no JSON Schema, which editors "
                                      "read: PydanticInvalidForJsonSchema: Cannot generate a "
                                      "JsonSchema for core_schema.CallableSchema")


@pytest.mark.parametrize(("value", "message"), [
    ("json:dumps", "names <function dumps"),
    ("json", "module json defines no op class"),
    ("netspec.ops.base:Op", "names <class 'netspec.ops.base.Op'>, not an op class"),
    ("netspec_nowhere.ops:Op", "failed to import: ModuleNotFoundError: No module named "
                               "'netspec_nowhere'"),
])
def test_an_entry_point_that_gives_no_op_is_refused_by_name(value, message):
    found = plugins.load([entry("wobble", value)], OPS.builtin)
    assert found.ops == {}
    [problem] = found.problems
    assert problem.ops == ("wobble",)
    assert str(problem).startswith(f"plugin entry point `wobble = {value}` of an unknown "
                                   f"distribution: {message}")


# --- installed plugins, in a subprocess ------------------------------------------------------


def netspec_cli(*args: str, path: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(path), os.environ.get(
        "PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "netspec", *args], capture_output=True,
                          text=True, env=env, cwd=cwd)


def distribution(root: Path, name: str, entry_points: dict[str, str],
                 modules: dict[str, str] | None = None) -> None:
    """An installed distribution as importlib.metadata finds one: `NAME-0.1.dist-info`
    with its metadata and entry points, beside the modules it ships."""
    info = root / f"{name.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    lines = [f"{k} = {v}" for k, v in entry_points.items()]
    (info / "entry_points.txt").write_text("\n".join(["[netspec.ops]", *lines, ""]))
    for module, source in (modules or {}).items():
        (root / f"{module}.py").write_text(textwrap.dedent(source))


RELU_AGAIN = """
    from typing import Literal
    from netspec.ops.base import Op

    class MyReLU(Op):
        '''Another relu.'''
        op: Literal["relu"] = "relu"
"""


def test_broken_plugins_warn_and_fail_only_the_specs_that_need_them(tmp_path):
    site = tmp_path / "site"
    shutil.copytree(PLUGIN / "netspec_gates", site / "netspec_gates")
    distribution(site, "netspec-gates", GATES)
    distribution(site, "netspec-broken", {"wobble": "netspec_broken.ops:Wobble"})
    distribution(site, "netspec-relu", {"relu": "my_relu:MyReLU"}, {"my_relu": RELU_AGAIN})
    (tmp_path / "uses.yaml").write_text("input: [3, 8, 8]\nlayers: [wobble, swish_gate]\n")
    (tmp_path / "gated.yaml").write_text(SPEC)

    wanted = netspec_cli("check", "uses.yaml", path=site, cwd=tmp_path)
    assert wanted.returncode == 1, wanted.stderr
    broken = ("plugin entry point `wobble = netspec_broken.ops:Wobble` of netspec-broken 0.1: "
              "failed to import: ModuleNotFoundError: No module named 'netspec_broken'")
    assert f"uses.yaml:2:10: error: wobble1: unknown op `wobble`; {broken}" in wanted.stderr
    assert "Traceback" not in wanted.stderr

    unused = netspec_cli("check", "gated.yaml", "--format", "json", path=site, cwd=tmp_path)
    assert unused.returncode == 0, unused.stderr
    assert f"warning: {broken}" in unused.stderr.splitlines()
    assert ("warning: plugin entry point `relu = my_relu:MyReLU` of netspec-relu 0.1: gives op "
            "`relu`, which netspec has built in: the built-in is used; rename the plugin's op"
            ) in unused.stderr.splitlines()
    assert [r["op"] for r in json.loads(unused.stdout)["layers"]][1:3] == \
        ["swish_gate", "swish_gate"]


def test_two_plugins_giving_one_op_name_are_both_refused(tmp_path):
    site = tmp_path / "site"
    shutil.copytree(PLUGIN / "netspec_gates", site / "netspec_gates")
    distribution(site, "netspec-gates", GATES)
    other = (PLUGIN / "netspec_gates" / "ops.py").read_text().replace("class SwishGate",
                                                                      "class OtherGate")
    distribution(site, "other-gates", {"gates": "other_gates"}, {"other_gates": other})
    (tmp_path / "gated.yaml").write_text(SPEC)
    result = netspec_cli("check", "gated.yaml", path=site, cwd=tmp_path)
    assert result.returncode == 1
    assert ("unknown op `swish_gate`; plugin entry point `swish_gate = netspec_gates.ops:"
            "SwishGate` of netspec-gates 0.1 and entry point `gates = other_gates` of "
            "other-gates 0.1: both give op `swish_gate`, so neither is used: uninstall one"
            ) in result.stderr


CHECK_TWO = ("import sys, netspec\nfrom netspec.ops import OPS\n"
             "netspec.check(netspec.load(sys.argv[1]))\nprint(OPS.plugins is None)\n"
             "netspec.check(netspec.load(sys.argv[2]))\nprint('torch' in sys.modules)\n")
"""Check a spec of built-in ops, then one of plugin ops: were plugins loaded for the first,
is torch imported after the second?"""


def check_two(site: Path, op: str) -> subprocess.CompletedProcess[str]:
    plain, plugged = "input: [3, 8, 8]\nlayers: [relu]\n", f"input: [3, 8, 8]\nlayers: [{op}]\n"
    return subprocess.run([sys.executable, "-c", CHECK_TWO, plain, plugged], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(site)})


def test_checking_with_a_plugin_op_neither_imports_torch_nor_loads_unused_plugins(tmp_path):
    site = tmp_path / "site"
    shutil.copytree(PLUGIN / "netspec_gates", site / "netspec_gates")
    distribution(site, "netspec-gates", GATES)
    out = check_two(site, "swish_gate")
    assert out.stdout.split() == ["True", "False"], out.stderr


@pytest.mark.slow
def test_a_plugin_that_imports_torch_when_loaded_is_named(tmp_path):
    heavy = "import torch\n" + textwrap.dedent(RELU_AGAIN).replace('"relu"', '"heavy"')
    distribution(tmp_path, "heavy", {"heavy": "heavy"}, {"heavy": heavy})
    out = check_two(tmp_path, "heavy")
    assert out.stdout.split() == ["True", "True"], out.stderr
    assert ("PluginWarning: plugin entry point `heavy = heavy` of heavy 0.1: imports torch when "
            "loaded, which makes `netspec check` slow: import it inside `to_torch`") in out.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/plugin_pkg installed by pip into a folder of its own (offline, no build
    isolation: setuptools from this environment)."""
    root = tmp_path_factory.mktemp("plugin")
    source = root / "src"
    shutil.copytree(PLUGIN, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    target = root / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index",
                    "--no-build-isolation", "--quiet", "--target", str(target), str(source)],
                   check=True, capture_output=True)
    return target


@pytest.mark.slow
def test_an_installed_plugin_is_seen_by_every_command(installed, tmp_path):
    (tmp_path / "gated.yaml").write_text(SPEC)

    def run(*args: str) -> str:
        result = netspec_cli(*args, path=installed, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "warning" not in result.stderr
        return result.stdout

    def python(code: str) -> str:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(installed), str(tmp_path)])}
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                env=env, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        return result.stdout

    report = json.loads(run("check", "gated.yaml", "--format", "json"))
    assert "op_swish_gate" in json.loads(run("schema"))["$defs"]
    run("draw", "gated.yaml", "-o", "gated.dot")
    assert "<b>swish_gate 5x5</b>" in (tmp_path / "gated.dot").read_text()
    python("import torch, netspec\n"
           "torch.save(netspec.build(netspec.load('gated.yaml')).state_dict(), 'gated.pt')")
    for fmt in ("onnx", "pt2"):
        run("export", "gated.yaml", "--format", fmt, "--weights", "gated.pt")
    run("export", "gated.yaml", "--format", "python")
    source = (tmp_path / "gated.py").read_text()
    assert "import netspec_gates.modules\n" in source
    assert "import netspec_gates.functional\n" in source
    assert "self.swish_gate1 = netspec_gates.modules.SwishGate(channels=6, kernel=5)" in source
    assert "x = netspec_gates.functional.scaled_tanh(x, scale=2.5)  # (N, 4)" in source
    out = python(textwrap.dedent("""\
        import json, torch, netspec, onnxruntime
        from netspec_gates.modules import SwishGate
        from gated import Gated
        built = netspec.build(netspec.load("gated.yaml")).eval()
        built.load_state_dict(torch.load("gated.pt"))
        written = Gated().eval()
        written.load_state_dict(built.state_dict(), strict=True)
        x = torch.randn(2, 3, 12, 10)
        want = built(x).detach()
        onnx = onnxruntime.InferenceSession("gated.onnx").run(None, {"input": x.numpy()})[0]
        program = torch.export.load("gated.pt2").module()
        print(json.dumps({
            "params": sum(p.numel() for p in SwishGate(6, 5).parameters()),
            "python": (written(x) - want).abs().max().item(),
            "onnx": float(abs(onnx - want.numpy()).max()),
            "pt2": (program(x) - want).abs().max().item()}))
        """))
    figures = json.loads(out)
    gate = next(r for r in report["layers"] if r["name"] == "swish_gate1")
    assert (gate["op"], gate["torch"], gate["params"]) == ("swish_gate", "SwishGate", figures["params"])
    assert max(figures["python"], figures["onnx"], figures["pt2"]) < 1e-5
