"""What an .xlsx must pass before openpyxl parses it (no Flask).

An .xlsx is a zip of XML. Its parts' declared sizes are checked first (zipfile never
inflates past a declared size, so a lying header ends in a CRC error) and every XML part is
scanned for a DTD (entities read files or explode). Then the sheet's dimension tag is read
and its cell tags counted by the regex engine, so a bomb is refused within its first
megabytes; then the sheet is walked with expat, building nothing, measuring rows, columns
and the area a reader would walk, stopping at the first limit passed. That is the point: a
160 KB file held 10,000 × 500 numeric cells, and openpyxl alone spent seconds just measuring
it (it scans the whole sheet when the dimension tag is missing) and minutes reading it.
After the walk, openpyxl reads a sheet known to be small.

openpyxl's workbook reader is used to find the first worksheet's part (`ExcelReader`, not
documented as public): tests/security/test_hostile_sheets.py pins what is taken from it.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from typing import Any
from xml.parsers import expat

from openpyxl.reader.excel import ExcelReader
from openpyxl.utils.cell import column_index_from_string, get_column_letter

from formwork.runtime.imports.limits import SheetLimits, SheetRefused

# A DTD in UTF-8 or UTF-16 (either byte order): XML allows no other spelling.
_DTD = re.compile(
    b"|".join(
        re.escape(word.encode(codec))
        for word in ("<!DOCTYPE", "<!ENTITY")
        for codec in ("utf-8", "utf-16-le", "utf-16-be")
    )
)
_REF = re.compile(r"^\$?([A-Za-z]{1,3})\$?([0-9]{1,7})$")
# Cell and row start tags (with any namespace prefix), and the dimension tag: what the quick
# count looks for in the raw XML before the walk (markup only: text holds '&lt;', not '<').
_CELL_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?c[\s/>]")
_ROW_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?row[\s/>]")
_STRING_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?si[\s/>]")
_DIMENSION = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?dimension\s+ref=[\"']([^\"']{1,40})[\"']")
_SHEET_PART = re.compile(r"^xl/worksheets/[^/]+\.xml$")
_CHUNK = 64 * 1024
_OVERLAP = 64  # a tag cut by a chunk boundary is found in the next chunk
MB = 1024 * 1024


@dataclass
class Measure:
    """What the walk of a sheet found: data rows (after the header), the widest column
    holding a value, and the last row number."""

    rows: int = 0
    width: int = 0
    last_row: int = 0


def check_workbook(data: bytes, limits: SheetLimits) -> tuple[str, Measure]:
    """Return the first worksheet's part and its measure, or raise SheetRefused."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            _check_parts(infos, limits)
            sheets = {i.filename for i in infos if _SHEET_PART.match(i.filename)}
            _refuse_doctypes(archive, [i for i in infos if i.filename not in sheets])
            _count_strings(archive, infos, limits)
            part = first_sheet_part(data)
            _count_sheets(archive, sorted(sheets | {part}), part, limits)
            return part, _Walk(part, limits).run(archive)
    except SheetRefused:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as exc:
        raise unreadable(exc) from exc


def unreadable(exc: Exception) -> SheetRefused:
    """Return the refusal of a file that is damaged or not a workbook."""
    return SheetRefused("sheet_unreadable", detail=f"{type(exc).__name__}: {exc}"[:200])


def first_sheet_part(data: bytes) -> str:
    """Return the archive path of the workbook's first worksheet (as openpyxl orders them)."""
    try:
        reader = ExcelReader(io.BytesIO(data), read_only=True)
        reader.read_manifest()
        reader.read_workbook()
        names = set(reader.archive.namelist())
        for _sheet, rel in reader.parser.find_sheets():
            if rel.target in names and "chartsheet" not in rel.Type:
                return str(rel.target)
    except SheetRefused:
        raise
    except Exception as exc:  # noqa: BLE001  (a hostile workbook part can trip any of it)
        raise unreadable(exc) from exc
    raise SheetRefused("sheet_no_sheet")


