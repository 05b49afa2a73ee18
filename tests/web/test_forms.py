"""Create and edit forms: every widget's rendering and round trip, inline errors, line-item
grids, computed values, uploads, reference look-ups and the optimistic-lock conflict."""

from __future__ import annotations

import io
import re

from tests.web.conftest import sign_in
from tests.web.helpers import create, day_sheet_form, project


def _error(html: str, input_id: str) -> str:
    found = re.search(rf'data-testid="error-{re.escape(input_id)}">([^<]*)<', html)
    return found.group(1) if found else ""


def _input_value(html: str, name: str) -> str:
    found = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', html)
    return found.group(1) if found else ""


def test_new_form_draws_a_widget_per_field_type_with_bound_labels(web, admin):
    html = admin.html("/app/sample/day_sheet/new")
    assert 'type="date" name="work_date"' in html  # date picker
    assert 'type="datetime-local" name="submitted_at"' in html
    assert 'role="combobox"' in html and "/lookup/project" in html  # reference look-up
    assert 'type="radio" name="reason"' in html  # layout chose radio buttons for the select
    assert 'inputmode="numeric" name="headcount"' in html
    assert 'inputmode="decimal" name="rate"' in html
    assert 'type="file" name="photo" accept="image/*,.pdf"' in html
    assert 'id="out-number"' in html and 'id="out-total"' in html  # read-only values
    assert 'data-fw-grid="lines"' in html and "data-fw-blank-row" in html
    assert 'data-fw-money="2"' in html  # the line's day rate is a money input
    assert "例如：3 号楼 5 层" in html  # help from the layout
    for input_id in ("work_date", "location", "headcount", "notes"):
        assert f'for="{input_id}"' in html and f'id="{input_id}"' in html
    project_html = admin.html("/app/sample/project/new")
    assert 'type="checkbox" name="tags"' in project_html  # multi-select
    assert '<select class="form-select" name="status"' in project_html
    assert 'name="manager"' in project_html and ">admin<" in project_html  # user picker
    assert 'type="checkbox" name="active" value="1" checked' in project_html  # default true
    assert "¥" in project_html  # money input shows the currency


def test_every_field_type_round_trips_through_the_form(web, admin):
    p = project(web)
    response = admin.post("/app/sample/day_sheet/new", day_sheet_form(p["id"]))
    assert response.status_code == 302, response.get_data(as_text=True)
    detail = response.headers["Location"]
    record_id = int(detail.rsplit("/", 1)[1])
    html = admin.html(detail)
    assert "DW-20261120-001" in html
    assert "¥1,350.50" in html  # computed total from the lines (1 × 1,200.50 + 0.5 × 300)
    assert "2026年11月20日 08:30:00" in html  # datetime entered in Asia/Shanghai
    assert "40.00%" in html and "1.250" in html and "合同外" in html
    form = admin.html(f"/app/sample/day_sheet/{record_id}/edit")
    assert _input_value(form, "work_date") == "2026-11-20"
    assert _input_value(form, "submitted_at") == "2026-11-20T08:30"
    assert _input_value(form, "headcount") == "12"
    assert _input_value(form, "rate") == "1.250"
    assert 'value="extra" checked' in form
    assert 'value="1,200.50"' in form  # money shown with thousands separators
    assert "张三" in form and "李四" in form and ">P-1<" not in form
    assert 'value="P-1"' in form  # the reference shows its title in the look-up box
    # Saving the unchanged form changes no value: the audit trail records no change.
    post = _form_fields(form)
    assert admin.post(f"/app/sample/day_sheet/{record_id}/edit", post).status_code == 302
    api = admin.client.get(f"/api/v1/sample/day_sheet/{record_id}").get_json()
    trail = admin.client.get(f"/api/v1/sample/day_sheet/{record_id}/history").get_json()
    assert [entry["action"] for entry in trail["items"]] == ["create"]
    assert [line["worker"] for line in api["lines"]] == ["张三", "李四"]
    assert api["submitted_at"] == "2026-11-20T00:30:00+00:00"


