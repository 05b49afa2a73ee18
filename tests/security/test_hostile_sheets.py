"""Spreadsheets sized to exhaust a worker are refused before they are parsed.

A 160 KB .xlsx held 10,000 × 500 numeric cells: openpyxl spent seconds only measuring it
(without a dimension tag it scans the whole sheet) and minutes reading it, until gunicorn
killed the worker. Now the sheet is measured first by a walk that builds nothing and stops at
the first limit passed (cells = rows × columns a reader would walk), and the refusal says
what and where."""

from __future__ import annotations

import io
import zipfile

import pytest
from openpyxl import Workbook

from formwork.runtime.imports.limits import SheetLimits, SheetRefused
from formwork.runtime.imports.sheets import inspect_sheet, read_sheet
from formwork.runtime.imports.xlsx import first_sheet_part
from tests.web import conftest as web_fixtures
from tests.web.conftest import sign_in

web, _catalogs, _cheap = (
    web_fixtures.web,
    web_fixtures._catalogs,
    web_fixtures._cheap_password_hashes,
)
NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def crafted(rows: int, columns: int, dimension: str | None = None, extra: str = "") -> bytes:
    """Return a workbook whose first sheet is a header and `rows` rows of `columns` numbers,
    written without cell references and deflated hard (how the 160 KB bomb was made)."""
    base = io.BytesIO()
    Workbook().save(base)
    header = "".join(f'<c t="inlineStr"><is><t>c{i}</t></is></c>' for i in range(columns))
    body = ("<row>" + "<c><v>1</v></c>" * columns + "</row>") * rows
    dim = f'<dimension ref="{dimension}"/>' if dimension else ""
    rows_xml = f"<sheetData><row>{header}</row>{body}{extra}</sheetData>"
    sheet = f'<worksheet xmlns="{NS}">{dim}{rows_xml}</worksheet>'
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(base.getvalue())) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as target,
    ):
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = sheet.encode()
            target.writestr(info.filename, data)
    return out.getvalue()


def refused(call) -> SheetRefused:
    with pytest.raises(SheetRefused) as caught:
        call()
    return caught.value


def test_the_160_kb_bomb_is_refused_at_once_naming_its_size():
    bomb = crafted(10_000, 500)
    assert len(bomb) < 200 * 1024
    error = refused(lambda: inspect_sheet(bomb, ".xlsx", SheetLimits()))
    assert error.code == "sheet_cell_count"
    message = error.message("en")
    assert "xl/worksheets/sheet1.xml" in message and "more than 250,000 cells" in message
    assert "单元格超过 250,000 个" in error.message("zh-CN")


def test_a_declared_dimension_is_refused_before_any_cell():
    bomb = crafted(10_000, 500, dimension="A1:SF10001")
    error = refused(lambda: inspect_sheet(bomb, ".xlsx", SheetLimits()))
    assert error.code == "sheet_too_many_cells" and "SF10001" in error.message("en")


def test_a_dimension_that_lies_small_does_not_let_the_cells_through():
    bomb = crafted(10_000, 500, dimension="A1:B2")
    assert refused(lambda: read_sheet(bomb, ".xlsx", SheetLimits())).code == "sheet_cell_count"


def test_a_bomb_in_another_sheet_is_refused_too():
    # openpyxl measures every sheet when it opens a workbook, not only the one imported.
    bomb = crafted(10_000, 500)
    with zipfile.ZipFile(io.BytesIO(bomb)) as archive:
        huge = archive.read("xl/worksheets/sheet1.xml")
    small = io.BytesIO()
    book = Workbook()
    book.active.append(["code"])
    book.create_sheet("Other")
    book.save(small)
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(small.getvalue())) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as target,
    ):
        for info in source.infolist():
            data = huge if info.filename == "xl/worksheets/sheet2.xml" else source.read(info)
            target.writestr(info.filename, data)
    error = refused(lambda: inspect_sheet(out.getvalue(), ".xlsx", SheetLimits()))
    assert error.code == "sheet_cell_count" and "sheet2.xml" in error.message("en")