def _check_parts(infos: list[zipfile.ZipInfo], limits: SheetLimits) -> None:
    if len(infos) > limits.parts:
        raise SheetRefused("sheet_parts", n=limits.parts)
    if sum(info.file_size for info in infos) > limits.unpacked:
        biggest = max(infos, key=lambda info: info.file_size)
        raise SheetRefused(
            "sheet_unpacked",
            n=limits.unpacked // MB,
            part=biggest.filename,
            size=biggest.file_size // MB,
        )


def _refuse_doctypes(archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> None:
    """Refuse a workbook with a DTD in any XML part, naming the part (sizes were checked)."""
    for info in infos:
        if info.filename.endswith((".xml", ".rels", ".vml")) and _DTD.search(archive.read(info)):
            raise SheetRefused("sheet_doctype", part=info.filename)


def _count_strings(
    archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo], limits: SheetLimits
) -> None:
    """Refuse a shared-string table with more entries than the sheet may hold cells:
    openpyxl reads the whole table into memory when it opens the workbook."""
    for info in infos:
        if not info.filename.lower().endswith("sharedstrings.xml"):
            continue
        count, buffer = 0, b""
        with archive.open(info) as stream:
            while chunk := stream.read(_CHUNK):
                buffer += chunk
                cut = len(buffer) - _OVERLAP
                count += sum(1 for m in _STRING_TAG.finditer(buffer) if m.start() < cut)
                if count > limits.cells:
                    raise SheetRefused("sheet_strings", part=info.filename, max=f"{limits.cells:,}")
                buffer = buffer[cut:]


@dataclass
class _Tally:
    """Cell and row tags counted so far, over every worksheet of the workbook."""

    cells: int = 0
    rows: int = 0


def _count_sheets(
    archive: zipfile.ZipFile, parts: list[str], first: str, limits: SheetLimits
) -> None:
    """Count the cell tags of every worksheet (openpyxl measures each one when it opens the
    workbook, not only the sheet imported) and refuse past the limits; the first sheet's
    dimension tag is checked on the way."""
    tally = _Tally()
    for part in parts:
        _count(archive, part, limits, tally, declared=part == first)


def _count(
    archive: zipfile.ZipFile, part: str, limits: SheetLimits, tally: _Tally, declared: bool
) -> None:
    """Refuse a sheet with a DTD, a declared dimension or cell tags past the limits, reading
    its raw XML with the regex engine: a bomb of five million cells is refused after its
    first few megabytes, before the exact (and slower) walk."""
    buffer = b""
    with archive.open(part) as stream:
        while True:
            chunk = stream.read(_CHUNK)
            buffer += chunk
            cut = len(buffer) - _OVERLAP if chunk else len(buffer)  # the rest comes next round
            if _DTD.search(buffer):
                raise SheetRefused("sheet_doctype", part=part)
            if declared and (found := _DIMENSION.search(buffer)) is not None:
                declared = False
                check_declared(found.group(1).decode("ascii", "replace"), limits)
            tally.cells += sum(1 for m in _CELL_TAG.finditer(buffer) if m.start() < cut)
            tally.rows += sum(1 for m in _ROW_TAG.finditer(buffer) if m.start() < cut)
            if tally.cells > limits.cells or tally.rows > 2 * (limits.rows + 1):
                rows = f"{tally.rows:,}"
                raise SheetRefused(
                    "sheet_cell_count", part=part, max=f"{limits.cells:,}", rows=rows
                )
            if not chunk:
                return
            buffer = buffer[cut:]


def check_declared(ref: str, limits: SheetLimits) -> None:
    """Refuse on a sheet's own dimension tag (`A1:SF10001`), before any cell is read."""
    last = ref.rpartition(":")[2]
    found = _REF.match(last)
    if found is None:
        return  # a missing or odd dimension: the sheet is measured cell by cell instead
    columns = column_index_from_string(found.group(1).upper())
    if columns > limits.columns:
        raise SheetRefused("sheet_too_wide", n=columns, range=ref, max=limits.columns)
    _check_area(int(found.group(2)), columns, last.upper(), limits)


