"""The security log: events written with who, when and where, in the same transaction as
the change they describe; the administrators' page and GET /api/v1/security-events."""

from __future__ import annotations

import datetime as dt
import io

import pytest

from formwork.cli import user_group
from formwork.cli_packs import pack_group
from formwork.runtime.security_events import (
    EventFilter,
    list_events,
    pack_changes,
    record_event,
)
from tests.conftest import PASSWORD
from tests.packs.conftest import PACKS, folder_files, zip_of
from tests.security.auth_helpers import AGENT, cheap_hashes, csrf_of, events, sign_in

EVENTS = "/api/v1/security-events"


@pytest.fixture(autouse=True)
def _cheap(monkeypatch):
    cheap_hashes(monkeypatch)


def test_record_event_refuses_unknown_kinds_and_truncates(app, session):
    with pytest.raises(ValueError, match="unknown security event kind 'login.maybe'"):
        record_event(session, "login.maybe")
    record_event(
        session, "data.imported", user_id=7, username="u" * 80, ip="198.51.100.1",
        user_agent="A" * 500, detail={"entity": "sample.project", "rows": 3},
    )  # fmt: skip
    session.commit()
    [event] = events(app)
    assert len(event.username) == 64 and len(event.user_agent) == 200
    assert event.detail == {"entity": "sample.project", "rows": 3} and event.at is not None


def test_sign_in_events_carry_address_and_browser(app, users):
    client = app.test_client()
    assert sign_in(client, "clerk", "Wrong-pass-99", ip="198.51.100.4").status_code == 401
    assert sign_in(client, "clerk", PASSWORD, ip="198.51.100.4").status_code == 302
    page = client.get("/account", environ_base={"REMOTE_ADDR": "198.51.100.4"})
    client.post(
        "/logout",
        data={"csrf_token": csrf_of(page)},
        headers={"User-Agent": AGENT},
        environ_base={"REMOTE_ADDR": "198.51.100.4"},
    )
    seen = [(e.kind, e.username, e.ip, e.user_agent) for e in events(app)]
    assert seen == [
        ("login.failure", "clerk", "198.51.100.4", AGENT),
        ("login.success", "clerk", "198.51.100.4", AGENT),
        ("logout", "clerk", "198.51.100.4", AGENT),
    ]
    assert all(e.user_id == users["clerk"]["id"] for e in events(app))


def test_pack_operations_over_rest_are_logged_with_the_actor(sample, users, api_as):
    admin = api_as("admin")
    headers = {**admin._headers(), "User-Agent": AGENT}
    upload = {"file": (io.BytesIO(zip_of(folder_files("site_v1"))), "site.zip")}
    response = admin.client.post(
        "/api/v1/packs", data=upload, headers=headers, content_type="multipart/form-data"
    )
    assert response.status_code == 201, response.get_json()
    assert admin.post("/api/v1/packs/site/disable", headers=headers).status_code == 200
    assert admin.post("/api/v1/packs/site/enable", headers=headers).status_code == 200
    patch = {"file": "entities/project.json", "patch": {"x-formwork": {"label": {"en": "Job"}}}}
    assert (
        admin.patch("/api/v1/packs/site/customisations", patch, headers=headers).status_code == 200
    )
    upgrade = {"file": (io.BytesIO(zip_of(folder_files("site_v2"))), "site.zip")}
    assert (
        admin.client.post(
            "/api/v1/packs", data=upgrade, headers=headers, content_type="multipart/form-data"
        ).status_code
        == 201
    )
    assert admin.delete("/api/v1/packs/site", headers=headers).status_code == 200
    logged = [e for e in events(sample) if e.kind.startswith("pack.")]
    assert [(e.kind, e.detail.get("pack")) for e in logged] == [
        ("pack.installed", "site"),
        ("pack.disabled", "site"),
        ("pack.enabled", "site"),
        ("pack.customised", "site"),
        ("pack.upgraded", "site"),
        ("pack.uninstalled", "site"),
    ]
    assert logged[4].detail == {"pack": "site", "from": "1.0.0", "version": "1.1.0"}
    assert {(e.username, e.ip, e.user_agent) for e in logged} == {("admin", "127.0.0.1", AGENT)}


