"""How large an imported spreadsheet may be, and the refusal that says why one is not read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from formwork.runtime.messages import render

MB = 1024 * 1024


@dataclass(frozen=True)
class SheetLimits:
    """The caps an uploaded sheet is held to, checked before and while it is read.

    `cells` bounds rows × columns, what a reader walks (blank cells inside the area cost as
    much as full ones); `elements` bounds the XML a sheet part may hold at all.
    """

    size: int = 5 * MB
    rows: int = 10_000
    columns: int = 500
    cells: int = 250_000
    elements: int = 2_000_000
    unpacked: int = 100 * MB
    parts: int = 1_000


class SheetRefused(ValueError):
    """The file cannot be imported; the message says what and where (cell, row, part)."""

    def __init__(self, code: str, **params: Any) -> None:
        super().__init__(code)
        self.code = code
        self.params = params

    def message(self, locale: str = "zh-CN") -> str:
        """Return the reason in zh-CN or en."""
        return render(self.code, self.params, locale)

    def __str__(self) -> str:
        return self.message("en")
