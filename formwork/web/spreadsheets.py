"""Reading uploaded spreadsheets (.xlsx, .csv) for import, with limits: size, type, rows,
and no formulas. Every refusal is a SheetRefused with a message for people."""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask_babel import gettext as _
from openpyxl import load_workbook
from openpyxl.utils.exceptions import InvalidFileException

XLSX_MAGIC = b"PK\x03\x04"
KINDS = (".xlsx", ".csv")


class SheetRefused(ValueError):
    """The file cannot be imported; the message says why."""


@dataclass
class Sheet:
    """The header and the data rows of an uploaded sheet (blank rows skipped)."""

    header: list[str]
    rows: list[tuple[int, list[Any]]]  # (row number in the file, cells)


def kind_of(filename: str, head: bytes) -> str:
    """Return .xlsx or .csv for an accepted upload, or raise SheetRefused."""
    suffix = Path(filename.lower()).suffix
    if suffix not in KINDS:
        raise SheetRefused(
            _("Only .xlsx and .csv files can be imported (got %(name)s).", name=filename)
        )
    if suffix == ".xlsx" and not head.startswith(XLSX_MAGIC):
        raise SheetRefused(_("%(name)s is not a real Excel .xlsx file.", name=filename))
    if suffix == ".csv" and b"\x00" in head:
        raise SheetRefused(_("%(name)s is not a text CSV file.", name=filename))
    return suffix


def read_sheet(path: Path, kind: str, max_rows: int) -> Sheet:
    """Return the sheet in the file, refusing formulas and more than `max_rows` data rows."""
    rows = _xlsx_rows(path) if kind == ".xlsx" else _csv_rows(path)
    header: list[str] | None = None
    data: list[tuple[int, list[Any]]] = []
    for number, cells in rows:
        if header is None:
            header = [str(c).strip() if c is not None else "" for c in cells]
            continue
        if all(c is None or (isinstance(c, str) and not c.strip()) for c in cells):
            continue
        if len(data) >= max_rows:
            raise SheetRefused(
                _("The file has more than %(n)s rows; split it into smaller files.", n=max_rows)
            )
        data.append((number, cells))
    if not header or not any(header):
        raise SheetRefused(_("The first row must hold the column names."))
    return Sheet(header, data)


def _xlsx_rows(path: Path) -> Any:
    try:
        book = load_workbook(path, read_only=True, data_only=False)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError) as exc:
        raise SheetRefused(
            _("The Excel file cannot be read: %(detail)s", detail=str(exc)[:200])
        ) from exc
    try:
        sheet = book.worksheets[0]
        for number, row in enumerate(sheet.iter_rows(), start=1):
            cells = []
            for cell in row:
                if getattr(cell, "data_type", None) == "f":
                    coordinate = getattr(cell, "coordinate", f"row {number}")
                    raise SheetRefused(
                        _(
                            "Cell %(cell)s holds a formula. Formulas are not imported: "
                            "copy the sheet and paste values only.",
                            cell=coordinate,
                        )
                    )
                cells.append(cell.value)
            yield number, cells
    finally:
        book.close()


def _csv_rows(path: Path) -> Any:
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - gb18030 decodes any byte string
        raise SheetRefused(_("The CSV file is not UTF-8 or GB18030 text."))
    try:
        for number, cells in enumerate(csv.reader(io.StringIO(text)), start=1):
            yield number, [c if c != "" else None for c in cells]
    except csv.Error as exc:
        raise SheetRefused(_("The CSV file cannot be read: %(detail)s", detail=str(exc))) from exc
