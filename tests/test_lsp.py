"""The language server end to end: pytest-lsp drives `netspec lsp` over stdio as an editor
would, on zoo specs and on broken ones. Expected shapes and counts come from `netspec.check`
(what the server must show) or from the convolution arithmetic itself."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import pytest_lsp
import yaml
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient
from tiers import zoo

import netspec
from netspec.spec.expand import META

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_lsp.fixture(scope="module", config=ClientServerConfig(
    server_command=[sys.executable, "-m", "netspec", "lsp"]))
async def client(lsp_client: LanguageClient):
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=pytest_lsp.client_capabilities("visual-studio-code"),
        root_uri=ROOT.as_uri()))
    yield
    await lsp_client.shutdown_session()


async def published(client: LanguageClient, uri: str) -> None:
    """Wait for the diagnostics of `uri` (the server publishes the edited file's last)."""
    while uri not in client.diagnostics:
        await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)


async def opened(client: LanguageClient, path: Path, text: str | None = None) -> str:
    """Open `path` (with `text`, else its own) and wait for its diagnostics; its URI."""
    uri = path.as_uri()
    client.diagnostics.pop(uri, None)
    client.text_document_did_open(types.DidOpenTextDocumentParams(types.TextDocumentItem(
        uri, "yaml", 1, path.read_text() if text is None else text)))
    await published(client, uri)
    return uri


async def edited(client: LanguageClient, uri: str, text: str, version: int = 2) -> None:
    """Replace the document's text and wait for its diagnostics."""
    client.diagnostics.pop(uri, None)
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        types.VersionedTextDocumentIdentifier(version=version, uri=uri),
        [types.TextDocumentContentChangeWholeDocument(text)]))
    await published(client, uri)


def closed(client: LanguageClient, uri: str) -> None:
    client.text_document_did_close(types.DidCloseTextDocumentParams(
        types.TextDocumentIdentifier(uri)))


async def hints(client: LanguageClient, uri: str, lines: int = 200) -> dict[int, str]:
    """The inlay hints by 1-based line."""
    found = await client.text_document_inlay_hint_async(types.InlayHintParams(
        types.TextDocumentIdentifier(uri), types.Range(types.Position(0, 0),
                                                       types.Position(lines, 0))))
    return {h.position.line + 1: h.label for h in found or []}


async def hover(client: LanguageClient, uri: str, line: int, column: int) -> str:
    """The hover's markdown at 1-based `line`, `column` ("" when none)."""
    found = await client.text_document_hover_async(types.HoverParams(
        types.TextDocumentIdentifier(uri), types.Position(line - 1, column - 1)))
    return found.contents.value if found else ""


def column_of(text: str, line: int, word: str) -> int:
    """The 1-based column of `word` on 1-based `line`."""
    return text.splitlines()[line - 1].index(word) + 1


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def dims(shape: tuple[int, ...] | list[int]) -> str:
    return "x".join(map(str, shape))


# -- diagnostics ------------------------------------------------------------------------


async def test_a_valid_spec_has_no_diagnostics(client: LanguageClient):
    uri = await opened(client, SPECS / "resnet50.yaml")
    assert not client.diagnostics[uri]
    closed(client, uri)


async def test_errors_are_positioned_with_their_range_and_hint(client: LanguageClient, tmp_path):
    text = ("input: [1, 8, 8]\nlayers:\n  - conv2d: {out: 4, kernel: 11}\n  - relu\n"
            "  - linaer: 10\n")
    uri = await opened(client, tmp_path / "bad.yaml", text)
    found = sorted(client.diagnostics[uri], key=lambda d: d.range.start.line)
    expected = netspec.api.diagnose(text)[2]
    assert len(found) == len(expected) == 2
    kernel, typo = found
    assert kernel.severity == types.DiagnosticSeverity.Error and kernel.source == "netspec"
    start = column_of(text, 3, "11") - 1
    assert (kernel.range.start.line, kernel.range.start.character) == (2, start)
    assert (kernel.range.end.line, kernel.range.end.character) == (2, start + 2)
    assert "kernel" in kernel.message
    assert typo.range.start == types.Position(4, 4) and typo.range.end == types.Position(4, 10)
    assert "unknown op `linaer`" in typo.message and "hint: did you mean `linear`" in typo.message
    closed(client, uri)


