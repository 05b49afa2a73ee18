"""Sessions: a new one at every sign-in, cookie flags, lifetime and idle limits, and
signing out everywhere (page and command line)."""

from __future__ import annotations

import pytest

from formwork.app import create_app
from formwork.cli import user_group
from tests.conftest import PASSWORD
from tests.security.auth_helpers import cheap_hashes, csrf_of, events, sign_in, use_clock

# Outcomes depend on the clock's date: `make test` runs these again a year ahead.
pytestmark = pytest.mark.dates

API = "/api/v1/sample/project"


@pytest.fixture(autouse=True)
def _cheap(monkeypatch):
    cheap_hashes(monkeypatch)


def _cookie(client) -> str:
    found = client.get_cookie("session")
    return found.value if found is not None else ""


def _with_cookie(app, value: str):
    client = app.test_client()
    client.set_cookie("session", value)
    return client


def test_sign_in_issues_a_new_session_and_csrf_token(sample, users):
    client = sample.test_client()
    page = client.get("/login")
    before, old_token = _cookie(client), csrf_of(page)
    assert before
    response = client.post(
        "/login", data={"username": "clerk", "password": PASSWORD, "csrf_token": old_token}
    )
    assert response.status_code == 302
    after = _cookie(client)
    assert after and after != before
    assert csrf_of(client.get("/account")) != old_token
    # The cookie from before the sign-in does not carry the sign-in.
    assert _with_cookie(sample, before).get(API).status_code == 401


def test_cookie_flags(sample, users):
    client = sample.test_client()
    response = sign_in(client, "clerk", PASSWORD)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Expires=" in cookie
    assert "Secure" not in cookie


def test_cookies_are_secure_when_https_is_on(sample, users):
    https = create_app({**sample.config, "PREFER_HTTPS": True})
    try:
        assert https.config["SESSION_COOKIE_SECURE"] and https.config["REMEMBER_COOKIE_SECURE"]
        client = https.test_client()
        page = client.get("/login", base_url="https://localhost")
        response = client.post(
            "/login",
            data={"username": "clerk", "password": PASSWORD, "csrf_token": csrf_of(page)},
            base_url="https://localhost",
            headers={"Referer": "https://localhost/login"},  # CSRF checks it on HTTPS
        )
        assert response.status_code == 302
        cookie = response.headers["Set-Cookie"]
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    finally:
        https.extensions["formwork"].engine.dispose()


def test_logout_all_page_ends_other_sessions_but_keeps_this_one(sample, users):
    phone, laptop = sample.test_client(), sample.test_client()
    sign_in(phone, "clerk", PASSWORD)
    sign_in(laptop, "clerk", PASSWORD)
    stolen = _cookie(phone)
    assert _with_cookie(sample, stolen).get(API).status_code == 200
    page = laptop.get("/account")
    assert 'data-testid="logout-all"' in page.text
    response = laptop.post("/account/logout-all", data={"csrf_token": csrf_of(page)})
    assert response.status_code == 302
    assert laptop.get(API).status_code == 200
    assert phone.get(API).status_code == 401
    assert _with_cookie(sample, stolen).get(API).status_code == 401
    assert phone.get("/account").status_code == 302  # to the sign-in page
    [event] = events(sample, "logout.all")
    assert event.username == "clerk" and event.detail == {"tokens_revoked": 0}


def test_logout_all_needs_csrf(sample, users):
    client = sample.test_client()
    sign_in(client, "clerk", PASSWORD)
    assert client.post("/account/logout-all").status_code == 400
    assert events(sample, "logout.all") == []


def test_logout_all_from_the_cli_with_token_revocation(sample, users):
    client = sample.test_client()
    sign_in(client, "clerk", PASSWORD)
    # A cached principal must not outlive the sign-out (the cache is on in production).
    sample.extensions["formwork"].principals.ttl = 60
    assert client.get(API).status_code == 200
    headers = {"Authorization": f"Bearer {users['clerk']['token']}"}
    assert client.get(API, headers=headers).status_code == 200
    result = sample.test_cli_runner().invoke(user_group, ["logout-all", "clerk", "--revoke-tokens"])
    assert result.exit_code == 0 and "1 token(s) revoked" in result.output
    assert client.get(API).status_code == 401
    assert sample.test_client().get(API, headers=headers).status_code == 401


def test_plain_logout_is_recorded_and_clears_the_session(sample, users):
    client = sample.test_client()
    sign_in(client, "clerk", PASSWORD)
    page = client.get("/account")
    assert client.post("/logout", data={"csrf_token": csrf_of(page)}).status_code == 302
    assert client.get(API).status_code == 401
    [event] = events(sample, "logout")
    assert event.username == "clerk" and event.ip == "127.0.0.1"


def test_idle_and_absolute_session_limits(sample, users):
    clock = use_clock(sample)
    client = sample.test_client()
    sign_in(client, "clerk", PASSWORD)
    idle = sample.config["SESSION_IDLE_MINUTES"]
    clock.advance(minutes=idle - 1)
    assert client.get(API).status_code == 200
    clock.advance(minutes=idle - 1)  # active a moment ago: still signed in
    assert client.get("/account").status_code == 200
    clock.advance(minutes=idle + 1)
    assert client.get(API).status_code == 401
    sign_in(client, "clerk", PASSWORD)
    hours = sample.config["SESSION_LIFETIME_HOURS"]
    for _ in range(int(hours * 60 / (idle - 5)) + 1):
        clock.advance(minutes=idle - 5)
        status = client.get("/account").status_code
    assert status == 302  # past the lifetime however active
