"""Uniqueness errors never confirm that a value exists in rows the user cannot see: anyone
whose read rows are narrowed gets one neutral "cannot be used" — the same whether the clash
is in a row they see or not — and no record is named. Whoever reads every row gets the
specific message. The sample note has a unique `ref` and a unique (project, text)."""

from __future__ import annotations

from typing import Any

from tests.security.conftest import Secure

NOTES = "/api/v1/secure/note"


def refused(response: Any) -> list[tuple[str, str, str]]:
    assert response.status_code == 422, response.get_json()
    return [(e["pointer"], e["code"], e["detail"]) for e in response.get_json()["errors"]]


def test_a_clash_in_unseen_rows_reads_like_a_clash_in_seen_ones(secure: Secure) -> None:
    mine, theirs = secure.api("note_taker"), secure.api("note_taker2")  # own notes only
    assert mine.post(NOTES, {"text": "甲", "ref": "N-1"}).status_code == 201
    unseen = refused(theirs.post(NOTES, {"text": "乙", "ref": "N-1"}))
    seen = refused(mine.post(NOTES, {"text": "丙", "ref": "N-1"}))
    assert unseen == seen == [("/ref", "unique_unavailable", "此值不可使用，请换一个")]
    assert "N-1" not in str(unseen)


def test_a_composite_clash_is_neutral_too(secure: Secure) -> None:
    # The note taker reads only their own notes: n1 ("P1 的记事", P1) is not theirs.
    note_taker = secure.api("note_taker")
    clash = {"text": "P1 的记事", "project": secure.ids["P1"]}
    assert refused(note_taker.post(NOTES, clash)) == [
        ("/project", "unique_together_unavailable", "project, text 的这一组合不可使用，请换一组")
    ]


def test_whoever_reads_every_row_is_told_the_value_exists(secure: Secure) -> None:
    admin = secure.api("admin")
    assert admin.post(NOTES, {"text": "甲", "ref": "N-2"}).status_code == 201
    assert refused(admin.post(NOTES, {"text": "乙", "ref": "N-2"})) == [
        ("/ref", "unique", "值 'N-2' 已存在，必须唯一")
    ]
    clash = {"text": "P1 的记事", "project": secure.ids["P1"]}
    assert [code for _p, code, _d in refused(admin.post(NOTES, clash))] == ["unique_together"]