async def test_warnings_are_published_as_warnings(client: LanguageClient, tmp_path):
    text = "input: [1, 9, 9]\nlayers:\n  - maxpool2d: 2\n"  # drops a row and a column
    report = netspec.check(text)
    assert report.warnings
    uri = await opened(client, tmp_path / "warn.yaml", text)
    warnings = [d for d in client.diagnostics[uri] if d.severity == types.DiagnosticSeverity.Warning]
    assert len(warnings) == len(report.warnings)
    assert warnings[0].range.start.line == 2
    closed(client, uri)


async def test_errors_in_a_used_block_file_are_shown_in_that_file(client: LanguageClient, tmp_path):
    blocks = tmp_path / "blocks.yaml"
    blocks.write_text("blocks:\n  squeeze:\n    params: {k: 3}\n    layers:\n"
                      "      - conv2d: {out: 8, kernel: k}\n      - relu\n")
    spec = tmp_path / "net.yaml"
    text = "input: [3, 4, 4]\nuse: [blocks.yaml]\nlayers:\n  - squeeze: {k: 9}\n"
    uri = await opened(client, spec, text)
    in_blocks = client.diagnostics.get(blocks.as_uri(), [])
    assert len(in_blocks) == 1 and in_blocks[0].range.start.line == 4
    assert "kernel" in in_blocks[0].message
    await edited(client, uri, text.replace("k: 9", "k: 3"))
    assert not client.diagnostics.get(blocks.as_uri())
    closed(client, uri)


async def test_an_unsaved_block_file_is_read_as_the_editor_has_it(client: LanguageClient, tmp_path):
    blocks = tmp_path / "blocks.yaml"
    saved = "blocks:\n  unit:\n    layers:\n      - conv2d: {out: 8, kernel: 3}\n"
    blocks.write_text(saved)
    spec_uri = await opened(client, tmp_path / "net.yaml",
                           "input: [3, 16, 16]\nuse: [blocks.yaml]\nlayers:\n  - unit\n")
    assert (await hints(client, spec_uri))[4] == "# 3x16x16 -> 8x14x14, 224 params"
    block_uri = await opened(client, blocks, saved)
    await edited(client, block_uri, saved.replace("out: 8", "out: 4"))
    # the spec is analysed again with the block file as it is on screen
    assert (await hints(client, spec_uri))[4] == f"# 3x16x16 -> 4x14x14, {4 * (3 * 9 + 1)} params"
    assert (await hints(client, block_uri))[4] == "# 4x14x14"
    closed(client, block_uri)
    closed(client, spec_uri)


async def test_text_that_does_not_parse_keeps_the_last_good_analysis(client: LanguageClient):
    path = SPECS / "lenet5.yaml"
    text = path.read_text()
    uri = await opened(client, path)
    before = await hints(client, uri)
    broken = text.replace("layers:\n", "layers:\n  - conv2d: {out: 6\n", 1)
    await edited(client, uri, broken)
    assert any("invalid YAML" in d.message for d in client.diagnostics[uri])
    after = await hints(client, uri)
    # the same hints, each on its line as moved by the edit (one line inserted above them)
    assert after == {line + 1: label for line, label in before.items()}
    assert f"params {6 * (1 * 5 * 5 + 1)}" in await hover(client, uri, 8, 7)
    closed(client, uri)


# -- inlay hints -----------------------------------------------------------------------


async def test_hints_show_every_layer_s_shape_lenet(client: LanguageClient):
    path = SPECS / "lenet5.yaml"
    text = path.read_text()
    uri = await opened(client, path)
    found = await hints(client, uri)
    conv1 = (32 - 5 + 1)  # valid convolution: H - k + 1
    assert found[line_of(text, "conv2d: {out: 6")] == f"# 6x{conv1}x{conv1}"
    assert found[line_of(text, "flatten")] == f"# {16 * 5 * 5}"
    report = netspec.check(path)
    assert sorted(found.values()).count("# 10") == 1
    assert len(found) == len(report.layers)
    closed(client, uri)