def test_a_refused_install_leaves_no_event(sample, users, api_as):
    admin = api_as("admin")
    evil = zip_of({**folder_files("costs_v1"), "../escape.json": "{}"})
    response = admin.client.post(
        "/api/v1/packs",
        data={"file": (io.BytesIO(evil), "evil.zip")},
        headers=admin._headers(),
        content_type="multipart/form-data",
    )
    assert response.status_code >= 400
    assert [e for e in events(sample) if e.kind.startswith("pack.")] == []


def test_pack_and_user_commands_are_logged_without_an_address(app, tmp_path):
    runner = app.test_cli_runner()
    created = runner.invoke(user_group, ["create", "ann", "--password", "Secret-pass-1"])
    assert created.exit_code == 0, created.output
    assert runner.invoke(pack_group, ["install", str(PACKS / "site_v1")]).exit_code == 0
    assert runner.invoke(pack_group, ["disable", "site"]).exit_code == 0
    out = tmp_path / "site.zip"
    assert runner.invoke(pack_group, ["export", "site", "-o", str(out)]).exit_code == 0
    assert runner.invoke(pack_group, ["uninstall", "site"]).exit_code == 0
    imported = runner.invoke(pack_group, ["import", str(out)])
    assert imported.exit_code == 0, imported.output
    logged = [(e.kind, e.detail.get("pack") or e.detail.get("target")) for e in events(app)]
    assert logged == [
        ("user.created", "ann"),
        ("pack.installed", "site"),
        ("pack.disabled", "site"),
        ("pack.uninstalled", "site"),
        ("pack.imported", "site"),
        ("pack.installed", "site"),  # re-installed from the zip, in the same transaction
    ]
    assert {(e.ip, e.detail["via"]) for e in events(app)} == {(None, "cli")}
    assert all(e.username for e in events(app))


def test_pack_changes_compares_states():
    before = {"a": ("installed", "1.0.0", True), "b": ("installed", "2.0.0", True)}
    after = {"a": ("installed", "1.1.0", True), "c": ("installed", "0.1.0", True)}
    assert pack_changes(before, after) == [
        ("pack.upgraded", {"pack": "a", "from": "1.0.0", "version": "1.1.0"}),
        ("pack.uninstalled", {"pack": "b", "purge": True}),
        ("pack.installed", {"pack": "c", "version": "0.1.0"}),
    ]


def _many_events(app, count):
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with app.extensions["formwork"].write_sessions() as session:
        for n in range(count):
            kind = "login.success" if n % 2 else "login.failure"
            at = start + dt.timedelta(hours=n)
            record_event(session, kind, username=f"u{n % 3}", ip="192.0.2.1", at=at)
        session.commit()


def test_the_api_lists_events_for_admins_only_paged_and_filtered(sample, users, api_as):
    _many_events(sample, 30)
    admin, reader = api_as("admin"), api_as("reader")
    assert reader.get(EVENTS).status_code == 403
    assert api_as(None).get(EVENTS).status_code == 401
    first = admin.get(f"{EVENTS}?per_page=10").get_json()
    assert first["page"] == 1 and first["per_page"] == 10 and first["has_more"] is True
    assert len(first["items"]) == 10
    item = first["items"][0]
    assert set(item) == {"id", "at", "kind", "user_id", "username", "ip", "user_agent", "detail"}
    ats = [i["at"] for i in first["items"]]
    assert ats == sorted(ats, reverse=True)
    last = admin.get(f"{EVENTS}?per_page=10&page=4").get_json()
    assert last["has_more"] is False
    failures = admin.get(f"{EVENTS}?kind=login.failure&per_page=200").get_json()["items"]
    assert len(failures) == 15 and {i["kind"] for i in failures} == {"login.failure"}
    day = admin.get(f"{EVENTS}?since=2026-01-01&until=2026-01-01&per_page=200").get_json()
    assert len(day["items"]) == 24
    assert len(admin.get(f"{EVENTS}?username=u1&per_page=200").get_json()["items"]) == 10
    bad = admin.get(f"{EVENTS}?since=yesterday")
    assert bad.status_code == 422 or bad.status_code == 400
    assert bad.get_json()["errors"][0]["pointer"] == "/since"
    assert admin.get(f"{EVENTS}?kind=nope").status_code in (400, 422)
    assert admin.get(f"{EVENTS}?per_page=1000").status_code in (400, 422)


