"""End-to-end: every field type through definition → table → API → audit."""

from __future__ import annotations

import io
from decimal import Decimal

BASE = "/api/v1/sample"


def make_project(api, code="P-001", **extra):
    body = {
        "code": code,
        "name": "一号楼",
        "contract_value": "12345678.90",
        "start_date": "2026-03-01",
        "tags": ["road", "housing"],
        **extra,
    }
    response = api.post(f"{BASE}/project", body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def upload(api, name="site.png", data=b"\x89PNG\r\n\x1a\nxx", mimetype="image/png"):
    response = api.client.post(
        "/api/v1/files",
        headers=api._headers(),
        data={"file": (io.BytesIO(data), name, mimetype)},
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def sheet_body(project_id, **extra):
    return {
        "project": project_id,
        "work_date": "2026-11-20",
        "location": "3# 楼 5 层",
        "reason": "extra",
        "headcount": 3,
        "rate": "1.125",
        "progress": "37.5",
        "submitted_at": "2026-11-20T09:30:00+08:00",
        "notes": "<b>不要执行</b>",
        "lines": [
            {"worker": "张三", "days": "1", "day_rate": "350.00"},
            {"worker": "李四", "days": "0.5", "day_rate": "420.10"},
        ],
        **extra,
    }


def test_project_round_trip_with_defaults_and_money(api, users):
    project = make_project(api, manager=users["admin"]["id"])
    assert project["contract_value"] == "12345678.90"
    assert project["status"] == "active"  # default
    assert project["active"] is True
    assert project["tags"] == ["housing", "road"]  # kept in option order
    assert project["version"] == 1
    fetched = api.get(f"{BASE}/project/{project['id']}").get_json()
    assert fetched == project


def test_day_sheet_every_field_type_round_trip(api):
    project = make_project(api)
    photo = upload(api)
    response = api.post(f"{BASE}/day_sheet", sheet_body(project["id"], photo=photo))
    assert response.status_code == 201, response.get_json()
    sheet = response.get_json()
    assert sheet["number"] == "DW-20261120-001"
    assert [line["amount"] for line in sheet["lines"]] == ["350.00", "210.05"]
    assert sheet["total"] == "560.05"
    assert sheet["rate"] == "1.125"
    assert sheet["progress"] == "37.50"
    assert sheet["submitted_at"].startswith("2026-11-20T01:30:00")
    assert sheet["notes"] == "<b>不要执行</b>"
    assert sheet["photo"] == photo
    again = api.get(f"{BASE}/day_sheet/{sheet['id']}").get_json()
    assert again == sheet
    second = api.post(f"{BASE}/day_sheet", sheet_body(project["id"])).get_json()
    assert second["number"] == "DW-20261120-002"


def test_update_lines_and_audit_history(api):
    project = make_project(api)
    sheet = api.post(f"{BASE}/day_sheet", sheet_body(project["id"])).get_json()
    first, second = sheet["lines"]
    body = {
        "version": 1,
        "location": "4# 楼",
        "lines": [
            {"id": second["id"], "worker": "李四", "days": "1", "day_rate": "420.10"},
            {"worker": "王五", "days": "0.5", "day_rate": "300"},
        ],
    }
    response = api.patch(f"{BASE}/day_sheet/{sheet['id']}", body)
    assert response.status_code == 200, response.get_json()
    changed = response.get_json()
    assert changed["version"] == 2
    assert [ln["worker"] for ln in changed["lines"]] == ["李四", "王五"]
    assert changed["lines"][0]["id"] == second["id"]
    assert changed["total"] == "570.10"
    assert changed["number"] == sheet["number"]
    history = api.get(f"{BASE}/day_sheet/{sheet['id']}/history").get_json()["items"]
    assert [h["action"] for h in history] == ["create", "update"]
    assert history[1]["changes"]["location"] == ["3# 楼 5 层", "4# 楼"]
    assert history[1]["changes"]["total"] == ["560.05", "570.10"]
    assert history[1]["user"] == "admin"
    assert first["id"] not in [ln["id"] for ln in changed["lines"]]


def test_stale_version_is_refused_with_current_record(api):
    project = make_project(api)
    url = f"{BASE}/project/{project['id']}"
    assert api.patch(url, {"version": 1, "name": "A"}).status_code == 200
    response = api.patch(url, {"version": 1, "name": "B"})
    assert response.status_code == 409
    problem = response.get_json()
    assert response.mimetype == "application/problem+json"
    assert problem["current"]["name"] == "A"
    assert problem["current"]["version"] == 2
    assert api.get(url).get_json()["name"] == "A"


def test_delete_with_version_and_references(api):
    project = make_project(api)
    sheet = api.post(f"{BASE}/day_sheet", sheet_body(project["id"])).get_json()
    assert api.delete(f"{BASE}/project/{project['id']}").status_code == 409
    assert api.delete(f"{BASE}/day_sheet/{sheet['id']}?version=9").status_code == 409
    assert api.delete(f"{BASE}/day_sheet/{sheet['id']}?version=1").status_code == 204
    assert api.get(f"{BASE}/day_sheet/{sheet['id']}").status_code == 404
    assert api.delete(f"{BASE}/project/{project['id']}").status_code == 204


def test_list_filters_sort_pages_and_reference_targets(api):
    for i in range(7):
        make_project(
            api,
            code=f"P-{i:03}",
            contract_value=str(1000 * i),
            status="closed" if i % 2 else "active",
        )
    ids = {p["code"]: p["id"] for p in api.get(f"{BASE}/project?per_page=50").get_json()["items"]}
    for code in ("P-001", "P-002"):
        api.post(f"{BASE}/day_sheet", sheet_body(ids[code]))
    page = api.get(f"{BASE}/project?status=closed&sort=-contract_value&per_page=2").get_json()
    assert [p["code"] for p in page["items"]] == ["P-005", "P-003"]
    assert page["total"] == 3 and page["total_capped"] is False
    page2 = api.get(f"{BASE}/project?status=closed&sort=-contract_value&per_page=2&page=2")
    assert [p["code"] for p in page2.get_json()["items"]] == ["P-001"]
    gte = api.get(f"{BASE}/project?contract_value__gte=4000&contract_value__lt=6000").get_json()
    assert sorted(p["code"] for p in gte["items"]) == ["P-004", "P-005"]
    in_ = api.get(f"{BASE}/project?code__in=P-000,P-006&sort=code").get_json()
    assert [p["code"] for p in in_["items"]] == ["P-000", "P-006"]
    assert api.get(f"{BASE}/project?code__startswith=P-00&per_page=1").get_json()["total"] == 7
    tags = api.get(f"{BASE}/project?tags__contains=road").get_json()
    assert tags["total"] == 7
    assert api.get(f"{BASE}/project?manager__isnull=true").get_json()["total"] == 7
    joined = api.get(f"{BASE}/day_sheet?project.code__eq=P-002").get_json()
    assert [s["project"] for s in joined["items"]] == [ids["P-002"]]
    search = api.get(f"{BASE}/project?q=p-00").get_json()
    assert search["total"] == 7


def test_aggregate_by_reference_and_month(api):
    project = make_project(api)
    other = make_project(api, code="P-002")
    for pid, day in (
        (project["id"], "2026-10-05"),
        (project["id"], "2026-11-03"),
        (project["id"], "2026-11-20"),
        (other["id"], "2026-11-21"),
    ):
        api.post(f"{BASE}/day_sheet", sheet_body(pid, work_date=day))
    url = f"{BASE}/day_sheet/aggregate?group=project,work_date:month&sum=total&avg=headcount"
    result = api.get(url).get_json()
    assert result["truncated"] is False
    rows = result["items"]
    assert rows == [
        {
            "project": project["id"],
            "work_date:month": "2026-10",
            "count": 1,
            "sum_total": "560.05",
            "avg_headcount": "3",
        },
        {
            "project": project["id"],
            "work_date:month": "2026-11",
            "count": 2,
            "sum_total": "1120.10",
            "avg_headcount": "3",
        },
        {
            "project": other["id"],
            "work_date:month": "2026-11",
            "count": 1,
            "sum_total": "560.05",
            "avg_headcount": "3",
        },
    ]
    weeks = api.get(f"{BASE}/day_sheet/aggregate?group=work_date:week").get_json()["items"]
    assert [w["work_date:week"] for w in weeks] == ["2026-10-05", "2026-11-02", "2026-11-16"]
    assert Decimal(
        api.get(f"{BASE}/day_sheet/aggregate?sum=total").get_json()["items"][0]["sum_total"]
    ) == Decimal("2240.20")