async def test_hints_of_block_calls_give_in_out_and_params(client: LanguageClient):
    path = SPECS / "resnet50.yaml"
    text = path.read_text()
    uri = await opened(client, path)
    found = await hints(client, uri)
    report = netspec.check(path)
    shapes = {layer.name: dims(layer.shape) for layer in report.layers}
    stage = [x for x in report.layers if x.name.startswith("layer2.")]
    line = line_of(text, "name: layer2") - 2
    assert found[line] == (f"# {shapes['layer1.2.relu3']} -> {shapes['layer2.3.relu3']} ×4, "
                           f"{sum(x.params for x in stage):,} params")
    closed(client, uri)


# -- hover -----------------------------------------------------------------------------


async def test_hover_on_a_layer_gives_its_analysis_and_its_op(client: LanguageClient):
    path = SPECS / "lenet5.yaml"
    text = path.read_text()
    uri = await opened(client, path)
    line = line_of(text, "conv2d: {out: 16")
    found = await hover(client, uri, line, column_of(text, line, "conv2d") + 1)
    params = 16 * (6 * 5 * 5 + 1)
    macs = 16 * 10 * 10 * 6 * 5 * 5
    for part in ("**conv2", "`torch.nn.Conv2d`", "6x14x14 → **16x10x10**", f"params {params:,}",
                 f"MACs {macs:,}", "receptive field 14x14", "| `kernel` |", "| `stride` |"):
        assert part in found
    elsewhere = await hover(client, uri, line, column_of(text, line, "kernel"))
    assert "**conv2" in elsewhere and "| `kernel` |" not in elsewhere
    closed(client, uri)


async def test_hover_on_a_block_call_gives_its_expansion(client: LanguageClient):
    path = SPECS / "resnet50.yaml"
    text = path.read_text()
    uri = await opened(client, path)
    report = netspec.check(path)
    stage = [x for x in report.layers if x.name.startswith("layer3.")]
    line = line_of(text, "name: layer3") - 2
    found = await hover(client, uri, line, column_of(text, line, "bottleneck"))
    assert "**block `bottleneck`** · defined at resnet.yaml:" in found
    assert f"6 instance(s), {len(stage)} layers" in found
    assert f"params {sum(x.params for x in stage):,} · MACs {sum(x.macs for x in stage):,}" in found
    closed(client, uri)


async def test_hover_on_a_parameter_gives_its_value_and_where_it_is_set(client: LanguageClient):
    path = SPECS / "lenet5.yaml"
    text = path.read_text()
    uri = await opened(client, path)
    line = line_of(text, "linear: classes")
    found = await hover(client, uri, line, column_of(text, line, "classes") + 2)
    assert f"**classes** · parameter of the spec, set at lenet5.yaml:{line_of(text, 'params:')}" in found
    assert "default: `10`" in found
    closed(client, uri)


# -- completion ------------------------------------------------------------------------


async def complete(client: LanguageClient, uri: str, line: int, column: int) -> dict[str, str]:
    found = await client.text_document_completion_async(types.CompletionParams(
        types.TextDocumentIdentifier(uri), types.Position(line - 1, column - 1)))
    items = found.items if isinstance(found, types.CompletionList) else found or []
    return {i.label: i.detail or "" for i in items}


