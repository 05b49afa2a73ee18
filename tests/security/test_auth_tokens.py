"""API tokens: scopes enforced on every endpoint, expiry required, revocation, the
throttled last-use note, the "my tokens" page and the command line."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from formwork.auth.errors import UserError
from formwork.auth.scopes import ENDPOINT_AREAS, required_scope
from formwork.auth.users import create_token, find_user
from formwork.cli import user_group
from formwork.runtime.models import ApiToken
from tests.conftest import PASSWORD
from tests.security.auth_helpers import cheap_hashes, csrf_of, events, sign_in, use_clock

# Outcomes depend on the clock's date: `make test` runs these again a year ahead.
pytestmark = pytest.mark.dates

API = "/api/v1/sample/project"


@pytest.fixture(autouse=True)
def _cheap(monkeypatch):
    cheap_hashes(monkeypatch)


def _token(app, username, **kw):
    with app.extensions["formwork"].write_sessions() as session:
        token = create_token(session, find_user(session, username), "t", **kw)
        session.commit()
    return {"Authorization": f"Bearer {token}", "User-Agent": "robot/2"}


def test_every_api_endpoint_has_a_scope_and_unknown_ones_fail_closed(app):
    api_endpoints = {
        r.endpoint for r in app.url_map.iter_rules() if r.rule.startswith("/api/v1")
    } - {"api.openapi"}
    assert api_endpoints - set(ENDPOINT_AREAS) == set()
    assert required_scope("api.list_view", "GET") == "read"
    assert required_scope("api.create_view", "POST") == "write"
    assert required_scope("api.complete_view", "POST") == "workflow"
    assert required_scope("api.packs_list", "GET") == "admin"
    assert required_scope("api.something_new", "GET") is None


def test_read_only_token_cannot_write(sample, users):
    client = sample.test_client()
    reader = _token(sample, "admin", scopes=["read"])
    assert client.get(API, headers=reader).status_code == 200
    refused = client.post(API, json={"code": "P1", "name": "x"}, headers=reader)
    assert refused.status_code == 403
    assert refused.get_json()["type"].endswith("insufficient-scope")
    assert "'write' scope" in refused.get_json()["detail"]
    writer = _token(sample, "admin")  # default: read, write, workflow
    assert client.post(API, json={"code": "P1", "name": "x"}, headers=writer).status_code == 201
    assert client.get("/api/v1/packs", headers=writer).status_code == 403
    admin = _token(sample, "admin", scopes=["read", "admin"])
    assert client.get("/api/v1/packs", headers=admin).status_code == 200
    assert client.get("/api/v1/tasks", headers=reader).status_code == 200


def test_scopes_do_not_add_permissions(sample, users):
    clerk = _token(sample, "reader", scopes=["read", "admin"])
    assert sample.test_client().get("/api/v1/packs", headers=clerk).status_code == 403


def test_expired_and_revoked_tokens_get_401_and_are_audited(sample, users):
    clock = use_clock(sample)
    headers = _token(sample, "clerk", days=1)
    client = sample.test_client()
    assert client.get(API, headers=headers).status_code == 200
    clock.advance(days=1, seconds=1)
    assert client.get(API, headers=headers).status_code == 401
    result = sample.test_cli_runner().invoke(user_group, ["token", "clerk", "--list"])
    token_id = int(result.output.splitlines()[0].split("\t")[0])  # newest first
    revoked = sample.test_cli_runner().invoke(user_group, ["token", "--revoke", str(token_id)])
    assert revoked.exit_code == 0, revoked.output
    assert client.get(API, headers=headers).status_code == 401
    unknown = {"Authorization": "Bearer fw_not-a-token", "User-Agent": "robot/2"}
    assert client.get(API, headers=unknown).status_code == 401
    rejected = events(sample, "token.rejected")
    assert [e.detail["reason"] for e in rejected] == ["expired", "revoked", "unknown"]
    assert {(e.ip, e.user_agent) for e in rejected} == {("127.0.0.1", "robot/2")}
    assert rejected[0].username == "clerk" and rejected[2].user_id is None


def test_expiry_is_required_and_at_most_a_year(sample, users, session):
    user = find_user(session, "clerk")
    for days in (0, 366):
        with pytest.raises(UserError, match="expire within 1 to 365 days"):
            create_token(session, user, "x", days=days)
    with pytest.raises(UserError, match="unknown scope"):
        create_token(session, user, "x", scopes=["root"])
    runner = sample.test_cli_runner()
    assert runner.invoke(user_group, ["token", "clerk", "--days", "0"]).exit_code != 0
    made = runner.invoke(user_group, ["token", "clerk", "--scope", "read", "--days", "7"])
    assert made.exit_code == 0 and made.output.startswith("fw_")
    session.rollback()  # see what the command committed
    row = session.scalar(sa.select(ApiToken).order_by(ApiToken.id.desc()).limit(1))
    assert row.scopes == ["read"] and row.expires_at is not None


def test_last_use_is_noted_at_most_once_a_minute(sample, users):
    clock = use_clock(sample)
    headers = _token(sample, "clerk")
    client = sample.test_client()
    for _ in range(3):
        assert client.get(API, headers=headers).status_code == 200
        clock.advance(seconds=10)
    clock.advance(minutes=1)
    assert client.get(API, headers=headers).status_code == 200
    used = events(sample, "token.used")
    assert len(used) == 2
    assert used[0].ip == "127.0.0.1" and used[0].user_agent == "robot/2"
    assert used[0].detail["endpoint"] == "api.list_view"


def test_my_tokens_page_creates_once_and_revokes(sample, users):
    client = sample.test_client()
    sign_in(client, "clerk", PASSWORD)
    page = client.get("/account/tokens")
    assert page.status_code == 200 and 'data-testid="create-token"' in page.text
    created = client.post(
        "/account/tokens",
        data={"name": "robot", "scopes": ["read"], "days": "30", "csrf_token": csrf_of(page)},
    )
    assert created.status_code == 200
    token = re.search(r"(fw_[A-Za-z0-9_-]{40,})", created.text).group(1)
    assert "robot" in created.text
    again = client.get("/account/tokens")
    assert token not in again.text  # shown once only
    headers = {"Authorization": f"Bearer {token}"}
    assert sample.test_client().get(API, headers=headers).status_code == 200
    assert sample.test_client().post(API, json={}, headers=headers).status_code == 403
    row_id = re.findall(r"/account/tokens/(\d+)/revoke", again.text)[0]
    revoked = client.post(f"/account/tokens/{row_id}/revoke", data={"csrf_token": csrf_of(again)})
    assert revoked.status_code == 302
    assert sample.test_client().get(API, headers=headers).status_code == 401
    kinds = [e.kind for e in events(sample) if e.kind.startswith("token.")]
    assert kinds[:1] == ["token.created"] and "token.revoked" in kinds


def test_tokens_of_others_cannot_be_revoked_from_the_page(sample, users, session):
    client = sample.test_client()
    sign_in(client, "clerk", PASSWORD)
    page = client.get("/account/tokens")
    others = session.scalar(sa.select(ApiToken.id).where(ApiToken.user_id == users["admin"]["id"]))
    response = client.post(f"/account/tokens/{others}/revoke", data={"csrf_token": csrf_of(page)})
    assert response.status_code == 404
    assert session.get(ApiToken, others).revoked_at is None


def test_bad_token_form_is_refused(sample, users):
    client = sample.test_client()
    sign_in(client, "clerk", PASSWORD)
    page = client.get("/account/tokens")
    bad = client.post(
        "/account/tokens",
        data={"name": "x", "scopes": ["read"], "days": "999", "csrf_token": csrf_of(page)},
    )
    assert bad.status_code == 400
    assert not re.search(r"fw_[A-Za-z0-9_-]{40,}", bad.text)  # no token was made


def test_a_flood_of_unknown_tokens_is_one_event_a_minute_per_address(sample, users):
    client = sample.test_client()
    for attempt in range(5):
        headers = {"Authorization": f"Bearer fw_guess-{attempt}"}
        assert client.get(API, headers=headers).status_code == 401
    assert len(events(sample, "token.rejected")) == 1
