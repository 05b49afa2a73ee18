"""List views: columns, sort, filters per field type, quick search, pages, no N+1 queries,
bulk delete and export to Excel and CSV of the current filter."""

from __future__ import annotations

import csv
import io
import re

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook

from tests.web.helpers import create, project


@pytest.fixture
def sheets(web):
    p1 = project(web, code="P-1", name="一号")
    p2 = project(web, code="P-2", name="二号", status="closed")
    rows = [
        (p1, "2026-11-01", "A区", "extra", 5),
        (p1, "2026-11-02", "B区", "minor", 10),
        (p2, "2026-11-03", "C区", "extra", 15),
        (p2, "2026-11-04", "D区 =1+1", "minor", 20),
    ]
    for proj, day, location, reason, headcount in rows:
        create(
            web,
            "sample.day_sheet",
            {
                "project": proj["id"],
                "work_date": day,
                "location": location,
                "reason": reason,
                "headcount": headcount,
                "lines": [{"worker": "甲", "days": "1", "day_rate": str(headcount * 100)}],
            },
        )
    return p1, p2


def _locations(html: str) -> list[str]:
    return re.findall(r'data-label="部位">\s*([^<\n]+?)\s*<', html)


def test_list_shows_layout_columns_with_reference_titles_and_default_sort(web, admin, sheets):
    html = admin.html("/app/sample/day_sheet")
    headers = re.findall(r'<th scope="col" class="[^"]*"[^>]*>\s*(?:<a [^>]*>)?([^<▲▼]+)', html)
    assert [h.strip() for h in headers[:4]] == ["单号", "项目", "日期", "部位"]
    assert _locations(html) == ["D区 =1+1", "C区", "B区", "A区"]  # layout sort: -work_date
    assert '<a href="/app/sample/project/1">P-1</a>' in html
    assert "¥2,000.00" in html  # computed money column, formatted
    assert "共 4 条记录" in html


def test_sort_by_clicking_headers(admin, sheets):
    html = admin.html("/app/sample/day_sheet?sort=location&f=1")
    assert _locations(html) == ["A区", "B区", "C区", "D区 =1+1"]
    assert 'aria-sort="ascending"' in html
    assert "sort=-location" in html  # clicking again sorts descending
    html = admin.html("/app/sample/day_sheet?sort=-headcount&f=1")
    assert _locations(html)[0] == "D区 =1+1"


def test_filters_per_field_type(admin, sheets):
    p1, _p2 = sheets
    base = "/app/sample/day_sheet?f=1&sort=work_date"
    assert _locations(
        admin.html(base + "&work_date__gte=2026-11-02&work_date__lte=2026-11-03")
    ) == [
        "B区",
        "C区",
    ]
    assert _locations(admin.html(base + "&reason__eq=extra")) == ["A区", "C区"]
    assert _locations(admin.html(base + f"&project__eq={p1['id']}")) == ["A区", "B区"]
    assert _locations(admin.html(base + "&headcount__gte=10&headcount__lte=15")) == ["B区", "C区"]
    assert _locations(admin.html(base + "&total__gte=1500")) == ["C区", "D区 =1+1"]
    html = admin.html(base + f"&project__eq={p1['id']}")
    assert 'value="P-1"' in html  # the reference filter shows the chosen title


def test_filter_bar_controls_match_field_types(admin, sheets):
    html = admin.html("/app/sample/day_sheet")
    assert 'name="work_date__gte"' in html and 'type="date"' in html
    assert (
        '<select class="form-select form-select-sm" id="filter-reason" name="reason__eq">' in html
    )
    assert 'name="headcount__gte"' in html and 'name="headcount__lte"' in html
    assert 'name="project__eq"' in html and "/lookup/project" in html
    project_html = admin.html("/app/sample/project")
    assert 'id="filter-manager" name="manager__eq"' in project_html
    assert 'id="filter-active" name="active__eq"' in project_html


def test_layout_default_filter_applies_on_first_visit_only(web, admin):
    project(web, code="P-1", name="开", active=True)
    project(web, code="P-2", name="关", active=False)
    first = admin.html("/app/sample/project")
    assert "P-1" in first and "P-2" not in first
    assert "P-2" in admin.html("/app/sample/project?f=1")


def test_quick_search_uses_the_layouts_search_fields(admin, sheets):
    assert _locations(admin.html("/app/sample/day_sheet?f=1&q=C%E5%8C%BA")) == ["C区"]
    assert _locations(admin.html("/app/sample/day_sheet?f=1&q=100%25")) == []  # % is literal


def test_a_bad_filter_shows_a_message_instead_of_failing(admin, sheets):
    html = admin.html("/app/sample/day_sheet?f=1&headcount__gte=many")
    assert 'data-testid="list-error"' in html
    assert len(_locations(html)) == 4


