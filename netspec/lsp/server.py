"""`netspec lsp`: the Language Server Protocol server (pygls) over stdio.

`Session` keeps the analyses of the open files and decides what to publish; the
handlers below only translate between the protocol and `netspec.lsp.features` /
`netspec.lsp.complete` (positions: the protocol's units, UTF-16 by default, to and from
the characters netspec counts).
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable, Sequence
from pathlib import Path

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path
from pygls.workspace import PositionCodec

from netspec.errors import Diagnostic, Where
from netspec.lsp import complete as completion
from netspec.lsp import features
from netspec.lsp.document import Analysis, analyse

_KINDS = {"op": types.CompletionItemKind.Function, "block": types.CompletionItemKind.Class,
          "key": types.CompletionItemKind.Property, "layer": types.CompletionItemKind.Variable,
          "param": types.CompletionItemKind.Constant, "value": types.CompletionItemKind.EnumMember}


class Session:
    """The open files' texts and analyses: what changed, and which diagnostics to publish
    in which file (a block file gets the errors its callers find in it)."""

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}
        """Open files by absolute path."""
        self.latest: dict[str, Analysis] = {}
        self.good: dict[str, Analysis] = {}
        """The last analysis of each open spec that had an outline (for hover and hints
        while the text does not parse)."""
        self.published: dict[str, list[Diagnostic]] = {}

    def open(self, path: str, text: str) -> dict[str, list[Diagnostic]]:
        self.texts[path] = text
        return self.changed(path)

    def close(self, path: str) -> dict[str, list[Diagnostic]]:
        for table in (self.texts, self.latest, self.good):
            table.pop(path, None)
        return self._publish()

    def changed(self, path: str) -> dict[str, list[Diagnostic]]:
        """Analyse `path` again, and the open specs that use it; the diagnostics to publish
        (by file; an empty list clears a file's)."""
        self._analyse(path, self.latest.get(path))
        for other, analysis in list(self.latest.items()):
            if other != path and path in analysis.files:  # its blocks changed
                self._analyse(other)
        return self._publish(always=path)

    def _analyse(self, path: str, previous: Analysis | None = None) -> None:
        """Analyse `path` as the editor has it (`previous`: its analysis before an edit of
        its own text, reused where the edit changed nothing)."""
        edited = {str(Path(p).resolve()): t for p, t in self.texts.items() if p != path}
        analysis = analyse(path, self.texts[path], edited, previous)
        self.latest[path] = analysis
        if analysis.good:
            self.good[path] = analysis

    def covering(self, path: str) -> list[Analysis]:
        """The analyses that tell about `path`: its own (the last good one), or, for a
        block file, those of the open specs that use it."""
        own = self.latest.get(path)
        if own is not None and not own.library:
            good = own if own.good else self.good.get(path)
            return [good] if good is not None else []
        return [a for a in self.latest.values() if a.good and path in a.files]

    def _publish(self, always: str | None = None) -> dict[str, list[Diagnostic]]:
        """The files whose diagnostics changed (and `always`, the file just edited)."""
        found: dict[str, dict[tuple[int, int, str], Diagnostic]] = {p: {} for p in self.texts}
        for analysis in self.latest.values():
            for d in analysis.diagnostics:
                found.setdefault(d.where.file, {})[(d.where.line, d.where.column, d.message)] = d
        out = {}
        for path in sorted(set(found) | set(self.published), key=lambda p: p == always):
            now = list(found.get(path, {}).values())
            if now != self.published.get(path) or path == always:
                out[path] = now
            if now:
                self.published[path] = now
            else:
                self.published.pop(path, None)
        return out

    def lines(self, path: str) -> list[str]:
        """The lines of `path` as the editor has them, else as on disk."""
        text = self.texts.get(path)
        if text is None:
            try:
                text = Path(path).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                text = ""
        return text.splitlines()


class Positions:
    """Converts netspec's 1-based character positions to the client's, and back."""

    def __init__(self, session: Session, codec: PositionCodec):
        self.session, self.codec = session, codec
        self._lines: dict[str, list[str]] = {}

    def lines(self, path: str) -> list[str]:
        if path not in self._lines:
            self._lines[path] = self.session.lines(path)
        return self._lines[path]

    def position(self, path: str, line: int, column: int) -> types.Position:
        return self.codec.position_to_client_units(
            self.lines(path), types.Position(max(line - 1, 0), max(column - 1, 0)))

    def range(self, where: Where) -> types.Range:
        lines = self.lines(where.file)
        end_line, end_column = where.end_line, where.end_column
        if not end_line:  # no end known: to the end of the line
            end_line = where.line
            end_column = len(lines[where.line - 1]) + 1 if 0 < where.line <= len(lines) \
                else where.column
        return types.Range(self.position(where.file, where.line, where.column),
                           self.position(where.file, end_line, end_column))

    def location(self, where: Where) -> types.Location:
        return types.Location(from_fs_path(where.file) or where.file, self.range(where))

    def incoming(self, path: str, position: types.Position) -> tuple[int, int]:
        """A client position as netspec's (1-based line, 1-based character column)."""
        at = self.codec.position_from_client_units(self.lines(path), position)
        return at.line + 1, at.character + 1


def diagnostic(d: Diagnostic, positions: Positions) -> types.Diagnostic:
    message = f"{d.path}: {d.message}" if d.path else d.message
    return types.Diagnostic(
        positions.range(d.where), message + (f"\nhint: {d.hint}" if d.hint else ""),
        types.DiagnosticSeverity.Error if d.severity == "error" else types.DiagnosticSeverity.Warning,
        code=d.code or None, source="netspec")


class NetspecServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("netspec", importlib.metadata.version("netspec"),
                         text_document_sync_kind=types.TextDocumentSyncKind.Incremental)
        self.session = Session()

    def positions(self) -> Positions:
        return Positions(self.session, self.workspace.position_codec)

    def publish(self, changed: dict[str, list[Diagnostic]]) -> None:
        positions = self.positions()
        for path, found in changed.items():
            self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
                from_fs_path(path) or path, [diagnostic(d, positions) for d in found]))

    def at(self, uri: str, position: types.Position) -> tuple[str, str, list[Analysis], int, int]:
        """The file, its text, the analyses covering it and the position, netspec's way."""
        path = _path(uri)
        line, column = self.positions().incoming(path, position)
        text = self.session.texts.get(path) or "\n".join(self.session.lines(path))
        return path, text, self.session.covering(path), line, column


