"""The cost_center pack: install, the account tree, every entity round trip, the reports
against sums computed here from the demo JSON, hard and soft control, the target-cost
approval (cost engineer submits, the project's manager approves) and the members' row rules."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest

from tests.construction.conftest import Construction, build, demo_file, resolve_date

# Outcomes depend on the clock's date: `make test` runs these again a year ahead.
pytestmark = pytest.mark.dates

CENT = Decimal("0.01")


@pytest.fixture(scope="module")
def cc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Construction]:
    """Return projects and cost_center installed with their demo data (only these two, so
    the numbers are exactly those of their demo files)."""
    built = build(tmp_path_factory.mktemp("cost_center"), ["projects", "cost_center"])
    yield built
    built.session.close()
    built.app.extensions["formwork"].engine.dispose()


def items(api: Any, path: str) -> list[dict[str, Any]]:
    """Return every record of a list, page by page."""
    out: list[dict[str, Any]] = []
    page = 1
    while True:
        joiner = "&" if "?" in path else "?"
        response = api.get(f"{path}{joiner}per_page=200&page={page}")
        assert response.status_code == 200, response.json
        out += response.json["items"]
        if len(out) >= response.json["total"] or not response.json["items"]:
            return out
        page += 1


def report(api: Any, name: str, **params: Any) -> dict[str, Any]:
    """Return a cost_center report as JSON."""
    query = "&".join(f"{k}={v}" for k, v in params.items())
    response = api.get(f"/api/v1/reports/cost_center/{name}?{query}")
    assert response.status_code == 200, response.json
    return dict(response.json)


def records(name: str) -> list[dict[str, Any]]:
    """Return the records of a cost_center demo (or fixture) file."""
    return list(demo_file("cost_center", name)["records"])


def accounts() -> dict[str, dict[str, Any]]:
    """Return the account tree fixture by code."""
    return {a["code"]: a for a in records("cost_accounts.json")}


def current_targets() -> dict[tuple[str, str], Decimal]:
    """Return {(project code, account code): target} of the current final target costs."""
    current = {t["code"] for t in records("target_costs_final.json") if t.get("is_current")}
    headers = {t["code"]: t["project"]["code"] for t in records("target_costs.json")}
    out: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for line in records("target_cost_lines.json"):
        if line["target_cost"]["code"] in current:
            key = (headers[line["target_cost"]["code"]], line["account"]["code"])
            out[key] += Decimal(line["amount"])
    return out


def sums(name: str) -> dict[tuple[str, str], Decimal]:
    """Return {(project code, account code): amount} of a demo file of amounts."""
    out: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for r in records(name):
        out[(r["project"]["code"], r["account"]["code"])] += Decimal(r["amount"])
    return out


def ids(cc: Construction, pack: str, entity: str) -> dict[int, str]:
    """Return {id: code} of an entity with a code."""
    return {r["id"]: r["code"] for r in items(cc.api(), f"/api/v1/{pack}/{entity}")}


def test_install_loads_the_account_tree_and_demo(cc: Construction) -> None:
    assert "cost_center installed 1.0.0" in cc.report
    tree = accounts()
    stored = items(cc.api(), "/api/v1/cost_center/cost_account")
    by_id = {a["id"]: a for a in stored}
    assert {a["code"] for a in stored} == set(tree)
    for account in stored:
        expected = tree[account["code"]]
        parent = by_id[account["parent"]]["code"] if account["parent"] else None
        assert parent == (expected.get("parent") or {}).get("code")
        assert (account["category"], account["control"]) == (
            expected["category"], expected["control"],
        )  # fmt: skip
        assert account["full_name"] == f"{account['code']} {account['name']}"
    assert tree["0101"]["name"].startswith("点工") and tree["0101"]["category"] == "labour"
    for entity, name in (
        ("commitment", "commitments.json"), ("cost_entry", "cost_entries.json"),
        ("target_cost_line", "target_cost_lines.json"), ("target_cost", "target_costs.json"),
    ):  # fmt: skip
        total = cc.api().get(f"/api/v1/cost_center/{entity}?per_page=1").json["total"]
        assert total == len(records(name)), entity


def test_target_cost_versions_and_totals(cc: Construction) -> None:
    targets = items(cc.api(), "/api/v1/cost_center/target_cost")
    finals = {t["code"]: t for t in records("target_costs_final.json")}
    lines: dict[str, Decimal] = defaultdict(Decimal)
    for line in records("target_cost_lines.json"):
        lines[line["target_cost"]["code"]] += Decimal(line["amount"])
    for target in targets:
        final = finals.get(target["code"], {})
        assert target["status"] == final.get("status", "draft")
        assert target["is_current"] == bool(final.get("is_current"))
        assert Decimal(target["total"]) == lines[target["code"]]
    current = [t for t in targets if t["is_current"]]
    assert len(current) == len({t["project"] for t in current}) == 3


def body_for(cc: Construction, entity: str) -> dict[str, Any]:
    """Return a create body for a cost_center entity, on the tender project P2501."""
    project = cc.id_of("projects.project", code="P2501")
    account = cc.id_of("cost_center.cost_account", code="0305")
    machinery = cc.id_of("cost_center.cost_account", code="03")
    bodies: dict[str, dict[str, Any]] = {
        "cost_account": {"code": "0399", "name": "测试机械", "category": "machinery",
                         "control": "soft", "parent": machinery},
        "target_cost": {"code": "T-MB-1", "project": project, "stage": "bid", "revision": 9},
        "commitment": {"project": project, "account": account, "kind": "change",
                       "amount": "1000.00", "date": "2026-01-05", "source_ref": "T-BG-1"},
        "cost_entry": {"project": project, "account": account, "date": "2026-01-06",
                       "amount": "250.40", "source": "expense", "source_ref": "T-BX-1"},
    }  # fmt: skip
    if entity == "target_cost_line":
        header = cc.api().post(
            "/api/v1/cost_center/target_cost", {**bodies["target_cost"], "code": "T-MB-2"}
        )
        assert header.status_code == 201, header.json
        return {"target_cost": header.json["id"], "account": account, "amount": "5000.00"}
    return bodies[entity]


CHANGES = {
    "cost_account": {"name": "测试机械（改）"},
    "target_cost": {"name": "投标测算"},
    "target_cost_line": {"amount": "5200.00"},
    "commitment": {"amount": "1100.00"},
    "cost_entry": {"description": "发票 12 号"},
}


@pytest.mark.parametrize("entity", list(CHANGES))
def test_round_trip(cc: Construction, entity: str) -> None:
    admin = cc.api()
    url = f"/api/v1/cost_center/{entity}"
    body = body_for(cc, entity)
    created = admin.post(url, body)
    assert created.status_code == 201, created.json
    record = admin.get(f"{url}/{created.json['id']}").json
    for name, value in body.items():
        got = record[name]
        assert Decimal(got) == Decimal(value) if name == "amount" else got == value
    updated = admin.patch(
        f"{url}/{record['id']}", {**CHANGES[entity], "version": record["version"]}
    )
    assert updated.status_code == 200, updated.json
    for name, value in CHANGES[entity].items():
        assert updated.json[name] == value or Decimal(updated.json[name]) == Decimal(value)
    deleted = admin.delete(f"{url}/{record['id']}?version={updated.json['version']}")
    assert deleted.status_code == 204, deleted.json
    assert admin.get(f"{url}/{record['id']}").status_code == 404


def pct(part: Decimal, whole: Decimal) -> Decimal:
    """Return part / whole in percent, rounded half up to one place (as the report does)."""
    return (part / whole * 100).quantize(Decimal("0.1"), ROUND_HALF_UP)


@pytest.mark.parametrize("project", ["P2401", "P2402", "P2403"])
def test_cost_variance_by_account(cc: Construction, project: str) -> None:
    targets, dynamic, actual = (
        current_targets(),
        sums("commitments.json"),
        sums("cost_entries.json"),
    )
    account_codes = ids(cc, "cost_center", "cost_account")
    result = report(cc.api(), "cost_variance", project=cc.id_of("projects.project", code=project))
    rows = {account_codes[r["account"]]: r for r in result["rows"]}
    assert set(rows) == {a for (p, a) in targets if p == project}
    for account, row in rows.items():
        t, d, a = (x.get((project, account), Decimal(0)) for x in (targets, dynamic, actual))
        assert Decimal(row["target"]) == t
        assert Decimal(row["dynamic"] or 0) == d
        assert Decimal(row["actual"] or 0) == a
        assert Decimal(row["variance"]) == t - d
        assert (Decimal(row["dynamic_pct"]) if row["dynamic_pct"] else None) == (
            pct(d, t) if d else None
        )
    totals = result["totals"]
    assert Decimal(totals["target"]) == sum(v for (p, _a), v in targets.items() if p == project)
    assert Decimal(totals["actual"]) == sum(v for (p, _a), v in actual.items() if p == project)
    overrun = [a for a, r in rows.items() if result["styles"][list(rows).index(a)] == "danger"]
    assert overrun == [a for a in rows if dynamic[(project, a)] > targets[(project, a)]]


def test_cost_by_category_and_by_project(cc: Construction) -> None:
    tree = accounts()
    targets, dynamic, actual = (
        current_targets(),
        sums("commitments.json"),
        sums("cost_entries.json"),
    )
    p2402 = cc.id_of("projects.project", code="P2402")
    by_category = report(cc.api(), "cost_by_category", project=p2402)
    for row in by_category["rows"]:
        for name, source in (("target", targets), ("dynamic", dynamic), ("actual", actual)):
            expected = sum(v for (p, a), v in source.items()
                           if p == "P2402" and tree[a]["category"] == row["category"])  # fmt: skip
            assert Decimal(row[name] or 0) == expected, (row["category"], name)
    assert len(by_category["rows"]) == 6
    project_codes = ids(cc, "projects", "project")
    by_project = report(cc.api(), "cost_by_project")
    got = {project_codes[r["project"]]: r for r in by_project["rows"]}
    for code in ("P2401", "P2402", "P2403"):
        for name, source in (("target", targets), ("dynamic", dynamic), ("actual", actual)):
            expected = sum(v for (p, _a), v in source.items() if p == code)
            assert Decimal(got[code][name]) == expected, (code, name)


def test_actual_by_month_and_category(cc: Construction) -> None:
    tree = accounts()
    p2401 = cc.id_of("projects.project", code="P2401")
    result = report(cc.api(), "actual_by_month", project=p2401, **{"from": "2000-01-01"})
    expected: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for entry in records("cost_entries.json"):
        if entry["project"]["code"] == "P2401":
            month = resolve_date(entry["date"]).strftime("%Y-%m")
            expected[month][tree[entry["account"]["code"]]["category"]] += Decimal(entry["amount"])
    assert [r["month"] for r in result["rows"]] == sorted(expected)
    for row in result["rows"]:
        for category, amount in expected[row["month"]].items():
            assert Decimal(row[category]) == amount
        assert Decimal(row["total"]) == sum(expected[row["month"]].values())
    default = report(cc.api(), "actual_by_month", project=p2401)
    assert len(default["rows"]) <= 6  # from the first day of the month five months ago


def test_dynamic_by_kind(cc: Construction) -> None:
    expected: dict[str, Decimal] = defaultdict(Decimal)
    for c in records("commitments.json"):
        if c["project"]["code"] == "P2401":
            expected[c["kind"]] += Decimal(c["amount"])
    result = report(cc.api(), "dynamic_by_kind", project=cc.id_of("projects.project", code="P2401"))
    assert {r["kind"]: Decimal(r["amount"]) for r in result["rows"]} == expected


def expected_overruns() -> list[tuple[str, str, str]]:
    """Return (project, account, source_ref) of commitments that took their account over the
    target when they were booked, replaying the demo file in order."""
    targets, running = current_targets(), defaultdict(Decimal)
    out = []
    for c in records("commitments.json"):
        key = (c["project"]["code"], c["account"]["code"])
        running[key] += Decimal(c["amount"])
        if running[key] > targets[key]:
            out.append((*key, c["source_ref"]))
    return out


def test_overruns_list_the_soft_warnings(cc: Construction) -> None:
    expected = expected_overruns()
    assert len(expected) >= 2  # the demo has overruns on purpose
    result = report(cc.api(), "overruns")
    project_codes = ids(cc, "projects", "project")
    account_codes = ids(cc, "cost_center", "cost_account")
    got = [(project_codes[r["project"]], account_codes[r["account"]], r["source_ref"])
           for r in result["rows"]]  # fmt: skip
    assert sorted(got) == sorted(expected)
    for row in result["rows"]:
        assert Decimal(row["overrun"]) == Decimal(row["dynamic_total"]) - Decimal(
            row["target_amount"]
        )
        assert Decimal(row["overrun"]) > 0


def remaining(project: str, account: str) -> Decimal:
    """Return the target left on an account after the demo commitments."""
    return current_targets()[(project, account)] - sums("commitments.json")[(project, account)]


def test_hard_control_refuses_a_commitment_over_the_target(cc: Construction) -> None:
    cost = cc.api("wangfang")
    project = cc.id_of("projects.project", code="P2401")
    steel = cc.id_of("cost_center.cost_account", code="0201")
    left = remaining("P2401", "0201")
    assert left > 0
    body = {"project": project, "account": steel, "kind": "estimate", "date": "2026-11-01",
            "amount": str(left + CENT)}  # fmt: skip
    refused = cost.post("/api/v1/cost_center/commitment", body)
    assert refused.status_code == 422, refused.json
    problem = refused.json["errors"][0]
    assert problem["pointer"] == "/amount" and "刚性" in problem["detail"]
    fits = cost.post("/api/v1/cost_center/commitment", {**body, "amount": str(left)})
    assert fits.status_code == 201, fits.json
    assert fits.json["over_target"] is False
    more = cost.patch(
        f"/api/v1/cost_center/commitment/{fits.json['id']}",
        {"amount": str(left + 1), "version": fits.json["version"]},
    )
    assert more.status_code == 422  # an update counts the others, not its old amount
    change = cost.post("/api/v1/cost_center/commitment", {**body, "kind": "change", "amount": "1"})
    assert change.status_code == 201 and change.json["over_target"] is True  # approved change
    for made in (fits.json, change.json):
        assert (
            cost.delete(
                f"/api/v1/cost_center/commitment/{made['id']}?version={made['version']}"
            ).status_code
            == 204
        )


def test_soft_control_saves_with_a_warning(cc: Construction) -> None:
    cost = cc.api("wangfang")
    project = cc.id_of("projects.project", code="P2403")
    tools = cc.id_of("cost_center.cost_account", code="0305")
    amount = remaining("P2403", "0305") + 1000
    saved = cost.post(
        "/api/v1/cost_center/commitment",
        {"project": project, "account": tools, "kind": "estimate", "date": "2026-11-02",
         "amount": str(amount)},
    )  # fmt: skip
    assert saved.status_code == 201, saved.json
    assert saved.json["over_target"] is True
    assert Decimal(saved.json["dynamic_total"]) - Decimal(saved.json["target_amount"]) == 1000
    assert (
        cost.delete(
            f"/api/v1/cost_center/commitment/{saved.json['id']}?version={saved.json['version']}"
        ).status_code
        == 204
    )


def test_site_engineer_sees_only_his_project(cc: Construction) -> None:
    lina = cc.api("lina")
    p2401 = cc.id_of("projects.project", code="P2401")
    mine = [e for e in records("cost_entries.json") if e["project"]["code"] == "P2401"]
    listed = items(lina, "/api/v1/cost_center/cost_entry")
    assert len(listed) == len(mine) and {e["project"] for e in listed} == {p2401}
    assert lina.get("/api/v1/cost_center/commitment?per_page=1").json["total"] == len(
        [c for c in records("commitments.json") if c["project"]["code"] == "P2401"]
    )
    by_project = report(lina, "cost_by_project")
    assert [r["project"] for r in by_project["rows"]] == [p2401]
    variance = report(lina, "cost_variance")  # no project chosen: only what lina may read
    actual = sum(v for (p, _a), v in sums("cost_entries.json").items() if p == "P2401")
    assert Decimal(variance["totals"]["actual"]) == actual
    other = cc.id_of("projects.project", code="P2402")
    assert report(lina, "cost_variance", project=other)["rows"] == []
    aggregate = lina.get("/api/v1/cost_center/cost_entry/aggregate?group=project&sum=amount")
    assert [r["project"] for r in aggregate.json["items"]] == [p2401]


def new_target(cc: Construction, code: str, project: int, lines: dict[str, str]) -> int:
    """Create a draft target cost with lines as the cost engineer; return its id."""
    cost = cc.api("wangfang")
    body = {"code": code, "project": project, "stage": "adjusted", "revision": int(code[-1])}
    header = cost.post("/api/v1/cost_center/target_cost", body)
    assert header.status_code == 201, header.json
    for account, amount in lines.items():
        line = cost.post(
            "/api/v1/cost_center/target_cost_line",
            {"target_cost": header.json["id"], "amount": amount,
             "account": cc.id_of("cost_center.cost_account", code=account)},
        )  # fmt: skip
        assert line.status_code == 201, line.json
    return int(header.json["id"])


def approve_as(cc: Construction, username: str, record_id: int) -> None:
    """Complete the target cost's open approval task as `username`."""
    api = cc.api(username)
    tasks = api.get("/api/v1/tasks?process=target_cost_approval").json["items"]
    task = next(t for t in tasks if t.get("record_id") == record_id or len(tasks) == 1)
    done = api.post(
        f"/api/v1/tasks/{task['id']}/complete", {"action": "approve", "comment": "同意"}
    )
    assert done.status_code == 200, done.json


