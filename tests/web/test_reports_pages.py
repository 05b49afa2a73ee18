"""Report, dashboard and Gantt pages, their exports, the report API, menus and the home page,
on the reports_v1 test pack with known numbers."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from decimal import Decimal
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from openpyxl import load_workbook

from formwork.auth.users import create_token, create_user
from formwork.runtime.packs import set_enabled
from tests.browser import CHROMIUM, launched, serving
from tests.conftest import PASSWORD
from tests.packs.conftest import install
from tests.runtime.test_reports import TODAY, seed
from tests.web.conftest import sign_in

# Outcomes depend on the clock's date: `make test` runs these again a year ahead.
pytestmark = pytest.mark.dates

DATA_RE = re.compile(r'<script type="application/json" id="([^"]+)">(.*?)</script>', re.S)


@pytest.fixture
def ledger(app: Flask, session: Any, clock: Any) -> dict[str, Any]:
    """Install the reports_v1 pack, users (admin, manager of P1, cost-only) and records,
    with the app's clock on the day the records were written for."""
    clock.set(TODAY)
    install(session, "reports_v1")
    admin = create_user(session, "admin", PASSWORD, ["admin"])
    manager = create_user(session, "manager", PASSWORD, ["ledger_manager"])
    create_user(session, "coster", PASSWORD, ["ledger_cost_only"])
    tokens = {
        "admin": create_token(session, admin, "t"),
        "manager": create_token(session, manager, "t"),
    }
    session.commit()
    data = seed(session, manager.id)
    data["tokens"] = tokens
    return data


def charts_of(html: str) -> dict[str, Any]:
    return {name: json.loads(body) for name, body in DATA_RE.findall(html)}


def cells(html: str, testid: str) -> list[list[str]]:
    table = html.split(f'data-testid="{testid}"', 1)[1].split("</table>", 1)[0]
    body = table.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    return [
        [
            unescape(re.sub(r"<[^>]+>", "", c)).strip()
            for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)
        ]
        for r in rows
    ]


def test_report_page_table_totals_and_chart(app: Flask, ledger: dict[str, Any]) -> None:
    admin = sign_in(app, "admin")
    html = admin.html("/reports/ledger/cost_variance")
    rows = cells(html, "report-table")
    by_account = {r[0]: r for r in rows}
    # 人工费: target 1,400.00 (1000 + 400), actual 1,510.10 (600.10 + 500 + 410)
    assert by_account["人工费"][1:4] == ["1,400.00", "1,510.10", "-110.10"]
    assert by_account["材料费"][1:4] == ["2,800.50", "1,300.24", "1,500.26"]
    assert "table-danger" in html  # 人工费 is over target
    totals = html.split('class="fw-report-totals"', 1)[1].split("</tr>", 1)[0]
    assert "4,200.50" in totals and "2,890.34" in totals and "1,310.16" in totals
    chart = charts_of(html)["report-chart-data"]
    assert chart["type"] == "bar"
    assert chart["categories"] == [r[0] for r in rows]
    assert [s["name"] for s in chart["series"]] == ["目标成本", "实际成本"]
    assert chart["series"][1]["data"][chart["categories"].index("人工费")] == "1510.10"
    assert "<script>" not in html and " style=" not in html.split("<main", 1)[1]


def test_report_params_and_bad_param(app: Flask, ledger: dict[str, Any]) -> None:
    admin = sign_in(app, "admin")
    p2 = ledger["projects"]["P2"]["id"]
    html = admin.html(f"/reports/ledger/cost_variance?project={p2}")
    assert {r[0]: r[2] for r in cells(html, "report-table")} == {
        "人工费": "410.00",
        "材料费": "99.99",
    }
    assert 'value="P2"' in html  # the look-up shows the chosen project's title
    response = admin.get("/reports/ledger/cost_variance?from=yesterday")
    assert response.status_code == 400
    assert "from" in response.get_data(as_text=True)
    assert 'data-testid="report-error"' in response.get_data(as_text=True)


def test_english_labels_and_locale(app: Flask, ledger: dict[str, Any]) -> None:
    admin = sign_in(app, "admin")
    admin.post("/locale", {"locale": "en", "next": "/"})
    html = admin.html("/reports/ledger/receivables_ageing")
    assert "Receivables ageing" in html and "Age (days)" in html
    chart = charts_of(html)["report-chart-data"]
    assert chart["type"] == "pie" and chart["series"][0]["name"] == "Amount"
    assert [r[0] for r in cells(html, "report-table")] == ["0-30", "31-90", "91-180", ">180"]


