"""Reports computed by the engine from the reports_v1 test pack, checked against numbers
computed here in plain Python from the records the test inserted; pack checks of reports
and dashboards; row rules and hidden fields applied to reports."""

from __future__ import annotations

import copy
import datetime as dt
from collections import defaultdict
from decimal import Decimal
from typing import Any

import pytest

from formwork.auth.users import create_user
from formwork.runtime.errors import BadQuery, PermissionDenied
from formwork.runtime.events import EventBus
from formwork.runtime.models import User
from formwork.runtime.packs.check import check_pack
from formwork.runtime.packs.problems import PackInvalid
from formwork.runtime.packs.source import PackSource
from formwork.runtime.records import RecordService
from formwork.runtime.registry import load_registry
from formwork.runtime.reports import parse_report, run_report
from formwork.runtime.reports.charts import chart_data
from formwork.runtime.reports.definition import resolve_token
from formwork.runtime.reports.store import find_report
from formwork.runtime.security import load_principal, system_principal
from tests.packs.conftest import folder_files, install

# Outcomes depend on the clock's date: `make test` runs these again a year ahead.
pytestmark = pytest.mark.dates

TODAY = dt.date(2026, 11, 20)
PACK = "ledger"


def _records(session: Any) -> RecordService:
    return RecordService(session, load_registry(session), system_principal(), EventBus())


def seed(session: Any, manager_id: int | None = None) -> dict[str, Any]:
    """Insert projects, accounts, budget lines, cost entries, invoices and tasks; return them."""
    svc = _records(session)
    p1 = svc.create(f"{PACK}.project", {"code": "P1", "name": "一号楼", "manager": manager_id})
    p2 = svc.create(f"{PACK}.project", {"code": "P2", "name": "二号楼"})
    accounts = {
        code: svc.create(f"{PACK}.account", {"code": code, "name": name, "category": cat})
        for code, name, cat in (
            ("01", "人工费", "labour"),
            ("02", "材料费", "material"),
            ("03", "机械费", "material"),
        )
    }
    budget = [
        (p1, "01", "1000.00"),
        (p1, "02", "2500.50"),
        (p1, "03", "0.00"),
        (p2, "01", "400.00"),
        (p2, "02", "300.00"),
    ]
    costs = [
        (p1, "01", "2026-09-03", "600.10", "6.00"),
        (p1, "01", "2026-10-15", "500.00", "5.00"),
        (p1, "02", "2026-10-20", "1200.25", "12.00"),
        (p1, "03", "2026-11-02", "80.00", "0.80"),
        (p2, "01", "2026-11-05", "410.00", "4.10"),
        (p2, "02", "2026-08-01", "99.99", "1.00"),
    ]
    invoices = [
        (p1, "INV-1", "2026-11-25", "100.00"),  # not yet due: first bucket
        (p1, "INV-2", "2026-10-30", "200.00"),  # 21 days
        (p1, "INV-3", "2026-09-01", "300.00"),  # 80 days
        (p1, "INV-4", "2026-06-01", "400.00"),  # 172 days
        (p1, "INV-5", "2026-01-10", "500.00"),  # 314 days
        (p2, "INV-6", "2026-08-20", "600.00"),  # 92 days
    ]
    for project, code, amount in budget:
        svc.create(
            f"{PACK}.budget_line",
            {"project": project["id"], "account": accounts[code]["id"], "amount": Decimal(amount)},
        )
    for project, code, day, amount, fee in costs:
        svc.create(
            f"{PACK}.cost_entry",
            {
                "project": project["id"],
                "account": accounts[code]["id"],
                "date": day,
                "amount": Decimal(amount),
                "fee": Decimal(fee),
            },
        )
    for project, number, due, amount in invoices:
        svc.create(
            f"{PACK}.invoice",
            {
                "project": project["id"],
                "number": number,
                "due_date": due,
                "amount": Decimal(amount),
            },
        )
    tasks = [
        (
            p1,
            "T1",
            "基础",
            "2026-09-01",
            "2026-09-30",
            "2026-09-02",
            "2026-10-05",
            100,
            5,
            "",
            False,
        ),
        (p1, "T2", "主体", "2026-10-01", "2026-11-30", "2026-10-06", None, 40, 12, "T1", False),
        (p1, "M1", "封顶", "2026-12-01", "2026-12-01", None, None, 0, 0, "T2", True),
        (p2, "T9", "装修", "2026-11-01", "2026-12-31", None, None, 0, 0, "", False),
    ]
    for project, code, name, ps, pf, ast_, af, pct, delay, pred, ms in tasks:
        svc.create(
            f"{PACK}.task",
            {
                "project": project["id"],
                "code": code,
                "name": name,
                "planned_start": ps,
                "planned_finish": pf,
                "actual_start": ast_,
                "actual_finish": af,
                "percent_complete": pct,
                "delay_days": delay,
                "predecessors": pred,
                "is_milestone": ms,
            },
        )
    session.commit()
    return {
        "projects": {"P1": p1, "P2": p2},
        "accounts": accounts,
        "budget": budget,
        "costs": costs,
        "invoices": invoices,
    }


