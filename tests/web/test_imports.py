"""Import from Excel and CSV: upload, column mapping, dry run with every bad row, all-or-
nothing commit, and refusal of wrong types, formulas, wrong columns and too many rows."""

from __future__ import annotations

import io
import re

import sqlalchemy as sa
from openpyxl import Workbook

from formwork.runtime.models import SecurityEvent
from tests.web.helpers import project


def _xlsx(rows: list[list[object]], formula_at: str | None = None) -> bytes:
    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    if formula_at:
        sheet[formula_at] = "=SUM(1,2)"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _upload(browser, content: bytes, name: str, entity: str = "project"):
    browser.get(f"/app/sample/{entity}/import")
    return browser.post(
        f"/app/sample/{entity}/import",
        {"file": (io.BytesIO(content), name)},
        content_type="multipart/form-data",
    )


def _total(browser, entity: str = "project") -> int:
    return browser.client.get(f"/api/v1/sample/{entity}").get_json()["total"]


GOOD = [
    ["项目编号", "项目名称", "合同额", "开工日期", "状态", "标签", "备注列"],
    ["P-10", "一号", 1200.5, "2026-01-02", "在建", "住宅, 道路", "x"],
    ["P-11", "二号", "3,000", None, "planned", None, "y"],
]


def test_import_maps_columns_previews_then_commits(web, admin):
    response = _upload(admin, _xlsx(GOOD), "projects.xlsx")
    assert response.status_code == 302, response.get_data(as_text=True)
    mapping_url = response.headers["Location"]
    html = admin.html(mapping_url)
    assert '<option value="code" selected>' in html  # matched by the Chinese label
    assert re.search(r'id="col-6" name="col-6">\s*<option value="">', html)  # unknown column
    form = {
        f"col-{i}": v
        for i, v in enumerate(
            ["code", "name", "contract_value", "start_date", "status", "tags", ""]
        )
    }
    preview = admin.post(mapping_url, {**form, "action": "preview"})
    assert preview.status_code == 200
    assert 'data-testid="import-ok"' in preview.get_data(as_text=True)
    assert _total(admin) == 0  # a dry run saves nothing
    done = admin.post(mapping_url, {**form, "action": "commit"})
    assert done.status_code == 302
    assert "已导入 2 条记录" in admin.html(done.headers["Location"])
    items = admin.client.get("/api/v1/sample/project?sort=code").get_json()["items"]
    assert [(i["code"], i["contract_value"], i["status"], i["tags"]) for i in items] == [
        ("P-10", "1200.50", "active", ["housing", "road"]),
        ("P-11", "3000.00", "planned", []),
    ]
    assert items[0]["start_date"] == "2026-01-02"
    assert admin.get(mapping_url).status_code == 404  # the upload is gone after commit
    with web.app_context():
        session = web.extensions["formwork"].sessions()
        event = session.scalars(
            sa.select(SecurityEvent).where(SecurityEvent.kind == "data.imported")
        ).one()
        assert event.username == "admin" and event.detail["records"] == 2
        session.close()