def test_exports_neutralise_formulas(app: Flask, ledger: dict[str, Any], session: Any) -> None:
    from tests.runtime.test_reports import _records

    _records(session).create("ledger.account", {"code": "99", "name": "=HYPERLINK(1)"})
    session.commit()
    admin = sign_in(app, "admin")
    response = admin.get("/reports/ledger/schedule/export.csv")
    assert response.status_code == 200
    lines = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert lines[0][:2] == ["编码", "任务名称"] and len(lines) == 5
    response = admin.get("/reports/ledger/monthly_cost/export.xlsx")
    sheet = load_workbook(io.BytesIO(response.data)).active
    values = list(sheet.iter_rows(values_only=True))
    assert values[0] == ("日期", "金额", "数量")
    assert sum(Decimal(str(v[1])) for v in values[1:]) == Decimal("2890.34")


def test_csv_formula_injection(app: Flask, ledger: dict[str, Any], session: Any) -> None:
    from tests.runtime.test_reports import _records

    project = ledger["projects"]["P1"]["id"]
    _records(session).create(
        "ledger.task",
        {"project": project, "code": "X", "name": "=cmd|' /C calc'!A0",
         "planned_start": "2026-01-01", "planned_finish": "2026-01-02"},
    )  # fmt: skip
    session.commit()
    admin = sign_in(app, "admin")
    body = admin.get("/reports/ledger/schedule/export.csv").get_data(as_text=True)
    assert "'=cmd|" in body


def test_dashboard_page(app: Flask, ledger: dict[str, Any]) -> None:
    admin = sign_in(app, "admin")
    html = admin.html("/dashboards/ledger/overview")
    assert "成本总览" in html
    assert re.search(r'data-testid="d-w1-number">2,890.34<', html)
    charts = charts_of(html)
    assert charts["d-w2-chart-data"]["type"] == "pie"
    assert charts["d-w3-chart-data"]["type"] == "bar"
    assert charts["d-w4-chart-data"]["type"] == "line"
    assert charts["d-w5-chart-data"]["type"] == "gantt"
    assert 'data-testid="d-w6-table"' in html
    tasks = charts["d-w5-chart-data"]["tasks"]
    assert {t["id"] for t in tasks} >= {"T1", "T2", "M1", "T9"}


def test_row_rules_and_hidden_fields_on_pages_and_api(app: Flask, ledger: dict[str, Any]) -> None:
    manager = sign_in(app, "manager")
    html = manager.html("/reports/ledger/cost_variance")
    totals = html.split('class="fw-report-totals"', 1)[1].split("</tr>", 1)[0]
    assert "2,380.35" in totals  # P1 only: 600.10 + 500 + 1200.25 + 80
    assert "管理费" not in html  # the hidden fee and the share built on it are dropped
    client = app.test_client()
    headers = {"Authorization": f"Bearer {ledger['tokens']['manager']}"}
    body = client.get("/api/v1/reports/ledger/cost_variance", headers=headers).get_json()
    assert body["totals"]["actual"] == "2380.35"
    assert [c["name"] for c in body["columns"]] == [
        "account", "target", "actual", "variance", "pct", "entries"
    ]  # fmt: skip
    assert all("fee" not in row for row in body["rows"])


def test_api_shape(app: Flask, ledger: dict[str, Any]) -> None:
    client = app.test_client()
    headers = {"Authorization": f"Bearer {ledger['tokens']['admin']}"}
    body = client.get("/api/v1/reports/ledger/receivables_ageing", headers=headers).get_json()
    assert body["rows"][0] == {"age": "0-30", "amount": "300.00", "n": 2, "average": "150.00"}
    assert body["totals"] == {"amount": "2100.00", "n": 6}
    variance = client.get("/api/v1/reports/ledger/cost_variance", headers=headers).get_json()
    labour = ledger["accounts"]["01"]["id"]
    assert variance["titles"]["account"][str(labour)] == "人工费"
    bad = client.get("/api/v1/reports/ledger/cost_variance?project=x", headers=headers)
    assert bad.status_code == 400 and bad.get_json()["errors"][0]["pointer"] == "project"
    assert client.get("/api/v1/reports/ledger/cost_variance").status_code == 401
    assert client.get("/api/v1/reports/ledger/nope", headers=headers).status_code == 404


