"""The projects pack: install with demo data, every entity round trip through the REST API,
the reports against sums computed here from the demo JSON, and the members' row rules."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest

from tests.construction.conftest import Construction, build, demo_file

# Outcomes depend on the clock's date: `make test` runs these again a year ahead.
pytestmark = pytest.mark.dates


@pytest.fixture(scope="module")
def cc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Construction]:
    """Return projects and cost_center installed with their demo data (only these two, so
    the numbers are exactly those of their demo files)."""
    built = build(tmp_path_factory.mktemp("projects"), ["projects", "cost_center"])
    yield built
    built.session.close()
    built.app.extensions["formwork"].engine.dispose()


def items(api: Any, path: str) -> list[dict[str, Any]]:
    """Return every record of a list (one page of up to 200)."""
    response = api.get(path + ("&" if "?" in path else "?") + "per_page=200")
    assert response.status_code == 200, response.json
    return list(response.json["items"])


def codes(cc: Construction, entity: str) -> dict[int, str]:
    """Return {id: code} of every record of a projects entity."""
    return {r["id"]: r["code"] for r in items(cc.api(), f"/api/v1/projects/{entity}")}


def test_install_loads_every_demo_file(cc: Construction) -> None:
    admin = cc.api()
    assert "projects installed 1.0.0" in cc.report
    for entity, name in (
        ("project", "projects.json"), ("counterparty", "counterparties.json"),
        ("contract", "contracts.json"), ("member", "members.json"), ("section", "sections.json"),
    ):  # fmt: skip
        response = admin.get(f"/api/v1/projects/{entity}?per_page=1")
        assert response.json["total"] == len(demo_file("projects", name)["records"]), entity
    users = [u["username"] for u in demo_file("projects", "users.json")["users"]]
    assert all(cc.user_id(name) for name in users)
    project = items(admin, "/api/v1/projects/project?code__eq=P2401")[0]
    assert project["manager"] == cc.user_id("zhangwei") and project["status"] == "active"


def test_demo_users_cannot_sign_in_without_a_password(cc: Construction) -> None:
    response = cc.app.test_client().post(
        "/login", data={"username": "lina", "password": "!"}, follow_redirects=False
    )
    assert response.status_code in (200, 400, 401, 403)  # the form again, never a session
    assert "Location" not in response.headers or "/login" in response.headers["Location"]


ROUND_TRIPS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "counterparty": ({"code": "T001", "name": "测试供应商", "kind": "supplier",
                      "bank_account": "6222 0000 1111"}, {"phone": "13800000000"}),
    "project": ({"code": "T2601", "name": "测试项目", "contract_value": "1000000.00",
                 "required_start": "2026-01-01", "required_finish": "2026-12-31"},
                {"status": "active"}),
    "section": ({"code": "T-A", "name": "测试区域"}, {"name": "测试区域（改）"}),
    "member": ({"project_role": "site-engineer"}, {"project_role": "finance"}),
    "contract": ({"code": "T-ZC-001", "direction": "expense", "name": "测试合同",
                  "amount": "120000.00", "retention_pct": "3"}, {"changes_amount": "8000.50"}),
}  # fmt: skip


def body_for(cc: Construction, entity: str) -> dict[str, Any]:
    """Return a create body, with references to demo records filled in."""
    body = dict(ROUND_TRIPS[entity][0])
    p2401 = cc.id_of("projects.project", code="P2401")
    if entity in ("section", "member", "contract"):
        body["project"] = p2401
    if entity == "member":
        body["user"] = cc.user_id("zhoupeng")
    if entity == "contract":
        body["counterparty"] = cc.id_of("projects.counterparty", code="M003")
    if entity == "project":
        body["client"] = cc.id_of("projects.counterparty", code="C001")
        body["manager"] = cc.user_id("chenjing")
    return body


@pytest.mark.parametrize("entity", list(ROUND_TRIPS))
def test_round_trip(cc: Construction, entity: str) -> None:
    admin = cc.api()
    url = f"/api/v1/projects/{entity}"
    created = admin.post(url, body_for(cc, entity))
    assert created.status_code == 201, created.json
    record = admin.get(f"{url}/{created.json['id']}").json
    for name, value in ROUND_TRIPS[entity][0].items():
        assert str(record[name]).rstrip("0").rstrip(".") == str(value).rstrip("0").rstrip(".")
    change = ROUND_TRIPS[entity][1]
    updated = admin.patch(f"{url}/{record['id']}", {**change, "version": record["version"]})
    assert updated.status_code == 200, updated.json
    assert all(Decimal(updated.json[k]) == Decimal(v) if k.endswith("amount")
               else updated.json[k] == v for k, v in change.items())  # fmt: skip
    if entity == "contract":
        assert Decimal(updated.json["current_amount"]) == Decimal("128000.50")
    deleted = admin.delete(f"{url}/{record['id']}?version={updated.json['version']}")
    assert deleted.status_code == 204
    assert admin.get(f"{url}/{record['id']}").status_code == 404


def test_project_rules_and_unique_codes(cc: Construction) -> None:
    admin = cc.api()
    late = admin.post(
        "/api/v1/projects/project",
        {"code": "T2602", "name": "倒排", "required_start": "2026-05-01",
         "required_finish": "2026-04-01"},
    )  # fmt: skip
    assert late.status_code == 422
    assert any(e["pointer"] == "/required_finish" for e in late.json["errors"])
    twice = admin.post("/api/v1/projects/project", {"code": "P2401", "name": "重复"})
    assert twice.status_code == 422


def report(api: Any, name: str, **params: Any) -> dict[str, Any]:
    """Return a projects report as JSON."""
    query = "&".join(f"{k}={v}" for k, v in params.items())
    response = api.get(f"/api/v1/reports/projects/{name}?{query}")
    assert response.status_code == 200, response.json
    return dict(response.json)


def test_projects_by_status(cc: Construction) -> None:
    projects = demo_file("projects", "projects.json")["records"]
    counts = Counter(p["status"] for p in projects)
    values: dict[str, Decimal] = defaultdict(Decimal)
    for p in projects:
        values[p["status"]] += Decimal(p["contract_value"])
    result = report(cc.api(), "projects_by_status")
    assert {r["status"]: r["projects"] for r in result["rows"]} == dict(counts)
    assert {r["status"]: Decimal(r["contract_value"]) for r in result["rows"]} == values
    assert Decimal(result["totals"]["contract_value"]) == sum(values.values())


def contract_sums(direction: str) -> dict[str, dict[str, Decimal]]:
    """Return {project code: {original, changes, current}} of signed contracts of a direction."""
    sums: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for c in demo_file("projects", "contracts.json")["records"]:
        if c["direction"] == direction and c["status"] != "draft":
            row = sums[c["project"]["code"]]
            row["original"] += Decimal(c["amount"])
            row["changes"] += Decimal(c["changes_amount"])
            row["current"] += Decimal(c["amount"]) + Decimal(c["changes_amount"])
    return sums


def test_contract_value_by_project(cc: Construction) -> None:
    project_codes = codes(cc, "project")
    expected = contract_sums("income")
    result = report(cc.api(), "contract_value_by_project")
    got = {project_codes[r["project"]]: r for r in result["rows"]}
    assert set(got) == set(expected)
    for code, sums in expected.items():
        assert Decimal(got[code]["original"]) == sums["original"]
        assert Decimal(got[code]["changes"]) == sums["changes"]
        assert Decimal(got[code]["current"]) == sums["current"]
        pct = (sums["changes"] / sums["original"] * 100).quantize(Decimal("0.1"), ROUND_HALF_UP)
        assert Decimal(got[code]["changes_pct"]) == pct


def test_income_vs_expense_with_and_without_project(cc: Construction) -> None:
    project_codes = codes(cc, "project")
    income, expense = contract_sums("income"), contract_sums("expense")
    result = report(cc.api(), "income_vs_expense")
    for row in result["rows"]:
        code = project_codes[row["project"]]
        assert Decimal(row["income"]) == income[code]["current"]
        assert Decimal(row["expense"]) == expense[code]["current"]
        assert Decimal(row["margin"]) == income[code]["current"] - expense[code]["current"]
    total = sum(v["current"] for v in income.values()) - sum(v["current"] for v in expense.values())
    assert Decimal(result["totals"]["margin"]) == total
    one = report(cc.api(), "income_vs_expense", project=cc.id_of("projects.project", code="P2402"))
    assert [project_codes[r["project"]] for r in one["rows"]] == ["P2402"]


def member_projects(username: str) -> set[str]:
    """Return the codes of the projects a demo user is a member of (from the demo JSON)."""
    members = demo_file("projects", "members.json")["records"]
    return {m["project"]["code"] for m in members if m["user"]["username"] == username}


def test_members_see_only_their_projects(cc: Construction) -> None:
    lina, wangfang = cc.api("lina"), cc.api("wangfang")
    assert member_projects("lina") == {"P2401"}
    listed = items(lina, "/api/v1/projects/project")
    assert [p["code"] for p in listed] == ["P2401"]
    assert lina.get("/api/v1/projects/project?per_page=1").json["total"] == 1
    assert {p["code"] for p in items(wangfang, "/api/v1/projects/project")} == member_projects(
        "wangfang"
    )
    p2402 = cc.id_of("projects.project", code="P2402")
    assert lina.get(f"/api/v1/projects/project/{p2402}").status_code == 404
    contracts = items(lina, "/api/v1/projects/contract")
    expected = [c for c in demo_file("projects", "contracts.json")["records"]
                if c["project"]["code"] == "P2401"]  # fmt: skip
    assert len(contracts) == len(expected) > 0
    assert {c["project"] for c in contracts} == {cc.id_of("projects.project", code="P2401")}
    result = report(lina, "income_vs_expense")
    assert [r["project"] for r in result["rows"]] == [cc.id_of("projects.project", code="P2401")]
    assert Decimal(result["totals"]["income"]) == contract_sums("income")["P2401"]["current"]


def test_bank_account_is_for_finance_only(cc: Construction) -> None:
    c001 = cc.id_of("projects.counterparty", code="C001")
    seen_by_engineer = cc.api("lina").get(f"/api/v1/projects/counterparty/{c001}").json
    assert "bank_account" not in seen_by_engineer and seen_by_engineer["code"] == "C001"
    seen_by_finance = cc.api("zhaomin").get(f"/api/v1/projects/counterparty/{c001}").json
    expected = next(c for c in demo_file("projects", "counterparties.json")["records"]
                    if c["code"] == "C001")  # fmt: skip
    assert seen_by_finance["bank_account"] == expected["bank_account"]
    refused = cc.api("lina").get("/api/v1/projects/counterparty?bank_account__startswith=6")
    assert refused.status_code == 400


def test_site_engineer_cannot_change_contracts(cc: Construction) -> None:
    contract = items(cc.api("lina"), "/api/v1/projects/contract")[0]
    response = cc.api("lina").patch(
        f"/api/v1/projects/contract/{contract['id']}",
        {"name": "改", "version": contract["version"]},
    )
    assert response.status_code == 403