def test_project_round_trip_multi_select_boolean_user_money(web, admin, users):
    post = [
        ("code", "P-77"),
        ("name", "大桥"),
        ("contract_value", "12,345,678.90"),
        ("start_date", "2026-01-05"),
        ("status", "planned"),
        ("tags", ""),
        ("tags", "road"),
        ("tags", "bridge"),
        ("manager", str(users["admin"]["id"])),
        ("active", ""),
    ]
    response = admin.post("/app/sample/project/new", post)
    assert response.status_code == 302, response.get_data(as_text=True)
    record_id = int(response.headers["Location"].rsplit("/", 1)[1])
    api = admin.client.get(f"/api/v1/sample/project/{record_id}").get_json()
    assert api["contract_value"] == "12345678.90"
    assert api["tags"] == ["road", "bridge"]
    assert api["active"] is False
    assert api["manager"] == users["admin"]["id"]
    html = admin.html(f"/app/sample/project/{record_id}")
    assert "¥12,345,678.90" in html and "道路, 桥梁" in html and "筹备" in html


def test_ticked_boolean_stays_true_when_the_form_is_saved(web, admin):
    record = project(web, code="P-8", active=True)
    form = admin.html(f"/app/sample/project/{record['id']}/edit")
    post = _form_fields(form)
    assert ("active", "") in post and ("active", "1") in post  # hidden blank, then the box
    assert admin.post(f"/app/sample/project/{record['id']}/edit", post).status_code == 302
    assert admin.client.get(f"/api/v1/sample/project/{record['id']}").get_json()["active"] is True


