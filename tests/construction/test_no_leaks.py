"""The probe of issue 12, item 1, run as the demo company's low-privilege users: no bank
account or other project's figure through a reference hop, a preview or a title, and the
packs' declared reference filters (a contract of the same project, a worker of the sheet's
crew, a section of the same project) checked on save and applied to the look-ups."""

from __future__ import annotations

import re
from typing import Any

import pytest

from formwork.auth.users import set_password
from formwork.runtime.models import User
from tests.conftest import PASSWORD
from tests.construction.conftest import Construction
from tests.web.conftest import Browser, sign_in

OUTPUT = re.compile(r'id="out-(\w+)"[^>]*data-fw-value="([^"]*)"')
CONTRACTS = "/api/v1/projects/contract"


def browser(construction: Construction, username: str) -> Browser:
    """Return a browser signed in as a demo user (their password set to the test one)."""
    user = construction.session.get(User, construction.user_id(username))
    set_password(construction.session, user, PASSWORD)
    construction.session.commit()
    return sign_in(construction.app, username)


def refused(response: Any) -> list[tuple[str, str]]:
    assert response.status_code in (400, 422), response.get_json()
    return [(e["pointer"], e["code"]) for e in response.get_json()["errors"]]


@pytest.mark.parametrize(
    "query",
    [
        "/aggregate?group=counterparty.bank_account",
        "?counterparty.bank_account__startswith=6",
        "?sort=counterparty.bank_account",
        "?counterparty.name__contains=建",  # no grant on counterparties at all
    ],
)
def test_a_client_rep_reads_no_counterparty_through_a_contract(
    construction: Construction, query: str
) -> None:
    response = construction.api("sunli").get(f"{CONTRACTS}{query}")
    assert refused(response)[0][1] in ("unknown_filter_field", "unknown_sort_field")


def test_a_project_manager_groups_only_his_projects_through_a_hop(
    construction: Construction,
) -> None:
    zhangwei = construction.api("zhangwei")  # manager of P2401 and P2402; reads every account
    rows = zhangwei.get("/api/v1/funds/account/aggregate?group=project.code").json["items"]
    assert {r["project.code"] for r in rows} <= {None, "P2401", "P2402"}
    values = zhangwei.get("/api/v1/funds/account/aggregate?group=project.contract_value")
    admin = construction.api().get("/api/v1/projects/project?code__eq=P2403").json["items"]
    assert admin[0]["contract_value"] not in {
        r["project.contract_value"] for r in values.json["items"]
    }


def test_the_cost_preview_shows_no_other_projects_figures(construction: Construction) -> None:
    lina = browser(construction, "lina")  # site engineer of P2401 only
    account = construction.id_of("cost_center.cost_account", code="0101")
    form = {"account": str(account), "amount": "1.00", "date": "2026-01-05", "source": "labour"}
    others = {**form, "project": str(construction.id_of("projects.project", code="P2402"))}
    shown = dict(OUTPUT.findall(lina.post("/app/cost_center/cost_entry/compute", others).text))
    admin = browser(construction, "admin")
    truth = dict(OUTPUT.findall(admin.post("/app/cost_center/cost_entry/compute", others).text))
    assert truth["target_amount"] not in ("", "0.00")  # P2402 has a target for 0101
    assert shown["target_amount"] in ("", "0.00") and shown["actual_total"] in ("", "1.00")


def test_a_contract_of_another_project_is_refused_and_not_offered(
    construction: Construction,
) -> None:
    admin = construction.api()
    p2401 = construction.id_of("projects.project", code="P2401")
    other = construction.id_of("projects.contract", code="P2402-ZC-001")
    body = {
        "project": p2401,
        "contract": other,
        "title": "跨项目",
        "type": "design",
        "event_at": "2026-01-05T08:00:00+08:00",
        "account": construction.id_of("cost_center.cost_account", code="0101"),
    }
    response = admin.post("/api/v1/ccb_approval/change_request", body)
    assert ("/contract", "reference_filter") in refused(response)
    zhangwei = browser(construction, "zhangwei")  # reads P2401's and P2402's contracts
    own = admin.get(f"{CONTRACTS}?project__eq={p2401}&per_page=200").json["items"]
    url = f"/app/ccb_approval/change_request/lookup/contract?q=&project={p2401}"
    offered = {int(i) for i in re.findall(r'data-fw-pick="(\d+)"', zhangwei.html(url))}
    assert offered and offered <= {c["id"] for c in own}


def test_a_payment_request_needs_an_expense_contract_of_its_project(
    construction: Construction,
) -> None:
    admin = construction.api()
    p2401 = construction.id_of("projects.project", code="P2401")
    income = construction.id_of("projects.contract", code="P2401-SR-001")
    body = {
        "project": p2401,
        "contract": income,
        "counterparty": admin.get(f"{CONTRACTS}/{income}").json["counterparty"],
        "payment_type": "progress",
        "requested_on": "2026-01-05",
        "amount": "1.00",
        "pay_account": construction.id_of("funds.account", code="XM-2401"),
    }
    response = admin.post("/api/v1/funds/payment_request", body, headers={"Accept-Language": "en"})
    detail = [e for e in response.get_json()["errors"] if e["pointer"] == "/contract"]
    assert detail and detail[0]["code"] == "reference_filter"
    assert "Expense" in detail[0]["detail"] or "expense" in detail[0]["detail"]


def test_a_day_sheet_line_needs_a_worker_of_the_sheet_crew(construction: Construction) -> None:
    admin = construction.api()
    crew = construction.id_of("labor.crew", code="BZ-GJ01")
    stranger = admin.get("/api/v1/labor/worker?crew.code__eq=BZ-MG01").json["items"][0]["id"]
    body = {
        "project": construction.id_of("projects.project", code="P2401"),
        "crew": crew,
        "work_date": "2026-01-05",
        "lines": [{"worker": stranger, "work_days": "1"}],
    }
    response = admin.post("/api/v1/labor/day_sheet", body)
    assert ("/lines/0/worker", "reference_filter") in refused(response)


def test_report_parameter_bars_show_no_title_of_an_unreadable_project(
    construction: Construction,
) -> None:
    lina = browser(construction, "lina")
    p2402 = construction.id_of("projects.project", code="P2402")
    page = lina.get(f"/reports/labor/labour_by_crew?project={p2402}")
    assert "城西实验学校新建工程" not in page.get_data(as_text=True)
