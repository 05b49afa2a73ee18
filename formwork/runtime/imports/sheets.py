"""Reading uploaded spreadsheets (.xlsx, .csv) for import, within limits (no Flask).

`inspect_sheet` is what an upload needs at once: every check, the header, the first rows and
how many rows there are — without reading the rest. `read_sheet` reads every row for the
import itself, in a request for a small file or in `formwork worker` for a large one. Both
refuse with a SheetRefused naming the cell, row or part of the file.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openpyxl import load_workbook

from formwork.runtime.imports.limits import SheetLimits, SheetRefused
from formwork.runtime.imports.xlsx import Measure, check_workbook, unreadable

XLSX_MAGIC = b"PK\x03\x04"
KINDS = (".xlsx", ".csv")
SAMPLE_ROWS = 5

Rows = Iterator[tuple[int, list[Any]]]


@dataclass
class Sheet:
    """The header and the data rows of a sheet (blank rows skipped); `rows` counts them
    all, `data` holds them (or only the first few, for an inspection)."""

    header: list[str]
    data: list[tuple[int, list[Any]]] = field(default_factory=list)
    rows: int = 0


def kind_of(filename: str, head: bytes) -> str:
    """Return .xlsx or .csv for an accepted upload, or raise SheetRefused."""
    suffix = Path(filename.lower()).suffix
    if suffix not in KINDS:
        raise SheetRefused("sheet_kind", name=filename[:100])
    if suffix == ".xlsx" and not head.startswith(XLSX_MAGIC):
        raise SheetRefused("sheet_not_xlsx", name=filename[:100])
    if suffix == ".csv" and b"\x00" in head:
        raise SheetRefused("sheet_not_csv", name=filename[:100])
    return suffix


def inspect_sheet(data: bytes, kind: str, limits: SheetLimits) -> Sheet:
    """Check the whole file and return its header, first rows and row count."""
    if kind == ".xlsx":
        _part, measure = check_workbook(data, limits)
        sheet = _collect(_xlsx_rows(data, measure, min(measure.last_row, SAMPLE_ROWS + 1)))
        sheet.rows = measure.rows
        return sheet
    sheet = _collect(_csv_rows(data, limits), limits, keep=SAMPLE_ROWS)
    return sheet


def read_sheet(data: bytes, kind: str, limits: SheetLimits) -> Sheet:
    """Return the header and every data row of the file."""
    if kind == ".xlsx":
        _part, measure = check_workbook(data, limits)
        return _collect(_xlsx_rows(data, measure, measure.last_row), limits)
    return _collect(_csv_rows(data, limits), limits)


def _collect(rows: Rows, limits: SheetLimits | None = None, keep: int | None = None) -> Sheet:
    """Return the header and data rows, skipping blank rows and counting them all."""
    header: list[str] | None = None
    sheet = Sheet([])
    for number, cells in rows:
        if header is None:
            header = [str(c).strip() if c is not None else "" for c in cells]
            while header and not header[-1]:
                header.pop()
            continue
        if all(c is None or (isinstance(c, str) and not c.strip()) for c in cells):
            continue
        sheet.rows += 1
        if limits is not None and sheet.rows > limits.rows:
            raise SheetRefused("sheet_too_long", n=limits.rows)
        if keep is None or len(sheet.data) < keep:
            sheet.data.append((number, cells))
    if not header or not any(header):
        raise SheetRefused("sheet_no_header")
    sheet.header = header
    return sheet


def _xlsx_rows(data: bytes, measure: Measure, last_row: int) -> Rows:
    """Yield (row number, values) up to `last_row`, as wide as the widest value."""
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except Exception as exc:  # noqa: BLE001  (a hostile file can trip any part of openpyxl)
        raise unreadable(exc) from exc
    try:
        sheet = book.worksheets[0]
        width = max(measure.width, 1)
        rows = sheet.iter_rows(min_row=1, max_row=max(last_row, 1), max_col=width)
        for number, row in enumerate(rows, start=1):
            yield number, [_value(cell) for cell in row]
    except SheetRefused:
        raise
    except Exception as exc:  # noqa: BLE001  (damaged XML or a CRC error found while streaming)
        raise unreadable(exc) from exc
    finally:
        book.close()


def _value(cell: Any) -> Any:
    if getattr(cell, "data_type", None) == "f":  # the walk refused formulas; never read one
        raise SheetRefused("sheet_formula", cell=getattr(cell, "coordinate", "?"))
    return cell.value


def _csv_rows(data: bytes, limits: SheetLimits) -> Rows:
    """Yield (line number, values) of a UTF-8 or GB18030 CSV file."""
    text = _decode(data)
    reader = csv.reader(io.StringIO(text))
    total = 0
    try:
        for number, cells in enumerate(reader, start=1):
            if len(cells) > limits.columns and any(cells[limits.columns :]):
                raise SheetRefused("sheet_row_too_wide", row=number, n=limits.columns)
            total += min(len(cells), limits.columns)
            if total > limits.cells:
                raise _too_many_cells(number, len(cells), limits)
            yield number, [c if c != "" else None for c in cells[: limits.columns]]
    except csv.Error as exc:
        raise SheetRefused("sheet_csv_line", line=reader.line_num, detail=str(exc)) from exc


def _too_many_cells(line: int, width: int, limits: SheetLimits) -> SheetRefused:
    return SheetRefused(
        "sheet_too_many_cells",
        cells=f"{limits.cells:,}",
        rows=f"{line:,}",
        columns=width,
        cell=f"line {line}",
        max=f"{limits.cells:,}",
    )


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - gb18030 decodes any byte string
        raise SheetRefused("sheet_csv_encoding")
    if "\x00" in text:  # Python's csv reads NUL as data; a text file holds none
        raise SheetRefused("sheet_csv_nul", line=text.count("\n", 0, text.index("\x00")) + 1)
    return text
