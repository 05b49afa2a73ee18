"""Bad input gets a clear 4xx problem response and nothing is written."""

from __future__ import annotations

import pytest

BASE = "/api/v1/sample"


def count(api, entity="project"):
    return api.get(f"{BASE}/{entity}?per_page=1").get_json()["total"]


def errors(response):
    assert response.mimetype == "application/problem+json", response.data
    return {e["pointer"]: e for e in response.get_json().get("errors", [])}


def test_malformed_json(api):
    response = api.client.post(
        f"{BASE}/project",
        data="{not json",
        headers={**api._headers(), "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert "/" in errors(response)
    assert count(api) == 0


@pytest.mark.parametrize(
    ("body", "pointer", "code"),
    [
        ({"code": "P1", "name": "x", "colour": "red"}, "/colour", "unknown_field"),
        ({"code": "P1"}, "/name", "required"),
        ({"code": "P1", "name": None}, "/name", "required"),
        ({"code": 12, "name": "x"}, "/code", "type"),
        ({"code": "P1", "name": "x", "contract_value": "12,5"}, "/contract_value", "decimal"),
        ({"code": "P1", "name": "x", "contract_value": "abc"}, "/contract_value", "decimal"),
        (
            {"code": "P1", "name": "x", "contract_value": "1.234"},
            "/contract_value",
            "decimal_digits",
        ),
        ({"code": "P1", "name": "x", "contract_value": "-5"}, "/contract_value", "minimum"),
        ({"code": "P1", "name": "x" * 101}, "/name", "max_length"),
        ({"code": "p 1", "name": "x"}, "/code", "pattern"),
        ({"code": "P1", "name": "x", "status": "demolished"}, "/status", "choice"),
        ({"code": "P1", "name": "x", "tags": ["moon"]}, "/tags/0", "choice"),
        ({"code": "P1", "name": "x", "start_date": "2026-02-30"}, "/start_date", "date"),
        ({"code": "P1", "name": "x", "manager": 999}, "/manager", "user_missing"),
        ({"code": "P1", "name": "x", "active": "yes"}, "/active", "type"),
    ],
)
def test_bad_values_are_refused_per_field(api, body, pointer, code):
    response = api.post(f"{BASE}/project", body)
    assert response.status_code == 422, response.get_json()
    found = errors(response)
    assert pointer in found, found
    assert found[pointer]["code"] == code
    assert found[pointer]["detail"]
    assert count(api) == 0


def test_every_problem_is_listed_and_messages_follow_the_language(api):
    body = {"code": 1, "name": "x" * 101, "status": "no"}
    zh = api.post(f"{BASE}/project", body)
    assert set(errors(zh)) == {"/code", "/name", "/status"}
    assert "不能超过" in errors(zh)["/name"]["detail"]
    en = api.post(f"{BASE}/project", body, headers={"Accept-Language": "en"})
    assert "at most 100" in errors(en)["/name"]["detail"]


def test_child_rows_report_their_pointer_and_nothing_is_written(api):
    project = api.post(f"{BASE}/project", {"code": "P1", "name": "x"}).get_json()
    body = {
        "project": project["id"],
        "work_date": "2026-11-20",
        "lines": [
            {"worker": "a", "days": "1", "day_rate": "1"},
            {"worker": "b", "days": "2", "day_rate": "x"},
        ],
    }
    response = api.post(f"{BASE}/day_sheet", body)
    found = errors(response)
    assert found["/lines/1/days"]["code"] == "maximum"
    assert found["/lines/1/day_rate"]["code"] == "decimal"
    assert count(api, "day_sheet") == 0


def test_missing_reference_and_rule(api):
    response = api.post(
        f"{BASE}/day_sheet", {"project": 424242, "work_date": "2026-11-20", "headcount": 500}
    )
    found = errors(response)
    assert found["/project"]["code"] == "reference_missing"
    assert found["/headcount"]["code"] == "rule"
    assert count(api, "day_sheet") == 0


def test_unique_value_is_refused(api):
    assert api.post(f"{BASE}/project", {"code": "P1", "name": "x"}).status_code == 201
    response = api.post(f"{BASE}/project", {"code": "P1", "name": "y"})
    assert errors(response)["/code"]["code"] == "unique"
    assert count(api) == 1


def test_read_only_fields_cannot_be_written(api):
    project = api.post(f"{BASE}/project", {"code": "P1", "name": "x"}).get_json()
    sheet = api.post(f"{BASE}/day_sheet", {"project": project["id"], "work_date": "2026-11-20"})
    sheet = sheet.get_json()
    response = api.patch(f"{BASE}/day_sheet/{sheet['id']}", {"version": 1, "number": "X-1"})
    assert errors(response)["/number"]["code"] == "read_only"
    echo = api.patch(
        f"{BASE}/day_sheet/{sheet['id']}",
        {"version": 1, "number": sheet["number"], "location": "B"},
    )
    assert echo.status_code == 200


def test_body_over_the_limit(api, sample):
    sample.config["API_MAX_BODY"] = 1000
    response = api.post(f"{BASE}/project", {"code": "P1", "name": "x" * 2000})
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"
    assert count(api) == 0


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("colour=red", "colour"),
        ("name__like=x", "name__like"),
        ("tags__gt=a", "tags__gt"),
        ("sort=colour", "sort"),
        ("per_page=1000", "per_page"),
        ("page=0", "page"),
        ("contract_value__gt=abc", "contract_value__gt"),
        ("start_date__lt=yesterday", "start_date__lt"),
        ("status=demolished", "status"),
        ("manager__isnull=maybe", "manager__isnull"),
        ("project.colour__eq=1", "project.colour__eq"),
    ],
)
def test_bad_filters(api, query, param):
    response = api.get(f"{BASE}/project?{query}")
    assert response.status_code == 400, response.get_json()
    assert param in errors(response)


def test_sql_looking_values_are_just_values(api):
    api.post(f"{BASE}/project", {"code": "P1", "name": "x"})
    for value in ("x' OR '1'='1", "x%' --", "1; DROP TABLE sample__project"):
        response = api.get(f"{BASE}/project", query_string={"name": value})
        assert response.status_code == 200
        assert response.get_json()["total"] == 0
    assert count(api) == 1


def test_unknown_entity_and_child_entity_are_404(api):
    assert api.get("/api/v1/sample/nothing").status_code == 404
    assert api.get(f"{BASE}/day_sheet_line").status_code == 404
    assert api.get("/api/v1/nowhere/at/all/really").status_code == 404


def test_attachment_limits(api):
    project = api.post(f"{BASE}/project", {"code": "P1", "name": "x"}).get_json()
    from tests.api.test_records import upload

    doc = upload(api, "notes.txt", b"hello", "text/plain")
    response = api.post(
        f"{BASE}/day_sheet", {"project": project["id"], "work_date": "2026-11-20", "photo": doc}
    )
    assert errors(response)["/photo"]["code"] == "file_type"
    missing = api.post(
        f"{BASE}/day_sheet",
        {"project": project["id"], "work_date": "2026-11-20", "photo": "0" * 32},
    )
    assert errors(missing)["/photo"]["code"] == "file_missing"