def test_htmx_requests_get_only_the_results(admin, sheets):
    response = admin.get("/app/sample/day_sheet?f=1&sort=location", headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert "<html" not in html and 'id="bulk-form"' in html


def test_pages(web, admin):
    p = project(web)
    for day in range(1, 13):
        create(web, "sample.day_sheet", {"project": p["id"], "work_date": f"2026-10-{day:02d}"})
    html = admin.html("/app/sample/day_sheet?f=1&per_page=5&sort=work_date")
    assert "1 / 3" in html and 'rel="next"' in html
    assert "page=2" in html
    last = admin.html("/app/sample/day_sheet?f=1&per_page=5&sort=work_date&page=3")
    assert "3 / 3" in last and last.count('name="ids"') == 2


def _count_queries(app, path, browser):
    engine = app.extensions["formwork"].engine
    statements = []

    def remember(conn, cursor, statement, *args):
        if not statement.startswith("BEGIN"):  # transaction control, not a query
            statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", remember)
    try:
        assert browser.get(path).status_code == 200
    finally:
        sa.event.remove(engine, "before_cursor_execute", remember)
    return statements


def test_list_page_queries_do_not_grow_with_rows(web, admin, users):
    # As in production: definitions and packs are re-read every few seconds, not per call.
    web.extensions["formwork"].definitions.ttl = 60
    web.config["REGISTRY_TTL"] = 60
    projects = [project(web, code=f"P-{i}", name=f"项目{i}") for i in range(8)]
    for i in range(3):
        create(
            web,
            "sample.day_sheet",
            {"project": projects[i]["id"], "work_date": "2026-11-01"},
            users["admin"]["id"],
        )
    admin.get("/app/sample/day_sheet")  # warm the registry cache
    few = _count_queries(web, "/app/sample/day_sheet?f=1&per_page=3", admin)
    path = "/app/sample/day_sheet?f=1&per_page=40"  # both pages are full: the count runs
    for i in range(40):
        create(
            web,
            "sample.day_sheet",
            {"project": projects[i % 8]["id"], "work_date": "2026-11-02"},
            users["reader"]["id"] if i % 2 else None,
        )
    many = _count_queries(web, path, admin)
    assert len(many) == len(few), "\n".join(many)
    # sign-in user, roles with grants, the page, the capped count, project titles, user names
    assert len(many) == 6, "\n".join(many)
    project_queries = _count_queries(web, "/app/sample/project?f=1", admin)
    assert len(project_queries) <= 8, "\n".join(project_queries)


def test_bulk_delete_all_or_nothing(web, admin, sheets):
    p1, p2 = sheets
    html = admin.html("/app/sample/project?f=1")
    assert 'id="bulk-delete"' in html
    spare = project(web, code="P-3", name="空")
    response = admin.post(
        "/app/sample/project/bulk-delete",
        [("ids", str(spare["id"])), ("ids", str(p1["id"])), ("back", "/app/sample/project?f=1")],
    )
    assert response.status_code == 302
    assert "没有删除任何记录" in admin.html(response.headers["Location"])
    assert admin.get(f"/app/sample/project/{spare['id']}").status_code == 200  # rolled back
    response = admin.post("/app/sample/project/bulk-delete", [("ids", str(spare["id"]))])
    assert "已删除 1 条记录" in admin.html(response.headers["Location"])
    assert admin.get(f"/app/sample/project/{spare['id']}").status_code == 404


def test_reader_cannot_bulk_delete(web, sheets):
    from tests.web.conftest import sign_in

    reader = sign_in(web, "reader")
    assert 'id="bulk-delete"' not in reader.html("/app/sample/project?f=1")
    p1, _ = sheets
    assert (
        reader.post("/app/sample/project/bulk-delete", [("ids", str(p1["id"]))]).status_code == 403
    )


def test_export_csv_of_the_current_filter_without_formulas(admin, sheets):
    response = admin.get("/app/sample/day_sheet/export.csv?f=1&reason__eq=minor&sort=work_date")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    text = response.get_data(as_text=True).lstrip("\ufeff")
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0]
    assert header[0] == "id" and "部位" in header and "项目" in header
    assert [r[header.index("部位")] for r in rows[1:]] == ["B区", "D区 =1+1"]
    assert rows[1][header.index("项目")] == "P-1"  # references exported as titles
    assert rows[1][header.index("合计金额")] == "1000.00"


def test_export_escapes_text_that_looks_like_a_formula(web, admin):
    project(web, code="P-F", name='=HYPERLINK("http://x")')
    text = admin.get("/app/sample/project/export.csv?f=1").get_data(as_text=True)
    assert "'=HYPERLINK" in text
    book = load_workbook(io.BytesIO(admin.get("/app/sample/project/export.xlsx?f=1").data))
    cells = [c.value for row in book.active.iter_rows() for c in row]
    assert '=HYPERLINK("http://x")' in cells or '\'=HYPERLINK("http://x")' in cells
    assert all(c.data_type != "f" for row in book.active.iter_rows() for c in row)


def test_export_xlsx_has_typed_cells(admin, sheets):
    response = admin.get("/app/sample/day_sheet/export.xlsx?f=1&sort=work_date")
    assert response.status_code == 200
    assert "spreadsheetml" in response.mimetype
    sheet = load_workbook(io.BytesIO(response.data)).active
    rows = list(sheet.iter_rows(values_only=True))
    header = rows[0]
    assert len(rows) == 5
    first = dict(zip(header, rows[1], strict=True))
    assert str(first["日期"])[:10] == "2026-11-01"
    assert first["人数"] == 5
    assert float(first["合计金额"]) == 500.0
    assert admin.get("/app/sample/day_sheet/export.pdf").status_code == 404