def _path(uri: str) -> str:
    return str(Path(to_fs_path(uri) or uri).resolve())


server = NetspecServer()


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: NetspecServer, params: types.DidOpenTextDocumentParams) -> None:
    ls.publish(ls.session.open(_path(params.text_document.uri), params.text_document.text))


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: NetspecServer, params: types.DidChangeTextDocumentParams) -> None:
    path = _path(params.text_document.uri)
    ls.session.texts[path] = ls.workspace.get_text_document(params.text_document.uri).source
    ls.publish(ls.session.changed(path))


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: NetspecServer, params: types.DidCloseTextDocumentParams) -> None:
    ls.publish(ls.session.close(_path(params.text_document.uri)))


@server.feature(types.TEXT_DOCUMENT_INLAY_HINT)
def inlay_hint(ls: NetspecServer, params: types.InlayHintParams) -> list[types.InlayHint]:
    path = _path(params.text_document.uri)
    positions = ls.positions()
    text = ls.session.texts.get(path, "")
    lines = positions.lines(path)
    hints = features.inlay_hints(path, text, ls.session.covering(path),
                                 params.range.start.line + 1, params.range.end.line + 1)
    return [types.InlayHint(positions.position(path, h.line, len(lines[h.line - 1]) + 1),
                            h.label, kind=types.InlayHintKind.Type, tooltip=h.tooltip or None,
                            padding_left=True)
            for h in hints if h.line <= len(lines)]


@server.feature(types.TEXT_DOCUMENT_HOVER)
def hover(ls: NetspecServer, params: types.HoverParams) -> types.Hover | None:
    path, text, analyses, line, column = ls.at(params.text_document.uri, params.position)
    found = features.hover(path, text, analyses, line, column)
    if found is None:
        return None
    return types.Hover(types.MarkupContent(types.MarkupKind.Markdown, found.markdown),
                       ls.positions().range(found.where) if found.where.file == path else None)


@server.feature(types.TEXT_DOCUMENT_DEFINITION)
def definition(ls: NetspecServer, params: types.DefinitionParams) -> list[types.Location]:
    return _locations(ls, params, features.definition)