@pytest.fixture
def ledger(app: Any, session: Any) -> dict[str, Any]:
    """Install the reports_v1 pack and its records; the project P1 is managed by `manager`."""
    install(session, "reports_v1")
    manager = create_user(session, "manager", "Secret-pass-1", ["ledger_manager"])
    create_user(session, "coster", "Secret-pass-1", ["ledger_cost_only"])
    session.commit()
    data = seed(session, manager.id)
    data["manager_id"] = manager.id
    return data


def principal_of(session: Any, username: str) -> Any:
    user = session.query(User).filter_by(username=username).one()
    return load_principal(session, user)


def run(session: Any, name: str, params: dict[str, Any] | None = None, who: Any = None) -> Any:
    report = find_report(session, PACK, name)
    return run_report(
        session, load_registry(session), who or system_principal(), report, params or {}, TODAY
    )


def by(rows: list[dict[str, Any]], key: str) -> dict[Any, dict[str, Any]]:
    return {row[key]: row for row in rows}


def expected_variance(data: dict[str, Any], project: str | None = None, since: str = "") -> dict:
    """Compute target, actual and variance per account in plain Python."""
    target: dict[int, Decimal] = defaultdict(Decimal)
    actual: dict[int, Decimal] = defaultdict(Decimal)
    for p, code, amount in data["budget"]:
        if project is None or p["code"] == project:
            target[data["accounts"][code]["id"]] += Decimal(amount)
    for p, code, day, amount, _fee in data["costs"]:
        if (project is None or p["code"] == project) and day >= since:
            actual[data["accounts"][code]["id"]] += Decimal(amount)
    return {
        acc: (target.get(acc), actual.get(acc), (target.get(acc) or 0) - (actual.get(acc) or 0))
        for acc in set(target) | set(actual)
    }


def test_cost_variance_matches_plain_python(ledger: dict[str, Any], session: Any) -> None:
    result = run(session, "cost_variance")
    expected = expected_variance(ledger)
    rows = by(result.rows, "account")
    assert set(rows) == set(expected)
    for account, (target, actual, variance) in expected.items():
        assert rows[account]["target"] == target
        assert rows[account]["actual"] == actual
        assert rows[account]["variance"] == variance
    variances = [r["variance"] for r in result.rows]
    assert variances == sorted(variances, reverse=True)  # sort: -variance
    total_target = sum(Decimal(a) for _p, _c, a in ledger["budget"])
    total_actual = sum(Decimal(a) for _p, _c, _d, a, _f in ledger["costs"])
    assert result.totals["target"] == total_target
    assert result.totals["actual"] == total_actual
    assert result.totals["variance"] == total_target - total_actual
    # The percentage of the totals row is computed over the totals, not summed.
    assert result.totals["pct"] == round(total_actual / total_target * 100, 1)
    assert result.totals["entries"] == len(ledger["costs"])


def test_expression_division_by_zero_gives_none(ledger: dict[str, Any], session: Any) -> None:
    result = run(session, "cost_variance", {"project": str(ledger["projects"]["P1"]["id"])})
    machinery = by(result.rows, "account")[ledger["accounts"]["03"]["id"]]
    assert machinery["target"] == Decimal("0.00")
    assert machinery["pct"] is None  # `if target` guards it
    assert machinery["fee_share"] == Decimal("1.0")
    labour = by(result.rows, "account")[ledger["accounts"]["01"]["id"]]
    # 1100.10 of 1000.00: over target -> danger.
    index = result.rows.index(labour)
    assert result.styles[index] == "danger"


