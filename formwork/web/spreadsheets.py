"""Reading uploaded spreadsheets (.xlsx, .csv) for import, with limits: size, type, rows,
columns, unpacked size, and no formulas. Every refusal is a SheetRefused with a message for
people that says where (cell, row, part of the file).

An .xlsx is a zip of XML: its members' declared sizes are checked before openpyxl opens it
(zipfile never inflates past a declared size, so a lying header ends in a CRC error), and
openpyxl parses its XML through defusedxml, which refuses DTDs and entities (XXE, billion
laughs).
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask_babel import gettext as _
from openpyxl import load_workbook

XLSX_MAGIC = b"PK\x03\x04"
KINDS = (".xlsx", ".csv")
MAX_UNPACKED = 100 * 1024 * 1024
MAX_PARTS = 1_000
MAX_COLUMNS = 500
# A DTD in UTF-8 or UTF-16 (either byte order): XML allows no other spelling.
_DTD = re.compile(
    b"|".join(
        re.escape(word.encode(codec))
        for word in ("<!DOCTYPE", "<!ENTITY")
        for codec in ("utf-8", "utf-16-le", "utf-16-be")
    )
)


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
    blank = 0
    for number, cells in rows:
        if len(cells) > MAX_COLUMNS and any(c is not None for c in cells[MAX_COLUMNS:]):
            raise SheetRefused(
                _("Row %(row)s has more than %(n)s columns.", row=number, n=MAX_COLUMNS)
            )
        cells = cells[:MAX_COLUMNS]
        if header is None:
            header = [str(c).strip() if c is not None else "" for c in cells]
            while header and not header[-1]:  # padding of a sheet without a dimension tag
                header.pop()
            continue
        if all(c is None or (isinstance(c, str) and not c.strip()) for c in cells):
            # A sheet whose last cell is XFD1048576 yields a million empty rows: count them.
            blank += 1
            if blank > max_rows:
                raise SheetRefused(
                    _("The file has more than %(n)s empty rows (at row %(row)s).",
                      n=max_rows, row=number)
                )  # fmt: skip
            continue
        if len(data) >= max_rows:
            raise SheetRefused(
                _("The file has more than %(n)s rows; split it into smaller files.", n=max_rows)
            )
        data.append((number, cells))
    if not header or not any(header):
        raise SheetRefused(_("The first row must hold the column names."))
    return Sheet(header, data)


def _check_archive(path: Path) -> None:
    """Refuse an .xlsx whose parts would unpack past MAX_UNPACKED (a zip bomb) or are too many."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise SheetRefused(
            _("The Excel file cannot be read: %(detail)s", detail=str(exc)[:200])
        ) from exc
    if len(infos) > MAX_PARTS:
        raise SheetRefused(_("The Excel file holds more than %(n)s parts.", n=MAX_PARTS))
    _check_sizes(infos)
    _refuse_doctypes(path, infos)


def _check_sizes(infos: list[zipfile.ZipInfo]) -> None:
    total = sum(info.file_size for info in infos)
    if total > MAX_UNPACKED:
        biggest = max(infos, key=lambda info: info.file_size)
        raise SheetRefused(
            _(
                "The Excel file unpacks to more than %(n)s MB (part %(part)s alone is "
                "%(size)s MB).",
                n=MAX_UNPACKED // (1024 * 1024),
                part=biggest.filename,
                size=biggest.file_size // (1024 * 1024),
            )
        )


def _refuse_doctypes(path: Path, infos: list[zipfile.ZipInfo]) -> None:
    """Refuse a workbook with a DTD in any XML part: entities read files (XXE) or explode.

    openpyxl parses some parts with lxml (entities left unresolved) and others with defusedxml;
    a scan of the parts refuses all of them alike, naming the part. The sizes were checked.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            for info in infos:
                if info.filename.endswith((".xml", ".rels", ".vml")) and _DTD.search(
                    archive.read(info)
                ):
                    raise SheetRefused(
                        _(
                            "The Excel file is refused: its part %(part)s declares a DOCTYPE "
                            "or entities.",
                            part=info.filename,
                        )
                    )
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise _unreadable(exc) from exc


def _unreadable(exc: Exception) -> SheetRefused:
    detail = f"{type(exc).__name__}: {exc}"[:200]
    return SheetRefused(_("The Excel file cannot be read: %(detail)s", detail=detail))


def _xlsx_rows(path: Path) -> Any:
    _check_archive(path)
    try:
        book = load_workbook(path, read_only=True, data_only=False)
    except SheetRefused:
        raise
    except Exception as exc:  # noqa: BLE001  (a hostile file can trip any part of openpyxl)
        raise _unreadable(exc) from exc
    try:
        yield from _sheet_rows(book.worksheets[0])
    except SheetRefused:
        raise
    except Exception as exc:  # noqa: BLE001  (damaged XML or a CRC error found while streaming)
        raise _unreadable(exc) from exc
    finally:
        book.close()


def _sheet_rows(sheet: Any) -> Any:
    if (sheet.max_column or 0) > MAX_COLUMNS:
        raise SheetRefused(
            _(
                "The sheet is %(n)s columns wide (%(range)s); at most %(max)s are imported.",
                n=sheet.max_column,
                range=sheet.calculate_dimension(),
                max=MAX_COLUMNS,
            )
        )
    # Cap the width too: without a dimension tag a row is as wide as its last cell (XFD).
    width = sheet.max_column or MAX_COLUMNS + 1
    for number, row in enumerate(sheet.iter_rows(max_col=width), start=1):
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
    if "\x00" in text:  # Python's csv reads NUL as data; a text file holds none
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise SheetRefused(
            _("The CSV file holds a NUL byte at line %(line)s: it is not text.", line=line)
        )
    reader = csv.reader(io.StringIO(text))
    try:
        for number, cells in enumerate(reader, start=1):
            yield number, [c if c != "" else None for c in cells]
    except csv.Error as exc:
        raise SheetRefused(
            _(
                "The CSV file cannot be read at line %(line)s: %(detail)s",
                line=reader.line_num,
                detail=str(exc),
            )
        ) from exc
