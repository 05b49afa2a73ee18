"""Bad input anywhere gets a clear 4xx naming what and where, never a 500.

Each case here was a 500 (or a crash) before: numbers no column holds, a lone UTF-16
surrogate, JSON nested 100,000 deep, Unicode digits that `str.isdigit` accepts and `int`
refuses. The ordinary per-field refusals are in tests/api/test_bad_input.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from formwork.auth.scopes import SCOPES
from formwork.auth.users import create_token
from formwork.cli_packs import pack_group
from formwork.runtime.models import User
from tests.packs.conftest import folder_files, zip_of
from tests.web.conftest import _cheap_password_hashes  # noqa: F401  (autouse: fast users)

BIG = "9" * 30  # past 2**63: SQLite raises OverflowError, psycopg cannot adapt it
INT4 = str(2**40)  # past INTEGER (the record version, a process version) on PostgreSQL


@pytest.fixture
def admin_api(api: Any, session: Any, users: dict[str, Any]) -> Any:
    """Return the admin API client with a token holding every scope."""
    api.token = create_token(session, session.get(User, users["admin"]["id"]), "all", scopes=SCOPES)
    session.commit()
    assert api.post("/api/v1/sample/project", {"code": "P1", "name": "x"}).status_code == 201
    return api


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/problem+json"
    body: dict[str, Any] = response.get_json()
    assert body["detail"]
    return body


def pointers(body: dict[str, Any]) -> dict[str, str]:
    return {e["pointer"]: e["detail"] for e in body.get("errors", [])}


def raw_post(api: Any, path: str, text: str) -> Any:
    headers = {**api._headers(), "Content-Type": "application/json"}
    return api.client.post(path, data=text.encode("utf-8", "surrogatepass"), headers=headers)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested deeper than"),
        ('{"code": "P2", "name": "x", "headcount": ' + "9" * 5000 + "}", "64-bit integer"),
        ('{"code": "P2", "name": "x", "contract_value": ' + BIG + "}", "64-bit integer"),
        ('{"code": "P2", "name": "\\ud800"}', "lone UTF-16 surrogate"),
        ('{"code": "P2", "name": "x", "contract_value": NaN}', "NaN"),
    ],
    ids=["recursion-bomb", "5000-digits", "int-past-int64", "lone-surrogate", "nan"],
)
def test_hostile_json_bodies_are_malformed_json_at_the_root(admin_api, text, says):
    body = problem(raw_post(admin_api, "/api/v1/sample/project", text), 422)
    assert says in pointers(body)["/"]


def test_a_huge_decimal_is_a_field_error(admin_api):
    response = raw_post(
        admin_api,
        "/api/v1/sample/project",
        '{"code": "P2", "name": "x", "contract_value": 1e999999}',
    )
    assert "/contract_value" in pointers(problem(response, 422))


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", f"/api/v1/sample/project/{BIG}"),
        ("get", f"/api/v1/sample/project/{BIG}/history"),
        ("get", f"/api/v1/processes/{BIG}"),
    ],
)
def test_ids_past_int64_are_not_found(admin_api, method, path):
    assert getattr(admin_api, method)(path).status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("patch", f"/api/v1/sample/project/{BIG}", {"version": 1}),
        ("delete", f"/api/v1/sample/project/{BIG}", None),
        ("post", f"/api/v1/processes/{BIG}/retry", None),
    ],
)
def test_other_methods_on_ids_past_int64_answer_a_problem(admin_api, method, path, body):
    call = getattr(admin_api, method)
    response = call(path, body) if body is not None else call(path)
    assert response.status_code in (404, 405)
    assert response.mimetype == "application/problem+json"


@pytest.mark.parametrize(
    ("query", "param"),
    [
        (f"id={BIG}", "id"),
        (f"version={INT4}", "version"),
        (f"version__in=1,{INT4}", "version__in"),
        (f"contract_value__gt={BIG}", "contract_value__gt"),
        ("contract_value__gt=1e999999", "contract_value__gt"),
        ("contract_value__lt=NaN", "contract_value__lt"),
        ("version=²", "version"),
    ],
)
def test_filter_values_no_column_holds_are_bad_queries(admin_api, query, param):
    body = problem(admin_api.get(f"/api/v1/sample/project?{query}"), 400)
    assert param in pointers(body), body


@pytest.mark.parametrize(
    "query",
    [
        f"headcount__gt={BIG}",
        f"project={BIG}",
        f"headcount__in=1,{BIG}",
        f"group=project&headcount__gt={BIG}",
    ],
)
def test_integer_and_reference_filters_are_bounded(admin_api, query):
    path = "/api/v1/sample/day_sheet" + ("/aggregate" if "group=" in query else "")
    body = problem(admin_api.get(f"{path}?{query}"), 400)
    assert any(name.startswith(("headcount", "project")) for name in pointers(body)), body


@pytest.mark.parametrize("path", ["/api/v1/tasks", "/api/v1/processes"])
@pytest.mark.parametrize(("name", "value"), [("page", BIG), ("record_id", BIG), ("per_page", "²")])
def test_workflow_list_parameters_are_bounded(admin_api, path, name, value):
    body = problem(admin_api.get(f"{path}?{name}={value}"), 400)
    assert name in pointers(body)


def test_delete_with_a_unicode_digit_version_is_a_field_error(admin_api):
    # A query parameter of the wrong type is refused against the document (a 400).
    body = problem(admin_api.delete("/api/v1/sample/project/1?version=²"), 400)
    assert "version" in pointers(body)


def test_migrate_to_a_version_no_column_holds(admin_api):
    body = problem(
        admin_api.post("/api/v1/processes/migrate", {"process": "x", "to_version": int(INT4)}), 422
    )
    assert "/to_version" in pointers(body)


def test_a_start_with_a_record_id_past_int64_is_malformed(admin_api):
    response = raw_post(
        admin_api, "/api/v1/processes", '{"entity": "sample.project", "record_id": ' + BIG + "}"
    )
    assert "64-bit integer" in pointers(problem(response, 422))["/"]


def test_nothing_was_written(admin_api):
    raw_post(admin_api, "/api/v1/sample/project", '{"code": "P9", "name": "\\ud800"}')
    assert admin_api.get("/api/v1/sample/project").get_json()["total"] == 1


# --- the command line -------------------------------------------------------------------------


def run(app: Any, *args: str) -> Any:
    return app.test_cli_runner().invoke(pack_group, list(args), catch_exceptions=False)


def test_cli_check_names_the_problem_of_a_recursion_bomb(app, tmp_path):
    (tmp_path / "pack.json").write_text("[" * 100_000 + "]" * 100_000)
    result = run(app, "check", str(tmp_path))
    assert (
        result.exit_code != 0 and "pack.E001" in result.output and "nested deeper" in result.output
    )


def test_cli_import_names_the_damaged_member(app, tmp_path):
    files = {**folder_files("costs_v1"), "docs/readme.md": "x" * 1000}
    data = bytearray(zip_of(files))
    at = data.rfind(b"PK\x01\x02", 0, data.rfind(b"docs/readme.md"))
    data[at + 24 : at + 28] = (10).to_bytes(4, "little")  # the central directory lies
    evil = tmp_path / "evil.zip"
    evil.write_bytes(bytes(data))
    result = run(app, "import", str(evil))
    assert result.exit_code != 0 and "pack.E080" in result.output
    assert "'docs/readme.md' is damaged" in result.output


def test_cli_refuses_an_archive_too_large_to_be_a_pack(app, tmp_path):
    big = tmp_path / "big.zip"
    with big.open("wb") as handle:
        handle.truncate(60 * 1024 * 1024)
    result = run(app, "check", str(big))
    assert result.exit_code != 0 and "pack.E080" in result.output and "larger than" in result.output