@server.feature(types.TEXT_DOCUMENT_REFERENCES)
def references(ls: NetspecServer, params: types.ReferenceParams) -> list[types.Location]:
    path, text, analyses, line, column = ls.at(params.text_document.uri, params.position)
    positions = ls.positions()
    found = features.references(path, text, analyses, line, column,
                                params.context.include_declaration)
    return [positions.location(w) for w in found]


def _locations(ls: NetspecServer, params: types.TextDocumentPositionParams,
               find: Callable[..., Sequence[Where]]) -> list[types.Location]:
    path, text, analyses, line, column = ls.at(params.text_document.uri, params.position)
    positions = ls.positions()
    return [positions.location(w) for w in find(path, text, analyses, line, column)]


@server.feature(types.TEXT_DOCUMENT_PREPARE_RENAME)
def prepare_rename(ls: NetspecServer, params: types.PrepareRenameParams) -> types.Range | None:
    """The name a rename at the cursor would change (the editor shows it), or none."""
    path, text, analyses, line, column = ls.at(params.text_document.uri, params.position)
    target = features.renamable(path, text, analyses, line, column)
    if isinstance(target, str):
        raise ValueError(target)
    return ls.positions().range(target[2])


@server.feature(types.TEXT_DOCUMENT_RENAME)
def rename(ls: NetspecServer, params: types.RenameParams) -> types.WorkspaceEdit | None:
    path, text, analyses, line, column = ls.at(params.text_document.uri, params.position)
    edits = features.rename(path, text, analyses, line, column, params.new_name)
    if isinstance(edits, str):
        raise ValueError(edits)  # pygls answers the request with this message as its error
    positions = ls.positions()
    return types.WorkspaceEdit(changes={
        from_fs_path(file) or file: [types.TextEdit(positions.range(w), params.new_name)
                                     for w in places]
        for file, places in edits.items()})


@server.feature(types.TEXT_DOCUMENT_CODE_ACTION,
                types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix]))
def code_action(ls: NetspecServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    """A quick fix for each diagnostic whose hint says what was meant (`kernal` -> `kernel`)."""
    document = ls.workspace.get_text_document(params.text_document.uri)
    actions = []
    for found in params.context.diagnostics:
        span = found.range
        if found.source != "netspec" or span.start.line != span.end.line:
            continue
        line = document.lines[span.start.line] if span.start.line < len(document.lines) else ""
        start, end = (ls.workspace.position_codec.position_from_client_units(document.lines, p)
                      for p in (span.start, span.end))
        word = features.quick_fix(found.message, line[start.character:end.character])
        if word is not None:
            actions.append(types.CodeAction(
                f"Replace with `{word}`", kind=types.CodeActionKind.QuickFix,
                diagnostics=[found], is_preferred=True,
                edit=types.WorkspaceEdit(changes={params.text_document.uri: [
                    types.TextEdit(span, word)]})))
    return actions


_SYMBOLS = {"layer": types.SymbolKind.Field, "call": types.SymbolKind.Module,
            "block": types.SymbolKind.Class}


@server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
def document_symbol(ls: NetspecServer, params: types.DocumentSymbolParams
                    ) -> list[types.DocumentSymbol]:
    path = _path(params.text_document.uri)
    positions = ls.positions()

    def converted(symbol: features.Symbol) -> types.DocumentSymbol:
        span = positions.range(symbol.where)
        return types.DocumentSymbol(symbol.name, _SYMBOLS[symbol.kind], span, span,
                                    detail=symbol.detail or None,
                                    children=[converted(c) for c in symbol.children] or None)

    return [converted(s) for s in features.symbols(path, ls.session.covering(path))]


@server.feature(types.TEXT_DOCUMENT_COMPLETION,
                types.CompletionOptions(trigger_characters=[" ", "[", "{", ",", ":"]))
def complete(ls: NetspecServer, params: types.CompletionParams) -> types.CompletionList:
    path, text, analyses, line, column = ls.at(params.text_document.uri, params.position)
    items = completion.complete(path, text, analyses, line, column)
    return types.CompletionList(False, [
        types.CompletionItem(i.label, kind=_KINDS.get(i.kind), detail=i.detail or None,
                             documentation=types.MarkupContent(types.MarkupKind.Markdown,
                                                               i.documentation)
                             if i.documentation else None)
        for i in items])


def main() -> None:
    """Serve on stdin/stdout until the client says exit."""
    server.start_io()
