"""Role administration pages: roles, each pack's grants of a role as a grid of entities ×
actions with their row and field rules, and who holds the role (administrators only)."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from formwork.auth import principal_cache
from formwork.auth.events import record_request_event
from formwork.context import get_session, kernel, registry
from formwork.runtime import role_admin
from formwork.runtime.errors import FieldError, PermissionDenied, ValidationFailed
from formwork.runtime.models import User, UserRole
from formwork.runtime.params import parse_id
from formwork.runtime.security import ACTIONS
from formwork.web import bp
from formwork.web.context import principal
from formwork.web.i18n import current_locale


def _admin() -> None:
    if not principal().is_admin:
        raise PermissionDenied("role administration is for administrators")


@bp.get("/admin/roles")
@login_required
def roles_page() -> Any:
    """List the roles with their packs and member counts."""
    _admin()
    return render_template("admin/roles.html", roles=role_admin.list_roles(get_session()))


@bp.post("/admin/roles")
@login_required
def roles_create() -> Any:
    """Create an administrator's role."""
    _admin()
    name = request.form.get("name", "").strip()
    label = {
        "zh-CN": request.form.get("label_zh", "").strip(),
        "en": request.form.get("label_en", "").strip(),
    }
    try:
        role_admin.create_role(get_session(), name, label)
    except ValidationFailed as exc:
        get_session().rollback()
        flash("; ".join(e.message(current_locale()) for e in exc.errors), "danger")
        return redirect(url_for("web.roles_page"))
    _changed("role.changed", role=name, change="created")
    return redirect(url_for("web.role_page", name=name))


@bp.get("/admin/roles/<name>")
@login_required
def role_page(name: str) -> Any:
    """Show one role: a grid per declaring pack, and its members."""
    _admin()
    return _render(role_admin.get_role(get_session(), name))


def _render(
    role: dict[str, Any], errors: dict[str, list[str]] | None = None, status: int = 200
) -> Any:
    return (
        render_template(
            "admin/role.html",
            role=role,
            sections=_sections(role),
            actions=ACTIONS,
            members=_members(role["name"]),
            errors=errors or {},
        ),
        status,
    )


def _sections(role: dict[str, Any]) -> list[dict[str, Any]]:
    """Return one editable grid per pack that grants the role something (and the
    administrator's own grants), each row an entity with its actions and rules."""
    locale = current_locale()
    entities = {e.key: e for e in registry().top_level()}
    packs = list(role["grants"]) or [role["pack"]]
    if None not in packs:
        packs.append(None)
    sections = []
    for pack in packs:
        granted = {g["entity"]: g for g in role["grants"].get(pack, [])}
        keys = [k for k, e in entities.items() if pack is None or e.pack == pack]
        keys += [k for k in granted if k not in keys]
        rows = [
            {
                "entity": key,
                "label": entities[key].label(locale) if key in entities else key,
                "actions": set(granted.get(key, {}).get("actions", ())),
                "rows": _pretty(granted.get(key, {}).get("rows")),
                "fields": _pretty(granted.get(key, {}).get("fields")),
            }
            for key in keys
        ]
        sections.append({"pack": pack, "rows": rows})
    return sections


def _pretty(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False) if value else ""


def _members(name: str) -> list[dict[str, Any]]:
    rows = get_session().execute(
        sa.select(User.id, User.username, User.display_name)
        .join(UserRole, UserRole.user_id == User.id)
        .where(UserRole.role == name)
        .order_by(User.username)
    )
    return [{"id": r.id, "username": r.username, "name": r.display_name} for r in rows]


@bp.post("/admin/roles/<name>/permissions")
@login_required
def role_save(name: str) -> Any:
    """Save one pack's grid of the role (every entity's actions, row rules, field rules)."""
    _admin()
    pack = request.form.get("pack") or None
    role = role_admin.get_role(get_session(), name)
    permissions, errors = _posted(request.form)
    if not errors:
        try:
            role_admin.set_permissions(
                get_session(), registry(), name, pack, permissions, principal().user_id
            )
        except ValidationFailed as exc:
            get_session().rollback()
            errors = _by_entity(permissions, exc.errors)
    if errors:
        flash(_("Not saved: correct the marked rules."), "danger")
        return _render(role, errors, 422)
    _changed("permission.changed", role=name, pack=pack, grants=permissions)
    flash(_("Permissions saved."), "success")
    return redirect(url_for("web.role_page", name=name))


def _posted(form: Any) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    permissions: list[dict[str, Any]] = []
    errors: dict[str, list[str]] = {}
    for entity in form.getlist("entity"):
        actions = [a for a in ACTIONS if f"{entity}:{a}" in form]
        if not actions:
            continue
        grant: dict[str, Any] = {"entity": entity, "actions": actions}
        for part in ("rows", "fields"):
            text = form.get(f"{entity}:{part}", "").strip()
            if not text:
                continue
            try:
                grant[part] = json.loads(text)
            except ValueError as exc:
                errors.setdefault(entity, []).append(
                    _("%(part)s is not JSON: %(detail)s", part=part, detail=str(exc))
                )
        permissions.append(grant)
    return permissions, errors


def _by_entity(
    permissions: list[dict[str, Any]], problems: list[FieldError]
) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    locale = current_locale()
    for problem in problems:
        parts = problem.pointer.split("/")
        index = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else None
        entity = (
            permissions[index]["entity"] if index is not None and index < len(permissions) else ""
        )
        out.setdefault(entity, []).append(f"{problem.pointer}: {problem.message(locale)}")
    return out


@bp.post("/admin/roles/<name>/members")
@login_required
def role_members(name: str) -> Any:
    """Add (by user name) or remove (by id) a member of the role."""
    _admin()
    session = get_session()
    username = request.form.get("username", "").strip()
    remove = parse_id(request.form.get("remove"))
    if remove is not None:
        role_admin.set_member(session, name, remove, False)
        _changed("role.changed", role=name, change="member removed", member=remove)
    else:
        user_id = session.scalar(sa.select(User.id).where(User.username == username))
        if user_id is None:
            flash(_("No user named %(name)s.", name=username), "danger")
            return redirect(url_for("web.role_page", name=name))
        role_admin.set_member(session, name, int(user_id), True)
        _changed("role.changed", role=name, change="member added", member=int(user_id))
    return redirect(url_for("web.role_page", name=name))


def _changed(kind: str, **detail: Any) -> None:
    record_request_event(kind, **detail)
    get_session().commit()
    principal_cache().clear()
    kernel().definitions_changed()
