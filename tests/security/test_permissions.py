"""Row and field rules through every path: list, count, get, aggregate, history, export,
reference search, create/update/delete, and membership changes seen at once."""

from __future__ import annotations

from typing import Any

import pytest

from formwork.runtime.errors import ValidationFailed
from tests.security.conftest import Secure
from tests.web.conftest import sign_in

SHEETS = "/api/v1/secure/sheet"


def titles(response: Any) -> set[str]:
    assert response.status_code == 200, response.get_json()
    return {item["title"] for item in response.get_json()["items"]}


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ("admin", {"s1", "s2", "s3"}),
        ("site_engineer", {"s1", "s3"}),  # member of P1
        ("crew_leader", {"s1"}),  # leads crew A
        ("finance", {"s2", "s3"}),  # approved sheets only
    ],
)
def test_list_and_count_apply_the_row_rule(secure: Secure, user: str, expected: set[str]) -> None:
    api = secure.api(user)
    assert titles(api.get(SHEETS)) == expected
    # per_page=1 forces the separate COUNT query, which must apply the same rule.
    page = api.get(f"{SHEETS}?per_page=1").get_json()
    assert page["total"] == len(expected)


def test_a_role_without_the_entity_gets_403_and_one_outside_the_rows_gets_404(
    secure: Secure,
) -> None:
    assert secure.api("note_taker").get(SHEETS).status_code == 403
    engineer = secure.api("site_engineer")
    assert engineer.get(f"{SHEETS}/{secure.ids['s1']}").status_code == 200
    response = engineer.get(f"{SHEETS}/{secure.ids['s2']}")
    assert response.status_code == 404  # as if it did not exist
    assert engineer.get(f"{SHEETS}/{secure.ids['s2']}/history").status_code == 404


def test_aggregates_count_only_reachable_rows(secure: Secure) -> None:
    rows = secure.api("site_engineer").get(f"{SHEETS}/aggregate?sum=amount").get_json()["items"]
    assert rows == [{"count": 2, "sum_amount": "500.00"}]
    rows = secure.api("finance").get(f"{SHEETS}/aggregate?group=crew&sum=amount").get_json()
    assert {r["crew"]: r["sum_amount"] for r in rows["items"]} == {secure.ids["B"]: "600.00"}


def test_member_of_follows_one_reference_hop(secure: Secure) -> None:
    # note's rule is project.id member_of project: P1's note only.
    response = secure.api("site_engineer").get("/api/v1/secure/note")
    assert [i["text"] for i in response.get_json()["items"]] == ["P1 的记事"]


def test_membership_changes_are_seen_at_once(secure: Secure) -> None:
    admin = secure.api("admin")
    created = admin.post(
        "/api/v1/secure/member",
        {"project": secure.ids["P2"], "user": secure.users["site_engineer"]},
    )
    assert created.status_code == 201, created.get_json()
    assert titles(secure.api("site_engineer").get(SHEETS)) == {"s1", "s2", "s3"}


def test_own_records(secure: Secure) -> None:
    mine = secure.api("note_taker").post("/api/v1/secure/note", {"text": "我的"})
    assert mine.status_code == 201
    assert [
        i["text"] for i in secure.api("note_taker").get("/api/v1/secure/note").json["items"]
    ] == ["我的"]
    other = secure.api("note_taker2")
    assert other.get("/api/v1/secure/note").get_json()["items"] == []
    assert other.delete(f"/api/v1/secure/note/{mine.get_json()['id']}").status_code == 404


