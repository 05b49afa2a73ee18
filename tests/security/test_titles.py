"""Titles of records the user may not read are never shown: lists, detail pages, line-item
grids, audit history, the filter bar, forms, exports and the home page show a neutral
（无权查看） instead (the same for a missing id, so a title never confirms existence).
The inspector reads every sheet, only project P1 and no crew or worker."""

from __future__ import annotations

from typing import Any

from formwork.runtime.models import User
from formwork.runtime.registry import load_registry
from formwork.runtime.security import load_principal
from formwork.runtime.titles import record_titles
from tests.security.conftest import Secure
from tests.web.conftest import sign_in

NO_ACCESS = "（无权查看）"
SECRETS = ("二号楼", "木工班", "钢筋班", "张三", "李四")


def test_lists_and_detail_pages_show_no_title_of_an_unreadable_record(secure: Secure) -> None:
    inspector = sign_in(secure.app, "inspector")
    page = inspector.html("/app/secure/sheet")
    assert "一号楼" in page and NO_ACCESS in page
    assert not [s for s in SECRETS if s in page]
    detail = inspector.html(f"/app/secure/sheet/{secure.ids['s2']}")  # P2, crew B, a line of wB
    assert NO_ACCESS in detail
    assert not [s for s in SECRETS if s in detail]


def test_history_shows_no_title_of_an_unreadable_record(secure: Secure) -> None:
    admin = secure.api("admin")
    moved = admin.patch(
        f"/api/v1/secure/sheet/{secure.ids['s3']}", {"project": secure.ids["P2"], "version": 1}
    )
    assert moved.status_code == 200, moved.get_json()
    detail = sign_in(secure.app, "inspector").html(f"/app/secure/sheet/{secure.ids['s3']}")
    assert "一号楼" in detail  # the old value, readable
    assert "二号楼" not in detail and NO_ACCESS in detail


def test_the_filter_bar_shows_no_title_of_an_unreadable_record(secure: Secure) -> None:
    inspector = sign_in(secure.app, "inspector")
    page = inspector.html(f"/app/secure/sheet?project__eq={secure.ids['P2']}")
    assert "二号楼" not in page
    missing = inspector.html("/app/secure/sheet?project__eq=987654")
    assert NO_ACCESS in missing  # a missing id reads like an unreadable one


def test_a_form_shown_again_shows_no_title_of_an_unreadable_reference(secure: Secure) -> None:
    leader = sign_in(secure.app, "crew_leader")  # reads crew A only
    page = leader.post(
        "/app/secure/sheet/new",
        {"title": "试探", "project": str(secure.ids["P1"]), "crew": str(secure.ids["B"])},
    )
    assert page.status_code == 422
    assert "钢筋班" not in page.get_data(as_text=True)


def test_the_home_page_lists_only_records_the_user_may_still_read(secure: Secure) -> None:
    leader = secure.api("crew_leader")
    s1 = leader.get(f"/api/v1/secure/sheet/{secure.ids['s1']}").get_json()
    assert (
        leader.patch(
            f"/api/v1/secure/sheet/{secure.ids['s1']}",
            {"title": "我改的", "version": s1["version"]},
        ).status_code
        == 200
    )
    moved = secure.api("admin").patch(
        f"/api/v1/secure/sheet/{secure.ids['s1']}",
        {
            "title": "机密",
            "crew": secure.ids["B"],
            "lines": [{"worker": secure.ids["wB"], "days": "1"}],
            "version": s1["version"] + 1,
        },
    )
    assert moved.status_code == 200, moved.get_json()
    home = sign_in(secure.app, "crew_leader").html("/")
    assert "机密" not in home


def test_record_titles_read_as_the_principal(secure: Secure, session: Any) -> None:
    registry = load_registry(session)
    who = load_principal(session, session.get(User, secure.users["inspector"]))
    ids = [secure.ids["P1"], secure.ids["P2"], 987654]
    found = record_titles(session, registry, "secure.project", ids, who)
    assert found == {secure.ids["P1"]: "一号楼", secure.ids["P2"]: NO_ACCESS, 987654: NO_ACCESS}
    crews = record_titles(session, registry, "secure.crew", [secure.ids["A"]], who, "en")
    assert crews == {secure.ids["A"]: "(no access)"}  # no read grant on crews at all