def test_permissions_and_disabled_pack(app: Flask, ledger: dict[str, Any], session: Any) -> None:
    coster = sign_in(app, "coster")
    assert coster.get("/reports/ledger/cost_variance").status_code == 403
    assert coster.get("/reports/ledger/monthly_cost").status_code == 200
    admin = sign_in(app, "admin")
    set_enabled(session, "ledger", False)
    session.commit()
    assert admin.get("/reports/ledger/cost_variance").status_code == 404
    assert admin.get("/dashboards/ledger/overview").status_code == 404


def test_menu_and_home(app: Flask, ledger: dict[str, Any]) -> None:
    admin = sign_in(app, "admin")
    html = admin.html("/")
    menu = html.split('aria-labelledby="nav-ledger"', 1)[1].split("</ul>", 1)[0]
    links = re.findall(r'href="([^"]+)">([^<]+)<', menu)
    assert links[0] == ("/dashboards/ledger/overview", "成本总览")
    assert ("/reports/ledger/cost_variance", "目标成本与实际成本对比") in links
    assert ("/reports/ledger/schedule", "进度横道图") in links  # the menu's own label
    assert 'data-testid="h-w1-number">2,890.34<' in html  # the first dashboard on the home page
    coster = sign_in(app, "coster")
    home = coster.html("/")
    assert "/reports/ledger/cost_variance" not in home
    assert "/dashboards/ledger/overview" in home  # one widget (monthly cost) is readable


def test_lookup_applies_row_rules(app: Flask, ledger: dict[str, Any]) -> None:
    admin = sign_in(app, "admin")
    assert "P2" in admin.html("/reports/lookup/ledger/project?lookup_q=P")
    coster = sign_in(app, "coster")
    assert coster.get("/reports/lookup/ledger/project?lookup_q=P").status_code == 403


# -- in a real browser ---------------------------------------------------------------------------

SHOTS = Path(__file__).resolve().parents[2] / "screenshots"


@pytest.fixture
def served(app: Flask, ledger: dict[str, Any]) -> Iterator[str]:
    """Serve the app with the ledger pack on a free port."""
    app.config["REGISTRY_TTL"] = 60.0
    with serving(app) as base:
        yield base


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's Chromium is not installed")
def test_dashboard_draws_charts_and_gantt(served: str) -> None:
    with launched() as browser:
        context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
        context.set_default_timeout(10000)
        page = context.new_page()
        errors: list[str] = []
        missing: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(served + "/login")
        page.get_by_label("用户名").fill("admin")
        page.get_by_label("密码").fill(PASSWORD)
        page.get_by_role("button", name="登录").click()
        page.wait_for_url(served + "/")
        page.goto(served + "/dashboards/ledger/overview")
        page.wait_for_selector("#d-w3-chart canvas")
        page.wait_for_selector("#d-w5-chart .bar-wrapper")
        assert page.locator(".fw-chart canvas").count() >= 3
        assert page.locator("#d-w5-chart .bar-wrapper.fw-gantt-late").count() == 1
        assert page.locator("#d-w5-chart .bar-wrapper.fw-gantt-actual").count() == 2
        assert page.locator("#d-w5-chart .bar-wrapper").count() == 6
        assert page.get_by_test_id("d-w1-number").inner_text() == "2,890.34"
        page.hover("#d-w3-chart canvas")  # a tooltip must not need inline styles (CSP)
        page.hover("#d-w5-chart .bar-wrapper >> nth=0")
        SHOTS.mkdir(exist_ok=True)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(SHOTS / "reports-dashboard.png"), full_page=True)
        page.goto(served + "/reports/ledger/cost_variance")
        page.wait_for_selector("#report-chart canvas")
        page.wait_for_timeout(1500)  # let the bars finish growing before the picture
        page.screenshot(path=str(SHOTS / "reports-cost-variance.png"), full_page=True)
        assert [u for u in missing if not u.endswith("/favicon.ico")] == []
        assert [e for e in errors if not e.startswith("Failed to load resource")] == []


def test_dashboard_shows_only_readable_widgets(app: Flask, ledger: dict[str, Any]) -> None:
    coster = sign_in(app, "coster")
    html = coster.html("/dashboards/ledger/overview")
    charts = charts_of(html)
    assert [c["type"] for c in charts.values()] == ["line"]  # monthly cost only
    assert "cost_variance" not in html