def test_hidden_fields_are_left_out_everywhere_and_cannot_be_probed(secure: Secure) -> None:
    leader, finance = secure.api("crew_leader"), secure.api("finance")
    worker = leader.get(f"/api/v1/secure/worker/{secure.ids['wA']}").get_json()
    assert "bank_card" not in worker and worker["name"] == "张三"
    assert all("bank_card" not in w for w in leader.get("/api/v1/secure/worker").json["items"])
    assert finance.get(f"/api/v1/secure/worker/{secure.ids['wA']}").json["bank_card"]
    # Filtering, sorting, grouping or searching on a hidden field would reveal it.
    assert leader.get("/api/v1/secure/worker?bank_card__startswith=6222").status_code == 400
    assert leader.get("/api/v1/secure/worker?sort=bank_card").status_code == 400
    assert leader.get("/api/v1/secure/worker/aggregate?group=bank_card").status_code == 400
    assert leader.get("/api/v1/secure/worker?q=62220000").get_json()["items"] == []
    assert finance.get("/api/v1/secure/worker?q=62220000").get_json()["total"] == 2


def test_hidden_fields_are_left_out_of_the_history(secure: Secure) -> None:
    finance = secure.api("finance")
    worker = finance.get(f"/api/v1/secure/worker/{secure.ids['wA']}").get_json()
    changed = finance.patch(
        f"/api/v1/secure/worker/{secure.ids['wA']}",
        {"bank_card": "6222999900001111", "version": worker["version"]},
    )
    assert changed.status_code == 200, changed.get_json()
    entries = secure.api("crew_leader").get(f"/api/v1/secure/worker/{secure.ids['wA']}/history")
    assert "6222" not in entries.get_data(as_text=True)
    full = finance.get(f"/api/v1/secure/worker/{secure.ids['wA']}/history")
    assert "6222999900001111" in full.get_data(as_text=True)


def test_read_only_fields_are_refused_with_their_pointer(secure: Secure) -> None:
    leader = secure.api("crew_leader")
    worker = leader.get(f"/api/v1/secure/worker/{secure.ids['wA']}").get_json()
    response = leader.patch(
        f"/api/v1/secure/worker/{secure.ids['wA']}",
        {"day_rate": "999.00", "version": worker["version"]},
    )
    assert response.status_code == 422
    assert [e["pointer"] for e in response.get_json()["errors"]] == ["/day_rate"]
    renamed = leader.patch(
        f"/api/v1/secure/worker/{secure.ids['wA']}",
        {"name": "张三丰", "version": worker["version"]},
    )
    assert renamed.status_code == 200
    sheet = {
        "title": "new",
        "project": secure.ids["P1"],
        "crew": secure.ids["A"],
        "lines": [{"worker": secure.ids["wA"], "days": "0.5", "day_rate": "1.00"}],
    }
    response = leader.post(SHEETS, sheet)
    assert response.status_code == 422
    assert [e["pointer"] for e in response.get_json()["errors"]] == ["/lines/0/day_rate"]


def test_writes_outside_the_rows_are_refused_and_nothing_is_written(secure: Secure) -> None:
    leader, admin = secure.api("crew_leader"), secure.api("admin")
    # Crew B is not readable by the leader: the reference is refused like a missing one,
    # before the record's own rows are even considered.
    other_crew = {"title": "偷偷", "project": secure.ids["P1"], "crew": secure.ids["B"]}
    refused = leader.post(SHEETS, other_crew)
    assert refused.status_code == 422
    assert [(e["pointer"], e["code"]) for e in refused.get_json()["errors"]] == [
        ("/crew", "reference_missing")
    ]
    assert "偷偷" not in titles(admin.get(SHEETS))
    mine = leader.get(f"{SHEETS}/{secure.ids['s1']}").get_json()
    moved = leader.patch(
        f"{SHEETS}/{secure.ids['s1']}", {"crew": secure.ids["B"], "version": mine["version"]}
    )
    assert moved.status_code == 422
    assert admin.get(f"{SHEETS}/{secure.ids['s1']}").get_json()["crew"] == secure.ids["A"]
    own_crew = {"title": "自己的", "project": secure.ids["P2"], "crew": secure.ids["A"]}
    assert leader.post(SHEETS, own_crew).status_code == 201