async def test_completion_offers_ops_blocks_keys_layers_and_params(client: LanguageClient,
                                                                   tmp_path):
    text = ("input: [3, 32, 32]\nparams: {width: 16}\nblocks:\n  unit:\n    params: {k: 3}\n"
            "    layers:\n      - conv2d: {out: width, kernel: k, padding: same}\n      - relu\n"
            "layers:\n  - conv2d: {out: width, kernel: 3}\n    name: stem\n  - unit\n"
            "  - relu:\n    name: act\n  - add: [stem, act]\n")
    uri = await opened(client, tmp_path / "net.yaml", text)
    assert not client.diagnostics[uri]
    typing = text + "  - co\n"
    await edited(client, uri, typing)
    end = len(typing.splitlines())
    ops = await complete(client, uri, end, 7)
    assert {"conv2d", "concat", "relu", "unit"} <= set(ops)
    keys_text = typing.replace("  - co\n", "  - conv2d: {out: 8, \n")
    await edited(client, uri, keys_text, 3)
    keys = await complete(client, uri, end, len("  - conv2d: {out: 8, ") + 1)
    assert "kernel" in keys and "out" not in keys and keys["stride"] == "int ≥ 1 or list of int ≥ 1 = 1"
    refs_text = typing.replace("  - co\n", "  - add: [\n")
    await edited(client, uri, refs_text, 4)
    layers = await complete(client, uri, end, len("  - add: [") + 1)
    assert {"input", "stem", "unit1", "act"} <= set(layers)
    # a reference reads only earlier layers: not `act` from the line with `stem`'s merge
    earlier = await complete(client, uri, line_of(text, "add: [stem"), len("  - add: [") + 1)
    assert "act" in earlier and "add1" not in earlier
    params = await complete(client, uri, line_of(text, "conv2d: {out: width, kernel: 3}"),
                            len("  - conv2d: {out: ") + 1)
    assert "width" in params and "k" not in params
    in_block = await complete(client, uri, 7, len("      - conv2d: {out: width, kernel: ") + 1)
    assert {"k", "width", "cin"} <= set(in_block)
    closed(client, uri)


async def test_completion_in_train_offers_its_keys_and_choices(client: LanguageClient, tmp_path):
    text = "input: [1, 8, 8]\nlayers:\n  - flatten\n  - linear: 2\ntrain:\n  epochs: 3\n  \n"
    uri = await opened(client, tmp_path / "t.yaml", text)
    keys = await complete(client, uri, 7, 3)
    assert {"optimizer", "schedule", "epochs", "batch_size", "precision"} <= set(keys)
    await edited(client, uri, text.replace("  \n", "  optimizer: \n"))
    choices = await complete(client, uri, 7, len("  optimizer: ") + 1)
    assert set(choices) == {"sgd", "adam", "adamw"}
    closed(client, uri)


# -- definitions, references, renames --------------------------------------------------


async def test_definition_from_a_reference_a_block_call_and_a_parameter(client: LanguageClient):
    path = SPECS / "resnet50.yaml"
    text = path.read_text()
    uri = await opened(client, path)
    line = line_of(text, "name: layer1") - 2
    found = await client.text_document_definition_async(types.DefinitionParams(
        types.TextDocumentIdentifier(uri), types.Position(line - 1, column_of(text, line, "bottleneck"))))
    blocks = (SPECS / "blocks" / "resnet.yaml")
    assert found[0].uri == blocks.as_uri()
    assert found[0].range.start.line + 1 == line_of(blocks.read_text(), "  bottleneck:")
    param = column_of(text, line, "groups: groups") + len("groups: ")
    found = await client.text_document_definition_async(types.DefinitionParams(
        types.TextDocumentIdentifier(uri), types.Position(line - 1, param)))
    assert found[0].uri == uri and found[0].range.start.line + 1 == line_of(text, "params: {")
    closed(client, uri)