def _check_area(rows: int, columns: int, cell: str, limits: SheetLimits) -> None:
    """Refuse a sheet whose rows × columns (what a reader walks) pass the cell limit."""
    if rows * columns > limits.cells:
        raise SheetRefused(
            "sheet_too_many_cells",
            cells=f"{rows * columns:,}",
            rows=f"{rows:,}",
            columns=columns,
            cell=cell,
            max=f"{limits.cells:,}",
        )


class _Walk:
    """One pass of expat over a sheet part, refusing at the first limit passed."""

    def __init__(self, part: str, limits: SheetLimits) -> None:
        self.part, self.limits = part, limits
        self.found = Measure()
        self.elements = 0
        self.row = 0  # the current row's number
        self.column = 0  # the current cell's column
        self.cell_has_value = self.row_has_value = False

    def run(self, archive: zipfile.ZipFile) -> Measure:
        """Walk the part and return its measure."""
        parser = expat.ParserCreate()
        parser.StartElementHandler = self.start
        parser.EndElementHandler = self.end
        parser.StartDoctypeDeclHandler = self.entity  # the byte scan refused DTDs; belt and
        parser.EntityDeclHandler = self.entity  # braces, for encodings the scan cannot read
        with archive.open(self.part) as stream:
            while chunk := stream.read(_CHUNK):
                parser.Parse(chunk, False)
            parser.Parse(b"", True)
        if self.found.last_row == 0:
            raise SheetRefused("sheet_no_header")
        return self.found

    def entity(self, *_args: Any) -> None:
        raise SheetRefused("sheet_doctype", part=self.part)

    def start(self, name: str, attrs: dict[str, str]) -> None:
        self.elements += 1
        if self.elements > self.limits.elements:
            raise SheetRefused("sheet_too_complex", part=self.part, n=f"{self.limits.elements:,}")
        tag = name.rpartition(":")[2]
        if tag == "dimension":
            check_declared(attrs.get("ref", ""), self.limits)
        elif tag == "row":
            self._row(attrs.get("r"))
        elif tag == "c":
            self._cell(attrs.get("r"))
        elif tag == "f":
            raise SheetRefused("sheet_formula", cell=self._where())
        elif tag in ("v", "is"):
            self.cell_has_value = True

    def end(self, name: str) -> None:
        tag = name.rpartition(":")[2]
        if tag == "c" and self.cell_has_value:
            self._value_at(self.column)
        elif tag == "row" and self.row_has_value:
            self.found.rows += 1 if self.found.last_row else 0  # the first is the header
            self.found.last_row = self.row
            if self.found.rows > self.limits.rows:
                raise SheetRefused("sheet_too_long", n=self.limits.rows)

    def _row(self, number: str | None) -> None:
        self.row = int(number) if number and number.isascii() and number.isdigit() else self.row + 1
        self.column = 0
        self.row_has_value = False
        if self.row > 2 * (self.limits.rows + 1):  # empty rows count too: a reader walks them
            cell = f"A{self.row}"
            raise SheetRefused("sheet_reaches", row=self.row, cell=cell, n=self.limits.rows)
        _check_area(self.row, max(self.found.width, 1), self._where(), self.limits)

    def _cell(self, ref: str | None) -> None:
        self.cell_has_value = False
        found = _REF.match(ref or "")
        self.column = column_index_from_string(found.group(1).upper()) if found else self.column + 1

    def _value_at(self, column: int) -> None:
        self.row_has_value = True
        if column > self.limits.columns:
            raise SheetRefused("sheet_row_too_wide", row=self.row, n=self.limits.columns)
        if column > self.found.width:
            self.found.width = column
            _check_area(self.row, column, self._where(), self.limits)

    def _where(self) -> str:
        return f"{get_column_letter(max(self.column, 1))}{max(self.row, 1)}"
