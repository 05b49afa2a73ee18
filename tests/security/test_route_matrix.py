"""Every route × every role of the permission sample × every method: allowed or refused as
the route's policy and the roles' grants (read from tests/packs/secure_v1/roles.json) say.

The test enumerates the app's URL map and fails on a route that POLICIES does not list, so a
new route cannot ship without someone deciding who may use it. Requests that would change
data use an id or body that cannot succeed (a missing record, an empty form), because the
permission check must come before anything else: a refused user gets 403 whatever they ask
for, an allowed one gets past it (any answer but 401/403/a sign-in redirect, and never 500).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.security.conftest import ROLES, SECURE, Secure
from tests.web.conftest import Browser, sign_in

MISSING = 999_999


@dataclass(frozen=True)
class Policy:
    """Who may call a route: `public`, `signed_in`, `admin`, or an action on an entity."""

    rule: str
    path: str  # with {placeholders} filled from Secure.ids and fixed sample values
    entity: str = "sheet"
    body: Any = None


def api(rule: str, path: str, entity: str = "sheet", body: Any = None) -> Policy:
    return Policy(rule, "/api/v1" + path, entity, body)


# endpoint -> {method: Policy}
POLICIES: dict[str, dict[str, Policy]] = {
    "static": {"GET": Policy("public", "/static/css/formwork.css")},
    # The API's description is public: clients read it before they hold a token.
    "api.openapi": {"GET": api("public", "/openapi.json")},
    # records API: the entity's action
    "api.list_view": {"GET": api("read", "/secure/sheet")},
    "api.create_view": {"POST": api("create", "/secure/sheet", body={})},
    "api.get_view": {"GET": api("read", "/secure/sheet/{MISSING}")},
    "api.update_view": {"PATCH": api("update", "/secure/sheet/{MISSING}", body={"version": 1})},
    "api.delete_view": {"DELETE": api("delete", "/secure/sheet/{MISSING}")},
    "api.history_view": {"GET": api("read", "/secure/sheet/{MISSING}/history")},
    "api.aggregate_view": {"GET": api("read", "/secure/sheet/aggregate")},
    "api.lifecycle_view": {"GET": api("read", "/secure/sheet/{MISSING}/lifecycle")},
    "api.cancel_view": {"POST": api("cancel", "/secure/sheet/{MISSING}/cancel", body={})},
    "api.amend_view": {"POST": api("amend", "/secure/sheet/{MISSING}/amend", body={})},
    "api.upload_file": {"POST": api("signed_in", "/files", body={})},
    "api.download_file": {"GET": api("signed_in", "/files/{MISSING}")},
    "api.report_api": {"GET": api("signed_in", "/reports/secure/nope")},
    # workflow: everyone signed in has an inbox; steps check the task's assignee
    "api.tasks_view": {"GET": api("signed_in", "/tasks")},
    "api.task_view": {"GET": api("signed_in", "/tasks/nope")},
    "api.complete_view": {"POST": api("signed_in", "/tasks/nope/complete", body={})},
    "api.processes_view": {"GET": api("signed_in", "/processes")},
    "api.process_view": {"GET": api("signed_in", "/processes/{MISSING}")},
    "api.start_view": {"POST": api("signed_in", "/processes", body={})},
    "api.retry_view": {"POST": api("admin", "/processes/{MISSING}/retry", body={})},
    "api.withdraw_view": {"POST": api("signed_in", "/processes/{MISSING}/withdraw", body={})},
    "api.definitions_view": {"GET": api("signed_in", "/process-definitions")},
    "api.notifications_view": {"GET": api("signed_in", "/notifications")},
    "api.notification_read_view": {
        "POST": api("signed_in", "/notifications/{MISSING}/read", body={})
    },
    # messages and signals: each receiving process checks its binding's `senders`
    "api.messages_view": {"POST": api("signed_in", "/messages", body={})},
    "api.signals_view": {"POST": api("signed_in", "/signals", body={})},
    "api.deploy_view": {"POST": api("admin", "/process-definitions", body={})},
    "api.migrate_view": {"POST": api("admin", "/processes/migrate", body={})},
    # administration
    "api.packs_list": {"GET": api("admin", "/packs")},
    "api.packs_check": {"POST": api("admin", "/packs/check", body={})},
    "api.packs_install": {"POST": api("admin", "/packs", body={})},
    "api.packs_enable": {"POST": api("admin", "/packs/nope/enable")},
    "api.packs_disable": {"POST": api("admin", "/packs/nope/disable")},
    "api.packs_uninstall": {"DELETE": api("admin", "/packs/nope")},
    "api.packs_export": {"GET": api("admin", "/packs/nope/export")},
    "api.packs_customisations": {"GET": api("admin", "/packs/nope/customisations")},
    "api.packs_customise": {"PATCH": api("admin", "/packs/nope/customisations", body={})},
    "api.security_events": {"GET": api("admin", "/security-events")},
    "api.roles_list": {"GET": api("admin", "/roles")},
    "api.role_create": {"POST": api("admin", "/roles", body={})},
    "api.role_get": {"GET": api("admin", "/roles/nope")},
    "api.role_delete": {"DELETE": api("admin", "/roles/nope")},
    "api.role_permissions": {"PUT": api("admin", "/roles/nope/permissions", body={})},
    "api.role_member_add": {"PUT": api("admin", "/roles/nope/members/{MISSING}")},
    "api.role_member_remove": {"DELETE": api("admin", "/roles/nope/members/{MISSING}")},
    # sign-in and the account
    "auth.login": {"GET": Policy("public", "/login"), "POST": Policy("public", "/login")},
    "auth.logout": {"POST": Policy("public", "/logout")},  # signing out twice is harmless
    "auth.account": {"GET": Policy("signed_in", "/account")},
    "auth.change_password_view": {"POST": Policy("signed_in", "/account/password")},
    "auth.logout_all": {"POST": Policy("signed_in", "/account/logout-all")},
    "auth.tokens": {
        "GET": Policy("signed_in", "/account/tokens"),
        "POST": Policy("signed_in", "/account/tokens"),
    },
    "auth.revoke_token_view": {"POST": Policy("signed_in", "/account/tokens/{MISSING}/revoke")},
    "auth.revoke_session_view": {"POST": Policy("signed_in", "/account/sessions/{MISSING}/revoke")},
    "auth.security_events": {"GET": Policy("admin", "/admin/security-events")},
    # pages
    "web.home": {"GET": Policy("signed_in", "/")},
    "web.set_locale": {"POST": Policy("public", "/locale")},  # the sign-in page has it too
    "web.list_view": {"GET": Policy("read", "/app/secure/sheet")},
    "web.new": {
        "GET": Policy("create", "/app/secure/sheet/new"),
        "POST": Policy("create", "/app/secure/sheet/new"),
    },
    "web.detail": {"GET": Policy("read", "/app/secure/sheet/{MISSING}")},
    "web.edit": {
        "GET": Policy("update", "/app/secure/sheet/{MISSING}/edit"),
        "POST": Policy("update", "/app/secure/sheet/{MISSING}/edit"),
    },
    "web.delete": {"POST": Policy("delete", "/app/secure/sheet/{MISSING}/delete")},
    "web.submit_record": {"POST": Policy("submit", "/app/secure/sheet/{MISSING}/submit")},
    "web.withdraw_record": {"POST": Policy("read", "/app/secure/sheet/{MISSING}/withdraw")},
    "web.cancel_record": {"POST": Policy("cancel", "/app/secure/sheet/{MISSING}/cancel")},
    "web.amend_record": {"POST": Policy("amend", "/app/secure/sheet/{MISSING}/amend")},
    "web.notification_read": {"POST": Policy("signed_in", "/app/notifications/{MISSING}/read")},
    "web.bulk_delete": {"POST": Policy("delete", "/app/secure/sheet/bulk-delete")},
    "web.compute": {"POST": Policy("read", "/app/secure/sheet/compute")},
    "web.lookup": {"GET": Policy("read", "/app/secure/sheet/lookup/project")},
    "web.export_view": {"GET": Policy("export", "/app/secure/sheet/export.csv")},
    "web.import_upload": {
        "GET": Policy("import", "/app/secure/worker/import", "worker"),
        "POST": Policy("import", "/app/secure/worker/import", "worker"),
    },
    "web.import_map": {
        "GET": Policy("import", "/app/secure/worker/import/nope", "worker"),
        "POST": Policy("import", "/app/secure/worker/import/nope", "worker"),
    },
    "web.import_status": {
        "GET": Policy("import", "/app/secure/worker/import/nope/status", "worker"),
    },
    "web.inbox_page": {"GET": Policy("signed_in", "/app/tasks")},
    "web.task_count": {"GET": Policy("signed_in", "/app/task-count")},
    "web.task_page": {
        "GET": Policy("signed_in", "/app/tasks/nope"),
        "POST": Policy("signed_in", "/app/tasks/nope"),
    },
    "web.process_page": {"GET": Policy("signed_in", "/app/processes/{MISSING}")},
    "web.report_page": {"GET": Policy("signed_in", "/reports/secure/nope")},
    "web.report_export": {"GET": Policy("signed_in", "/reports/secure/nope/export.csv")},
    "web.report_lookup": {"GET": Policy("read", "/reports/lookup/secure/project", "project")},
    "web.dashboard_page": {"GET": Policy("signed_in", "/dashboards/secure/nope")},
    "web.roles_page": {"GET": Policy("admin", "/admin/roles")},
    "web.roles_create": {"POST": Policy("admin", "/admin/roles")},
    "web.role_page": {"GET": Policy("admin", "/admin/roles/nope")},
    "web.role_save": {"POST": Policy("admin", "/admin/roles/nope/permissions")},
    "web.role_members": {"POST": Policy("admin", "/admin/roles/nope/members")},
}


def grants() -> dict[str, set[tuple[str, str]]]:
    """Return each role's (entity, action) grants as the sample pack declares them."""
    document = json.loads((SECURE / "roles.json").read_text(encoding="utf-8"))
    return {
        role["name"]: {(p["entity"], a) for p in role["permissions"] for a in p["actions"]}
        for role in document["roles"]
    }


