"""A path through a reference (`project.code`) is the principal's own read of the target:
its field rules (hidden → unknown), its row rules (an unreadable row joins as NULL) and its
read grant (none → the hop is refused) apply in filters, sorts, groups, measures, quick
search, exports and reports. The `inspector` of the sample pack reads every sheet, only
project P1 (budget hidden), no crew or worker, and notes with their project hidden."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from formwork.runtime.errors import BadQuery, PermissionDenied
from formwork.runtime.models import User
from formwork.runtime.query import list_records
from formwork.runtime.registry import load_registry
from formwork.runtime.reports import parse_report, run_report
from formwork.runtime.security import load_principal
from tests.security.conftest import Secure
from tests.web.conftest import sign_in

SHEETS = "/api/v1/secure/sheet"
DAY = dt.date(2026, 3, 2)


def codes(response: Any) -> list[tuple[str, str]]:
    assert response.status_code == 400, response.get_json()
    return [(e["pointer"], e["code"]) for e in response.get_json()["errors"]]


@pytest.mark.parametrize(
    "query",
    [
        "crew.name__eq=木工班",  # no read grant on crew at all
        "crew.name__startswith=木",
        "sort=crew.name",
        "project.budget__gt=0",  # hidden on the target
        "sort=-project.budget",
    ],
)
def test_a_hop_into_an_unreadable_entity_or_a_hidden_field_is_unknown(
    secure: Secure, query: str
) -> None:
    response = secure.api("inspector").get(f"{SHEETS}?{query}")
    assert codes(response)[0][1] in ("unknown_filter_field", "unknown_sort_field")


@pytest.mark.parametrize(
    "query", ["group=crew.name", "group=project.budget", "max=project.budget", "sum=crew.id"]
)
def test_aggregates_cannot_group_or_measure_through_a_refused_hop(
    secure: Secure, query: str
) -> None:
    response = secure.api("inspector").get(f"{SHEETS}/aggregate?{query}")
    assert codes(response)[0][1] == "unknown_filter_field"


def test_a_hop_through_a_hidden_reference_is_refused(secure: Secure) -> None:
    # note.project is hidden from the inspector; project P1 itself is readable.
    response = secure.api("inspector").get("/api/v1/secure/note?project.code__eq=P1")
    assert codes(response) == [("project.code__eq", "unknown_filter_field")]


def test_a_hop_reads_only_target_rows_the_principal_may_read(secure: Secure) -> None:
    inspector = secure.api("inspector")
    # s2 belongs to P2, which the inspector may not read: its project joins as NULL.
    rows = inspector.get(f"{SHEETS}/aggregate?group=project.code&sum=amount").get_json()
    assert {r["project.code"]: r["count"] for r in rows["items"]} == {None: 1, "P1": 2}
    found = inspector.get(f"{SHEETS}?project.code__eq=P2").get_json()["items"]
    assert found == []
    found = inspector.get(f"{SHEETS}?project.name__startswith=二").get_json()["items"]
    assert found == []
    ordered = [i["title"] for i in inspector.get(f"{SHEETS}?sort=project.code,title").json["items"]]
    # s2's project reads as NULL: first on SQLite, last on PostgreSQL (its NULL order).
    assert [t for t in ordered if t != "s2"] == ["s1", "s3"] and "s2" in (ordered[0], ordered[-1])
    # The admin, whose rows are all, sees P2 through the same hop.
    rows = secure.api("admin").get(f"{SHEETS}/aggregate?group=project.code").get_json()
    assert {r["project.code"]: r["count"] for r in rows["items"]} == {"P1": 2, "P2": 1}


def test_the_kernel_refuses_the_same_hops(secure: Secure, session: Any) -> None:
    registry = load_registry(session)
    who = load_principal(session, session.get(User, secure.users["inspector"]))
    meta = registry.meta("secure.sheet")
    with pytest.raises(BadQuery):
        list_records(session, registry, meta, {"crew.name__eq": ["木工班"]}, principal=who)
    page = list_records(session, registry, meta, {"project.code__eq": ["P2"]}, principal=who)
    assert page.items == []


def test_exports_refuse_the_hop_and_show_no_title_of_an_unreadable_record(
    secure: Secure,
) -> None:
    inspector = sign_in(secure.app, "inspector")
    refused = inspector.get("/app/secure/sheet/export.csv?crew.name__eq=木工班")
    assert refused.status_code == 400
    text = inspector.get("/app/secure/sheet/export.csv?sort=title").get_data(as_text=True)
    assert "木工班" not in text and "钢筋班" not in text  # crews: no read grant
    assert "二号楼" not in text and "一号楼" in text  # P2 is outside the inspector's rows
    assert "（无权查看）" in text


def _report(group: list[str], measures: list[dict[str, Any]] | None = None) -> Any:
    return parse_report(
        "secure",
        {
            "name": "by_hop",
            "title": {"zh-CN": "按引用汇总", "en": "By hop"},
            "datasets": [
                {
                    "entity": "sheet",
                    "group": group,
                    "measures": measures or [{"function": "count", "as": "n"}],
                }
            ],
        },
    )


def test_reports_drop_refused_hops_and_read_only_readable_target_rows(
    secure: Secure, session: Any
) -> None:
    registry = load_registry(session)
    who = load_principal(session, session.get(User, secure.users["inspector"]))
    result = run_report(session, registry, who, _report(["crew.name"]), {}, DAY)
    assert [c.name for c in result.columns] == ["n"]  # the group on crew was dropped
    result = run_report(session, registry, who, _report(["project.code"]), {}, DAY)
    assert {r["project.code"]: r["n"] for r in result.rows} == {None: 1, "P1": 2}
    measured = _report(["title"], [{"function": "max", "field": "project.budget", "as": "b"}])
    result = run_report(session, registry, who, measured, {}, DAY)
    assert "b" not in {c.name for c in result.columns}
    filtered = parse_report(
        "secure",
        {
            "name": "filtered",
            "title": {"zh-CN": "筛选", "en": "Filtered"},
            "datasets": [
                {
                    "entity": "sheet",
                    "filters": {"crew.name__eq": "木工班"},
                    "group": ["title"],
                    "measures": [{"function": "count", "as": "n"}],
                }
            ],
        },
    )
    with pytest.raises(PermissionDenied):
        run_report(session, registry, who, filtered, {}, DAY)