def test_the_kernel_applies_the_rules_without_flask(secure: Secure, session: Any) -> None:
    records = secure.service(session, "crew_leader")
    with pytest.raises(ValidationFailed):  # crew B is not readable: refused like a missing one
        records.create(
            "secure.sheet", {"title": "x", "project": secure.ids["P1"], "crew": secure.ids["B"]}
        )
    session.rollback()
    worker = records.get("secure.worker", secure.ids["wA"])
    assert "bank_card" not in worker
    with pytest.raises(ValidationFailed):
        records.update("secure.worker", secure.ids["wA"], {"day_rate": "1"}, worker["version"])


def test_pages_export_and_reference_search_apply_the_rules(secure: Secure) -> None:
    engineer = sign_in(secure.app, "site_engineer")
    page = engineer.html("/app/secure/sheet")
    assert "s1" in page and "s3" in page and ">s2<" not in page
    csv = engineer.get("/app/secure/sheet/export.csv")
    assert csv.status_code == 200
    lines = csv.get_data(as_text=True).strip().splitlines()
    assert len(lines) == 3  # header + s1 + s3
    options = engineer.html("/app/secure/sheet/lookup/project?q=")
    assert "一号楼" in options and "二号楼" not in options
    engineer.html(f"/app/secure/sheet/{secure.ids['s2']}", status=404)
    leader = sign_in(secure.app, "crew_leader")
    assert leader.get("/app/secure/sheet/export.csv").status_code == 403  # no export grant
    crews = leader.html("/app/secure/sheet/lookup/crew?q=")
    assert "木工班" in crews and "钢筋班" not in crews


def test_forms_leave_hidden_fields_out_and_show_read_only_ones_disabled(secure: Secure) -> None:
    leader = sign_in(secure.app, "crew_leader")
    form = leader.html(f"/app/secure/worker/{secure.ids['wA']}/edit")
    assert 'name="bank_card"' not in form and "6222" not in form
    assert 'name="day_rate"' not in form  # read-only: shown, not posted
    detail = leader.html(f"/app/secure/worker/{secure.ids['wA']}")
    assert "6222" not in detail
    finance = sign_in(secure.app, "finance")
    assert "6222000011112222" in finance.html(f"/app/secure/worker/{secure.ids['wA']}")


def test_read_only_line_fields_keep_their_value_and_may_be_sent_back(secure: Secure) -> None:
    leader = secure.api("crew_leader")
    sheet = leader.get(f"{SHEETS}/{secure.ids['s1']}").get_json()
    line = sheet["lines"][0]
    same = {"lines": [{**line, "days": "0.5"}], "version": sheet["version"]}
    response = leader.patch(f"{SHEETS}/{secure.ids['s1']}", same)
    assert response.status_code == 200, response.get_json()
    changed = response.get_json()
    assert changed["lines"][0]["days"] == "0.5" and changed["lines"][0]["day_rate"] == "300.00"
    omitted = {k: v for k, v in changed["lines"][0].items() if k != "day_rate"}
    response = leader.patch(
        f"{SHEETS}/{secure.ids['s1']}",
        {"lines": [{**omitted, "days": "1.0"}], "version": changed["version"]},
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["lines"][0]["day_rate"] == "300.00"  # kept, not cleared
    raised = {
        "lines": [{**omitted, "day_rate": "999.00"}],
        "version": response.get_json()["version"],
    }
    response = leader.patch(f"{SHEETS}/{secure.ids['s1']}", raised)
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["pointer"] == "/lines/0/day_rate"


def test_the_line_grid_shows_a_read_only_rate_and_saving_keeps_it(secure: Secure) -> None:
    import re

    leader = sign_in(secure.app, "crew_leader")
    form = leader.html(f"/app/secure/sheet/{secure.ids['s1']}/edit")
    assert re.search(r'<input[^>]*name="lines-[^"]*-days"', form)
    assert not re.search(r'<input[^>]*name="lines-[^"]*-day_rate"', form)
    assert "300" in form  # the rate is shown as its value
    admin = sign_in(secure.app, "admin")
    form = admin.html(f"/app/secure/sheet/{secure.ids['s1']}/edit")
    assert re.search(r'<input[^>]*name="lines-[^"]*-day_rate"', form)