def allowed(policy: Policy, role: str | None) -> bool:
    """Return whether `role` (None: anonymous; "admin") may call a route with `policy`."""
    if policy.rule == "public":
        return True
    if role is None:
        return False
    if role == "admin" or policy.rule == "signed_in":
        return True
    if policy.rule == "admin":
        return False
    return (policy.entity, policy.rule) in grants()[role]


def test_every_route_has_a_policy(app: Any) -> None:
    listed = set(POLICIES)
    for rule in app.url_map.iter_rules():
        assert rule.endpoint in listed, f"route {rule.rule} ({rule.endpoint}) has no policy"
        methods = set(rule.methods or ()) - {"HEAD", "OPTIONS"}
        assert methods == set(POLICIES[rule.endpoint]), f"{rule.endpoint}: methods {methods}"
    stale = listed - {r.endpoint for r in app.url_map.iter_rules()}
    assert not stale, f"policies for routes that no longer exist: {sorted(stale)}"


# Routes that end the caller's sessions run last, and the caller signs in again after them.
SESSION_ENDING = ("auth.logout", "auth.logout_all")


def cases() -> Iterator[tuple[str, str, str | None]]:
    ordered = [e for e in POLICIES if e not in SESSION_ENDING] + list(SESSION_ENDING)
    for endpoint in ordered:
        methods = POLICIES[endpoint]
        for method in methods:
            yield endpoint, method, None
            for role in ROLES:
                yield endpoint, method, role


