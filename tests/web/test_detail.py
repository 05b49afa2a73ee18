"""The detail page: values, line items and the audit history (who, when, old → new)."""

from __future__ import annotations

from tests.web.helpers import day_sheet_form, project
from tests.web.test_forms import _form_fields


def test_detail_shows_history_with_old_and_new_values(web, admin):
    p1 = project(web, code="P-1")
    p2 = project(web, code="P-2")
    response = admin.post("/app/sample/day_sheet/new", day_sheet_form(p1["id"]))
    record_id = int(response.headers["Location"].rsplit("/", 1)[1])
    form = admin.html(f"/app/sample/day_sheet/{record_id}/edit")
    post = dict(_form_fields(form), project=str(p2["id"]), reason="minor", headcount="13")
    assert admin.post(f"/app/sample/day_sheet/{record_id}/edit", post).status_code == 302
    html = admin.html(f"/app/sample/day_sheet/{record_id}")
    history = html[html.index('data-testid="history"') :]
    assert "admin" in history and "修改了" in history and "创建了" in history
    assert "<del>合同外</del> → <ins>零星用工</ins>" in history
    assert "<del>12</del> → <ins>13</ins>" in history
    assert '<del><a href="/app/sample/project/1">P-1</a></del>' in history
    assert '<ins><a href="/app/sample/project/2">P-2</a></ins>' in history
    assert history.index("修改了") < history.index("创建了")  # newest first


def test_detail_shows_line_items_and_edit_link_by_permission(web, admin):
    from tests.web.conftest import sign_in

    p = project(web)
    response = admin.post("/app/sample/day_sheet/new", day_sheet_form(p["id"]))
    path = response.headers["Location"]
    html = admin.html(path)
    assert "张三" in html and "¥1,200.50" in html and 'id="edit"' in html
    reader = sign_in(web, "reader")
    html = reader.html(path)
    assert 'id="edit"' not in html and "张三" in html