async def test_references_and_rename_of_a_layer(client: LanguageClient, tmp_path):
    text = ("input: [3, 8, 8]\nlayers:\n  - conv2d: {out: 3, kernel: 1}\n    name: a\n"
            "  - relu\n  - add: [a, relu1]\n  - concat: [a, add1]\n")
    uri = await opened(client, tmp_path / "r.yaml", text)
    at_ref = types.Position(5, column_of(text, 6, "a,"))
    found = await client.text_document_definition_async(types.DefinitionParams(
        types.TextDocumentIdentifier(uri), at_ref))
    assert found[0].range.start == types.Position(3, column_of(text, 4, ": a") + 1)
    refs = await client.text_document_references_async(types.ReferenceParams(
        context=types.ReferenceContext(True), text_document=types.TextDocumentIdentifier(uri),
        position=at_ref))
    assert sorted(r.range.start.line for r in refs) == [3, 5, 6]
    span = await client.text_document_prepare_rename_async(types.PrepareRenameParams(
        types.TextDocumentIdentifier(uri), at_ref))
    assert (span.start.line, span.start.character, span.end.character) == \
        (5, column_of(text, 6, "a,") - 1, column_of(text, 6, "a,"))
    edit = await client.text_document_rename_async(types.RenameParams(
        types.TextDocumentIdentifier(uri), at_ref, "skip"))
    changes = edit.changes[uri]
    lines = text.splitlines()
    for change in changes:
        start, end = change.range.start, change.range.end
        lines[start.line] = lines[start.line][:start.character] + "skip" + lines[start.line][end.character:]
    renamed = "\n".join(lines) + "\n"
    assert renamed == text.replace("name: a", "name: skip").replace("[a,", "[skip,")
    assert netspec.check(renamed).params == netspec.check(text).params
    closed(client, uri)


async def test_rename_of_an_automatic_name_is_refused(client: LanguageClient, tmp_path):
    text = "input: [3, 8, 8]\nlayers:\n  - relu\n  - add: [relu1, input]\n"
    uri = await opened(client, tmp_path / "auto.yaml", text)
    with pytest.raises(Exception, match="automatic name"):
        await client.text_document_rename_async(types.RenameParams(
            types.TextDocumentIdentifier(uri), types.Position(3, 11), "x"))
    with pytest.raises(Exception, match="only a layer's name"):  # on a keyword
        await client.text_document_prepare_rename_async(types.PrepareRenameParams(
            types.TextDocumentIdentifier(uri), types.Position(0, 1)))
    closed(client, uri)



async def test_other_yaml_is_left_alone(client: LanguageClient, tmp_path):
    text = "on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n"  # a CI workflow
    uri = await opened(client, tmp_path / "ci.yaml", text)
    assert not client.diagnostics[uri]
    assert await hints(client, uri) == {}
    closed(client, uri)


@pytest_lsp.fixture(config=ClientServerConfig(
    server_command=[str(Path(sys.executable).with_name("netspec-lsp"))]))
async def by_path(lsp_client: LanguageClient):
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=types.ClientCapabilities()))
    yield
    await lsp_client.shutdown_session()


@pytest.mark.asyncio
async def test_netspec_lsp_starts_by_its_path_alone(by_path: LanguageClient):
    uri = await opened(by_path, SPECS / "lenet5.yaml")
    assert [d.code for d in by_path.diagnostics[uri]] == ["big-linear"]  # its warning
    assert (await hints(by_path, uri))[line_of((SPECS / "lenet5.yaml").read_text(), "flatten")] \
        == f"# {16 * 5 * 5}"


async def test_an_edit_of_a_comment_or_a_used_file_is_seen(client: LanguageClient, tmp_path):
    blocks = tmp_path / "blocks.yaml"
    saved = "blocks:\n  unit:\n    layers:\n      - conv2d: {out: 8, kernel: 3}\n"
    blocks.write_text(saved)
    text = "input: [3, 16, 16]\nuse: [blocks.yaml]\nlayers:\n  - unit   # one\n"
    spec_uri = await opened(client, tmp_path / "net.yaml", text)
    block_uri = await opened(client, blocks, saved)
    await edited(client, spec_uri, text.replace("# one", "# two"))  # changes no value
    assert (await hints(client, spec_uri))[4] == "# 3x16x16 -> 8x14x14, 224 params"
    await edited(client, block_uri, saved.replace("kernel: 3", "kernel: 5"))
    await edited(client, spec_uri, text.replace("# one", "# three"), 3)
    assert (await hints(client, spec_uri))[4] == \
        f"# 3x16x16 -> 8x12x12, {8 * (3 * 25 + 1)} params"
    closed(client, block_uri)
    closed(client, spec_uri)


