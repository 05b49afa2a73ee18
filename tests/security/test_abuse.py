"""Hostile users against the approval flows of the demo company, through the REST API as
the demo roles: self-approval, variable injection, tampering at the last step, editing and
resubmitting approved records, double posting, and what cancel and amend reverse."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from formwork.runtime.registry import load_registry
from formwork.runtime.workflow.models import Posting
from tests.construction.conftest import Construction, build

# Outcomes depend on the clock's date (demo data): `make test` runs these again a year ahead.
pytestmark = pytest.mark.dates


@pytest.fixture(scope="module")
def cons(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Construction]:
    """The demo company: every pack with its demo data and demo users."""
    built = build(tmp_path_factory.mktemp("abuse"))
    yield built
    built.session.close()
    built.app.extensions["formwork"].engine.dispose()


def rows(cons: Construction, entity: str, **equal: Any) -> list[dict[str, Any]]:
    session = cons.app.extensions["formwork"].sessions()
    try:
        table = load_registry(session).meta(entity).table
        query = sa.select(table).where(*(table.c[k] == v for k, v in equal.items()))
        return [dict(r) for r in session.execute(query.order_by(table.c.id)).mappings()]
    finally:
        session.close()


def tasks(cons: Construction, user: str) -> list[dict[str, Any]]:
    return cons.api(user).get("/api/v1/tasks").get_json()["items"]


def task_of(cons: Construction, user: str, record_id: int, step: str) -> dict[str, Any]:
    found = [t for t in tasks(cons, user) if t["record_id"] == record_id and t["step"] == step]
    assert found, (user, record_id, step, tasks(cons, user))
    return found[0]


def complete(cons: Construction, user: str, task: dict[str, Any], action: str = "approve",
             comment: str = "", **data: Any) -> Any:  # fmt: skip
    body = {"action": action, "comment": comment, "data": data}
    return cons.api(user).post(f"/api/v1/tasks/{task['id']}/complete", body)


def submit(cons: Construction, user: str, entity: str, record_id: int) -> Any:
    return cons.api(user).post("/api/v1/processes", {"entity": entity, "record_id": record_id})


def new_sheet(cons: Construction, user: str = "liuqiang", days: str = "1") -> dict[str, Any]:
    """A day-work sheet of 刘强's crew (BZ-ZG01) on P2401, by `user`."""
    worker = rows(cons, "labor.worker", id_number="410105198908200193")[0]
    body = {
        "project": cons.id_of("projects.project", code="P2401"),
        "crew": cons.id_of("labor.crew", code="BZ-ZG01"),
        "work_date": "2026-03-10", "reason": "extra", "location": "2# 楼",
        "lines": [{"worker": worker["id"], "work_days": days, "regular_hours": "8",
                   "overtime_hours": "0", "day_rate": "300"}],
    }  # fmt: skip
    created = cons.api(user).post("/api/v1/labor/day_sheet", body)
    assert created.status_code == 201, created.get_json()
    return created.get_json()


def approved_sheet(cons: Construction) -> dict[str, Any]:
    sheet = new_sheet(cons)
    assert submit(cons, "liuqiang", "labor.day_sheet", sheet["id"]).status_code == 201
    for user, step in (("lina", "site_review"), ("zhangwei", "pm_review")):
        done = complete(cons, user, task_of(cons, user, sheet["id"], step))
        assert done.status_code == 200, done.get_json()
    return cons.api("liuqiang").get(f"/api/v1/labor/day_sheet/{sheet['id']}").get_json()


def cost_entries(cons: Construction, number: str) -> list[Decimal]:
    return [Decimal(str(r["amount"])) for r in rows(cons, "cost_center.cost_entry",
                                                      source_ref=number)]  # fmt: skip


# -- self-approval and variable injection --------------------------------------------------