def test_a_string_table_larger_than_the_cells_is_refused():
    # openpyxl reads the whole shared-string table when it opens a workbook.
    base = crafted(1, 1)
    strings = "".join(f"<si><t>s{i}</t></si>" for i in range(300_001))
    table = f'<sst xmlns="{NS}">{strings}</sst>'
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(base)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as target,
    ):
        for info in source.infolist():
            target.writestr(info.filename, source.read(info))
        target.writestr("xl/sharedStrings.xml", table)
    error = refused(lambda: inspect_sheet(out.getvalue(), ".xlsx", SheetLimits()))
    assert error.code == "sheet_strings" and "xl/sharedStrings.xml" in error.message("en")


def test_cells_spread_thin_are_measured_by_the_walk():
    # Few cell tags, but far apart: the area a reader walks passes the limit.
    wide = crafted(300, 2, extra='<row r="302"><c r="ZZ302"><v>1</v></c></row>')
    error = refused(lambda: inspect_sheet(wide, ".xlsx", SheetLimits(cells=100_000)))
    assert error.code in ("sheet_too_many_cells", "sheet_row_too_wide")


def test_a_row_far_below_is_refused_naming_it():
    far = crafted(3, 2, extra='<row r="900000"><c r="A900000"><v>1</v></c></row>')
    error = refused(lambda: inspect_sheet(far, ".xlsx", SheetLimits()))
    assert error.code == "sheet_reaches" and "A900000" in error.message("en")


def test_a_formula_deep_in_the_sheet_is_found_at_upload():
    deep = crafted(8_000, 3, extra='<row r="8002"><c r="C8002"><f>SUM(1,2)</f><v>3</v></c></row>')
    error = refused(lambda: inspect_sheet(deep, ".xlsx", SheetLimits()))
    assert error.code == "sheet_formula" and "C8002" in error.message("en")


def test_a_sheet_within_the_limits_is_inspected_without_reading_it_all():
    ok = crafted(2_000, 5)
    sheet = inspect_sheet(ok, ".xlsx", SheetLimits())
    assert sheet.header == ["c0", "c1", "c2", "c3", "c4"] and sheet.rows == 2_000
    assert len(sheet.data) == 5
    assert len(read_sheet(ok, ".xlsx", SheetLimits()).data) == 2_000


def test_a_csv_is_held_to_the_cell_limit():
    content = ("a,b,c,d\n" + "1,2,3,4\n" * 300).encode()
    error = refused(lambda: read_sheet(content, ".csv", SheetLimits(cells=1_000)))
    assert error.code == "sheet_too_many_cells" and "line 251" in error.message("en")


def test_the_first_worksheet_part_is_the_one_openpyxl_reads_first():
    # Pins what formwork/runtime/imports/xlsx.py takes from openpyxl's workbook reader: the
    # walk must measure the sheet openpyxl then reads (the other one holds a formula).
    book = Workbook()
    book.active.title = "Second"
    book.active["A1"] = "=1+1"
    first = book.create_sheet("First", 0)
    first.append(["code"])
    first.append(["P-1"])
    out = io.BytesIO()
    book.save(out)
    data = out.getvalue()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert b"<f>" not in archive.read(first_sheet_part(data))
    sheet = inspect_sheet(data, ".xlsx", SheetLimits())
    assert sheet.header == ["code"] and sheet.data == [(2, ["P-1"])]


def test_the_upload_page_refuses_the_bomb_quickly(web):
    browser = sign_in(web, "admin")
    browser.get("/app/sample/project/import")
    response = browser.post(
        "/app/sample/project/import",
        {"file": (io.BytesIO(crafted(10_000, 500)), "bomb.xlsx")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert "单元格超过 250,000 个" in response.get_data(as_text=True)