def test_one_bad_row_is_reported_and_nothing_is_saved(web, admin):
    rows = [*GOOD, ["bad code", "三号", -5, "2026-13-01", "active", None, None]]
    mapping_url = _upload(admin, _xlsx(rows), "p.xlsx").headers["Location"]
    form = {
        f"col-{i}": v
        for i, v in enumerate(
            ["code", "name", "contract_value", "start_date", "status", "tags", ""]
        )
    }
    response = admin.post(mapping_url, {**form, "action": "commit"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "3 行中有 1 行有问题" in html
    row = re.search(r"<tr><td>4</td><td>([^<]*)</td>", html)
    assert row is not None
    assert "项目编号" in row.group(1) and "合同额" in row.group(1) and "开工日期" in row.group(1)
    assert _total(admin) == 0  # all or nothing


def test_duplicate_values_within_the_file_are_caught_in_the_dry_run(web, admin):
    rows = [GOOD[0], GOOD[1], GOOD[1]]
    mapping_url = _upload(admin, _xlsx(rows), "p.xlsx").headers["Location"]
    response = admin.post(mapping_url, {"col-0": "code", "col-1": "name", "action": "preview"})
    html = response.get_data(as_text=True)
    assert "已存在" in html and "<tr><td>3</td>" in html
    assert _total(admin) == 0


def test_references_are_matched_by_title(web, admin):
    project(web, code="P-1")
    rows = [["项目", "日期", "部位"], ["P-1", "2026-11-01", "甲"], ["P-404", "2026-11-02", "乙"]]
    mapping_url = _upload(admin, _xlsx(rows), "d.xlsx", "day_sheet").headers["Location"]
    form = {"col-0": "project", "col-1": "work_date", "col-2": "location"}
    html = admin.post(mapping_url, {**form, "action": "preview"}).get_data(as_text=True)
    assert "<tr><td>3</td>" in html and "P-404" in html and "<tr><td>2</td>" not in html


def test_csv_import_in_gb18030(web, admin):
    text = "项目编号,项目名称\nP-20,中文名\n"
    response = _upload(admin, text.encode("gb18030"), "p.csv")
    mapping_url = response.headers["Location"]
    done = admin.post(mapping_url, {"col-0": "code", "col-1": "name", "action": "commit"})
    assert done.status_code == 302
    assert admin.client.get("/api/v1/sample/project").get_json()["items"][0]["name"] == "中文名"


def test_wrong_file_types_are_refused(web, admin):
    response = _upload(admin, b"MZ\x90\x00", "virus.exe")
    assert response.status_code == 400
    assert "只能导入 .xlsx 和 .csv 文件" in response.get_data(as_text=True)
    fake = _upload(admin, b"<html>not excel</html>", "fake.xlsx")
    assert fake.status_code == 400 and "不是有效的 Excel" in fake.get_data(as_text=True)


def test_formulas_are_refused(web, admin):
    response = _upload(admin, _xlsx(GOOD, formula_at="C2"), "f.xlsx")
    assert response.status_code == 400
    assert "单元格 C2 含有公式" in response.get_data(as_text=True)


def test_files_without_matching_columns_are_refused(web, admin):
    response = _upload(admin, _xlsx([["foo", "bar"], [1, 2]]), "w.xlsx")
    assert response.status_code == 400
    assert "没有任何列能对应到字段" in response.get_data(as_text=True)


def test_missing_required_column_blocks_the_import(web, admin):
    mapping_url = _upload(admin, _xlsx([["项目编号"], ["P-1"]]), "m.xlsx").headers["Location"]
    html = admin.html(mapping_url)
    assert "必填字段“项目名称”没有对应的列" in html
    response = admin.post(mapping_url, {"col-0": "code", "action": "commit"})
    assert response.status_code == 422
    assert _total(admin) == 0


def test_too_many_rows_are_refused(web, admin):
    web.config["IMPORT_MAX_ROWS"] = 100
    rows = [["项目编号", "项目名称"], *([f"P-{i}", "x"] for i in range(101))]
    response = _upload(admin, _xlsx(rows), "big.xlsx")
    assert response.status_code == 400
    assert "文件超过 100 行" in response.get_data(as_text=True)


def test_oversized_upload_is_refused(web, admin):
    web.config["IMPORT_MAX_SIZE"] = 1024
    response = _upload(admin, b"a,b\n" + b"x,y\n" * 1000, "big.csv")
    assert response.status_code == 400
    assert "文件超过" in response.get_data(as_text=True)


def test_an_import_token_belongs_to_the_browser_that_uploaded(web, admin):
    from tests.web.conftest import sign_in

    mapping_url = _upload(admin, _xlsx(GOOD), "p.xlsx").headers["Location"]
    other = sign_in(web, "admin")
    assert other.get(mapping_url).status_code == 404
    assert admin.get("/app/sample/project/import/../../etc").status_code == 404


def test_script_in_imported_text_is_stored_as_text_and_shown_escaped(web, admin):
    rows = [["项目编号", "项目名称"], ["P-30", "<script>alert(1)</script>"]]
    mapping_url = _upload(admin, _xlsx(rows), "s.xlsx").headers["Location"]
    admin.post(mapping_url, {"col-0": "code", "col-1": "name", "action": "commit"})
    html = admin.html("/app/sample/project?f=1")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html
