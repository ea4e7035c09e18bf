"""What stops an import: a model that cannot be read, or layers the language cannot say."""

from __future__ import annotations

from typing import NamedTuple


class Unexpressed(NamedTuple):
    """One computation of the model that no netspec op expresses: where (the module path,
    `(root)` for the model's own forward) and what (the torch module, function or method)."""

    path: str
    what: str

    def __str__(self) -> str:
        return f"{self.path or '(root)'}: {self.what}"


class ImportFailure(ValueError):
    """The model cannot be imported; `unexpressed` lists what the language cannot say."""

    def __init__(self, message: str, unexpressed: list[Unexpressed] | None = None):
        self.unexpressed = unexpressed or []
        super().__init__("\n".join([message, *(f"  {u}" for u in self.unexpressed)]))
