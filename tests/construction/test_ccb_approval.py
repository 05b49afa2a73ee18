"""The ccb_approval pack (变更签证): gap-free numbers per project, the 48-hour flag, entity
round trip, row rules, the amount-routed approval (project manager; + cost consultant;
+ parallel countersign with the client's representative) with its postings, and every
report against numbers computed here from the raw tables."""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest

from formwork.auth.users import create_user
from formwork.runtime.clock import session_clock
from tests.conftest import Api
from tests.construction import support_c
from tests.construction.support_c import (
    act,
    by,
    id_of,
    member_user,
    money,
    ready,
    report,
    rows,
    workflow,
)

# Outcomes depend on the clock's date: `make test` runs these again a year ahead.
pytestmark = pytest.mark.dates

CR = "ccb_approval.change_request"

# the module's database with the construction packs and demo data, and a session on it
cons = support_c.cons
admin = support_c.admin
api_for = support_c.api_for
db = support_c.db


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


# -- install, numbers, flags ------------------------------------------------------------------


def test_numbers_are_gap_free_per_project(db: Any) -> None:
    codes = {p["id"]: p["code"] for p in rows(db, "projects.project")}
    numbers: dict[str, list[int]] = defaultdict(list)
    for request in rows(db, CR):
        match = re.fullmatch(r"(.+)-BG-(\d{4})", request["number"])
        assert match and match.group(1) == codes[request["project"]], request["number"]
        numbers[match.group(1)].append(int(match.group(2)))
    assert len(numbers) >= 3
    for found in numbers.values():
        assert sorted(found) == list(range(1, len(found) + 1))


def test_late_submission_and_estimate(db: Any) -> None:
    requests = rows(db, CR)
    assert any(r["late_submission"] for r in requests) and not all(
        r["late_submission"] for r in requests
    )
    for r in requests:
        late = (_aware(r["submitted_at"]) - _aware(r["event_at"])) > dt.timedelta(hours=48)
        assert bool(r["late_submission"]) == late
        estimate = (Decimal(str(r["quantity"])) * money(r["unit_price"])).quantize(
            Decimal("0.01"), ROUND_HALF_UP
        )
        assert money(r["estimated_amount"]) == estimate


def test_demo_agrees_with_contracts_plans_and_commitments(db: Any) -> None:
    """The demo's approved changes are what the income contracts and plans already show."""
    for project in rows(db, "projects.project", status="active"):
        approved = [
            r for r in rows(db, CR, project=project["id"]) if r["approval_state"] == "approved"
        ]
        if not approved:
            continue
        contracts = rows(db, "projects.contract", project=project["id"], direction="income")
        assert sum((money(c["changes_amount"]) for c in contracts), Decimal(0)) == sum(
            (money(r["approved_amount"]) for r in approved), Decimal(0)
        )
        (plan,) = rows(db, "schedule.plan", project=project["id"])
        assert plan["forecast_delay_days"] == sum(r["schedule_impact_days"] or 0 for r in approved)
        for r in approved:  # each approved change is in the dynamic cost
            assert rows(db, "cost_center.commitment", source_ref=r["number"], kind="change")


def _body(db: Any, project_code: str, quantity: str, price: str, **extra: Any) -> dict[str, Any]:
    project = id_of(db, "projects.project", code=project_code)
    contract = next(
        c["id"] for c in rows(db, "projects.contract", project=project, direction="income")
    )
    return {
        "project": project, "contract": contract, "type": "site-visa", "title": "地下障碍物清除",
        "event_at": session_clock(db).now().replace(microsecond=0).isoformat(),
        "quantity": quantity, "unit": "m3", "unit_price": price,
        "account": id_of(db, "cost_center.cost_account", code="0303"),
        **extra,
    }  # fmt: skip


def test_round_trip_and_checks(admin: Api, db: Any) -> None:
    body = _body(db, "P2403", "120.5", "88.00", schedule_impact_days=2, location="K1+200")
    existing = len(rows(db, CR, project=body["project"]))
    created = admin.post("/api/v1/ccb_approval/change_request", body)
    assert created.status_code == 201, created.get_json()
    record = created.get_json()
    assert record["number"] == f"P2403-BG-{existing + 1:04d}"
    assert record["estimated_amount"] == "10604.00" and record["late_submission"] is False
    # The submission time is the process's to set (the 48-hour rule depends on it).
    for field, value in (("submitted_at", "2099-01-01T00:00:00+00:00"), ("approved_amount", "1")):
        patched = admin.patch(
            f"/api/v1/ccb_approval/change_request/{record['id']}",
            {"version": record["version"], field: value},
        )
        assert patched.status_code == 422, patched.get_json()
        error = patched.get_json()["errors"][0]
        assert (error["pointer"], error["code"]) == (f"/{field}", "set_by_process")
        assert error["detail"] == "此字段由审批流程填写，不能手工修改"
    bad = admin.post(
        "/api/v1/ccb_approval/change_request", {**body, "quantity": "3", "unit_price": None}
    )
    assert bad.status_code == 422 and any(
        e["pointer"] == "/unit_price" for e in bad.get_json()["errors"]
    )
    assert admin.delete(f"/api/v1/ccb_approval/change_request/{record['id']}").status_code == 204


