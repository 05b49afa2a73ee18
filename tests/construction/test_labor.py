"""The labor pack (点工汇总中心): install with demo data, entity round trips, checks, permissions,
every report against numbers computed here from the raw tables, and the day-sheet approval
crew leader → site engineer → project manager posting labour cost."""

from __future__ import annotations

import re
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from formwork.runtime.models import User
from formwork.runtime.packs import pack_records
from formwork.runtime.workflow.models import HistoryEntry
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

ALL = {"from": "2000-01-01"}
HALF = Decimal("0.5")

# the module's database with the construction packs and demo data, and a session on it
cons = support_c.cons
admin = support_c.admin
api_for = support_c.api_for
db = support_c.db


def approved_lines(session: Any) -> list[Any]:
    return rows(session, "labor.day_sheet_line", state="approved")


def line_amount(line: Any) -> Decimal:
    """The documented rule: work-days × rate + overtime hours × rate ÷ 8 × 1.5, to the cent."""
    rate = money(line["rate"])
    raw = Decimal(str(line["work_days"])) * rate + money(
        line["overtime_hours"]
    ) * rate / 8 * Decimal("1.5")
    return raw.quantize(Decimal("0.01"), ROUND_HALF_UP)


# -- install and demo -----------------------------------------------------------------------


def test_install_with_demo(db: Any) -> None:
    names = set(pack_records(db))
    assert {"projects", "cost_center", "labor"} <= set(names)
    assert len(rows(db, "labor.crew")) >= 3
    workers = rows(db, "labor.worker")
    assert len(workers) >= 20 and all(
        re.fullmatch(r"[0-9]{17}[0-9X]", w["id_number"]) for w in workers
    )
    sheets = rows(db, "labor.day_sheet")
    assert len(sheets) > 100
    per_day: dict[str, list[int]] = defaultdict(list)
    for sheet in sheets:
        match = re.fullmatch(r"DW-(\d{8})-(\d{3})", sheet["number"])
        assert match, sheet["number"]
        assert match.group(1) == sheet["work_date"].strftime("%Y%m%d")
        per_day[match.group(1)].append(int(match.group(2)))
    for numbers in per_day.values():  # the counter restarts every day and has no gaps
        assert sorted(numbers) == list(range(1, len(numbers) + 1))


def test_demo_sheets_are_consistent(db: Any) -> None:
    sheets = {s["id"]: s for s in rows(db, "labor.day_sheet")}
    lines = rows(db, "labor.day_sheet_line")
    totals: dict[int, Decimal] = defaultdict(Decimal)
    for line in lines:
        sheet = sheets[line["parent_id"]]
        assert line_amount(line) == money(line["amount"])
        assert (line["project"], line["crew"], line["work_date"], line["state"]) == (
            sheet["project"], sheet["crew"], sheet["work_date"], sheet["approval_state"]
        )  # fmt: skip
        assert Decimal(str(line["work_days"])) % HALF == 0
        totals[line["parent_id"]] += money(line["amount"])
    for sheet_id, total in totals.items():
        assert money(sheets[sheet_id]["total"]) == total


# -- round trips and checks -----------------------------------------------------------------


def _round_trip(
    api: Api, path: str, body: dict[str, Any], change: dict[str, Any]
) -> dict[str, Any]:
    created = api.post(path, body)
    assert created.status_code == 201, created.get_json()
    record = created.get_json()
    got = api.get(f"{path}/{record['id']}").get_json()
    for name, value in body.items():
        if name != "lines":
            assert got[name] == value, name
    patched = api.patch(f"{path}/{record['id']}", {**change, "version": got["version"]})
    assert patched.status_code == 200, patched.get_json()
    for name, value in change.items():
        assert patched.get_json()[name] == value
    return patched.get_json()