def item_lines(path: Path) -> list[int]:
    """The 1-based line of each item of a spec's top-level `layers:` list (read by PyYAML)."""
    root = yaml.compose(path.read_text())
    layers = next(v for k, v in root.value if k.value == "layers")
    return [item.start_mark.line + 1 for item in layers.value]


@pytest.mark.parametrize("path", zoo(sorted(SPECS.glob("*.yaml"))), ids=lambda p: p.stem)
async def test_every_zoo_spec_is_served(client: LanguageClient, path: Path):
    """Diagnostics are check's warnings, every layer line has a hint and a hover, and the
    outline lists every layer entry and block."""
    report = netspec.check(path)
    uri = await opened(client, path)
    assert len(client.diagnostics[uri]) == len(report.warnings)
    assert not [d for d in client.diagnostics[uri] if d.severity == types.DiagnosticSeverity.Error]
    lines = item_lines(path)
    found = await hints(client, uri, 10_000)
    assert set(lines) <= set(found)
    for line in lines:
        column = len(path.read_text().splitlines()[line - 1]) - len(
            path.read_text().splitlines()[line - 1].lstrip()) + 3
        assert await hover(client, uri, line, column), line
    outline = await client.text_document_document_symbol_async(types.DocumentSymbolParams(
        types.TextDocumentIdentifier(uri)))
    document = yaml.safe_load(path.read_text())
    own = document.get("blocks", {})
    assert len(outline) == len(lines) + len(own)
    for line, item in zip(lines, document["layers"], strict=True):
        kind = item if isinstance(item, str) else next(k for k in item if k not in META)
        column = column_of(path.read_text(), line, kind) + 1
        found = await client.text_document_definition_async(types.DefinitionParams(
            types.TextDocumentIdentifier(uri), types.Position(line - 1, column - 1)))
        assert len(found) == 1, (line, kind)
        if kind not in netspec.ops.OPS:  # a block call: its definition, in whichever file
            target = Path(found[0].uri.removeprefix("file://"))
            assert target.read_text().splitlines()[found[0].range.start.line].strip().startswith(
                f"{kind}:")
    text = path.read_text().splitlines(keepends=True)
    dash = text[lines[0] - 1].index("-")  # a new first item of `layers:`, as the others
    await edited(client, uri, "".join([*text[:lines[0] - 1], " " * dash + "- \n",
                                       *text[lines[0] - 1:]]))
    offered = await complete(client, uri, lines[0], dash + 3)
    assert set(netspec.ops.OPS) | {k for k, _ in _blocks_of(path)} <= set(offered)
    closed(client, uri)


def _blocks_of(path: Path) -> list[tuple[str, Path]]:
    """The blocks a spec can call (its own and its used files'), read with PyYAML."""
    document = yaml.safe_load(path.read_text())
    found = [(name, path) for name in document.get("blocks", {})]
    for used in document.get("use", []):
        found += _blocks_of(path.parent / used)
    return found


async def test_a_did_you_mean_hint_is_a_quick_fix(client: LanguageClient, tmp_path):
    text = ("input: [1, 8, 8]\nparams: {width: 4}\nlayers:\n  - conv2d: {out: width, kernal: 3}\n"
            "    name: stem\n  - linaer: 10\n  - add: [stme, input]\n")
    uri = await opened(client, tmp_path / "typos.yaml", text)
    fixed = text
    for diagnostic in client.diagnostics[uri]:
        actions = await client.text_document_code_action_async(types.CodeActionParams(
            types.TextDocumentIdentifier(uri), diagnostic.range,
            types.CodeActionContext([diagnostic])))
        for action in actions or []:
            (edit,) = action.edit.changes[uri]
            line = fixed.splitlines()[edit.range.start.line]
            fixed = fixed.replace(line, line[:edit.range.start.character] + edit.new_text
                                  + line[edit.range.end.character:])
    assert fixed == text.replace("kernal", "kernel").replace("linaer", "linear") \
        .replace("stme", "stem")
    closed(client, uri)


