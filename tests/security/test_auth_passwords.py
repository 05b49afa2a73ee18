"""The password policy, hashing and rehashing, and changing a password."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from formwork.auth.errors import PasswordRejected
from formwork.auth.passwords import check_password_policy, common_passwords
from formwork.auth.users import authenticate, create_user, needs_rehash
from formwork.cli import user_group
from formwork.runtime.models import LoginSession, User
from tests.conftest import PASSWORD
from tests.security.auth_helpers import csrf_of, events, sign_in
from tests.web.conftest import compile_catalogs


@pytest.fixture(scope="module", autouse=True)
def _catalogs() -> None:
    compile_catalogs()  # the zh-CN messages are checked below


@pytest.mark.parametrize(
    ("password", "username", "code"),
    [
        ("Short-1", "ann", "too_short"),
        ("abcdefghijkl", "ann", "too_simple"),  # letters only
        ("1234567890123", "ann", "too_simple"),  # digits only
        ("!!!!????....", "ann", "too_simple"),
        ("my-bob-2026-pass", "bob", "contains_username"),
        ("Password123!", "ann", "common"),
        ("qwertyuiop", "ann", "too_simple"),
        ("qwertyuiop1", "ann", "common"),
        ("Woaini1314", "ann", "common"),
        ("x" * 257 + "1", "ann", "too_long"),
    ],
)
def test_policy_refuses_weak_passwords_with_a_reason(password, username, code):
    with pytest.raises(PasswordRejected) as refused:
        check_password_policy(password, username)
    assert refused.value.code == code
    assert str(refused.value).startswith("password must")


@pytest.mark.parametrize(
    "password",
    ["Secret-pass-1", "correct horse battery 9", "Zhuzhai-Gongcheng7", "AbcDef!@#xyz"],
)
def test_policy_accepts_good_passwords(password):
    check_password_policy(password, "ann")


def test_common_list_is_a_data_file_read_once():
    listed = common_passwords()
    assert "password" in listed and "woaini1314" in listed and "1qaz2wsx" in listed
    assert common_passwords() is listed


def test_new_passwords_are_scrypt_and_weak_hashes_are_replaced_at_sign_in(app, session):
    user = create_user(session, "ann", PASSWORD)
    assert user.password_hash.startswith("scrypt:")
    assert not needs_rehash(user.password_hash)
    weak = "pbkdf2:sha256:1000$salt$" + "0" * 64
    assert needs_rehash(weak) and needs_rehash("pbkdf2:sha256:260000$s$x")
    assert not needs_rehash("pbkdf2:sha256:600000$s$x")
    from werkzeug.security import generate_password_hash

    user.password_hash = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")
    session.commit()
    assert authenticate(session, "ann", PASSWORD) is user
    assert user.password_hash.startswith("scrypt:")
    assert authenticate(session, "ann", "Wrong-pass-1") is None
    assert authenticate(session, "nobody", PASSWORD) is None


def test_cli_set_password_and_deactivate(app, users):
    runner = app.test_cli_runner()
    weak = runner.invoke(user_group, ["set-password", "clerk", "--password", "abc"])
    assert weak.exit_code != 0 and "password must be at least 10" in weak.output
    done = runner.invoke(user_group, ["set-password", "clerk", "--password", "New-secret-77"])
    assert done.exit_code == 0, done.output
    assert sign_in(app.test_client(), "clerk", PASSWORD).status_code == 401
    assert sign_in(app.test_client(), "clerk", "New-secret-77").status_code == 302
    off = runner.invoke(user_group, ["deactivate", "clerk"])
    assert off.exit_code == 0, off.output
    assert sign_in(app.test_client(), "clerk", "New-secret-77").status_code == 401
    missing = runner.invoke(user_group, ["deactivate", "nobody"])
    assert missing.exit_code != 0 and "no user 'nobody'" in missing.output
    kinds = [e.kind for e in events(app) if (e.detail or {}).get("via") == "cli"]
    assert kinds == ["password.changed", "user.deactivated"]
    assert runner.invoke(user_group, ["activate", "clerk"]).exit_code == 0
    assert sign_in(app.test_client(), "clerk", "New-secret-77").status_code == 302


def test_change_password_page_needs_the_current_password_and_csrf(app, users, session):
    client = app.test_client()
    assert sign_in(client, "clerk", PASSWORD).status_code == 302
    page = client.get("/account")
    assert page.status_code == 200 and 'data-testid="change-password"' in page.text
    token = csrf_of(page)
    no_csrf = client.post(
        "/account/password",
        data={"current": PASSWORD, "new": "Better-pass-42", "confirm": "Better-pass-42"},
    )
    assert no_csrf.status_code == 400
    wrong = client.post(
        "/account/password",
        data={
            "current": "Not-the-one-1",
            "new": "Better-pass-42",
            "confirm": "Better-pass-42",
            "csrf_token": token,
        },
    )
    assert wrong.status_code == 400 and "当前密码不正确" in wrong.text
    weak = client.post(
        "/account/password",
        data={
            "current": PASSWORD,
            "new": "password123",
            "confirm": "password123",
            "csrf_token": token,
        },
    )
    assert weak.status_code == 400 and "密码太常见" in weak.text
    ok = client.post(
        "/account/password",
        data={
            "current": PASSWORD,
            "new": "Better-pass-42",
            "confirm": "Better-pass-42",
            "csrf_token": token,
        },
    )
    assert ok.status_code == 302
    assert client.get("/account").status_code == 200  # this session stays signed in
    changed = session.scalar(sa.select(User).where(User.username == "clerk"))
    rows = session.scalars(sa.select(LoginSession).where(LoginSession.user_id == changed.id))
    ended = sorted((row.ended_by or "live") for row in rows)
    assert ended == ["live", "password"]  # the old session revoked, this browser's new one
    [event] = events(app, "password.changed")
    assert event.username == "clerk" and event.ip == "127.0.0.1"