def test_members_see_only_their_projects(cons: Any, db: Any) -> None:
    project = id_of(db, "projects.project", code="P2402")
    user = create_user(db, "t_rep_p2402", "Secret-pass-1", ["client_rep"])
    admin = workflow(db, None)
    from formwork.runtime.records import RecordService
    from formwork.runtime.registry import load_registry

    RecordService(db, load_registry(db), admin.principal).create(
        "projects.member", {"project": project, "user": user.id, "project_role": "client-rep"}
    )
    db.commit()
    listed = (
        api_for(cons, db, user.id)
        .get("/api/v1/ccb_approval/change_request?per_page=200")
        .get_json()
    )
    assert listed["total"] == len(rows(db, CR, project=project)) > 0
    assert {item["project"] for item in listed["items"]} == {project}


# -- approval routes ------------------------------------------------------------------------------


def _submit(admin: Api, db: Any, body: dict[str, Any]) -> tuple[dict[str, Any], int]:
    created = admin.post("/api/v1/ccb_approval/change_request", body)
    assert created.status_code == 201, created.get_json()
    db.commit()
    record = created.get_json()
    site = member_user(db, record["project"], "site-engineer")
    instance = workflow(db, site).submit(CR, record["id"])
    db.commit()
    return record, instance.id


def _snapshot(db: Any, record: dict[str, Any]) -> dict[str, Any]:
    (contract,) = rows(db, "projects.contract", id=record["contract"])
    (plan,) = rows(db, "schedule.plan", project=record["project"])
    commitments = rows(db, "cost_center.commitment", source_ref=record["number"])
    return {"changes": money(contract["changes_amount"]), "delay": plan["forecast_delay_days"] or 0,
            "finish": plan["forecast_finish"], "commitments": commitments}  # fmt: skip


def _posted(db: Any, record: dict[str, Any], before: dict[str, Any], amount: Decimal) -> None:
    after = _snapshot(db, record)
    (commitment,) = after["commitments"]
    assert (commitment["kind"], money(commitment["amount"])) == ("change", amount)
    assert commitment["project"] == record["project"] and commitment["account"] == record["account"]
    assert after["changes"] == before["changes"] + amount
    days = record["schedule_impact_days"] or 0
    assert after["delay"] == before["delay"] + days
    assert after["finish"] == before["finish"] + dt.timedelta(days=days)
    (stored,) = rows(db, CR, id=record["id"])
    assert stored["approval_state"] == "approved" and money(stored["approved_amount"]) == amount
    assert stored["submitted_at"] is not None and stored["approved_on"] is not None


def test_small_change_needs_only_the_project_manager(admin: Api, db: Any) -> None:
    record, instance = _submit(admin, db, _body(db, "P2401", "100", "300", schedule_impact_days=3))
    before = _snapshot(db, record)
    (task,) = ready(db, instance)
    assert (task.step, task.assignee_id) == (
        "pm_review",
        member_user(db, record["project"], "manager"),
    )
    act(db, instance, "pm_review", data={"approved_amount": 28000})
    assert ready(db, instance) == []
    _posted(db, record, before, Decimal("28000.00"))


def test_medium_change_adds_the_cost_consultant(admin: Api, db: Any) -> None:
    record, instance = _submit(admin, db, _body(db, "P2402", "1000", "120", schedule_impact_days=0))
    before = _snapshot(db, record)
    act(db, instance, "pm_review")
    (task,) = ready(db, instance)
    assert task.step == "consultant_review"
    consultant = member_user(db, record["project"], "consultant")
    assert (
        task.assignee_id == consultant if consultant is not None else task.role == "cost_consultant"
    )
    act(db, instance, "consultant_review", data={"approved_amount": 110000})
    _posted(db, record, before, Decimal("110000.00"))


def test_large_change_is_countersigned_in_parallel(admin: Api, db: Any) -> None:
    record, instance = _submit(admin, db, _body(db, "P2403", "8000", "90", schedule_impact_days=7))
    before = _snapshot(db, record)
    act(db, instance, "pm_review")
    assert [t.step for t in ready(db, instance)] == ["client_sign", "consultant_sign"]
    act(db, instance, "client_sign")
    assert [t.step for t in ready(db, instance)] == ["consultant_sign"]
    assert _snapshot(db, record)["commitments"] == []  # nothing posts before both signed
    act(db, instance, "consultant_sign")
    _posted(db, record, before, Decimal("720000.00"))  # nobody changed it: the estimate