async def test_completion_at_the_top_offers_the_spec_s_keys_once(client: LanguageClient, tmp_path):
    text = "input: [1, 8, 8]\nlayers:\n  - flatten\npa\n"
    uri = await opened(client, tmp_path / "top.yaml", text)
    found = await client.text_document_completion_async(types.CompletionParams(
        types.TextDocumentIdentifier(uri), types.Position(3, 2)))
    labels = [i.label for i in found.items]
    assert {"params", "blocks", "use", "train", "scales", "outputs", "auxiliary"} <= set(labels)
    assert len(labels) == len(set(labels))
    closed(client, uri)


async def test_completion_in_outputs_and_auxiliary_offers_the_layers(client: LanguageClient,
                                                                     tmp_path):
    text = ("input: [1, 8, 8]\nlayers:\n  - flatten\n  - {linear: 2, name: fc}\n"
            "  - {linear: 2, from: flatten1, name: side}\noutputs: [fc]\nauxiliary:\n  - s\n")
    uri = await opened(client, tmp_path / "aux.yaml", text)
    layers = await complete(client, uri, 8, len("  - s") + 1)
    assert {"fc", "side", "flatten1"} <= set(layers)
    await edited(client, uri, text.replace("  - s\n", "  - side\n"))
    edit = await client.text_document_rename_async(types.RenameParams(
        types.TextDocumentIdentifier(uri), types.Position(4, column_of(text, 5, "side")), "aux"))
    assert sorted(c.range.start.line for c in edit.changes[uri]) == [4, 7]  # name, auxiliary
    closed(client, uri)


async def test_a_numbered_layer_is_found_and_renamed_by_number(client: LanguageClient, tmp_path):
    """`name: 0`, as torch names a Sequential's children, read by `from: 0`."""
    text = ("input: [4]\nlayers:\n  - linear: 4\n    name: 0\n  - relu\n"
            "  - linear: 4\n    from: 0\n")
    uri = await opened(client, tmp_path / "n.yaml", text)
    at_ref = types.Position(6, column_of(text, 7, "0") - 1)
    found = await client.text_document_definition_async(types.DefinitionParams(
        types.TextDocumentIdentifier(uri), at_ref))
    assert found[0].range.start == types.Position(3, column_of(text, 4, "0") - 1)
    edit = await client.text_document_rename_async(types.RenameParams(
        types.TextDocumentIdentifier(uri), at_ref, "7"))
    assert sorted((c.range.start.line, c.new_text) for c in edit.changes[uri]) == \
        [(3, "7"), (6, "7")]
    closed(client, uri)


async def test_a_hyphenated_layer_is_found_and_renamed(client: LanguageClient, tmp_path):
    """`name: block1-0`, as torchvision's RegNet names its blocks, read by `from:`; a rename
    may give a hyphenated name, never a dotted one."""
    text = ("input: [4]\nlayers:\n  - linear: 4\n    name: block1-0\n  - relu\n"
            "  - linear: 4\n    from: block1-0\n")
    uri = await opened(client, tmp_path / "h.yaml", text)
    at_ref = types.Position(6, column_of(text, 7, "block1-0"))
    found = await client.text_document_definition_async(types.DefinitionParams(
        types.TextDocumentIdentifier(uri), at_ref))
    assert found[0].range.start == types.Position(3, column_of(text, 4, "block1-0") - 1)
    assert found[0].range.end.character == found[0].range.start.character + len("block1-0")
    edit = await client.text_document_rename_async(types.RenameParams(
        types.TextDocumentIdentifier(uri), at_ref, "stage-2"))
    assert sorted((c.range.start.line, c.new_text) for c in edit.changes[uri]) == \
        [(3, "stage-2"), (6, "stage-2")]
    with pytest.raises(Exception, match="not a layer name: a layer name must be letters"):
        await client.text_document_rename_async(types.RenameParams(
            types.TextDocumentIdentifier(uri), at_ref, "stage.2"))
    closed(client, uri)