def test_the_api_needs_the_admin_scope(sample, users):
    from formwork.auth.users import create_token, find_user

    with sample.extensions["formwork"].write_sessions() as session:
        token = create_token(session, find_user(session, "admin"), "ro", scopes=["read"])
        session.commit()
    response = sample.test_client().get(EVENTS, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403


def test_the_page_is_for_admins_and_filters(sample, users):
    _many_events(sample, 6)
    clerk = sample.test_client()
    sign_in(clerk, "clerk", PASSWORD)
    assert clerk.get("/admin/security-events").status_code == 403
    assert sample.test_client().get("/admin/security-events").status_code == 302
    admin = sample.test_client()
    sign_in(admin, "admin", PASSWORD)
    page = admin.get("/admin/security-events")
    assert page.status_code == 200
    assert page.text.count('data-testid="event-row"') == 6 + 2  # and the two sign-ins
    only = admin.get("/admin/security-events?kind=login.failure&username=u0")
    assert only.text.count('data-testid="event-row"') == 1
    assert admin.get("/admin/security-events?since=garbage").status_code == 400


def test_list_events_pages_without_counting(app, session):
    _many_events(app, 5)
    rows, more = list_events(session, EventFilter(), page=1, per_page=2)
    assert len(rows) == 2 and more
    rows, more = list_events(session, EventFilter(), page=3, per_page=2)
    assert len(rows) == 1 and not more


def test_account_events_carry_address_and_browser(app, users):
    app.config["LOGIN_MAX_FAILURES"] = 1
    client = app.test_client()
    client.environ_base.update({"REMOTE_ADDR": "203.0.113.5", "HTTP_USER_AGENT": AGENT})
    sign_in(app.test_client(), "reader", "Wrong-pass-99", ip="203.0.113.5")  # locks reader
    assert sign_in(client, "reader", PASSWORD, ip="203.0.113.5").status_code == 401
    assert sign_in(client, "clerk", PASSWORD, ip="203.0.113.5").status_code == 302
    page = client.get("/account/tokens")
    client.post(
        "/account/tokens",
        data={"name": "bot", "scopes": ["read"], "days": "5", "csrf_token": csrf_of(page)},
    )
    page = client.get("/account/tokens")
    import re

    token_id = re.findall(r"/account/tokens/(\d+)/revoke", page.text)[0]
    client.post(f"/account/tokens/{token_id}/revoke", data={"csrf_token": csrf_of(page)})
    page = client.get("/account")
    new = "Other-secret-55"
    client.post(
        "/account/password",
        data={"current": PASSWORD, "new": new, "confirm": new, "csrf_token": csrf_of(page)},
    )
    page = client.get("/account")
    client.post("/account/logout-all", data={"csrf_token": csrf_of(page), "revoke_tokens": "y"})
    wanted = ["login.locked", "token.created", "token.revoked", "password.changed", "logout.all"]
    for kind in wanted:
        found = events(app, kind)
        assert found and all((e.ip, e.user_agent) == ("203.0.113.5", AGENT) for e in found), kind
    assert [e.detail["reason"] for e in events(app, "login.locked")] == ["account", "account"]
    assert events(app, "logout.all")[0].detail == {"tokens_revoked": 1}
    assert events(app, "token.created")[0].detail["scopes"] == ["read"]