def test_rejected_change_posts_nothing_and_return_goes_back(admin: Api, db: Any) -> None:
    record, instance = _submit(admin, db, _body(db, "P2401", "1000", "100", schedule_impact_days=4))
    before = _snapshot(db, record)
    act(db, instance, "pm_review")
    act(db, instance, "consultant_review", "return")
    (task,) = ready(db, instance)
    assert task.step == "pm_review"
    act(db, instance, "pm_review", "reject")
    after = _snapshot(db, record)
    assert after["commitments"] == [] and after["changes"] == before["changes"]
    assert after["delay"] == before["delay"]
    assert rows(db, CR, id=record["id"])[0]["approval_state"] == "rejected"


# -- reports ------------------------------------------------------------------------------------


def test_change_ledger(db: Any) -> None:
    requests = rows(db, CR)
    result = report(db, "ccb_approval", "change_ledger", **{"from": "2000-01-01"})
    assert sorted(r["number"] for r in result.rows) == sorted(r["number"] for r in requests)
    assert Decimal(str(result.totals["estimated_amount"])) == sum(
        (money(r["estimated_amount"]) for r in requests), Decimal(0)
    )
    assert Decimal(str(result.totals["approved_amount"])) == sum(
        (money(r["approved_amount"]) for r in requests), Decimal(0)
    )
    late = {r["number"] for r in requests if r["late_submission"]}
    for row, style in zip(result.rows, result.styles, strict=True):
        if row["number"] in late and row["approval_state"] != "rejected":
            assert style == "warning"


def test_changes_vs_contract(db: Any) -> None:
    value: dict[int, Decimal] = defaultdict(Decimal)
    for c in rows(db, "projects.contract", direction="income"):
        if c["status"] != "draft":
            value[c["project"]] += money(c["amount"])
    approved: dict[int, Decimal] = defaultdict(Decimal)
    pending: dict[int, Decimal] = defaultdict(Decimal)
    for r in rows(db, CR):
        if r["approval_state"] == "approved":
            approved[r["project"]] += money(r["approved_amount"])
        elif r["approval_state"] in ("draft", "in-approval"):
            pending[r["project"]] += money(r["estimated_amount"])
    result = by(report(db, "ccb_approval", "changes_vs_contract"), "project")
    assert set(approved) <= set(result)
    for project, row in result.items():
        assert Decimal(str(row["contract_value"] or 0)) == value[project]
        assert Decimal(str(row["approved"] or 0)) == approved[project]
        assert Decimal(str(row["pending"] or 0)) == pending[project]
        if value[project]:
            pct = (approved[project] / value[project] * 100).quantize(
                Decimal("0.01"), ROUND_HALF_UP
            )
            assert Decimal(str(row["pct"])) == pct


def test_pending_and_ageing(db: Any) -> None:
    today = session_clock(db).today()
    pending = [r for r in rows(db, CR) if r["approval_state"] in ("draft", "in-approval")]
    assert pending
    result = report(db, "ccb_approval", "pending_changes")
    assert sorted(r["number"] for r in result.rows) == sorted(r["number"] for r in pending)
    for row, style in zip(result.rows, result.styles, strict=True):
        age = (today - _aware(row["event_at"]).date()).days
        assert row["age_days"] == age
        assert style == ("danger" if age > 14 else "warning" if age > 7 else None)
    buckets: dict[str, int] = defaultdict(int)
    for r in pending:
        age = (today - _aware(r["event_at"]).date()).days
        buckets[
            "0-7" if age <= 7 else "8-14" if age <= 14 else "15-30" if age <= 30 else ">30"
        ] += 1
    got = {row["age"]: row["requests"] for row in report(db, "ccb_approval", "pending_by_age").rows}
    assert got == dict(buckets)


def test_by_type_and_month(db: Any) -> None:
    by_type: dict[str, Decimal] = defaultdict(Decimal)
    by_month: dict[str, int] = defaultdict(int)
    for r in rows(db, CR):
        if r["approval_state"] == "approved":
            by_type[r["type"]] += money(r["approved_amount"])
        if r["approval_state"] != "withdrawn":
            by_month[_aware(r["event_at"]).strftime("%Y-%m")] += 1
    got = by(report(db, "ccb_approval", "changes_by_type"), "type")
    assert {k: Decimal(str(v["approved"])) for k, v in got.items()} == dict(by_type)
    months = by(report(db, "ccb_approval", "changes_by_month"), "month")
    assert {k: v["raised"] for k, v in months.items()} == dict(by_month)
