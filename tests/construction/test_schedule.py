"""The schedule pack (综合进度管控): install on an empty database next to projects, every entity
through REST, the computed progress fields, the row rules of the roles, and every report checked
against figures computed here from the demo files."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal
from typing import Any

import pytest

from formwork.runtime.packs import check_pack, read_pack
from formwork.runtime.registry import load_registry
from formwork.runtime.reports.charts import gantt_tasks
from tests.construction import support_b
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

PACKS = ("projects", "schedule")
TASKS = "/api/v1/schedule/task"
PLANS = "/api/v1/schedule/plan"


cons = installed("projects", "schedule")
app_b, db = support_b.app_b, support_b.db


# -- what the demo files say, computed independently of the pack's expressions -----------------


def expected_task(task: dict[str, Any]) -> dict[str, Any]:
    """Return a demo task's derived values: calendar-day duration, latest % and dates, delay."""
    start, finish = task["planned_start"], task["planned_finish"]
    milestone, summary = task.get("is_milestone", False), task.get("is_summary", False)
    duration = 0 if milestone else (finish - start).days + 1
    updates = task.get("updates") or []
    last = max((u["report_date"] for u in updates), default=None)
    latest = [u for u in updates if u["report_date"] == last]
    pct = Decimal(latest[-1]["percent_complete"]) if latest else Decimal(0)
    finishes = [u["actual_finish"] for u in updates if u.get("actual_finish")]
    actual_finish = max(finishes) if finishes and pct == 100 else None
    forecast = (
        actual_finish
        or (latest[-1].get("forecast_finish") if latest else None)
        or max(finish, last or finish)
    )
    weight = 0 if milestone or summary else duration
    return {
        "duration": duration,
        "percent": pct,
        "actual_start": min(
            (u["actual_start"] for u in updates if u.get("actual_start")), default=None
        ),
        "actual_finish": actual_finish,
        "forecast": forecast,
        "delay": max(0, (forecast - finish).days),
        "weight": weight,
        "earned": (weight * pct / 100).quantize(Decimal("0.01")),
    }


def demo_tasks() -> dict[str, dict[str, Any]]:
    return {t["code"]: {**t, **expected_task(t)} for t in demo("schedule", "tasks")}


# -- install and check -----------------------------------------------------------------------


def test_installs_on_an_empty_database_with_its_demo(cons, db):
    done = cons.report
    for entity in ("plan", "task", "task_link", "progress_update"):
        assert f"schedule: Create entity schedule.{entity} (table schedule__{entity})" in done
    assert "schedule installed 1.0.0" in done
    assert f"schedule: loaded {len(demo_tasks())} record(s) from demo/tasks.json" in done
    assert len(ids(db, "schedule.task")) == len(demo_tasks())


def test_pack_check_is_clean(db):
    checked = check_pack(read_pack(ROOT / "schedule"), known=load_registry(db).entities)
    assert checked.name == "schedule"


# -- REST round trips --------------------------------------------------------------------------


def test_plan_round_trip_and_forecast_finish(cons, db):
    api = cons.api()
    project = ids(db, "projects.project")["P2501"]  # the project in planning has no plan yet
    created = api.post(
        PLANS,
        {"project": project, "required_start": "2027-01-22", "required_finish": "2029-10-18"},
    )
    assert created.status_code == 201, created.get_json()
    plan = created.get_json()
    assert plan["forecast_delay_days"] == 0  # the contract's default
    assert plan["forecast_finish"] == "2029-10-18"
    assert plan["contract_days"] == (dt.date(2029, 10, 18) - dt.date(2027, 1, 22)).days + 1
    patched = api.patch(
        f"{PLANS}/{plan['id']}", {"forecast_delay_days": 45, "version": plan["version"]}
    )
    assert patched.status_code == 200, patched.get_json()
    assert patched.get_json()["forecast_finish"] == "2029-12-02"
    listed = api.get(f"{PLANS}?project__eq={project}").get_json()
    assert [p["id"] for p in listed["items"]] == [plan["id"]]
    again = api.post(
        PLANS, {"project": project, "required_start": "2027-01-22", "required_finish": "2029-10-18"}
    )
    assert again.status_code == 422
    assert any(e["pointer"] == "/project" for e in again.get_json()["errors"])  # one per project
    assert api.delete(f"{PLANS}/{plan['id']}").status_code == 204
    assert api.get(f"{PLANS}/{plan['id']}").status_code == 404