def test_entity_round_trips(admin: Api, db: Any) -> None:
    project = id_of(db, "projects.project", code="P2401")
    counterparty = rows(db, "projects.counterparty", kind="crew")[0]["id"]
    crew = _round_trip(
        admin, "/api/v1/labor/crew",
        {"code": "BZ-T01", "name": "测试班组", "counterparty": counterparty, "main_trade": "mason"},
        {"name": "测试瓦工班"},
    )  # fmt: skip
    worker = _round_trip(
        admin, "/api/v1/labor/worker",
        {"name": "测试工", "id_number": "11010519800101123X", "trade": "mason", "crew": crew["id"],
         "day_rate": "350.00", "bank_card": "6228480000000000001"},
        {"day_rate": "360.00"},
    )  # fmt: skip
    sheet = _round_trip(
        admin, "/api/v1/labor/day_sheet",
        {"project": project, "work_date": "2026-03-02", "crew": crew["id"], "reason": "extra",
         "location": "2# 楼",
         "lines": [{"worker": worker["id"], "work_days": "1.5", "regular_hours": "8.0",
                                        "overtime_hours": "4.0", "day_rate": "360.00"}]},
        {"location": "2# 楼 5 层"},
    )  # fmt: skip
    assert sheet["number"].startswith("DW-20260302-")
    line = sheet["lines"][0]
    assert line["amount"] == "810.00"  # 1.5 × 360 + 4 × 360 / 8 × 1.5
    assert sheet["total"] == "810.00" and sheet["total_days"] == "1.5"
    assert (
        line["project"] == project
        and line["crew"] == crew["id"]
        and line["work_date"] == "2026-03-02"
    )
    no_rate = {
        "worker": worker["id"],
        "work_days": "0.5",
        "regular_hours": "4",
        "overtime_hours": "0",
    }
    inputs = ("id", "worker", "work_days", "regular_hours", "overtime_hours", "day_rate")
    kept = {k: line[k] for k in inputs}
    added = admin.patch(
        f"/api/v1/labor/day_sheet/{sheet['id']}",
        {"version": sheet["version"], "lines": [kept, no_rate]},
    )
    assert added.status_code == 200, added.get_json()
    second = added.get_json()["lines"][1]  # no day rate: the worker's
    assert (second["day_rate"], second["rate"], second["amount"]) == (None, "360.00", "180.00")
    assert added.get_json()["total"] == "990.00"
    _round_trip(
        admin, "/api/v1/labor/advance",
        {"worker": worker["id"], "project": project, "date": "2026-03-05", "amount": "500.00"},
        {"amount": "600.00"},
    )  # fmt: skip
    _round_trip(
        admin, "/api/v1/labor/settlement",
        {"worker": worker["id"], "project": project, "date": "2026-04-01", "amount": "210.00",
         "period_from": "2026-03-01", "period_to": "2026-03-31"},
        {"amount": "210.50"},
    )  # fmt: skip
    deleted = admin.delete(f"/api/v1/labor/day_sheet/{sheet['id']}")
    assert deleted.status_code == 204


def test_bad_input_is_refused_with_pointers(admin: Api, db: Any) -> None:
    crew = rows(db, "labor.crew")[0]["id"]
    worker = rows(db, "labor.worker")[0]["id"]
    bad_id = admin.post(
        "/api/v1/labor/worker", {"name": "甲", "id_number": "123", "trade": "general", "crew": crew}
    )
    assert bad_id.status_code == 422
    assert any(e["pointer"] == "/id_number" for e in bad_id.get_json()["errors"])
    project = id_of(db, "projects.project", code="P2402")
    line = {
        "worker": worker,
        "work_days": "0.3",
        "regular_hours": "8",
        "overtime_hours": "20",
        "day_rate": "300",
    }
    bad_sheet = admin.post(
        "/api/v1/labor/day_sheet",
        {
            "project": project,
            "work_date": "2026-03-03",
            "crew": crew,
            "reason": "minor",
            "lines": [line],
        },
    )
    assert bad_sheet.status_code == 422
    pointers = {e["pointer"] for e in bad_sheet.get_json()["errors"]}
    assert {"/lines/0/work_days", "/lines/0/overtime_hours"} <= pointers
    empty = admin.post(
        "/api/v1/labor/day_sheet",
        {
            "project": project,
            "work_date": "2026-03-03",
            "crew": crew,
            "reason": "minor",
            "lines": [],
        },
    )
    assert empty.status_code == 422 and any(
        e["pointer"] == "/lines" for e in empty.get_json()["errors"]
    )