def test_params_filter_and_drop_empty(ledger: dict[str, Any], session: Any) -> None:
    p1 = ledger["projects"]["P1"]["id"]
    result = run(session, "cost_variance", {"project": str(p1), "from": "2026-10-01"})
    expected = expected_variance(ledger, "P1", "2026-10-01")
    rows = by(result.rows, "account")
    for account, (target, actual, _v) in expected.items():
        assert rows[account]["target"] == target
        assert rows[account]["actual"] == actual
    assert result.params == {"project": p1, "from": dt.date(2026, 10, 1)}


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"project": "abc"}, "project"),
        ({"from": "2026-13-01"}, "from"),
        ({"project": "0"}, "project"),
    ],
)
def test_bad_param_names_the_param(
    ledger: dict[str, Any], session: Any, params: dict[str, str], name: str
) -> None:
    with pytest.raises(BadQuery) as caught:
        run(session, "cost_variance", params)
    assert [e.pointer for e in caught.value.errors] == [name]


def test_receivables_ageing_buckets(ledger: dict[str, Any], session: Any) -> None:
    result = run(session, "receivables_ageing")
    expected: dict[str, list[Decimal]] = defaultdict(list)
    for _p, _n, due, amount in ledger["invoices"]:
        age = (TODAY - dt.date.fromisoformat(due)).days
        bucket = (
            "0-30" if age <= 30 else "31-90" if age <= 90 else "91-180" if age <= 180 else ">180"
        )
        expected[bucket].append(Decimal(amount))
    assert [r["age"] for r in result.rows] == ["0-30", "31-90", "91-180", ">180"]
    for row in result.rows:
        assert row["amount"] == sum(expected[row["age"]])
        assert row["n"] == len(expected[row["age"]])
        assert row["average"] == sum(expected[row["age"]]) / len(expected[row["age"]])
    assert result.totals == {"amount": Decimal("2100.00"), "n": 6}
    chart = chart_data(result)
    assert chart is not None and chart["type"] == "pie"
    assert chart["categories"] == ["0-30", "31-90", "91-180", ">180"]
    assert chart["series"][0]["data"] == ["300.00", "300.00", "1000.00", "500.00"]


def test_old_single_entity_form_by_month(ledger: dict[str, Any], session: Any) -> None:
    result = run(session, "monthly_cost")
    expected: dict[str, Decimal] = defaultdict(Decimal)
    counts: dict[str, int] = defaultdict(int)
    for _p, _c, day, amount, _f in ledger["costs"]:
        expected[day[:7]] += Decimal(amount)
        counts[day[:7]] += 1
    assert {r["date:month"]: r["sum_amount"] for r in result.rows} == expected
    assert {r["date:month"]: r["count"] for r in result.rows} == counts
    assert [c.name for c in result.columns] == ["date:month", "sum_amount", "count"]
    assert result.columns[1].label == "金额"


def test_reference_group_shows_titles_and_choice_labels(
    ledger: dict[str, Any], session: Any
) -> None:
    result = run(session, "cost_variance")
    account = result.column("account")
    assert account is not None
    assert {account.shown(r["account"]) for r in result.rows} == {"人工费", "材料费", "机械费"}
    by_category = run(session, "cost_by_category")
    category = by_category.column("category")
    assert category is not None and category.shown("labour") == "人工"
    labour = sum(Decimal(a) for _p, c, _d, a, _f in ledger["costs"] if c == "01")
    assert sum(r["amount"] for r in by_category.rows if r["category"] == "labour") == labour


def test_gantt_rows_status_and_tasks(ledger: dict[str, Any], session: Any) -> None:
    p1 = ledger["projects"]["P1"]["id"]
    result = run(session, "schedule", {"project": str(p1)})
    assert [r["code"] for r in result.rows] == ["T1", "T2", "M1"]  # sort: planned_start
    assert [r["status"] for r in result.rows] == ["warning", "late", "on_time"]
    assert result.styles == ["warning", "danger", None]
    chart = chart_data(result)
    assert chart is not None
    tasks = {t["id"]: t for t in chart["tasks"]}
    assert set(tasks) == {"T1", "T1__actual", "T2", "T2__actual", "M1"}
    assert tasks["T2"]["custom_class"] == "fw-gantt-late"
    assert tasks["M1"]["custom_class"] == "fw-gantt-milestone"
    assert tasks["T2"]["dependencies"] == "T1" and tasks["T2"]["progress"] == 40
    assert tasks["T2__actual"]["end"] == TODAY.isoformat()  # not finished: up to today
    assert tasks["M1"]["milestone"] and tasks["M1"]["start"] == tasks["M1"]["end"]


