"""Every expression evaluated on a user's behalf sees only what that user may read: the live
form preview (`POST /app/<pack>/<entity>/compute`) runs sum_of/count_of with the user's row
rules and field rules, while the save itself still computes over every row. The sample
pack's note has `sheets_total` (sum of its project's sheets) and `budget_seen` (its
project's budget) as computed fields."""

from __future__ import annotations

import re
from typing import Any

from tests.security.conftest import Secure
from tests.web.conftest import sign_in

OUTPUT = re.compile(r'id="out-(\w+)"[^>]*data-fw-value="([^"]*)"')


def preview(browser: Any, project: int) -> dict[str, str]:
    response = browser.post("/app/secure/note/compute", {"text": "x", "project": str(project)})
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return dict(OUTPUT.findall(response.get_data(as_text=True)))


def test_the_preview_sums_only_rows_the_user_may_read(secure: Secure) -> None:
    engineer = sign_in(secure.app, "site_engineer")  # reads P1's sheets only
    assert preview(engineer, secure.ids["P1"])["sheets_total"] == "500.00"  # s1 + s3
    # s2 (P2, 200.00) is outside the engineer's rows: never part of a value shown to them.
    assert preview(engineer, secure.ids["P2"])["sheets_total"] in ("0.00", "")
    admin = sign_in(secure.app, "admin")
    assert preview(admin, secure.ids["P2"])["sheets_total"] == "200.00"


def test_the_preview_never_reads_a_hidden_field(secure: Secure) -> None:
    engineer = sign_in(secure.app, "site_engineer")  # project.budget is hidden from them
    assert preview(engineer, secure.ids["P1"])["budget_seen"] == ""
    admin = sign_in(secure.app, "admin")
    assert preview(admin, secure.ids["P1"])["budget_seen"] == "1000000.00"


def test_the_preview_reads_nothing_of_an_entity_the_user_may_not_read(secure: Secure) -> None:
    note_taker = sign_in(secure.app, "note_taker")  # reads notes and projects, no sheet
    shown = preview(note_taker, secure.ids["P1"])
    assert shown["sheets_total"] == "" and shown["budget_seen"] == "1000000.00"


def test_a_save_still_computes_over_every_row(secure: Secure) -> None:
    # A computed field is part of the record: the same whoever saves (a rule such as
    # "commitments must not exceed the target" must see every row); field rules decide
    # who sees it. Only what is computed for display to one user is narrowed.
    note_taker = secure.api("note_taker")
    created = note_taker.post("/api/v1/secure/note", {"text": "我的", "project": secure.ids["P1"]})
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["sheets_total"] == "500.00"
