"""The language server (`netspec lsp`): every shape, error and cost of a spec in the editor
as it is typed. `document` analyses a text (the analysis `check` runs), `features` and
`complete` answer the editor's questions from it, `server` speaks the protocol (pygls, the
`lsp` extra). Neither imports torch."""