@pytest.fixture
def clients(secure: Secure) -> dict[str | None, Any]:
    """Return a signed-in browser per role (and an anonymous one)."""
    out: dict[str | None, Any] = {None: Browser(secure.app.test_client())}
    for role in ROLES:
        out[role] = sign_in(secure.app, role)
    return out


def call(
    secure: Secure, clients: dict[str | None, Any], policy: Policy, method: str, role: str | None
) -> Any:
    path = policy.path.replace("{MISSING}", str(MISSING))
    if path.startswith("/api/"):
        client = secure.api(role)
        if method == "GET":
            return client.get(path)
        return (
            getattr(client, method.lower())(path, policy.body)
            if method != "DELETE"
            else client.delete(path)
        )
    browser = clients[role]
    if method == "GET":
        return browser.get(path)
    return browser.post(path, {})


def test_route_matrix(secure: Secure, clients: dict[str | None, Any]) -> None:
    problems = []
    for endpoint, method, role in cases():
        policy = POLICIES[endpoint][method]
        response = call(secure, clients, policy, method, role)
        response.close()  # a streamed download keeps its request context until closed
        if endpoint in SESSION_ENDING and role is not None:
            clients[role] = sign_in(secure.app, role)
        status = response.status_code
        to_login = (
            status == 302
            and "/login" in response.headers.get("Location", "")
            and endpoint not in SESSION_ENDING
        )
        refused = status in (401, 403) or to_login or (role is None and status == 400)
        if policy.rule == "public":
            refused = status == 403  # the sign-in form answers 401 to a wrong password
        expected = allowed(policy, role)
        if status >= 500 or expected == refused:
            who = role or "anonymous"
            problems.append(f"{method} {policy.path} as {who}: {status} (allowed={expected})")
    assert not problems, "\n".join(problems)