def _form_fields(html: str) -> list[tuple[str, str]]:
    """Return what a browser would post for the form (inputs, checked boxes, selects)."""
    form = html[
        html.index('id="record-form"') : html.index("</form>", html.index('id="record-form"'))
    ]
    form = re.sub(r"<template.*?</template>", "", form, flags=re.S)
    out = []
    for tag in re.finditer(r"<input([^>]*)>", form):
        attrs = tag.group(1)
        name = re.search(r'name="([^"]*)"', attrs)
        if not name or 'type="file"' in attrs or name.group(1) == "lookup_q":
            continue
        value = re.search(r'value="([^"]*)"', attrs)
        if ('type="checkbox"' in attrs or 'type="radio"' in attrs) and "checked" not in attrs:
            continue
        out.append((name.group(1), _unescape(value.group(1) if value else "")))
    for select in re.finditer(r'<select[^>]*name="([^"]*)"[^>]*>(.*?)</select>', form, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', select.group(2))
        out.append((select.group(1), chosen.group(1) if chosen else ""))
    for area in re.finditer(r'<textarea[^>]*name="([^"]*)"[^>]*>(.*?)</textarea>', form, re.S):
        out.append((area.group(1), _unescape(area.group(2))))
    return [(k, v) for k, v in out if k != "csrf_token"]


def _unescape(text: str) -> str:
    import html

    return html.unescape(text)


def test_validation_errors_are_shown_next_to_their_inputs_and_input_is_kept(web, admin):
    p = project(web)
    post = day_sheet_form(p["id"], headcount="500", work_date="", rate="abc")
    post = [(k, v) for k, v in post if k != "lines-b-days"] + [("lines-b-days", "7")]
    response = admin.post("/app/sample/day_sheet/new", post)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "请更正标出的字段" in html
    assert _error(html, "work_date") == "必填项不能为空"
    assert _error(html, "rate") == "不是有效的数字"
    assert "不能大于 1" in _error(html, "lines-b-days")  # the line's cell, by row
    assert _input_value(html, "headcount") == "500"  # what was typed is kept
    assert _input_value(html, "lines-b-days") == "7"
    assert 'aria-invalid="true"' in html
    assert web.test_client().get("/").status_code == 302
    count = admin.client.get("/api/v1/sample/day_sheet").get_json()["total"]
    assert count == 0  # nothing half-saved


def test_rule_errors_are_shown_at_the_rule_field(web, admin):
    p = project(web)
    response = admin.post("/app/sample/day_sheet/new", day_sheet_form(p["id"], headcount="500"))
    assert response.status_code == 422
    assert _error(response.get_data(as_text=True), "headcount") == "人数不能超过 200"


def test_validation_errors_in_english(web, admin):
    admin.post("/locale", {"locale": "en", "next": "/"})
    response = admin.post("/app/sample/project/new", {"code": "bad code", "name": ""})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert _error(html, "name") == "This field is required"
    assert "Does not match the required format" in _error(html, "code")


def test_line_items_keep_the_order_sent_and_removed_rows_are_deleted(web, admin):
    p = project(web)
    response = admin.post("/app/sample/day_sheet/new", day_sheet_form(p["id"]))
    record_id = int(response.headers["Location"].rsplit("/", 1)[1])
    api = admin.client.get(f"/api/v1/sample/day_sheet/{record_id}").get_json()
    first, second = (line["id"] for line in api["lines"])
    form = admin.html(f"/app/sample/day_sheet/{record_id}/edit")
    version = _input_value(form, "_version")
    post = [
        ("_version", version),
        ("project", str(p["id"])),
        ("work_date", "2026-11-20"),
        ("lines-x-id", ""),
        ("lines-x-worker", "王五"),
        ("lines-x-days", "1"),
        ("lines-x-day_rate", "100"),
        ("lines-1-id", str(second)),
        ("lines-1-worker", "李四"),
        ("lines-1-days", "0.5"),
        ("lines-1-day_rate", "300"),
    ]
    response = admin.post(f"/app/sample/day_sheet/{record_id}/edit", post)
    assert response.status_code == 302, response.get_data(as_text=True)
    api = admin.client.get(f"/api/v1/sample/day_sheet/{record_id}").get_json()
    assert [line["worker"] for line in api["lines"]] == ["王五", "李四"]
    assert api["lines"][1]["id"] == second
    assert first not in [line["id"] for line in api["lines"]]
    assert api["total"] == "250.00"


def test_computed_values_are_previewed_while_typing(web, admin):
    p = project(web)
    admin.get("/app/sample/day_sheet/new")
    response = admin.post(
        "/app/sample/day_sheet/compute",
        day_sheet_form(p["id"]),
        headers={"HX-Request": "true"},
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'hx-swap-oob="outerHTML:#out-total"' in html and "¥1,350.50" in html
    assert 'id="out-lines-a-amount"' in html and "¥1,200.50" in html
    half = [(k, v) for k, v in day_sheet_form(p["id"]) if k != "lines-b-day_rate"]
    html = admin.post("/app/sample/day_sheet/compute", half).get_data(as_text=True)
    assert re.search(r'id="out-lines-b-amount"[^>]*>—<', html)  # unknown until typed


def test_reference_lookup_finds_records_by_title_and_escapes_them(web, admin):
    project(web, code="P-100", name="<b>桥</b>")
    project(web, code="Q-200", name="路")
    html = admin.html("/app/sample/day_sheet/lookup/project?lookup_q=P-1")
    assert 'data-fw-pick="1"' in html and "P-100" in html and "Q-200" not in html
    assert admin.html("/app/sample/day_sheet/lookup/project?q=%E6%A1%A5").count("data-fw-pick") == 1
    assert admin.get("/app/sample/day_sheet/lookup/work_date?q=x").status_code == 404
    assert sign_in(web, "clerk").get("/app/sample/day_sheet/lookup/project?q=P").status_code == 403


def test_two_people_editing_get_a_conflict_with_the_other_values(web, admin):
    p = project(web, code="P-5", name="旧名")
    other = sign_in(web, "admin")
    mine = admin.html(f"/app/sample/project/{p['id']}/edit")
    theirs = other.html(f"/app/sample/project/{p['id']}/edit")
    their_post = dict(_form_fields(theirs), name="对方的名字")
    assert other.post(f"/app/sample/project/{p['id']}/edit", their_post).status_code == 302
    my_post = dict(_form_fields(mine), name="我的名字")
    response = admin.post(f"/app/sample/project/{p['id']}/edit", my_post)
    html = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "其他人已先保存了这条记录" in html
    assert 'data-testid="theirs-name">对方的名字<' in html
    assert _input_value(html, "name") == "我的名字"  # my input is kept
    assert _input_value(html, "_version") == "2"  # saving again overwrites knowingly
    again = admin.post(f"/app/sample/project/{p['id']}/edit", _form_fields(html))
    assert again.status_code == 302
    assert admin.client.get(f"/api/v1/sample/project/{p['id']}").get_json()["name"] == "我的名字"


def _photo_post(p_id: int, content: bytes, filename: str) -> dict:
    data = dict(day_sheet_form(p_id))
    data["photo"] = (io.BytesIO(content), filename)
    return data


def test_file_upload_with_limits(web, admin):
    p = project(web)
    admin.get("/app/sample/day_sheet/new")
    ok = admin.post(
        "/app/sample/day_sheet/new",
        _photo_post(p["id"], b"%PDF-1.4 tiny", "scan.pdf"),
        content_type="multipart/form-data",
    )
    assert ok.status_code == 302, ok.get_data(as_text=True)
    html = admin.html(ok.headers["Location"])
    assert "/api/v1/files/" in html
    wrong = admin.post(
        "/app/sample/day_sheet/new",
        _photo_post(p["id"], b"MZ...", "tool.exe"),
        content_type="multipart/form-data",
    )
    assert wrong.status_code == 422
    assert "不允许" in _error(wrong.get_data(as_text=True), "photo")
    big = admin.post(
        "/app/sample/day_sheet/new",
        _photo_post(p["id"], b"x" * (1024 * 1024 + 1), "big.pdf"),
        content_type="multipart/form-data",
    )
    assert big.status_code == 422
    assert "超过大小限制" in _error(big.get_data(as_text=True), "photo")
    assert admin.client.get("/api/v1/sample/day_sheet").get_json()["total"] == 1
    files_dir = web.config["FILES_DIR"]
    import pathlib

    stored = [f for f in pathlib.Path(files_dir).rglob("*") if f.is_file()]
    assert len(stored) == 1  # the refused uploads left no bytes behind


def test_keeping_and_removing_an_attachment_on_edit(web, admin):
    p = project(web)
    admin.get("/app/sample/day_sheet/new")
    response = admin.post(
        "/app/sample/day_sheet/new",
        _photo_post(p["id"], b"%PDF-1.4", "a.pdf"),
        content_type="multipart/form-data",
    )
    record_id = int(response.headers["Location"].rsplit("/", 1)[1])
    photo = admin.client.get(f"/api/v1/sample/day_sheet/{record_id}").get_json()["photo"]
    form = admin.html(f"/app/sample/day_sheet/{record_id}/edit")
    assert f'name="photo__keep" value="{photo}"' in form
    post = dict(_form_fields(form), location="改")
    admin.post(f"/app/sample/day_sheet/{record_id}/edit", post)
    assert admin.client.get(f"/api/v1/sample/day_sheet/{record_id}").get_json()["photo"] == photo
    form = admin.html(f"/app/sample/day_sheet/{record_id}/edit")
    post = dict(_form_fields(form), photo__remove="1")
    admin.post(f"/app/sample/day_sheet/{record_id}/edit", post)
    assert admin.client.get(f"/api/v1/sample/day_sheet/{record_id}").get_json()["photo"] is None


def test_delete_from_the_detail_page(web, admin):
    p = project(web)
    html = admin.html(f"/app/sample/project/{p['id']}")
    assert admin.post(f"/app/sample/project/{p['id']}/delete", {"_version": "1"}).status_code == 302
    assert admin.get(f"/app/sample/project/{p['id']}").status_code == 404
    assert "data-confirm" in html


def test_referenced_record_is_not_deleted(web, admin):
    p = project(web)
    create(web, "sample.day_sheet", {"project": p["id"], "work_date": "2026-11-01"})
    response = admin.post(f"/app/sample/project/{p['id']}/delete", {"_version": "1"})
    assert response.status_code == 302
    assert "未删除" in admin.html(response.headers["Location"])
    assert admin.get(f"/app/sample/project/{p['id']}").status_code == 200
