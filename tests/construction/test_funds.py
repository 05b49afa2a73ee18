"""The funds pack (资金数据中心): install on an empty database next to projects, every report
checked against figures computed here from the demo files, every entity through REST, the row
rules of the roles, and the payment request's approval (project manager, then finance) end to
end through the API."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from formwork.auth.users import create_user
from formwork.runtime.clock import session_clock
from formwork.runtime.packs import check_pack, read_pack
from formwork.runtime.registry import load_registry
from formwork.runtime.workflow.models import Notification
from tests.conftest import PASSWORD
from tests.construction import support_b
from tests.construction.conftest import Construction
from tests.construction.support_b import (
    ROOT,
    d,
    demo,
    ids,
    installed,
    report,
    today,
)

# Outcomes depend on the clock's date: `make test` runs these again a year ahead.
pytestmark = pytest.mark.dates

PACKS = ("projects", "funds")
API = "/api/v1/funds"
CENT = Decimal("0.01")


cons = installed("projects", "funds")
app_b, db = support_b.app_b, support_b.db


# -- the demo, computed independently ----------------------------------------------------------


def invoice_total(invoice: dict[str, Any]) -> Decimal:
    """Return an invoice's total including tax (tax rounded to the cent)."""
    amount = Decimal(invoice["amount"])
    return amount + (amount * Decimal(invoice["tax_rate"]) / 100).quantize(CENT)


def age_bucket(day: dt.date) -> str:
    """Return the ageing bucket of a date: 0-30, 31-90, 91-180 or >180 days ago."""
    age = (today() - day).days
    for limit, label in ((30, "0-30"), (90, "31-90"), (180, "91-180")):
        if age <= limit:
            return label
    return ">180"


def ageing(direction: str, settled_file: str, db: Any) -> dict[tuple[int, int, str], list[Decimal]]:
    """Return {(project, counterparty, bucket): [invoiced, settled]} from the demo files."""
    projects, parties = ids(db, "projects.project"), ids(db, "projects.counterparty")
    invoices = {i["number"]: i for i in demo("funds", "invoices") if i["direction"] == direction}
    out: dict[tuple[int, int, str], list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])

    def key(invoice: dict[str, Any]) -> tuple[int, int, str]:
        return (
            projects[invoice["project"]["code"]],
            parties[invoice["counterparty"]["code"]],
            age_bucket(invoice["invoice_date"]),
        )

    for invoice in invoices.values():
        out[key(invoice)][0] += invoice_total(invoice)
    for money in demo("funds", settled_file):
        number = (money.get("invoice") or {}).get("number")
        if number in invoices:
            out[key(invoices[number])][1] += Decimal(money["amount"])
    return dict(out)


