"""The API as its OpenAPI document says: moments with their offset, a 405 with `Allow`, a
401 with `WWW-Authenticate`, 414 documented everywhere, and every documented typed query
parameter refusing a value of the wrong type (`null` was read as a default or ignored)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest

from formwork.runtime.models import LoginSession, User


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method != "parameters"
    ]


def test_history_moments_carry_their_offset(api):
    created = api.post("/api/v1/sample/project", {"code": "P-1", "name": "x"}).get_json()
    api.patch(f"/api/v1/sample/project/{created['id']}", {"name": "y", "version": 1})
    items = api.get(f"/api/v1/sample/project/{created['id']}/history").get_json()["items"]
    assert len(items) == 2
    for item in items:
        assert dt.datetime.fromisoformat(item["at"]).utcoffset() == dt.timedelta(0)


def test_platform_moments_read_back_aware_in_utc(app, session):
    user = session.get(User, 1) or User(username="u1", password_hash="x")
    session.add(user)
    session.flush()
    beijing = dt.timezone(dt.timedelta(hours=8))
    moment = dt.datetime(2026, 3, 16, 10, 0, tzinfo=beijing)
    session.add(
        LoginSession(token_hash="h" * 64, user_id=user.id, created_at=moment, last_seen_at=moment)
    )
    session.commit()
    session.expunge_all()
    row = session.query(LoginSession).one()
    assert row.created_at == moment and row.created_at.utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/api/v1/sample/project", {"GET", "POST"}),
        ("POST", "/api/v1/sample/project/1/history", {"GET"}),
        ("PUT", "/api/v1/openapi.json", {"GET"}),
        ("DELETE", "/app/sample/project", {"GET"}),
    ],
)
def test_a_405_says_what_is_allowed(api, method, path, allowed):
    response = api.client.open(path, method=method, headers=api._headers())
    assert response.status_code == 405
    assert allowed <= set(re.split(r",\s*", response.headers["Allow"]))
    if path.startswith("/api/"):
        assert response.mimetype == "application/problem+json"


def test_a_401_names_its_scheme(app, sample):
    response = app.test_client().get("/api/v1/sample/project")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_414_is_documented_for_every_operation_and_answered_as_a_problem(api):
    document = api.get("/api/v1/openapi.json").get_json()
    for path, method, operation in _operations(document):
        assert "414" in operation["responses"], f"{method} {path}"
    response = api.get("/api/v1/sample/project?q=" + "x" * 9000)
    assert response.status_code == 414 and response.mimetype == "application/problem+json"


WRONG = {"integer": ["null", "²", "1.5", ""], "number": ["null", "NaN"], "boolean": ["null"]}


def _wrong_values(schema: dict[str, Any]) -> list[str]:
    if "enum" in schema:
        return ["null", "not-one-of-them"]
    return WRONG.get(schema.get("type", ""), [])


def _fill(path: str) -> str:
    values = {"pack": "sample", "entity": "project", "id": "1", "name": "sample"}
    return re.sub(r"\{([a-z_]+)\}", lambda m: values.get(m.group(1), "1"), path)


def test_every_typed_query_parameter_refuses_a_wrong_value(api):
    document = api.get("/api/v1/openapi.json").get_json()
    checked = 0
    for path, method, operation in _operations(document):
        for parameter in operation.get("parameters", ()):
            name = parameter["name"]
            if parameter["in"] != "query" or "__" in name:
                continue  # filters are parsed by their field types (tests/api/test_records.py)
            for wrong in _wrong_values(parameter.get("schema", {})):
                url = f"{_fill(path)}?{name}={wrong}"
                response = api.client.open(url, method=method.upper(), headers=api._headers())
                assert response.status_code == 400, (method, url, response.status_code)
                pointers = [e["pointer"] for e in response.get_json()["errors"]]
                assert name in pointers, (method, url)
                checked += 1
    assert checked > 30