def test_an_approver_cannot_rewrite_assignees_or_other_variables(cons):
    sheet = new_sheet(cons)
    started = submit(cons, "liuqiang", "labor.day_sheet", sheet["id"])
    assert started.status_code == 201
    # The crew leader submitted his own crew's sheet: his confirmation passed; the site
    # engineer holds the next step.
    site = task_of(cons, "lina", sheet["id"], "site_review")
    leader = cons.user_id("liuqiang")
    for name, value in (("pm_user", leader), ("site_user", leader), ("total", "1"),
                        ("decision", "approve"), ("project", 1)):  # fmt: skip
        forged = complete(cons, "lina", site, **{name: value})
        assert forged.status_code == 422, forged.get_json()
        assert forged.get_json()["errors"][0]["pointer"] == f"/data/{name}"
    assert complete(cons, "liuqiang", site).status_code == 403  # not his step
    assert complete(cons, "lina", site).status_code == 200
    pm = task_of(cons, "zhangwei", sheet["id"], "pm_review")
    assert pm["assignee_id"] == cons.user_id("zhangwei")  # not the crew leader


def test_the_submitter_never_approves_his_own_request(cons):
    # The project manager files a sheet himself: the manager's step would be his.
    sheet = new_sheet(cons, user="zhangwei")
    assert submit(cons, "zhangwei", "labor.day_sheet", sheet["id"]).status_code == 201
    complete(cons, "wangjianguo", {"id": "x"})  # noise: an unknown task is a clean 404
    leader_task = [t for t in tasks(cons, "liuqiang") if t["record_id"] == sheet["id"]][0]
    assert complete(cons, "liuqiang", leader_task).status_code == 200
    assert (
        complete(cons, "lina", task_of(cons, "lina", sheet["id"], "site_review")).status_code == 200
    )
    pm = [t for t in tasks(cons, "chenjing") if t["record_id"] == sheet["id"]]
    assert pm and pm[0]["step"] == "pm_review"
    assert pm[0]["assignee_id"] is None and pm[0]["excluded_id"] == cons.user_id("zhangwei")
    assert [t for t in tasks(cons, "zhangwei") if t["record_id"] == sheet["id"]] == []
    refused = complete(cons, "zhangwei", pm[0])
    assert refused.status_code == 403 and "不能审批自己" in refused.get_json()["detail"]
    assert complete(cons, "chenjing", pm[0]).status_code == 200  # another manager
    assert len(cost_entries(cons, sheet["number"])) == 1


# -- locked records, resubmission, exactly-once postings, cancel and amend ---------------


def test_an_approved_sheet_is_locked_posts_once_and_cancels_with_a_reversal(cons):
    sheet = approved_sheet(cons)
    assert sheet["approval_state"] == "approved"
    assert cost_entries(cons, sheet["number"]) == [Decimal(sheet["total"])]
    path = f"/api/v1/labor/day_sheet/{sheet['id']}"
    lines = [{"id": line["id"], "work_days": "2"} for line in sheet["lines"]]
    edited = cons.api("liuqiang").patch(path, {"version": sheet["version"], "lines": lines})
    assert edited.status_code == 409 and "已审批" in edited.get_json()["detail"]
    assert cons.api("admin").delete(f"{path}?version={sheet['version']}").status_code == 409
    again = submit(cons, "liuqiang", "labor.day_sheet", sheet["id"])
    assert again.status_code == 409 and "不能再次提交" in again.get_json()["detail"]
    assert len(cost_entries(cons, sheet["number"])) == 1  # still posted once
    # The crew leader may not cancel; the project manager may, with a reason.
    assert cons.api("liuqiang").post(path + "/cancel", {"reason": "x"}).status_code == 403
    assert cons.api("zhangwei").post(path + "/cancel", {}).status_code == 422
    cancelled = cons.api("zhangwei").post(path + "/cancel", {"reason": "工日填错"})
    assert cancelled.status_code == 200, cancelled.get_json()
    assert (
        cancelled.get_json()["state"] == "cancelled" and len(cancelled.get_json()["reversed"]) == 1
    )
    entries = cost_entries(cons, sheet["number"])
    assert sorted(entries) == sorted([Decimal(sheet["total"]), -Decimal(sheet["total"])])
    assert sum(entries) == 0  # reversed by an entry, never deleted
    twice = cons.api("zhangwei").post(path + "/cancel", {"reason": "again"})
    assert twice.status_code == 409
    assert cons.api("liuqiang").get(path).get_json()["approval_state"] == "cancelled"