def month_of(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def first_of_month(offset: int) -> dt.date:
    now = today()
    months = now.year * 12 + now.month - 1 + offset
    return dt.date(months // 12, months % 12 + 1, 1)


# -- install and check -------------------------------------------------------------------------


def test_installs_on_an_empty_database_with_its_workflow_and_demo(cons, db):
    done = cons.report
    for entity in (
        "account",
        "receipt_plan",
        "payment_plan",
        "invoice",
        "receipt",
        "payment_request",
        "payment",
        "deposit",
    ):
        assert f"funds: Create entity funds.{entity} (table funds__{entity})" in done
    assert "funds: deployed payment_approval version 1" in done
    assert "funds: deployed deposit_expiry_watch version 1" in done
    for name in ("invoices", "receipts", "payments", "deposits"):
        assert f"funds: loaded {len(demo('funds', name))} record(s) from demo/{name}.json" in done
    assert "funds installed 1.0.0" in done


def test_pack_check_is_clean(db):
    checked = check_pack(read_pack(ROOT / "funds"), known=load_registry(db).entities)
    assert checked.name == "funds"


# -- reports (before anything below changes the demo) ---------------------------------------------


@pytest.mark.parametrize(
    ("side", "direction", "settled"),
    [("receivables", "issued", "receipts"), ("payables", "received", "payments")],
)
def test_ageing_matches_the_demo(cons, db, side, direction, settled):
    want = ageing(direction, settled, db)
    result = report(db, "funds", f"{side}_ageing")
    got = {(r["project"], r["counterparty"], r["age"]): r for r in result.rows}
    assert set(got) == set(want)
    for key, (invoiced, paid) in want.items():
        row = got[key]
        assert (d(row["invoiced"]), d(row["settled"]), d(row["outstanding"])) == (
            invoiced,
            paid,
            invoiced - paid,
        ), key
    assert d(result.totals["outstanding"]) == sum((i - p for i, p in want.values()), Decimal(0))
    summary = report(db, "funds", f"{side}_by_age")
    by_age: dict[str, Decimal] = defaultdict(Decimal)
    for (_p, _c, bucket), (invoiced, paid) in want.items():
        by_age[bucket] += invoiced - paid
    assert {r["age"]: d(r["outstanding"]) for r in summary.rows} == dict(by_age)
    assert [r["age"] for r in summary.rows] == [
        b for b in ("0-30", "31-90", "91-180", ">180") if b in by_age
    ]


def test_receivables_of_one_project_and_by_row_rule(cons, db):
    projects = ids(db, "projects.project")
    want = {k: v for k, v in ageing("issued", "receipts", db).items() if k[0] == projects["P2401"]}
    one = report(db, "funds", "receivables_ageing", project=str(projects["P2401"]))
    assert {(r["project"], r["counterparty"], r["age"]) for r in one.rows} == set(want)
    mine = report(db, "funds", "receivables_ageing", "chenjing")  # PM of P2403 only
    assert {r["project"] for r in mine.rows} == {projects["P2403"]}


def test_monthly_cash_flow_matches_the_demo(cons, db):
    start, end = first_of_month(-5), first_of_month(6)
    sums: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    sources = (
        ("receipts", "received_on", "received"),
        ("payments", "paid_on", "paid"),
        ("receipt_plans", "planned_date", "planned_in"),
        ("payment_plans", "planned_date", "planned_out"),
    )
    for name, field, column in sources:
        for record in demo("funds", name):
            if start <= record[field] < end:
                sums[month_of(record[field])][column] += Decimal(record["amount"])
    result = report(db, "funds", "cash_flow_monthly")
    assert [r["month"] for r in result.rows] == sorted(sums)
    for row in result.rows:
        want = sums[row["month"]]
        for column in ("received", "paid", "planned_in", "planned_out"):
            assert d(row[column]) == want[column], (row["month"], column)
        assert d(row["net"]) == want["received"] - want["paid"]
        assert d(row["planned_net"]) == want["planned_in"] - want["planned_out"]
    assert any(r["month"] > month_of(today()) and d(r["planned_in"]) > 0 for r in result.rows)


def test_daily_account_summary_matches_the_demo(cons, db):
    accounts = ids(db, "funds.account")
    since = today() - dt.timedelta(30)
    days: dict[dt.date, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for index, (name, field) in enumerate((("receipts", "received_on"), ("payments", "paid_on"))):
        for record in demo("funds", name):
            if record["account"]["code"] == "XM-2401" and since <= record[field] <= today():
                days[record[field]][index] += Decimal(record["amount"])
    assert days, "the demo account moved money in the last 30 days"
    result = report(db, "funds", "daily_account_summary", account=str(accounts["XM-2401"]))
    assert [r["day"] for r in result.rows] == [
        month.isoformat() for month in sorted(days, reverse=True)
    ]
    running = Decimal(0)
    for row in reversed(result.rows):  # newest first on screen; the running net is by date
        money_in, money_out = days[dt.date.fromisoformat(row["day"])]
        assert (d(row["money_in"]), d(row["money_out"])) == (money_in, money_out)
        assert d(row["net"]) == money_in - money_out
        running += money_in - money_out
        assert d(row["cumulative_net"]) == running
    assert d(result.totals["cumulative_net"]) == running


def test_account_balances_match_the_demo(cons, db):
    balances = {a["code"]: Decimal(a["opening_balance"]) for a in demo("funds", "accounts")}
    for name, sign in (("receipts", 1), ("payments", -1)):
        for record in demo("funds", name):
            balances[record["account"]["code"]] += sign * Decimal(record["amount"])
    result = report(db, "funds", "account_balances")
    assert {r["code"]: d(r["balance"]) for r in result.rows} == balances
    assert d(result.totals["balance"]) == sum(balances.values(), Decimal(0))


def test_deposits_expiring_within_30_days(cons, db):
    now = today()
    want = sorted(
        (dep["expiry_date"], dep["reference_no"])
        for dep in demo("funds", "deposits")
        if not dep.get("returned_on") and dep["expiry_date"] <= now + dt.timedelta(30)
    )
    result = report(db, "funds", "deposits_expiring")
    assert [(r["expiry_date"], r["reference_no"]) for r in result.rows] == want
    assert any(r["days_left"] < 0 for r in result.rows)  # expired and not yet returned
    for row in result.rows:
        assert row["days_left"] == (row["expiry_date"] - now).days
    styles = dict(zip((r["reference_no"] for r in result.rows), result.styles, strict=True))
    assert styles[want[0][1]] == "danger"


# -- REST round trips --------------------------------------------------------------------------


def round_trip(
    api: Any, entity: str, body: dict[str, Any], change: dict[str, Any]
) -> dict[str, Any]:
    """Create, read, list, change and delete a record; return it as created."""
    created = api.post(f"{API}/{entity}", body)
    assert created.status_code == 201, created.get_json()
    record = created.get_json()
    fetched = api.get(f"{API}/{entity}/{record['id']}").get_json()
    for name, value in body.items():
        if not isinstance(value, list):
            assert fetched[name] == value, (entity, name)
    listed = api.get(f"{API}/{entity}?id__eq={record['id']}").get_json()
    assert [item["id"] for item in listed["items"]] == [record["id"]]
    patched = api.patch(f"{API}/{entity}/{record['id']}", {**change, "version": record["version"]})
    assert patched.status_code == 200, patched.get_json()
    for name, value in change.items():
        assert patched.get_json()[name] == value, (entity, name)
    assert api.delete(f"{API}/{entity}/{record['id']}").status_code == 204
    assert api.get(f"{API}/{entity}/{record['id']}").status_code == 404
    return record


def refs(db: Any) -> dict[str, int]:
    """Return the ids the round trips refer to (a project with its contracts and parties)."""
    parties, contracts = ids(db, "projects.counterparty"), ids(db, "projects.contract")
    return {
        "project": ids(db, "projects.project")["P2402"],
        "client": parties["C002"],
        "sub": parties["S006"],
        "income": contracts["P2402-SR-001"],
        "expense": contracts["P2402-ZC-001"],
        "account": ids(db, "funds.account")["XM-2402"],
    }


# entity, body (from the refs), change, values the created record must show
ROUND_TRIPS: list[tuple[str, Any, dict[str, Any], dict[str, Any]]] = [
    ("account", lambda r: {"code": "XM-9999", "name": "测试专户", "kind": "project",
                           "bank": "测试银行", "opening_date": "2026-01-01",
                           "opening_balance": "100.00"},
     {"active": False}, {"active": True}),
    ("receipt_plan", lambda r: {"project": r["project"], "contract": r["income"],
                                "counterparty": r["client"], "receipt_type": "settlement",
                                "planned_date": "2027-06-30", "amount": "5000000.00"},
     {"amount": "4800000.00"}, {}),
    ("payment_plan", lambda r: {"project": r["project"], "contract": r["expense"],
                                "counterparty": r["sub"], "payment_type": "retention",
                                "planned_date": "2028-06-30", "amount": "294924.39"},
     {"planned_date": "2028-07-31"}, {}),
    ("invoice", lambda r: {"project": r["project"], "number": "99990001", "direction": "issued",
                           "counterparty": r["client"], "contract": r["income"],
                           "invoice_date": "2026-11-01", "amount": "1000000.00",
                           "tax_rate": "9.00"},
     {"tax_rate": "3.00"}, {"tax": "90000.00", "total": "1090000.00"}),
    ("receipt", lambda r: {"project": r["project"], "counterparty": r["client"],
                           "receipt_type": "progress", "received_on": "2026-11-20",
                           "amount": "1090000.00", "account": r["account"]},
     {"method": "bill"}, {"method": "transfer"}),
    ("payment_request", lambda r: {"project": r["project"], "counterparty": r["sub"],
                                   "contract": r["expense"], "payment_type": "progress",
                                   "requested_on": "2026-11-20", "amount": "300000.00",
                                   "pay_account": r["account"]},
     {"reason": "补充说明"}, {"approval_state": "draft"}),
    ("payment", lambda r: {"project": r["project"], "counterparty": r["sub"],
                           "payment_type": "advance", "paid_on": "2026-11-21",
                           "amount": "50000.00", "account": r["account"]},
     {"note": "预付"}, {}),
    ("deposit", lambda r: {"project": r["project"], "counterparty": r["client"], "kind": "bid",
                           "direction": "paid", "amount": "200000.00", "paid_on": "2026-10-01",
                           "expiry_date": "2027-01-01"},
     {"returned_on": "2026-11-22"}, {"status": "active", "form": "cash"}),
]  # fmt: skip
NUMBERS = {"receipt": "SK-20261120-", "payment_request": "FK-202611-", "payment": "ZF-20261121-"}


@pytest.mark.parametrize(("entity", "body", "change", "shows"), ROUND_TRIPS)
def test_every_entity_round_trips_through_rest(cons, db, entity, body, change, shows):
    record = round_trip(cons.api(), entity, body(refs(db)), change)
    for name, value in shows.items():
        assert record[name] == value, name
    if entity in NUMBERS:
        assert record["number"].startswith(NUMBERS[entity])


def test_bad_amounts_and_dates_are_refused(cons, db):
    api = cons.api()
    project = ids(db, "projects.project")["P2402"]
    client = ids(db, "projects.counterparty")["C002"]
    bad = api.post(
        f"{API}/deposit",
        {
            "project": project,
            "counterparty": client,
            "kind": "bid",
            "direction": "paid",
            "amount": "0",
            "paid_on": "2026-10-01",
            "expiry_date": "2026-09-01",
        },
    )
    assert bad.status_code == 422
    assert {"/amount", "/expiry_date"} <= {e["pointer"] for e in bad.get_json()["errors"]}


# -- roles ---------------------------------------------------------------------------------------


def test_finance_sees_all_funds_and_members_their_projects(cons, db, app_b):
    projects = ids(db, "projects.project")
    session = app_b.extensions["formwork"].sessions()
    create_user(session, "finance_hq", PASSWORD, ["finance"])  # a member of nothing
    session.commit()
    session.close()
    everyone = {projects[r["project"]["code"]] for r in demo("funds", "receipts")}

    def seen(username: str) -> set[int]:
        body = cons.api(username).get(f"{API}/receipt?per_page=200").get_json()
        return {item["project"] for item in body["items"]}

    assert seen("finance_hq") == everyone
    assert seen("zhangwei") == {projects["P2401"], projects["P2402"]}
    assert cons.api("lina").get(f"{API}/receipt").status_code == 403  # site engineers: none
    accounts = cons.api("zhangwei").get(f"{API}/account").get_json()["items"]
    assert accounts and all(a.get("account_no") is None for a in accounts)  # finance-only
    full = cons.api("finance_hq").get(f"{API}/account").get_json()["items"]
    assert all(a["account_no"] for a in full)


# -- the payment request's approval, end to end --------------------------------------------------


def new_request(cons: Construction, db: Any, amount: str) -> dict[str, Any]:
    """Create a payment request for P2403 as the cost engineer."""
    project = ids(db, "projects.project")["P2403"]
    body = {
        "project": project,
        "contract": ids(db, "projects.contract")["P2403-ZC-006"],
        "counterparty": ids(db, "projects.counterparty")["S001"],
        "payment_type": "progress",
        "requested_on": today().isoformat(),
        "planned_date": (today() + dt.timedelta(7)).isoformat(),
        "amount": amount,
        "pay_account": ids(db, "funds.account")["XM-2403"],
        "reason": "桩基工程第 4 期进度款",
    }
    created = cons.api("wangfang").post(f"{API}/payment_request", body)
    assert created.status_code == 201, created.get_json()
    return created.get_json()


def submit(cons: Construction, record: dict[str, Any]) -> int:
    started = cons.api("wangfang").post(
        "/api/v1/processes", {"entity": "funds.payment_request", "record_id": record["id"]}
    )
    assert started.status_code == 201, started.get_json()
    return int(started.get_json()["id"])


def inbox(cons: Construction, username: str, instance_id: int) -> list[dict[str, Any]]:
    body = cons.api(username).get("/api/v1/tasks?process=payment_approval").get_json()
    items = body["items"] if isinstance(body, dict) else body
    return [t for t in items if t["instance_id"] == instance_id]


def act(cons: Construction, username: str, task: dict[str, Any], action: str, **data: Any) -> Any:
    return cons.api(username).post(
        f"/api/v1/tasks/{task['id']}/complete",
        {"action": action, "comment": "" if action == "approve" else "金额不符", "data": data},
    )


def payments_for(db: Any, request_id: int) -> list[Any]:
    t = load_registry(db).meta("funds.payment").table
    db.rollback()
    return list(db.execute(sa.select(t).where(t.c.request == request_id)).mappings())


def test_payment_request_approved_by_manager_then_finance_records_the_payment(cons, db):
    record = new_request(cons, db, "654321.09")
    instance = submit(cons, record)
    [pm_task] = inbox(cons, "chenjing", instance)  # the project's manager, found by the process
    assert pm_task["step"] == "pm_review"
    assert pm_task["assignee_id"] == cons.user_id("chenjing")
    assert inbox(cons, "zhangwei", instance) == []  # another project's manager
    assert act(cons, "zhangwei", pm_task, "approve").status_code == 403
    locked = cons.api("wangfang").patch(
        f"{API}/payment_request/{record['id']}", {"amount": "1.00", "version": record["version"]}
    )
    assert locked.status_code in (409, 422)  # in approval: nobody edits it
    assert act(cons, "chenjing", pm_task, "approve").status_code == 200
    [finance_task] = inbox(cons, "zhaomin", instance)
    assert (finance_task["step"], finance_task["role"]) == ("finance_review", "finance")
    assert act(cons, "chenjing", finance_task, "approve").status_code == 403
    paid_on = (today() - dt.timedelta(1)).isoformat()
    done = act(cons, "zhaomin", finance_task, "approve", paid_on=paid_on, method="bill")
    assert done.status_code == 200, done.get_json()
    state = cons.api("wangfang").get(f"{API}/payment_request/{record['id']}").get_json()
    assert state["approval_state"] == "approved"
    [payment] = payments_for(db, record["id"])
    fetched = cons.api("zhaomin").get(f"{API}/payment/{payment['id']}").get_json()
    assert (fetched["amount"], fetched["paid_on"], fetched["method"]) == (
        "654321.09",
        paid_on,
        "bill",
    )
    assert fetched["account"] == record["pay_account"]
    assert (fetched["project"], fetched["counterparty"]) == (
        record["project"],
        record["counterparty"],
    )
    process = cons.api("wangfang").get(f"/api/v1/processes/{instance}").get_json()
    assert process["status"] == "completed"


def test_a_rejected_payment_request_pays_nothing(cons, db):
    record = new_request(cons, db, "1000.00")
    instance = submit(cons, record)
    [pm_task] = inbox(cons, "chenjing", instance)
    assert act(cons, "chenjing", pm_task, "reject").status_code == 200
    state = cons.api("wangfang").get(f"{API}/payment_request/{record['id']}").get_json()
    assert state["approval_state"] == "rejected"
    assert payments_for(db, record["id"]) == []


def test_pages_render(cons, db, app_b):
    from tests.web.conftest import sign_in

    browser = sign_in(app_b, "admin")
    assert "应收" in browser.html("/dashboards/funds/funds_overview")
    for name in (
        "receivables_ageing",
        "payables_ageing",
        "cash_flow_monthly",
        "daily_account_summary",
        "account_balances",
        "deposits_expiring",
    ):
        browser.html(f"/reports/funds/{name}")
    assert "FK-" in browser.html("/app/funds/payment_request")
    request = ids(db, "funds.payment_request", "number")
    first = min(request.values())
    assert "付款事由" in browser.html(f"/app/funds/payment_request/{first}")


# -- the deposit expiry reminder process ---------------------------------------------------------


def test_deposit_expiry_watch_reminds_finance_once_per_deposit(cons, db):
    now = today()
    due = {
        dep["reference_no"]
        for dep in demo("funds", "deposits")
        if not dep.get("returned_on") and dep["expiry_date"] <= now + dt.timedelta(30)
    }
    started = cons.api().post("/api/v1/processes", {"process": "deposit_expiry_watch", "data": {}})
    assert started.status_code == 201, started.get_json()
    instance = started.get_json()
    db.rollback()
    notes = db.scalars(
        sa.select(Notification).where(Notification.instance_id == instance["id"])
    ).all()
    assert {n.role for n in notes} == {"finance"}
    assert {n.subject.split(": ", 1)[1].split(" (")[0] for n in notes} == due
    deposits = cons.api("admin").get(f"{API}/deposit?per_page=100").get_json()["items"]
    reminded = {dep["reference_no"] for dep in deposits if dep["reminded_on"] == now.isoformat()}
    assert reminded == due
    process = cons.api().get(f"/api/v1/processes/{instance['id']}").get_json()
    assert process["status"] == "running"  # asleep until tomorrow's pass
    wakes = dt.datetime.fromisoformat(process["timer_due_at"])
    assert dt.timedelta(hours=23) < wakes - session_clock(db).now() <= dt.timedelta(days=1)
    # an extended deposit (reminder cleared) is reminded again; the others are not
    extended = next(dep for dep in deposits if dep["reference_no"] == sorted(due)[0])
    cleared = cons.api().patch(
        f"{API}/deposit/{extended['id']}", {"reminded_on": None, "version": extended["version"]}
    )
    assert cleared.status_code == 200, cleared.get_json()
    again = cons.api().post("/api/v1/processes", {"process": "deposit_expiry_watch", "data": {}})
    db.rollback()
    notes = db.scalars(
        sa.select(Notification).where(Notification.instance_id == again.get_json()["id"])
    ).all()
    assert [n.subject.split(": ", 1)[1].split(" (")[0] for n in notes] == [sorted(due)[0]]


def test_contracts_and_invoices_must_match_the_project_and_direction(cons, db):
    api = cons.api()
    r = refs(db)
    issued = ids(db, "funds.invoice", "number")["2402X0001"]
    receipt = {"project": r["project"], "counterparty": r["client"], "receipt_type": "progress",
               "received_on": "2026-11-20", "amount": "10.00", "account": r["account"],
               "contract": r["expense"], "invoice": issued}  # fmt: skip
    refused = api.post(f"{API}/receipt", receipt)
    assert refused.status_code == 422
    assert [e["pointer"] for e in refused.get_json()["errors"]] == ["/contract"]
    created = api.post(f"{API}/receipt", {**receipt, "contract": r["income"]})
    assert created.status_code == 201, created.get_json()
    assert api.delete(f"{API}/receipt/{created.get_json()['id']}").status_code == 204
    payment = {"project": r["project"], "counterparty": r["sub"], "payment_type": "progress",
               "paid_on": "2026-11-20", "amount": "10.00", "account": r["account"],
               "contract": r["income"], "invoice": issued}  # fmt: skip
    refused = api.post(f"{API}/payment", payment)
    assert refused.status_code == 422
    assert {e["pointer"] for e in refused.get_json()["errors"]} == {"/contract", "/invoice"}
