"""A record may reference only records its author can read (an unreadable id is refused like
a missing one), and a reference's declared filter (`"filter": {"crew": "$parent.crew"}` on
the sample pack's sheet line worker) is checked on every save that changes the relation and
narrows the reference look-up. Pack check refuses filters that do not fit (pack.E014)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from formwork.runtime.packs.check import check_pack
from formwork.runtime.packs.problems import PackInvalid
from formwork.runtime.packs.source import PackSource
from tests.packs.conftest import folder_files
from tests.security.conftest import Secure
from tests.web.conftest import sign_in

SHEETS = "/api/v1/secure/sheet"


def errors(response: Any) -> list[tuple[str, str]]:
    assert response.status_code == 422, response.get_json()
    return [(e["pointer"], e["code"]) for e in response.get_json()["errors"]]


def sheet(secure: Secure, crew: str, *workers: str, title: str = "新单") -> dict[str, Any]:
    lines = [{"worker": secure.ids[w], "days": "0.5"} for w in workers]
    return {"title": title, "project": secure.ids["P1"], "crew": secure.ids[crew], "lines": lines}


def test_an_unreadable_reference_is_refused_exactly_like_a_missing_one(secure: Secure) -> None:
    leader = secure.api("crew_leader")  # reads crew A and its workers only
    unreadable = leader.post(SHEETS, sheet(secure, "B"))
    missing = leader.post(SHEETS, {**sheet(secure, "B"), "crew": 987654})
    assert errors(unreadable) == errors(missing) == [("/crew", "reference_missing")]
    said = unreadable.get_json()["errors"][0]["detail"].replace(str(secure.ids["B"]), "#")
    assert said == missing.get_json()["errors"][0]["detail"].replace("987654", "#")
    line = leader.post(SHEETS, sheet(secure, "A", "wB"))  # wB works in crew B
    assert errors(line) == [("/lines/0/worker", "reference_missing")]


def test_a_reference_the_record_already_holds_may_be_kept(secure: Secure) -> None:
    admin, leader = secure.api("admin"), secure.api("crew_leader")
    worker = admin.post("/api/v1/secure/worker", {"name": "王五", "crew": secure.ids["A"]})
    secure.ids["wC"] = worker.get_json()["id"]
    created = admin.post(SHEETS, sheet(secure, "A", "wC", title="s4")).get_json()
    moved = admin.patch(
        f"/api/v1/secure/worker/{secure.ids['wC']}", {"crew": secure.ids["B"], "version": 1}
    )
    assert moved.status_code == 200  # wC is now out of the leader's rows
    mine = leader.get(f"{SHEETS}/{created['id']}").get_json()
    kept = leader.patch(
        f"{SHEETS}/{created['id']}",
        {"title": "s4 改", "lines": mine["lines"], "version": mine["version"]},
    )
    assert kept.status_code == 200, kept.get_json()
    added = leader.patch(
        f"{SHEETS}/{created['id']}",
        {
            "lines": [*kept.get_json()["lines"], {"worker": secure.ids["wB"], "days": "1"}],
            "version": kept.get_json()["version"],
        },
    )
    assert errors(added) == [("/lines/1/worker", "reference_missing")]


def test_forms_refuse_an_unreadable_reference(secure: Secure) -> None:
    leader = sign_in(secure.app, "crew_leader")
    page = leader.post(
        "/app/secure/sheet/new",
        {"title": "表单", "project": str(secure.ids["P1"]), "crew": str(secure.ids["B"])},
    )
    assert page.status_code == 422
    assert "不存在" in page.get_data(as_text=True)
    assert "表单" not in {i["title"] for i in secure.api("admin").get(SHEETS).json["items"]}


def test_the_declared_filter_is_checked_with_a_located_message(secure: Secure) -> None:
    engineer = secure.api("site_engineer")  # reads every worker
    wrong = engineer.post(SHEETS, sheet(secure, "A", "wA", "wB"))
    assert errors(wrong) == [("/lines/1/worker", "reference_filter")]
    assert (
        wrong.get_json()["errors"][0]["detail"] == "所选工人不符合条件：班组须与上级单据的班组相同"
    )
    english = engineer.post(SHEETS, sheet(secure, "A", "wB"), headers={"Accept-Language": "en"})
    assert english.get_json()["errors"][0]["detail"] == (
        "The chosen Worker does not fit: its Crew must be the Crew of the parent record"
    )
    assert engineer.post(SHEETS, sheet(secure, "A", "wA")).status_code == 201


def test_changing_a_source_checks_the_relation_again(secure: Secure) -> None:
    engineer = secure.api("site_engineer")
    s1 = engineer.get(f"{SHEETS}/{secure.ids['s1']}").get_json()  # crew A, a line of wA
    moved = engineer.patch(
        f"{SHEETS}/{secure.ids['s1']}", {"crew": secure.ids["B"], "version": s1["version"]}
    )
    assert errors(moved) == [("/lines/0/worker", "reference_filter")]
    renamed = engineer.patch(f"{SHEETS}/{secure.ids['s1']}", {"title": "改名", "version": 1})
    assert renamed.status_code == 200  # the relation did not change: not checked again


def test_the_look_up_offers_only_records_that_meet_the_filter(secure: Secure) -> None:
    engineer = sign_in(secure.app, "site_engineer")
    url = "/app/secure/sheet/lookup/worker?grid=lines&row=0&q="
    crew_a = engineer.html(f"{url}&crew={secure.ids['A']}")
    assert "张三" in crew_a and "李四" not in crew_a
    crew_b = engineer.html(f"{url}&crew={secure.ids['B']}")
    assert "李四" in crew_b and "张三" not in crew_b
    either = engineer.html(url)  # no crew chosen yet: the term is not applied
    assert "张三" in either and "李四" in either
    form = engineer.html("/app/secure/sheet/new")
    assert 'hx-include="[name=crew]"' in form


def _with(document_path: str, change: Any) -> PackSource:
    files = folder_files("secure_v1")
    document = json.loads(files[document_path])
    change(document)
    files[document_path] = json.dumps(document).encode()
    return PackSource("secure_v1", files)


@pytest.mark.parametrize(
    ("path", "field", "declared", "says"),
    [
        ("entities/sheet_line.json", "worker", {"team": "$parent.crew"}, "no stored field 'team'"),
        ("entities/sheet_line.json", "worker", {"crew": "$parent.squad"}, "no stored field"),
        ("entities/sheet_line.json", "worker", {"crew": "$parent.project"}, "cannot be compared"),
        ("entities/sheet.json", "crew", {"leader": "$parent.project"}, "not a line item"),
        ("entities/sheet.json", "title", {"name": "$title"}, "needs a reference field"),
        ("entities/sheet_line.json", "worker", {"day_rate": "abc"}, "not a value of day_rate"),
    ],
)
def test_pack_check_refuses_filters_that_do_not_fit(
    path: str, field: str, declared: Any, says: str
) -> None:
    def change(document: Any) -> None:
        document["properties"][field]["x-formwork"]["filter"] = declared

    with pytest.raises(PackInvalid) as caught:
        check_pack(_with(path, change))
    found = [p for p in caught.value.problems if p.code == "pack.E014"]
    assert len(found) == 1 and says in found[0].message, caught.value.problems
    assert found[0].file == path and found[0].where.startswith(f"/properties/{field}/x-formwork")


def test_an_import_names_only_records_its_author_may_read(secure: Secure) -> None:
    from formwork.runtime.imports.run import ImportPlan, cell_context
    from formwork.runtime.imports.sheets import Sheet
    from formwork.runtime.registry import load_registry

    session = secure.app.extensions["formwork"].sessions()
    try:
        registry = load_registry(session)
        meta = registry.meta("secure.sheet")
        fields = {"project": meta.entity.field_map["project"]}
        sheet = Sheet(["project"], [(2, ["一号楼"]), (3, ["二号楼"])], 2)
        plan = ImportPlan({0: "project"}, commit=False)
        engineer = secure.service(session, "site_engineer").principal
        seen = cell_context(session, registry, meta, fields, sheet, plan, engineer)
        # P2 is not the engineer's project: its title names nothing (as if it did not exist).
        assert seen.by_title["project"] == {"一号楼": secure.ids["P1"]}
        admin = secure.service(session, "admin").principal
        everything = cell_context(session, registry, meta, fields, sheet, plan, admin)
        assert set(everything.by_title["project"]) == {"一号楼", "二号楼"}
    finally:
        session.close()