def test_target_cost_approval_end_to_end(cc: Construction) -> None:
    admin, cost = cc.api(), cc.api("wangfang")
    p2501 = cc.id_of("projects.project", code="P2501")
    for user, role in (("chenjing", "manager"), ("wangfang", "cost-engineer")):
        body = {"project": p2501, "user": cc.user_id(user), "project_role": role}
        member = admin.post("/api/v1/projects/member", body)
        assert member.status_code == 201, member.json
    first = new_target(cc, "P2501-MB-ADJ-1", p2501, {"0201": "8000000.00", "0401": "6000000.00"})
    assert cc.api("lina").post(
        "/api/v1/processes", {"entity": "cost_center.target_cost", "record_id": first}
    ).status_code in (403, 404)
    started = cost.post(
        "/api/v1/processes", {"entity": "cost_center.target_cost", "record_id": first}
    )
    assert started.status_code == 201, started.json
    assert cost.get(f"/api/v1/cost_center/target_cost/{first}").json["status"] == "in-approval"
    assert cc.api("zhangwei").get("/api/v1/tasks?process=target_cost_approval").json["items"] == []
    locked = cost.post("/api/v1/cost_center/target_cost_line",
                       {"target_cost": first, "amount": "1",
                        "account": cc.id_of("cost_center.cost_account", code="0202")})  # fmt: skip
    assert locked.status_code == 422
    approve_as(cc, "chenjing", first)
    record = cost.get(f"/api/v1/cost_center/target_cost/{first}").json
    assert (record["status"], record["is_current"], Decimal(record["total"])) == (
        "approved", True, Decimal("14000000.00"),
    )  # fmt: skip
    second = new_target(cc, "P2501-MB-ADJ-2", p2501, {"0201": "8500000.00"})
    cost.post("/api/v1/processes", {"entity": "cost_center.target_cost", "record_id": second})
    approve_as(cc, "chenjing", second)
    assert cost.get(f"/api/v1/cost_center/target_cost/{first}").json["is_current"] is False
    assert cost.get(f"/api/v1/cost_center/target_cost/{second}").json["is_current"] is True
    variance = report(cost, "cost_variance", project=p2501)
    assert Decimal(variance["totals"]["target"]) == Decimal("8500000.00")


