"""An administrator edits roles: a pack's grants through its overlay, their own grants
directly; bad rules are refused with their pointer; every change is a security event."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from formwork.runtime.models import SecurityEvent
from tests.security.conftest import Secure
from tests.web.conftest import sign_in

SHEETS = "/api/v1/secure/sheet"


def events(session: Any, kind: str) -> list[Any]:
    session.expire_all()
    return list(session.scalars(sa.select(SecurityEvent).where(SecurityEvent.kind == kind)))


def test_admin_narrows_a_pack_role_through_the_overlay(secure: Secure, session: Any) -> None:
    admin = secure.api("admin")
    role = admin.get("/api/v1/roles/finance").get_json()
    grants = role["grants"]["secure"]
    for grant in grants:
        if grant["entity"] == "secure.worker":
            grant["fields"] = {"bank_card": "hidden"}
    response = admin.put(
        "/api/v1/roles/finance/permissions", {"pack": "secure", "permissions": grants}
    )
    assert response.status_code == 200, response.get_json()
    worker = secure.api("finance").get(f"/api/v1/secure/worker/{secure.ids['wA']}").get_json()
    assert "bank_card" not in worker
    # The change is a customisation of the pack's roles.json, so an upgrade keeps it.
    custom = admin.get("/api/v1/packs/secure/customisations").get_json()
    assert "roles.json" in str(custom)
    logged = events(session, "permission.changed")
    assert logged and logged[-1].detail["role"] == "finance"
    assert logged[-1].username == "admin"


def test_bad_rules_are_refused_with_their_pointer(secure: Secure) -> None:
    admin = secure.api("admin")
    bad = [
        {"entity": "secure.sheet", "actions": ["read"], "rows": [{"field": "nope", "is": "me"}]},
        {"entity": "secure.worker", "actions": ["fly"]},
    ]
    response = admin.put("/api/v1/roles/finance/permissions", {"pack": None, "permissions": bad})
    assert response.status_code == 422
    pointers = [e["pointer"] for e in response.get_json()["errors"]]
    assert "/permissions/1/actions/0" in pointers
    bad = [{"entity": "secure.sheet", "actions": ["read"], "rows": [{"field": "nope", "is": "me"}]}]
    response = admin.put("/api/v1/roles/finance/permissions", {"pack": None, "permissions": bad})
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["pointer"] == "/permissions/0/rows/0"
    assert "nope" in str(response.get_json()["errors"][0])


def test_own_roles_grants_and_members(secure: Secure, session: Any) -> None:
    admin = secure.api("admin")
    created = admin.post(
        "/api/v1/roles", {"name": "auditor", "label": {"zh-CN": "审计", "en": "Auditor"}}
    )
    assert created.status_code == 201
    grants = [
        {
            "entity": "secure.sheet",
            "actions": ["read"],
            "rows": [{"field": "status", "in": ["draft"]}],
        }
    ]
    assert (
        admin.put(
            "/api/v1/roles/auditor/permissions", {"pack": None, "permissions": grants}
        ).status_code
        == 200
    )
    note_taker = secure.users["note_taker"]
    assert admin.put(f"/api/v1/roles/auditor/members/{note_taker}").status_code == 204
    items = secure.api("note_taker").get(SHEETS).get_json()["items"]
    assert [i["title"] for i in items] == ["s1"]
    assert admin.delete(f"/api/v1/roles/auditor/members/{note_taker}").status_code == 204
    assert secure.api("note_taker").get(SHEETS).status_code == 403
    assert admin.delete("/api/v1/roles/finance").status_code == 422  # a pack's role
    assert admin.delete("/api/v1/roles/auditor").status_code == 204
    assert {e.detail.get("change") for e in events(session, "role.changed")} >= {
        "created",
        "member added",
        "member removed",
        "deleted",
    }


def test_only_administrators_reach_role_administration(secure: Secure) -> None:
    for user in ("site_engineer", "finance"):
        assert secure.api(user).get("/api/v1/roles").status_code == 403
        response = secure.api(user).put(
            "/api/v1/roles/finance/permissions", {"pack": None, "permissions": []}
        )
        assert response.status_code == 403
    engineer = sign_in(secure.app, "site_engineer")
    assert engineer.get("/admin/roles").status_code == 403


def test_the_role_page_edits_a_grid(secure: Secure) -> None:
    admin = sign_in(secure.app, "admin")
    page = admin.html("/admin/roles/crew_leader")
    assert "secure.sheet:read" in page and "member_of" in page
    form = [
        ("pack", ""),
        ("entity", "secure.note"),
        ("secure.note:read", "on"),
        ("secure.note:rows", '[{"field": "created_by", "is": "me"}]'),
    ]
    response = admin.post("/admin/roles/crew_leader/permissions", form)
    assert response.status_code == 302
    assert "created_by" in admin.html("/admin/roles/crew_leader")
    bad = [
        ("pack", ""),
        ("entity", "secure.note"),
        ("secure.note:read", "on"),
        ("secure.note:rows", "[oops"),
    ]
    response = admin.post("/admin/roles/crew_leader/permissions", bad)
    assert response.status_code == 422
    assert "not JSON" in response.get_data(as_text=True) or "JSON" in response.get_data(
        as_text=True
    )


def test_administrators_find_roles_and_the_security_log_in_the_menu(secure: Secure) -> None:
    page = sign_in(secure.app, "admin").html("/")
    assert 'data-testid="nav-roles"' in page and 'data-testid="nav-security-log"' in page
    page = sign_in(secure.app, "finance").html("/")
    assert 'data-testid="nav-roles"' not in page