def test_amend_makes_a_linked_draft_and_the_new_approval_posts_its_own_entry(cons):
    sheet = approved_sheet(cons)
    path = f"/api/v1/labor/day_sheet/{sheet['id']}"
    amended = cons.api("lina").post(path + "/amend", {"reason": "工日应为 2"})
    assert amended.status_code == 201, amended.get_json()
    draft = amended.get_json()
    assert draft["approval_state"] == "draft" and draft["number"] != sheet["number"]
    assert draft["lines"][0]["worker"] == sheet["lines"][0]["worker"]
    old = cons.api("lina").get(path + "/lifecycle").get_json()
    new = cons.api("lina").get(f"/api/v1/labor/day_sheet/{draft['id']}/lifecycle").get_json()
    assert (old["state"], old["amended_to"]) == ("cancelled", draft["id"])
    assert (new["state"], new["amended_from"], new["can"]["update"]) == ("draft", sheet["id"], True)
    assert sum(cost_entries(cons, sheet["number"])) == 0
    keep = ("id", "worker", "regular_hours", "overtime_hours", "day_rate")
    lines = [{**{k: draft["lines"][0][k] for k in keep}, "work_days": "2"}]
    changed = cons.api("liuqiang").patch(
        f"/api/v1/labor/day_sheet/{draft['id']}", {"version": draft["version"], "lines": lines}
    )
    assert changed.status_code == 200, changed.get_json()
    assert submit(cons, "liuqiang", "labor.day_sheet", draft["id"]).status_code == 201
    for user, step in (("lina", "site_review"), ("zhangwei", "pm_review")):
        assert complete(cons, user, task_of(cons, user, draft["id"], step)).status_code == 200
    assert cost_entries(cons, draft["number"]) == [Decimal("600.00")]


def test_postings_are_keyed_by_a_unique_constraint(cons):
    sheet = approved_sheet(cons)
    session = cons.app.extensions["formwork"].sessions()
    try:
        (posting,) = session.scalars(
            sa.select(Posting).where(Posting.entity == "cost_center.cost_entry",
                                     Posting.payload["source_ref"].as_string() == sheet["number"])
        ).all()  # fmt: skip
        session.add(Posting(instance_id=posting.instance_id, step=posting.step, key=posting.key,
                            service="create_record", entity=posting.entity))  # fmt: skip
        with pytest.raises(sa.exc.IntegrityError):
            session.flush()
    finally:
        session.rollback()
        session.close()


# -- the last step cannot change what is paid, nor to whom ---------------------------------


def test_finance_cannot_change_the_amount_or_payee_at_the_last_step(cons):
    project = cons.id_of("projects.project", code="P2401")
    parties = rows(cons, "projects.counterparty")
    accounts = rows(cons, "funds.account")
    body = {"project": project, "counterparty": parties[0]["id"], "payment_type": "progress",
            "requested_on": "2026-03-12", "amount": "1000.00",
            "pay_account": accounts[0]["id"], "reason": "进度款"}  # fmt: skip
    created = cons.api("lina").post("/api/v1/funds/payment_request", body)
    if created.status_code == 403:  # the site engineer may not file payment requests
        created = cons.api("wangfang").post("/api/v1/funds/payment_request", body)
    assert created.status_code == 201, created.get_json()
    request = created.get_json()
    filer = "lina" if request["created_by"] == cons.user_id("lina") else "wangfang"
    assert submit(cons, filer, "funds.payment_request", request["id"]).status_code == 201
    pm = task_of(cons, "zhangwei", request["id"], "pm_review")
    assert complete(cons, "zhangwei", pm).status_code == 200
    fin = task_of(cons, "zhaomin", request["id"], "finance_review")
    for name, value in (("amount", "880000.00"), ("counterparty", parties[1]["id"]),
                        ("pay_account", accounts[-1]["id"])):  # fmt: skip
        forged = complete(cons, "zhaomin", fin, paid_on="2026-03-16", **{name: value})
        assert (
            forged.status_code == 422
            and forged.get_json()["errors"][0]["pointer"] == f"/data/{name}"
        )
    done = complete(cons, "zhaomin", fin, paid_on="2026-03-16", method="bill")
    assert done.status_code == 200, done.get_json()
    (payment,) = rows(cons, "funds.payment", request=request["id"])
    assert Decimal(str(payment["amount"])) == Decimal("1000.00")
    assert payment["counterparty"] == parties[0]["id"] and payment["method"] == "bill"