def test_pages_show_the_live_demo_and_the_soft_warning(cc: Construction) -> None:
    from formwork.auth.users import set_password
    from formwork.runtime.models import User
    from tests.conftest import PASSWORD
    from tests.web.conftest import sign_in

    for name in ("wangfang", "lina"):
        user_id = cc.user_id(name)
        set_password(cc.session, cc.session.get(User, user_id), PASSWORD)
        cc.session.commit()
    browser = sign_in(cc.app, "wangfang")
    home = browser.html("/")
    assert "成本中心总览" in home and "项目总览" in home and "项目状态" in home  # drawn in full
    assert "项目目标/动态/实际成本" in browser.html("/dashboards/cost_center/cost_overview")
    over = items(cc.api(), "/api/v1/cost_center/commitment?over_target__eq=true")[0]
    page = browser.html(f"/app/cost_center/commitment/{over['id']}")
    assert "超目标成本预警" in page and "科目目标成本" in page
    assert "动态成本" in browser.html("/app/cost_center/commitment/new")
    pages = ("/dashboards/cost_center/cost_overview", "/reports/cost_center/cost_variance",
             "/dashboards/projects/projects_overview", "/app/cost_center/target_cost")  # fmt: skip
    for path in pages:
        browser.html(path)
    lina = sign_in(cc.app, "lina")
    overview = lina.html("/dashboards/cost_center/cost_overview")
    assert "滨江花园二期住宅工程" in overview and "城西实验学校新建工程" not in overview