# -- permissions ------------------------------------------------------------------------------


def test_bank_card_only_for_finance(cons: Any, db: Any) -> None:
    project = id_of(db, "projects.project", code="P2401")
    worker = rows(db, "labor.worker")[0]
    finance = api_for(cons, db, member_user(db, project, "finance"))
    site = api_for(cons, db, member_user(db, project, "site-engineer"))
    assert (
        finance.get(f"/api/v1/labor/worker/{worker['id']}").get_json()["bank_card"]
        == worker["bank_card"]
    )
    seen = site.get(f"/api/v1/labor/worker/{worker['id']}").get_json()
    assert "bank_card" not in seen and seen["name"] == worker["name"]


def test_crew_leader_sees_only_his_crew(cons: Any, db: Any) -> None:
    crew = rows(db, "labor.crew")[0]
    leader = api_for(cons, db, crew["leader"])
    listed = leader.get("/api/v1/labor/day_sheet?per_page=200").get_json()
    expected = rows(db, "labor.day_sheet", crew=crew["id"])
    assert listed["total"] == len(expected) > 0
    assert {item["crew"] for item in listed["items"]} == {crew["id"]}
    other = next(s for s in rows(db, "labor.day_sheet") if s["crew"] != crew["id"])
    assert leader.get(f"/api/v1/labor/day_sheet/{other['id']}").status_code == 404


# -- reports ------------------------------------------------------------------------------------