# -- a change request: the submitter's own step, and the route follows the approved amount


def change_request(cons: Construction, user: str, quantity: str, price: str) -> dict[str, Any]:
    project = cons.id_of("projects.project", code="P2401")
    contract = rows(cons, "projects.contract", project=project, direction="income")[0]
    body = {"project": project, "contract": contract["id"], "type": "site-visa",
            "title": "基坑降水", "event_at": "2026-03-15T08:00:00+08:00", "quantity": quantity,
            "unit": "m3", "unit_price": price,
            "account": cons.id_of("cost_center.cost_account", code="0303")}  # fmt: skip
    created = cons.api(user).post("/api/v1/ccb_approval/change_request", body)
    assert created.status_code == 201, created.get_json()
    return created.get_json()


def test_an_approved_amount_above_the_threshold_takes_the_countersign_route(cons):
    request = change_request(cons, "lina", "100", "400")  # estimate 40,000: the PM alone
    assert submit(cons, "lina", "ccb_approval.change_request", request["id"]).status_code == 201
    pm = task_of(cons, "zhangwei", request["id"], "pm_review")
    forged = complete(cons, "zhangwei", pm, route="pm")
    assert forged.status_code == 422  # the route is the process's, not a form field
    done = complete(cons, "zhangwei", pm, approved_amount="600000")
    assert done.status_code == 200, done.get_json()
    steps = sorted(t["step"] for t in done.get_json()["tasks"])
    assert steps == ["client_sign", "consultant_sign"]
    record = cons.api("lina").get(f"/api/v1/ccb_approval/change_request/{request['id']}").get_json()
    assert record["approved_amount"] == "600000.00" and record["submitted_at"] is not None


def test_a_manager_cannot_approve_the_change_he_filed(cons):
    request = change_request(cons, "zhangwei", "10", "100")
    assert submit(cons, "zhangwei", "ccb_approval.change_request", request["id"]).status_code == 201
    pm = [t for t in tasks(cons, "chenjing") if t["record_id"] == request["id"]]
    assert pm and pm[0]["step"] == "pm_review" and pm[0]["assignee_id"] is None
    assert [t for t in tasks(cons, "zhangwei") if t["record_id"] == request["id"]] == []
    assert complete(cons, "zhangwei", pm[0]).status_code == 403


def test_amending_a_change_request_reverses_its_three_postings(cons):
    request = change_request(cons, "lina", "10", "100")  # 1,000: the PM alone
    contract = rows(cons, "projects.contract", id=request["contract"])[0]
    before = Decimal(str(contract["changes_amount"] or 0))
    assert submit(cons, "lina", "ccb_approval.change_request", request["id"]).status_code == 201
    done = complete(cons, "zhangwei", task_of(cons, "zhangwei", request["id"], "pm_review"))
    assert done.status_code == 200, done.get_json()
    after = Decimal(
        str(rows(cons, "projects.contract", id=request["contract"])[0]["changes_amount"])
    )
    assert after - before == Decimal("1000.00")
    path = f"/api/v1/ccb_approval/change_request/{request['id']}"
    amended = cons.api("zhangwei").post(path + "/amend", {"reason": "数量有误"})
    assert amended.status_code == 201, amended.get_json()
    restored = rows(cons, "projects.contract", id=request["contract"])[0]["changes_amount"]
    assert Decimal(str(restored)) == before
    commitments = rows(cons, "cost_center.commitment", source_ref=request["number"])
    assert sum(Decimal(str(c["amount"])) for c in commitments) == 0 and len(commitments) == 2


def test_the_module_packs_check_clean_with_the_new_rules():
    from formwork.runtime.packs import check_pack, read_pack

    for folder in sorted(Path(__file__).parents[2].joinpath("module_packs").iterdir()):
        if (folder / "pack.json").is_file():
            check_pack(read_pack(folder))
