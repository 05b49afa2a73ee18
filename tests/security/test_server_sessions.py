"""Sessions live on the server: a row per sign-in, so signing out revokes exactly that
session and a cookie replayed afterwards signs nobody in; the account page lists the signed-in
browsers and signs any one of them out."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
import sqlalchemy as sa

from formwork.cli import user_group
from formwork.runtime.models import LoginSession
from tests.conftest import PASSWORD
from tests.security.auth_helpers import cheap_hashes, csrf_of, events, sign_in, use_clock

pytestmark = pytest.mark.dates  # the clock is moved past idle and lifetime limits
API = "/api/v1/sample/project"


@pytest.fixture(autouse=True)
def _cheap(monkeypatch):
    cheap_hashes(monkeypatch)


def _cookie(client: Any) -> str:
    return client.get_cookie("session").value


def _replay(app: Any, cookie: str) -> Any:
    client = app.test_client()
    client.set_cookie("session", cookie)
    return client


def _rows(app: Any) -> list[LoginSession]:
    with app.extensions["formwork"].sessions() as db:
        return list(db.scalars(sa.select(LoginSession).order_by(LoginSession.id)))


def test_a_cookie_replayed_after_sign_out_signs_nobody_in(sample, users):
    client = sample.test_client()
    sign_in(client, "clerk", PASSWORD)
    stolen = _cookie(client)
    assert _replay(sample, stolen).get(API).status_code == 200
    client.post("/logout", data={"csrf_token": csrf_of(client.get("/account"))})
    assert _replay(sample, stolen).get(API).status_code == 401
    assert _replay(sample, stolen).get("/account").status_code == 302
    [row] = _rows(sample)
    assert row.ended_by == "logout" and row.revoked_at is not None


def test_signing_out_ends_exactly_that_session(sample, users):
    phone, laptop = sample.test_client(), sample.test_client()
    sign_in(phone, "clerk", PASSWORD)
    sign_in(laptop, "clerk", PASSWORD)
    phone.post("/logout", data={"csrf_token": csrf_of(phone.get("/account"))})
    assert phone.get(API).status_code == 401
    assert laptop.get(API).status_code == 200


def test_only_the_hash_of_the_session_id_is_stored(sample, users):
    client = sample.test_client()
    sign_in(client, "clerk", PASSWORD)
    payload = sample.session_interface.get_signing_serializer(sample).loads(_cookie(client))
    session_id = payload["fw_sid"]
    [row] = _rows(sample)
    assert row.token_hash == hashlib.sha256(session_id.encode()).hexdigest()
    assert session_id not in repr(row.__dict__)
    assert row.user_agent == "pytest-browser/1.0" and row.ip == "10.0.0.1"


def test_the_account_page_lists_browsers_and_signs_one_out(sample, users):
    phone, laptop = sample.test_client(), sample.test_client()
    sign_in(phone, "clerk", PASSWORD)
    sign_in(laptop, "clerk", PASSWORD)
    page = laptop.get("/account")
    assert page.text.count('data-testid="session-row"') == 2
    phone_row = _rows(sample)[0]
    response = laptop.post(
        f"/account/sessions/{phone_row.id}/revoke", data={"csrf_token": csrf_of(page)}
    )
    assert response.status_code == 302 and response.headers["Location"] == "/account"
    assert phone.get(API).status_code == 401
    assert laptop.get("/account").text.count('data-testid="session-row"') == 1
    [event] = events(sample, "session.revoked")
    assert event.username == "clerk" and event.detail == {"session_id": phone_row.id}


def test_nobody_signs_out_another_users_browser(sample, users):
    mine, theirs = sample.test_client(), sample.test_client()
    sign_in(theirs, "reader", PASSWORD)
    sign_in(mine, "clerk", PASSWORD)
    their_row = _rows(sample)[0]
    page = mine.get("/account")
    response = mine.post(
        f"/account/sessions/{their_row.id}/revoke", data={"csrf_token": csrf_of(page)}
    )
    assert response.status_code == 404
    assert theirs.get(API).status_code == 200
    assert mine.post(f"/account/sessions/{their_row.id}/revoke").status_code == 400  # no CSRF
    assert theirs.get(API).status_code == 200


def test_signing_out_this_browser_from_the_list(sample, users):
    client = sample.test_client()
    sign_in(client, "clerk", PASSWORD)
    [row] = _rows(sample)
    page = client.get("/account")
    response = client.post(f"/account/sessions/{row.id}/revoke", data={"csrf_token": csrf_of(page)})
    assert response.headers["Location"] == "/login"
    assert client.get(API).status_code == 401


def test_deactivation_ends_every_session(sample, users):
    client = sample.test_client()
    sign_in(client, "clerk", PASSWORD)
    result = sample.test_cli_runner().invoke(user_group, ["deactivate", "clerk"])
    assert result.exit_code == 0, result.output
    assert client.get(API).status_code == 401
    assert [row.ended_by for row in _rows(sample)] == ["deactivated"]


def test_activity_is_noted_at_most_once_a_minute(sample, users):
    clock = use_clock(sample)
    client = sample.test_client()
    sign_in(client, "clerk", PASSWORD)
    first = _rows(sample)[0].last_seen_at
    clock.advance(seconds=30)
    client.get(API)
    assert _rows(sample)[0].last_seen_at == first
    clock.advance(seconds=31)
    client.get(API)
    assert _rows(sample)[0].last_seen_at > first


def test_expired_sessions_are_deleted_at_the_next_sign_in(sample, users):
    clock = use_clock(sample)
    first = sample.test_client()
    sign_in(first, "clerk", PASSWORD)
    clock.advance(hours=sample.config["SESSION_LIFETIME_HOURS"] + 1)
    sign_in(sample.test_client(), "reader", PASSWORD)
    assert [row.user_id for row in _rows(sample)] == [users["reader"]["id"]]
