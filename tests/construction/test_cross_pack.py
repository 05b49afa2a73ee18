"""Flows across packs: an approved day-work sheet raises the project's labour actual cost; an
approved change request raises dynamic cost, the contract value and the schedule forecast;
switching labor off hides it while cost_center keeps the actuals it posted."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from formwork.auth.users import create_token, create_user
from formwork.runtime.clock import session_clock
from formwork.runtime.models import User
from formwork.runtime.packs import set_enabled
from tests.conftest import Api
from tests.construction import support_c
from tests.construction.support_c import (
    act,
    by,
    id_of,
    member_user,
    money,
    report,
    rows,
    workflow,
)

# Outcomes depend on the clock's date: `make test` runs these again a year ahead.
pytestmark = pytest.mark.dates

# the module's database with the construction packs and demo data, and a session on it
cons = support_c.cons
db = support_c.db


@pytest.fixture
def admin(cons: Any, db: Any) -> Api:
    """Return an API client for an administrator."""
    user = db.scalar(sa.select(User).where(User.username == "t_admin"))
    if user is None:
        user = create_user(db, "t_admin", "Secret-pass-1", ["admin"])
    token = create_token(db, user, "t")
    db.commit()
    return Api(cons.test_client(), token)


def _amount(value: Any) -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal(0)


def _approve_sheet(admin: Api, db: Any, project: int) -> dict[str, Any]:
    crew = rows(db, "labor.crew")[2]
    workers = rows(db, "labor.worker", crew=crew["id"])[:3]
    lines = [
        {"worker": w["id"], "work_days": "1", "regular_hours": "8", "overtime_hours": "1",
         "day_rate": str(money(w["day_rate"]))}
        for w in workers
    ]  # fmt: skip
    created = admin.post(
        "/api/v1/labor/day_sheet",
        {"project": project, "work_date": session_clock(db).today().isoformat(), "crew": crew["id"],
         "reason": "minor", "lines": lines},
    )  # fmt: skip
    assert created.status_code == 201, created.get_json()
    db.commit()
    sheet = created.get_json()
    instance = workflow(db, member_user(db, project, "site-engineer")).submit(
        "labor.day_sheet", sheet["id"]
    )
    db.commit()
    for step in ("leader_review", "site_review", "pm_review"):
        act(db, instance.id, step)
    return sheet


def test_approved_day_sheet_raises_labour_actual_cost(admin: Api, db: Any) -> None:
    project = id_of(db, "projects.project", code="P2402")
    account = id_of(db, "cost_center.cost_account", code="0101")
    before = by(report(db, "cost_center", "cost_variance", project=str(project)), "account")
    category_before = by(
        report(db, "cost_center", "cost_by_category", project=str(project)), "category"
    )
    sheet = _approve_sheet(admin, db, project)
    total = Decimal(sheet["total"])
    after = by(report(db, "cost_center", "cost_variance", project=str(project)), "account")
    assert (
        _amount(after[account]["actual"]) == _amount(before.get(account, {}).get("actual")) + total
    )
    category_after = by(
        report(db, "cost_center", "cost_by_category", project=str(project)), "category"
    )
    assert (
        _amount(category_after["labour"]["actual"])
        == _amount(category_before.get("labour", {}).get("actual")) + total
    )


def test_approved_change_raises_dynamic_cost_contract_and_forecast(admin: Api, db: Any) -> None:
    project = id_of(db, "projects.project", code="P2401")
    account = id_of(db, "cost_center.cost_account", code="0504")
    contract = rows(db, "projects.contract", project=project, direction="income")[0]
    (plan,) = rows(db, "schedule.plan", project=project)
    before = by(report(db, "cost_center", "cost_variance", project=str(project)), "account")
    body = {
        "project": project, "contract": contract["id"], "type": "site-visa", "title": "雨季抽排水",
        "event_at": session_clock(db).now().replace(microsecond=0).isoformat(), "quantity": "40",
        "unit": "台班", "unit_price": "800", "account": account, "schedule_impact_days": 6,
    }  # fmt: skip
    created = admin.post("/api/v1/ccb_approval/change_request", body)
    assert created.status_code == 201, created.get_json()
    db.commit()
    record = created.get_json()
    instance = workflow(db, member_user(db, project, "site-engineer")).submit(
        "ccb_approval.change_request", record["id"]
    )
    db.commit()
    act(db, instance.id, "pm_review", data={"approved_amount": 30000})
    amount = Decimal("30000")
    after = by(report(db, "cost_center", "cost_variance", project=str(project)), "account")
    assert (
        _amount(after[account]["dynamic"])
        == _amount(before.get(account, {}).get("dynamic")) + amount
    )
    got = admin.get(f"/api/v1/projects/contract/{contract['id']}").get_json()
    assert Decimal(got["changes_amount"]) == money(contract["changes_amount"]) + amount
    assert Decimal(got["current_amount"]) == money(contract["amount"]) + Decimal(
        got["changes_amount"]
    )
    plan_after = admin.get(f"/api/v1/schedule/plan/{plan['id']}").get_json()
    assert plan_after["forecast_delay_days"] == (plan["forecast_delay_days"] or 0) + 6
    assert (
        plan_after["forecast_finish"]
        == (plan["forecast_finish"] + dt.timedelta(days=6)).isoformat()
    )


def test_disabling_labor_keeps_posted_actuals(admin: Api, db: Any) -> None:
    project = id_of(db, "projects.project", code="P2403")
    sheet = _approve_sheet(admin, db, project)
    assert admin.get(f"/api/v1/labor/day_sheet/{sheet['id']}").status_code == 200
    set_enabled(db, "labor", False)
    db.commit()
    try:
        assert admin.get("/api/v1/labor/day_sheet").status_code == 404
        assert admin.get(f"/api/v1/labor/day_sheet/{sheet['id']}").status_code == 404
        assert admin.get("/api/v1/labor/worker").status_code == 404
        posted = admin.get(f"/api/v1/cost_center/cost_entry?source_ref__eq={sheet['number']}")
        assert posted.status_code == 200
        (entry,) = posted.get_json()["items"]
        assert Decimal(entry["amount"]) == Decimal(sheet["total"])
        actual = by(report(db, "cost_center", "cost_variance", project=str(project)), "account")
        account = id_of(db, "cost_center.cost_account", code="0101")
        labour = sum(
            (
                money(e["amount"])
                for e in rows(db, "cost_center.cost_entry", project=project, account=account)
            ),
            Decimal(0),
        )
        assert _amount(actual[account]["actual"]) == labour
    finally:
        set_enabled(db, "labor", True)
        db.commit()
    assert admin.get(f"/api/v1/labor/day_sheet/{sheet['id']}").status_code == 200