def _sums(lines: list[Any], key: Any) -> dict[Any, dict[str, Decimal]]:
    out: dict[Any, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for line in lines:
        bucket = out[key(line)]
        bucket["work_days"] += Decimal(str(line["work_days"]))
        bucket["hours"] += Decimal(str(line["hours"]))
        bucket["amount"] += money(line["amount"])
    return out


def _same(result: Any, expected: dict[Any, dict[str, Decimal]], *key: str) -> None:
    got = by(result, *key)
    assert set(got) == set(expected)
    for k, sums in expected.items():
        for measure, value in sums.items():
            assert Decimal(str(got[k][measure])) == value, (k, measure)


@pytest.mark.parametrize(
    ("name", "key", "column"),
    [
        ("labour_by_worker", lambda line, trades: line["worker"], "worker"),
        ("labour_by_crew", lambda line, trades: line["crew"], "crew"),
        ("labour_by_project", lambda line, trades: line["project"], "project"),
        ("labour_by_trade", lambda line, trades: trades[line["worker"]], "trade"),
        ("labour_by_day", lambda line, trades: line["work_date"].isoformat(), "day"),
        ("labour_by_month", lambda line, trades: line["work_date"].strftime("%Y-%m"), "month"),
    ],
)
def test_summary_reports(db: Any, name: str, key: Any, column: str) -> None:
    trades = {w["id"]: w["trade"] for w in rows(db, "labor.worker")}
    expected = _sums(approved_lines(db), lambda line: key(line, trades))
    result = report(db, "labor", name, **ALL)
    _same(result, expected, column)
    total = sum((s["amount"] for s in expected.values()), Decimal(0))
    assert Decimal(str(result.totals["amount"])) == total


def test_crew_month_for_one_project(db: Any) -> None:
    project = id_of(db, "projects.project", code="P2402")
    lines = [line for line in approved_lines(db) if line["project"] == project]
    expected = _sums(lines, lambda line: (line["crew"], line["work_date"].strftime("%Y-%m")))
    _same(
        report(db, "labor", "labour_by_crew_month", project=str(project), **ALL),
        expected,
        "crew",
        "month",
    )


def test_long_hours_are_flagged(db: Any) -> None:
    lines = rows(db, "labor.day_sheet_line", state=["approved", "in-approval"])
    hours = _sums(lines, lambda line: (line["worker"], line["work_date"].isoformat()))
    result = report(db, "labor", "long_hours", **ALL)
    got = by(result, "worker", "day")
    assert set(got) == set(hours)
    flagged = {k for k, s in hours.items() if s["hours"] > 12}
    assert flagged, "the demo has days over 12 hours"
    for row, style in zip(result.rows, result.styles, strict=True):
        k = (row["worker"], row["day"])
        assert Decimal(str(row["hours"])) == hours[k]["hours"]
        assert (style == "danger") == (k in flagged)
    assert [r["worker"] for r in result.rows[: len(flagged)]] and all(
        (r["worker"], r["day"]) in flagged for r in result.rows[: len(flagged)]
    )  # sorted by hours, the longest days come first


def test_wages_balance(db: Any) -> None:
    earned = _sums(approved_lines(db), lambda line: line["worker"])
    advanced: dict[int, Decimal] = defaultdict(Decimal)
    settled: dict[int, Decimal] = defaultdict(Decimal)
    for a in rows(db, "labor.advance"):
        advanced[a["worker"]] += money(a["amount"])
    for s in rows(db, "labor.settlement"):
        settled[s["worker"]] += money(s["amount"])
    result = by(report(db, "labor", "wages_balance"), "worker")
    assert set(result) == set(earned) | set(advanced) | set(settled)
    for worker, row in result.items():
        e = earned[worker]["amount"] if worker in earned else Decimal(0)
        assert Decimal(str(row["earned"] or 0)) == e
        assert Decimal(str(row["advanced"] or 0)) == advanced[worker]
        assert Decimal(str(row["settled"] or 0)) == settled[worker]
        assert Decimal(str(row["owed"])) == e - advanced[worker] - settled[worker]


def test_crew_leader_report_is_limited_to_his_crew(db: Any) -> None:
    crew = rows(db, "labor.crew")[1]
    lines = [line for line in approved_lines(db) if line["crew"] == crew["id"]]
    result = report(db, "labor", "labour_by_crew", user_id=crew["leader"], **ALL)
    _same(result, _sums(lines, lambda line: line["crew"]), "crew")


# -- the approval workflow ------------------------------------------------------------------------


def _new_sheet(admin: Api, db: Any, project_code: str) -> dict[str, Any]:
    project = id_of(db, "projects.project", code=project_code)
    crew = rows(db, "labor.crew")[0]
    workers = rows(db, "labor.worker", crew=crew["id"])[:2]
    lines = [
        {"worker": w["id"], "work_days": "1", "regular_hours": "8", "overtime_hours": "2",
         "day_rate": str(money(w["day_rate"]))}
        for w in workers
    ]  # fmt: skip
    body = {
        "project": project,
        "work_date": "2026-05-06",
        "crew": crew["id"],
        "reason": "extra",
        "lines": lines,
    }
    created = admin.post("/api/v1/labor/day_sheet", body)
    assert created.status_code == 201, created.get_json()
    db.commit()  # end this session's read snapshot: the sheet was saved by another session
    return created.get_json()


def test_day_sheet_approval_posts_labour_cost(admin: Api, db: Any) -> None:
    sheet = _new_sheet(admin, db, "P2401")
    project = sheet["project"]
    site = member_user(db, project, "site-engineer")
    crew = rows(db, "labor.crew", id=sheet["crew"])[0]
    # The crew leader submits his crew's sheet: his own confirmation step passes (skip).
    instance = workflow(db, crew["leader"]).submit("labor.day_sheet", sheet["id"])
    db.commit()
    (task,) = ready(db, instance.id)
    assert (task.step, task.assignee_id) == ("site_review", site)
    skipped = db.scalars(
        sa.select(HistoryEntry).where(
            HistoryEntry.instance_id == instance.id, HistoryEntry.action == "skip"
        )
    ).all()
    assert [h.step for h in skipped] == ["leader_review"]
    act(db, instance.id, "site_review")
    (task,) = ready(db, instance.id)
    assert (task.step, task.assignee_id) == ("pm_review", member_user(db, project, "manager"))
    assert rows(db, "cost_center.cost_entry", source_ref=sheet["number"]) == []
    act(db, instance.id, "pm_review")
    state = rows(db, "labor.day_sheet", id=sheet["id"])[0]
    assert state["approval_state"] == "approved"
    (entry,) = rows(db, "cost_center.cost_entry", source_ref=sheet["number"])
    assert money(entry["amount"]) == Decimal(sheet["total"])
    assert entry["account"] == id_of(db, "cost_center.cost_account", code="0101")
    assert (entry["project"], entry["source"]) == (project, "labour")
    assert entry["date"].isoformat() == sheet["work_date"]
    lines = rows(db, "labor.day_sheet_line", parent_id=sheet["id"])
    assert {line["state"] for line in lines} == {"approved"}  # reports now count it


def test_wrong_user_cannot_approve_and_reject_ends(admin: Api, db: Any) -> None:
    from formwork.runtime.errors import PermissionDenied
    from formwork.runtime.workflow.actions import complete

    sheet = _new_sheet(admin, db, "P2402")
    instance = workflow(db, member_user(db, sheet["project"], "site-engineer")).submit(
        "labor.day_sheet", sheet["id"]
    )
    db.commit()
    (task,) = ready(db, instance.id)
    other_leader = next(c["leader"] for c in rows(db, "labor.crew") if c["id"] != sheet["crew"])
    with pytest.raises(PermissionDenied):
        complete(workflow(db, other_leader), task.id, "approve")
    db.rollback()
    act(db, instance.id, "leader_review")
    act(db, instance.id, "site_review", "return")  # 退回 to the crew leader
    (task,) = ready(db, instance.id)
    assert task.step == "leader_review"
    act(db, instance.id, "leader_review")
    act(db, instance.id, "site_review", "reject")
    state = rows(db, "labor.day_sheet", id=sheet["id"])[0]
    assert state["approval_state"] == "rejected"
    assert rows(db, "cost_center.cost_entry", source_ref=sheet["number"]) == []


# -- Excel import of a crew's monthly sheet (one row per worker and day) --------------------------


def _xlsx(rows_: list[list[Any]]) -> bytes:
    import io

    from openpyxl import Workbook

    book = Workbook()
    for row in rows_:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_import_monthly_sheet_with_line_items(cons: Any, db: Any, admin: Api) -> None:
    import io

    from tests.web.conftest import sign_in

    (project,) = rows(db, "projects.project", code="P2403")
    crew = rows(db, "labor.crew")[2]
    names: dict[str, int] = defaultdict(int)
    for w in rows(db, "labor.worker"):
        names[w["name"]] += 1
    team = [w for w in rows(db, "labor.worker", crew=crew["id"]) if names[w["name"]] == 1][:2]
    header = [
        "用工日期",
        "项目",
        "班组",
        "用工事由",
        "工人",
        "工日",
        "正常工时",
        "加班工时",
        "工日单价",
    ]
    data = [
        [day, project["name"], crew["name"], "合同外用工", w["name"], days, 8, overtime,
         str(money(w["day_rate"]))]
        for day, days, overtime in (("2026-02-03", 1, 2), ("2026-02-04", 0.5, 0))
        for w in team
    ]  # fmt: skip
    browser = sign_in(cons, "t_admin")
    browser.get("/app/labor/day_sheet/import")

    def upload(sheet_rows: list[list[Any]]) -> str:
        response = browser.post(
            "/app/labor/day_sheet/import",
            {"file": (io.BytesIO(_xlsx([header, *sheet_rows])), "crew.xlsx")},
            content_type="multipart/form-data",
        )
        assert response.status_code == 302, response.get_data(as_text=True)[:2000]
        return str(response.headers["Location"])

    mapping = ["work_date", "project", "crew", "reason", "lines.worker", "lines.work_days",
               "lines.regular_hours", "lines.overtime_hours", "lines.day_rate"]  # fmt: skip
    form = {f"col-{i}": v for i, v in enumerate(mapping)}
    before = len(rows(db, "labor.day_sheet"))
    bad = upload(
        [
            *data,
            [
                "2026-02-05",
                project["name"],
                crew["name"],
                "合同外用工",
                team[0]["name"],
                0.3,
                8,
                0,
                "300",
            ],
        ]
    )
    html = browser.html(bad)
    for i, name in enumerate(mapping):  # matched by the Chinese labels, lines by their own
        assert f'<option value="{name}" selected>' in html, name
    refused = browser.post(bad, {**form, "action": "commit"})
    assert refused.status_code == 422
    assert "工日" in refused.get_data(as_text=True)
    db.commit()
    assert len(rows(db, "labor.day_sheet")) == before  # all or nothing
    done = browser.post(upload(data), {**form, "action": "commit"})
    assert done.status_code == 302, done.get_data(as_text=True)[:3000]
    db.commit()
    created = [s for s in rows(db, "labor.day_sheet") if s["id"] > 0][before:]
    assert [(s["work_date"].isoformat(), s["crew"], s["project"]) for s in created] == [
        ("2026-02-03", crew["id"], project["id"]), ("2026-02-04", crew["id"], project["id"])
    ]  # fmt: skip
    for sheet, (days, overtime) in zip(created, ((Decimal(1), 2), (HALF, 0)), strict=True):
        lines = rows(db, "labor.day_sheet_line", parent_id=sheet["id"])
        assert [line["worker"] for line in lines] == [w["id"] for w in team]
        assert all(Decimal(str(line["work_days"])) == days for line in lines)
        assert all(line_amount(line) == money(line["amount"]) for line in lines)
        assert money(sheet["total"]) == sum((money(line["amount"]) for line in lines), Decimal(0))
        assert {money(line["overtime_hours"]) for line in lines} == {Decimal(overtime)}


# -- pages ---------------------------------------------------------------------------------------


def test_report_and_dashboard_pages_render(cons: Any, db: Any, admin: Api) -> None:
    import json
    from pathlib import Path

    from tests.web.conftest import sign_in

    root = Path(__file__).resolve().parents[2] / "module_packs"
    browser = sign_in(cons, "t_admin")
    for pack in ("labor", "ccb_approval"):
        manifest = json.loads((root / pack / "pack.json").read_text("utf-8"))
        for path in manifest["files"]["reports"]:
            name = Path(path).stem
            page = browser.get(f"/reports/{pack}/{name}")
            assert page.status_code == 200, (pack, name, page.get_data(as_text=True)[:500])
            assert browser.get(f"/reports/{pack}/{name}/export.xlsx").status_code == 200
        for path in manifest["files"]["dashboards"]:
            page = browser.get(f"/dashboards/{pack}/{Path(path).stem}")
            assert page.status_code == 200, (pack, path)
    leader = rows(db, "labor.crew")[0]["leader"]
    user = db.get(User, leader)
    user.password_hash = db.get(User, admin_id(db)).password_hash  # a known password to sign in
    db.commit()
    crew_browser = sign_in(cons, user.username)
    assert crew_browser.get("/dashboards/labor/labour_overview").status_code == 200
    html = crew_browser.html("/reports/labor/labour_by_crew?from=2000-01-01")
    others = [c["name"] for c in rows(db, "labor.crew") if c["leader"] != leader]
    assert rows(db, "labor.crew")[0]["name"] in html and not any(name in html for name in others)


def admin_id(session: Any) -> int:
    """Return the id of the test administrator."""
    return int(session.scalar(sa.select(User.id).where(User.username == "t_admin")))


def test_the_sheet_list_names_projects_and_crews(cons: Any, db: Any, admin: Api) -> None:
    from tests.web.conftest import sign_in

    # Lines copy the sheet's project and crew under the same names; the list must still
    # show the sheets' projects and crews by name, not as #ids.
    html = sign_in(cons, "t_admin").html("/app/labor/day_sheet")
    project_names = {p["name"] for p in rows(db, "projects.project")}
    crew_names = {c["name"] for c in rows(db, "labor.crew")}
    assert any(name in html for name in project_names)
    assert any(name in html for name in crew_names)
    assert not re.search(r">#\d+<", html)