def upload_photo(api: Any) -> str:
    response = api.client.post(
        "/api/v1/files",
        headers=api._headers(),
        data={"file": (io.BytesIO(b"\x89PNG\r\n\x1a\nsite"), "site.png", "image/png")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["id"])


def test_task_round_trip_with_links_progress_and_photo(cons, db):
    api = cons.api()
    project = ids(db, "projects.project")["P2401"]
    tasks = ids(db, "schedule.task")
    photo = upload_photo(api)
    body = {
        "project": project,
        "code": "P2401-07.01",
        "name": "室外总体及景观",
        "parent": tasks["P2401-04"],
        "owner": cons.user_id("lina"),
        "planned_start": "2027-03-01",
        "planned_finish": "2027-04-09",
        "links": [
            {"predecessor": tasks["P2401-04.02"], "link_type": "FS", "lag_days": 5},
            {"predecessor": tasks["P2401-05.01"], "link_type": "SS", "lag_days": -3},
        ],
        "updates": [
            {
                "report_date": "2027-03-10",
                "percent_complete": "20",
                "actual_start": "2027-03-02",
                "forecast_finish": "2027-04-15",
                "note": "苗木进场",
                "photo": photo,
            },
        ],
    }
    created = api.post(TASKS, body)
    assert created.status_code == 201, created.get_json()
    task = created.get_json()
    assert task["duration_days"] == 40  # calendar days, both ends included
    assert task["percent_complete"] == "20.00"
    assert task["actual_start"] == "2027-03-02"
    assert task["forecast_finish"] == "2027-04-15" and task["delay_days"] == 6
    assert task["earned_days"] == "8.00"
    assert task["predecessor_ids"] == f"{tasks['P2401-04.02']},{tasks['P2401-05.01']}"
    assert [(link["link_type"], link["lag_days"]) for link in task["links"]] == [
        ("FS", 5),
        ("SS", -3),
    ]
    fetched = api.get(f"{TASKS}/{task['id']}").get_json()
    assert fetched["updates"][0]["photo"] == photo
    assert fetched["title"] == "P2401-07.01 室外总体及景观"
    done = {
        "report_date": "2027-04-12",
        "percent_complete": "100",
        "actual_start": "2027-03-02",
        "actual_finish": "2027-04-11",
    }
    patched = api.patch(
        f"{TASKS}/{task['id']}",
        {"updates": [*fetched["updates"], done], "version": fetched["version"]},
    )
    assert patched.status_code == 200, patched.get_json()
    after = patched.get_json()
    assert (after["percent_complete"], after["actual_finish"]) == ("100.00", "2027-04-11")
    assert after["forecast_finish"] == "2027-04-11" and after["delay_days"] == 2
    assert len(after["updates"]) == 2  # the history is kept
    assert api.delete(f"{TASKS}/{task['id']}").status_code == 204
    assert api.get(f"{TASKS}/{task['id']}").status_code == 404


def test_bad_dates_are_refused_with_their_place(cons, db):
    api = cons.api()
    project = ids(db, "projects.project")["P2402"]
    bad = api.post(
        TASKS,
        {
            "project": project,
            "code": "P2402-99",
            "name": "错误",
            "planned_start": "2027-05-01",
            "planned_finish": "2027-04-01",
            "updates": [
                {
                    "report_date": "2027-05-02",
                    "percent_complete": "40",
                    "actual_start": "2027-05-01",
                    "actual_finish": "2027-05-02",
                },
            ],
        },
    )
    assert bad.status_code == 422
    pointers = {e["pointer"] for e in bad.get_json()["errors"]}
    assert "/planned_finish" in pointers
    assert "/updates/0/actual_finish" in pointers


def test_milestone_has_no_duration_and_one_day(cons, db):
    api = cons.api()
    project = ids(db, "projects.project")["P2402"]
    body = {
        "project": project,
        "code": "P2402-98",
        "name": "节点",
        "is_milestone": True,
        "planned_start": "2027-05-01",
        "planned_finish": "2027-05-03",
    }
    assert api.post(TASKS, body).status_code == 422
    body["planned_finish"] = "2027-05-01"
    created = api.post(TASKS, body)
    assert created.status_code == 201, created.get_json()
    assert (created.get_json()["duration_days"], created.get_json()["weight_days"]) == (0, 0)
    assert api.delete(f"{TASKS}/{created.get_json()['id']}").status_code == 204


# -- roles and row rules ------------------------------------------------------------------------


def test_members_see_only_their_projects(cons, db):
    projects = ids(db, "projects.project")
    by_project: dict[int, int] = {}
    for task in demo_tasks().values():
        pid = projects[task["project"]["code"]]
        by_project[pid] = by_project.get(pid, 0) + 1

    def seen(username: str) -> set[int]:
        body = cons.api(username).get(f"{TASKS}?per_page=200").get_json()
        assert body["total"] == len(body["items"])
        return {item["project"] for item in body["items"]}

    assert seen("lina") == {projects["P2401"]}  # site engineer on P2401 only
    assert seen("zhangwei") == {projects["P2401"], projects["P2402"]}  # PM of two projects
    assert seen("chenjing") == {projects["P2403"]}
    total = cons.api("zhangwei").get(f"{TASKS}?per_page=200").get_json()["total"]
    assert total == by_project[projects["P2401"]] + by_project[projects["P2402"]]
    other = ids(db, "schedule.task")["P2403-02.01"]
    assert cons.api("zhangwei").get(f"{TASKS}/{other}").status_code in (403, 404)


def test_site_engineer_reports_progress_but_cannot_move_the_plan(cons, db):
    api = cons.api("lina")
    task_id = ids(db, "schedule.task")["P2401-03.02"]
    task = api.get(f"{TASKS}/{task_id}").get_json()
    update = {
        "report_date": today().isoformat(),
        "percent_complete": "3",
        "actual_start": today().isoformat(),
        "note": "首层墙柱钢筋绑扎",
    }
    ok = api.patch(
        f"{TASKS}/{task_id}", {"updates": [*task["updates"], update], "version": task["version"]}
    )
    assert ok.status_code == 200, ok.get_json()
    assert ok.get_json()["percent_complete"] == "3.00"
    moved = api.patch(
        f"{TASKS}/{task_id}",
        {"planned_finish": "2030-01-01", "version": ok.get_json()["version"]},
    )
    assert moved.status_code in (403, 422)
    assert api.get(f"{TASKS}/{task_id}").get_json()["planned_finish"] == task["planned_finish"]
    project = ids(db, "projects.project")["P2401"]
    new = {
        "project": project,
        "code": "P2401-97",
        "name": "x",
        "planned_start": "2027-01-01",
        "planned_finish": "2027-01-02",
    }
    assert api.post(TASKS, new).status_code == 403
    # put the demo back as it was for the report tests
    admin = cons.api()
    current = admin.get(f"{TASKS}/{task_id}").get_json()
    restored = admin.patch(
        f"{TASKS}/{task_id}", {"updates": task["updates"], "version": current["version"]}
    )
    assert restored.status_code == 200, restored.get_json()


def test_client_representative_only_reads(cons, db):
    api = cons.api("sunli")
    projects = ids(db, "projects.project")
    body = api.get(f"{PLANS}").get_json()
    assert {p["project"] for p in body["items"]} == {projects["P2401"]}
    plan = body["items"][0]
    refused = api.patch(f"{PLANS}/{plan['id']}", {"note": "x", "version": plan["version"]})
    assert refused.status_code == 403


# -- reports --------------------------------------------------------------------------------------


def test_progress_by_project_matches_the_demo(cons, db):
    projects = ids(db, "projects.project")
    expected: dict[int, dict[str, Any]] = {}
    for task in demo_tasks().values():
        row = expected.setdefault(
            projects[task["project"]["code"]], {"tasks": 0, "weight": 0, "earned": Decimal(0)}
        )
        row["tasks"] += 1
        row["weight"] += task["weight"]
        row["earned"] += task["earned"]
    plans = {projects[p["project"]["code"]]: p for p in demo("schedule", "plans")}
    result = report(db, "schedule", "progress_by_project")
    rows = {r["project"]: r for r in result.rows}
    assert set(rows) == set(expected)
    for pid, want in expected.items():
        row = rows[pid]
        assert row["tasks"] == want["tasks"]
        assert d(row["planned_days"]) == want["weight"]
        assert d(row["earned_days"]) == want["earned"]
        pct = (want["earned"] * 100 / want["weight"]).quantize(Decimal("0.1"))
        assert d(row["percent_complete"]) == pct
        assert row["forecast_delay_days"] == plans[pid]["forecast_delay_days"]
        finish = plans[pid]["required_finish"]
        assert row["forecast_finish"] == finish + dt.timedelta(plans[pid]["forecast_delay_days"])
    total_weight = sum(w["weight"] for w in expected.values())
    total_earned = sum((w["earned"] for w in expected.values()), Decimal(0))
    assert d(result.totals["percent_complete"]) == (total_earned * 100 / total_weight).quantize(
        Decimal("0.1")
    )
    mine = report(db, "schedule", "progress_by_project", "zhangwei")
    assert {r["project"] for r in mine.rows} == {projects["P2401"], projects["P2402"]}


def test_delay_list_matches_the_demo(cons, db):
    tasks = demo_tasks()
    late = sorted(((t["delay"], code) for code, t in tasks.items() if t["delay"] > 0), reverse=True)
    assert late, "the demo has delayed tasks"
    result = report(db, "schedule", "delay_list")
    got = [(r["delay_days"], r["code"]) for r in result.rows]
    assert sorted(got, reverse=True) == late
    assert [r["delay_days"] for r in result.rows] == sorted((x for x, _ in late), reverse=True)
    for row in result.rows:
        assert row["forecast_finish"] == tasks[row["code"]]["forecast"]


def test_milestones_due_in_the_next_14_days(cons, db):
    now = today()
    due = {
        code
        for code, t in demo_tasks().items()
        if t.get("is_milestone")
        and now <= t["planned_finish"] <= now + dt.timedelta(14)
        and t["percent"] < 100
    }
    assert due, "the demo has milestones due soon"
    result = report(db, "schedule", "milestones_due")
    assert {r["code"] for r in result.rows} == due
    for row in result.rows:
        assert row["days_left"] == (row["planned_finish"] - now).days
    later = {
        c for c, t in demo_tasks().items() if t.get("is_milestone") and t["planned_finish"] > now
    }
    assert later - due, "a milestone further away is left out"


def expected_status(task: dict[str, Any], now: dt.date) -> str:
    """Return on_time / warning / late the way the Gantt colours say it."""
    pct, finish = task["percent"], task["planned_finish"]
    elapsed = (now - task["planned_start"]).days * 100 / Decimal(max(task["duration"], 1))
    planned = Decimal(min(100, max(0, elapsed))).quantize(Decimal("0.1"))
    if (pct < 100 and finish < now) or (task["actual_finish"] and task["actual_finish"] > finish):
        return "late"
    if pct < 100 and (task["forecast"] > finish or pct < planned - 10):
        return "warning"
    return "on_time"


def test_gantt_rows_status_and_dependencies(cons, db):
    projects, task_ids = ids(db, "projects.project"), ids(db, "schedule.task")
    tasks = {c: t for c, t in demo_tasks().items() if t["project"]["code"] == "P2403"}
    result = report(db, "schedule", "gantt", project=str(projects["P2403"]))
    assert [r["code"] for r in result.rows] == sorted(tasks)
    now = today()
    statuses = {r["code"]: r["status"] for r in result.rows}
    assert statuses == {code: expected_status(t, now) for code, t in tasks.items()}
    assert {"late", "on_time"} <= set(statuses.values())
    for row in result.rows:
        links = tasks[row["code"]].get("links") or []
        want = ",".join(str(task_ids[link["predecessor"]["code"]]) for link in links)
        assert row["predecessor_ids"] == want
        assert row["percent_complete"] == tasks[row["code"]]["percent"]
    bars = {bar["id"]: bar for bar in gantt_tasks(result)}
    for row in result.rows:
        bar = bars[str(row["id"])]
        assert (bar["dependencies"], bar["status"]) == (row["predecessor_ids"], row["status"])
        assert bar["milestone"] is row["is_milestone"]
        assert (f"{row['id']}__actual" in bars) is (row["actual_start"] is not None)
    chart = result.report.chart
    assert (chart["type"], chart["dependencies"], chart["status"]) == (
        "gantt",
        "predecessor_ids",
        "status",
    )


def test_plan_forecast_and_a_changed_delay(cons, db):
    projects = ids(db, "projects.project")
    plans = {projects[p["project"]["code"]]: p for p in demo("schedule", "plans")}
    result = report(db, "schedule", "plan_forecast")
    assert [r["forecast_delay_days"] for r in result.rows] == sorted(
        (p["forecast_delay_days"] for p in plans.values()), reverse=True
    )
    for row in result.rows:
        plan = plans[row["project"]]
        assert row["forecast_finish"] == plan["required_finish"] + dt.timedelta(
            plan["forecast_delay_days"]
        )
        assert row["contract_days"] == (plan["required_finish"] - plan["required_start"]).days + 1


# -- pages ---------------------------------------------------------------------------------------


def test_pages_render_for_a_site_engineer(cons, db, app_b):
    from tests.web.conftest import sign_in

    browser = sign_in(app_b, "admin")
    project = ids(db, "projects.project")["P2401"]
    task = ids(db, "schedule.task")["P2401-03.01"]
    gantt = browser.html(f"/reports/schedule/gantt?project={project}")
    assert "地下室结构" in gantt
    assert "滨江花园二期" in browser.html("/dashboards/schedule/schedule_overview")
    assert "P2401-03.01" in browser.html("/app/schedule/task")
    form = browser.html(f"/app/schedule/task/{task}/edit")
    assert "进度填报" in form and "紧前工作" in form
    for name in ("delay_list", "milestones_due", "progress_by_project", "plan_forecast"):
        browser.html(f"/reports/schedule/{name}")


def test_parent_and_predecessors_stay_in_the_project(cons, db):
    api = cons.api()
    tasks = ids(db, "schedule.task")
    body = {
        "project": ids(db, "projects.project")["P2402"],
        "code": "P2402-96",
        "name": "跨项目",
        "planned_start": "2027-05-01",
        "planned_finish": "2027-05-09",
        "parent": tasks["P2401-03"],
        "links": [{"predecessor": tasks["P2403-02.01"], "link_type": "FS", "lag_days": 0}],
    }
    refused = api.post(TASKS, body)
    assert refused.status_code == 422
    found = {(e["pointer"], e["code"]) for e in refused.get_json()["errors"]}
    # Declared on the fields ("filter": {"project": "$project"} / "$parent.project").
    assert {("/parent", "reference_filter"), ("/links/0/predecessor", "reference_filter")} <= found
    body.update(
        parent=tasks["P2402-03"],
        links=[{"predecessor": tasks["P2402-02.01"], "link_type": "FS", "lag_days": 0}],
    )
    created = api.post(TASKS, body)
    assert created.status_code == 201, created.get_json()
    assert api.delete(f"{TASKS}/{created.get_json()['id']}").status_code == 204