def test_row_rule_limits_totals_and_hidden_fields_drop_columns(
    ledger: dict[str, Any], session: Any
) -> None:
    manager = principal_of(session, "manager")
    result = run(session, "cost_variance", who=manager)
    expected = expected_variance(ledger, "P1")
    assert by(result.rows, "account").keys() == expected.keys()
    p1_actual = sum(Decimal(a) for p, _c, _d, a, _f in ledger["costs"] if p["code"] == "P1")
    assert result.totals["actual"] == p1_actual
    names = [c.name for c in result.columns]
    assert "fee" not in names and "fee_share" not in names  # fee is hidden from managers
    assert all("fee" not in row and "fee_share" not in row for row in result.rows)
    ageing = run(session, "receivables_ageing", who=manager)
    assert ageing.totals["amount"] == Decimal("1500.00")  # P1's invoices only


def test_report_needs_read_on_every_entity(ledger: dict[str, Any], session: Any) -> None:
    coster = principal_of(session, "coster")
    with pytest.raises(PermissionDenied):
        run(session, "cost_variance", who=coster)  # budget_line is not readable
    assert run(session, "monthly_cost", who=coster).all_totals["count"] == len(ledger["costs"])


def test_date_tokens() -> None:
    assert resolve_token("@today", TODAY) == TODAY
    assert resolve_token("@today-30", TODAY) == dt.date(2026, 10, 21)
    assert resolve_token("@month+2", TODAY) == dt.date(2027, 1, 1)
    assert resolve_token("@month-11", TODAY) == dt.date(2025, 12, 1)
    assert resolve_token("2026-01-01", TODAY) is None


def test_number_token_filter(ledger: dict[str, Any], session: Any) -> None:
    result = run(session, "cost_totals")
    expected = sum(Decimal(a) for _p, _c, d, a, _f in ledger["costs"] if d <= TODAY.isoformat())
    assert result.rows[0]["actual"] == expected
    chart = chart_data(result)
    assert chart == {
        "type": "number",
        "label": "实际成本",
        "value": str(expected),
        "format": "money",
    }


# -- pack checks --------------------------------------------------------------------------------


def _broken(**changes: Any) -> list[str]:
    import json

    files = folder_files("reports_v1")
    for path, change in changes.items():
        document = json.loads(files[path])
        change(document)
        files[path] = json.dumps(document, ensure_ascii=False).encode()
    with pytest.raises(PackInvalid) as caught:
        check_pack(PackSource("reports_v1", files))
    return [str(p) for p in caught.value.problems]


def test_check_reports_every_problem() -> None:
    def report(document: dict[str, Any]) -> None:
        document["datasets"][0]["group"] = ["acount"]
        document["datasets"][1]["filters"]["project__eq"] = "{projekt}"
        document["datasets"][1]["measures"][0]["field"] = "amount.x"
        document["columns"][3]["expression"] = "(target or 0) - actul"
        document["columns"][4]["expression"] = "__import__('os')"
        document["totals"] = ["nothing"]
        document["chart"]["series"] = ["target", "budget"]
        document["columns"].append({"name": "balance", "running": "nett"})

    def dashboard(document: dict[str, Any]) -> None:
        document["widgets"][0]["column"] = "actul"
        document["widgets"][1]["report"] = "missing"

    problems = _broken(
        **{"reports/cost_variance.json": report, "dashboards/overview.json": dashboard}
    )
    text = "\n".join(problems)
    assert (
        "pack.E031 reports/cost_variance.json#/datasets/0/group/0: unknown field 'acount'" in text
    )
    assert "did you mean 'account'?" in text
    assert "pack.E032 reports/cost_variance.json#/key: key 'account' is not a group" in text
    assert "pack.E034 reports/cost_variance.json#/datasets/1/filters/project__eq" in text
    assert "unknown parameter '{projekt}'" in text and "did you mean 'project'?" in text
    assert "pack.E031 reports/cost_variance.json#/datasets/1/measures/0/field" in text
    assert (
        "pack.E033 reports/cost_variance.json#/columns/3/expression: unknown name 'actul'" in text
    )
    assert "pack.E033 reports/cost_variance.json#/columns/4/expression" in text
    assert "pack.E032 reports/cost_variance.json#/totals/0" in text
    assert "pack.E032 reports/cost_variance.json#/chart/series/1" in text
    assert "pack.E032 reports/cost_variance.json#/columns/8/running" in text
    assert "pack.E036 dashboards/overview.json#/widgets/0/column" in text
    assert "pack.E036 dashboards/overview.json#/widgets/1/report: unknown report 'missing'" in text


