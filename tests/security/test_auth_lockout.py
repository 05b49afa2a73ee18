"""Sign-in limits: an account locks after repeated failures, an address that sprays many
usernames is refused, and every refusal looks the same."""

from __future__ import annotations

import pytest

from formwork.app import create_app
from formwork.cli import user_group
from tests.conftest import PASSWORD
from tests.security.auth_helpers import cheap_hashes, events, sign_in, use_clock

# Outcomes depend on the clock's date: `make test` runs these again a year ahead.
pytestmark = pytest.mark.dates

WRONG = "Wrong-pass-99"


@pytest.fixture(autouse=True)
def _cheap(monkeypatch):
    cheap_hashes(monkeypatch)


def test_account_locks_after_max_failures_and_unlocks_after_the_window(app, users):
    clock = use_clock(app)
    client = app.test_client()
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        assert sign_in(client, "clerk", WRONG).status_code == 401
        clock.advance(seconds=30)
    # Locked: even the right password is refused, with the same answer as a wrong one.
    locked = sign_in(client, "clerk", PASSWORD)
    assert locked.status_code == 401 and "用户名或密码错误" in locked.text
    assert [e.detail.get("reason") for e in events(app, "login.locked")] == ["account", "account"]
    clock.advance(minutes=app.config["LOGIN_LOCK_MINUTES"] - 3)
    assert sign_in(client, "clerk", PASSWORD).status_code == 401
    clock.advance(minutes=4)
    assert sign_in(client, "clerk", PASSWORD).status_code == 302
    assert len(events(app, "login.failure")) == 5


def test_failures_spread_beyond_the_window_do_not_lock(app, users):
    app.config["LOGIN_MAX_FAILURES"] = 3
    clock = use_clock(app)
    client = app.test_client()
    for _ in range(6):
        assert sign_in(client, "clerk", WRONG).status_code == 401
        clock.advance(minutes=8)  # never three within 15 minutes
    assert events(app, "login.locked") == []
    assert sign_in(client, "clerk", PASSWORD).status_code == 302


def test_admin_unlocks_with_the_cli(app, users):
    use_clock(app)
    app.config["LOGIN_MAX_FAILURES"] = 2
    client = app.test_client()
    for _ in range(2):
        sign_in(client, "clerk", WRONG)
    assert sign_in(client, "clerk", PASSWORD).status_code == 401
    result = app.test_cli_runner().invoke(user_group, ["unlock", "clerk"])
    assert result.exit_code == 0, result.output
    assert sign_in(client, "clerk", PASSWORD).status_code == 302
    [unlocked] = events(app, "user.unlocked")
    assert unlocked.detail["target"] == "clerk" and unlocked.ip is None


def test_one_address_cannot_spray_many_usernames(app, users):
    use_clock(app)
    app.config["LOGIN_MAX_IP_FAILURES"] = 6
    client = app.test_client()
    for n in range(6):
        assert sign_in(client, f"user{n}", WRONG, ip="192.0.2.7").status_code == 401
    # The address is refused now, even for a right password; another address is not.
    assert sign_in(client, "admin", PASSWORD, ip="192.0.2.7").status_code == 401
    assert events(app, "login.locked")[-1].detail == {"reason": "address"}
    assert sign_in(app.test_client(), "admin", PASSWORD, ip="192.0.2.8").status_code == 302
    cleared = app.test_cli_runner().invoke(user_group, ["unlock", "--ip", "192.0.2.7"])
    assert cleared.exit_code == 0, cleared.output
    assert sign_in(app.test_client(), "admin", PASSWORD, ip="192.0.2.7").status_code == 302


def test_unknown_user_wrong_password_and_locked_look_the_same(app, users):
    use_clock(app)
    app.config["LOGIN_MAX_FAILURES"] = 1
    sign_in(app.test_client(), "reader", WRONG)  # reader is locked now
    answers = [
        sign_in(app.test_client(), "nobody-here", WRONG),
        sign_in(app.test_client(), "clerk", WRONG),
        sign_in(app.test_client(), "reader", PASSWORD),
    ]
    assert {a.status_code for a in answers} == {401}
    bodies = {_without_tokens(a.text) for a in answers}
    assert len(bodies) == 1
    reasons = [e.detail["reason"] for e in events(app, "login.failure")]
    assert reasons == ["password", "unknown_user", "password"]


def _without_tokens(html: str) -> str:
    import re

    html = re.sub(r'value="[^"]*"', 'value=""', html)
    return re.sub(r'content="[^"]*"', 'content=""', html).replace('"{&#34;X-CSRFToken', "")


def test_forwarded_for_counts_only_behind_a_trusted_proxy(app, users, tmp_path):
    use_clock(app)
    spoofed = {"X-Forwarded-For": "203.0.113.9"}
    client = app.test_client()
    page = client.get("/login")
    from tests.security.auth_helpers import csrf_of

    client.post(
        "/login",
        data={"username": "clerk", "password": WRONG, "csrf_token": csrf_of(page)},
        headers=spoofed,
    )
    assert events(app, "login.failure")[-1].ip == "127.0.0.1"
    behind = create_app({**app.config, "TRUST_PROXY": 1})
    client = behind.test_client()
    page = client.get("/login")
    client.post(
        "/login",
        data={"username": "clerk", "password": WRONG, "csrf_token": csrf_of(page)},
        headers=spoofed,
    )
    assert events(app, "login.failure")[-1].ip == "203.0.113.9"
    behind.extensions["formwork"].engine.dispose()