def test_check_schema_and_menu() -> None:
    def menu(document: dict[str, Any]) -> None:
        document["items"].append({"dashboard": "nope"})

    def report(document: dict[str, Any]) -> None:
        document["chart"] = {"type": "gantt"}
        document["datasets"][0]["sum"] = "x"

    text = "\n".join(_broken(**{"menu.json": menu, "reports/schedule.json": report}))
    assert "pack.E051 menu.json#/items/5/dashboard: unknown dashboard 'nope'" in text
    assert "pack.E030 reports/schedule.json" in text


def test_sum_of_text_is_refused() -> None:
    def report(document: dict[str, Any]) -> None:
        document["datasets"][0]["measures"] = [{"function": "sum", "field": "number"}]

    text = "\n".join(_broken(**{"reports/receivables_ageing.json": report}))
    assert "cannot sum 'number' (not a number)" in text


def test_old_form_parses_as_one_dataset() -> None:
    document = {
        "name": "x",
        "title": {"zh-CN": "x", "en": "x"},
        "entity": "cost_entry",
        "group": ["account", "date:month"],
        "measures": [{"function": "sum", "field": "amount"}, {"function": "count"}],
    }
    report = parse_report("ledger", copy.deepcopy(document))
    assert [d.entity for d in report.datasets] == ["ledger.cost_entry"]
    assert report.key == ("account", "date:month")
    assert [c.name for c in report.columns] == ["account", "date:month", "sum_amount", "count"]


def test_filter_on_a_hidden_field_is_refused(ledger: dict[str, Any], session: Any) -> None:
    document = {
        "name": "fees",
        "title": {"zh-CN": "管理费", "en": "Fees"},
        "params": [{"name": "min", "type": "number"}],
        "datasets": [
            {"name": "d", "entity": "cost_entry", "group": ["account"],
             "measures": [{"function": "sum", "field": "amount", "as": "amount"}],
             "filters": {"fee__gte": "{min}"}}
        ],
    }  # fmt: skip
    report = parse_report(PACK, document)
    registry = load_registry(session)
    manager = principal_of(session, "manager")
    with pytest.raises(PermissionDenied):
        run_report(session, registry, manager, report, {"min": "5"}, TODAY)
    # Whoever may see the fee gets the filtered numbers.
    result = run_report(session, registry, system_principal(), report, {"min": "5"}, TODAY)
    expected = sum(Decimal(a) for _p, _c, _d, a, f in ledger["costs"] if Decimal(f) >= 5)
    assert sum(r["amount"] for r in result.rows) == expected


def test_defaults_and_required_params(ledger: dict[str, Any], session: Any) -> None:
    document = {
        "name": "recent",
        "title": {"zh-CN": "近期成本", "en": "Recent cost"},
        "params": [
            {"name": "from", "type": "date", "default": "@today-30"},
            {"name": "project", "entity": "project", "required": True},
        ],
        "datasets": [
            {"name": "d", "entity": "cost_entry",
             "measures": [{"function": "sum", "field": "amount", "as": "amount"}],
             "filters": {"date__gte": "{from}", "project__eq": "{project}"}}
        ],
    }  # fmt: skip
    report = parse_report(PACK, document)
    registry = load_registry(session)
    with pytest.raises(BadQuery) as caught:
        run_report(session, registry, system_principal(), report, {}, TODAY)
    assert [(e.pointer, e.code) for e in caught.value.errors] == [("project", "required")]
    p1 = ledger["projects"]["P1"]
    result = run_report(
        session, registry, system_principal(), report, {"project": str(p1["id"])}, TODAY
    )
    since = (TODAY - dt.timedelta(days=30)).isoformat()
    expected = sum(
        Decimal(a) for p, _c, d, a, _f in ledger["costs"] if p["code"] == "P1" and d >= since
    )
    assert result.rows[0]["amount"] == expected


def test_chart_splits_series_by_the_other_key(ledger: dict[str, Any], session: Any) -> None:
    result = run(session, "cost_by_category")  # key category x month, chart x = month
    chart = chart_data(result)
    assert chart is not None
    months = sorted({d[:7] for _p, _c, d, _a, _f in ledger["costs"]})
    assert chart["categories"] == months
    category = {"01": "labour", "02": "material", "03": "material"}
    expected: dict[str, dict[str, Decimal]] = defaultdict(dict)
    for _p, code, day, amount, _f in ledger["costs"]:
        by_month = expected[category[code]]
        by_month[day[:7]] = by_month.get(day[:7], Decimal(0)) + Decimal(amount)
    series = {s["name"]: s["data"] for s in chart["series"]}
    assert set(series) == {"人工", "材料"}
    for name, key in (("人工", "labour"), ("材料", "material")):
        assert series[name] == [
            str(expected[key][m]) if m in expected[key] else None for m in months
        ]
