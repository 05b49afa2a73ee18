"""Roles as an administrator sees and edits them: each role's grants per pack, with their
row and field rules.

A grant a pack's roles.json declared is changed through the pack's customisation overlay
(so a pack upgrade re-applies it, or reports the conflict); a role an administrator made
holds its own grants. Every change is checked like a pack's roles.json and logged."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from formwork.runtime import metaschemas
from formwork.runtime.definitions import qualify
from formwork.runtime.errors import FieldError, NotFound, ValidationFailed
from formwork.runtime.models import Role, RolePermission, UserRole
from formwork.runtime.packs.store import effective_files, pack_records
from formwork.runtime.registry import Registry
from formwork.runtime.row_rules import rule_problems
from formwork.runtime.security import ADMIN_ROLE

ROLE_NAME = r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$"


def list_roles(session: Session) -> list[dict[str, Any]]:
    """Return every role with its label, pack, member count and grants (grouped by the
    pack that declared them; `null` for an administrator's grants)."""
    members = dict(
        session.execute(sa.select(UserRole.role, sa.func.count()).group_by(UserRole.role)).all()
    )
    grants = _grants(session)
    return [
        {
            "name": role.name,
            "label": role.label,
            "pack": role.pack,
            "members": int(members.get(role.name, 0)),
            "grants": grants.get(role.name, {}),
        }
        for role in session.scalars(sa.select(Role).order_by(Role.name))
    ]


def get_role(session: Session, name: str) -> dict[str, Any]:
    """Return one role as `list_roles` shows it, or raise NotFound."""
    for role in list_roles(session):
        if role["name"] == name:
            return role
    raise NotFound(f"no role '{name}'")


def _grants(session: Session) -> dict[str, dict[str | None, list[dict[str, Any]]]]:
    out: dict[str, dict[Any, dict[tuple[str, str, str], dict[str, Any]]]] = {}
    rows = session.scalars(sa.select(RolePermission).order_by(RolePermission.id))
    for row in rows:
        key = (row.entity, _json_key(row.rows), _json_key(row.fields))
        grant = (
            out.setdefault(row.role, {})
            .setdefault(row.pack, {})
            .setdefault(key, {"entity": row.entity, "actions": []})
        )
        grant["actions"].append(row.action)
        if row.rows:
            grant["rows"] = row.rows
        if row.fields:
            grant["fields"] = row.fields
    return {
        role: {pack: list(found.values()) for pack, found in packs.items()}
        for role, packs in out.items()
    }


def _json_key(value: Any) -> str:
    import json

    return json.dumps(value, sort_keys=True)


def create_role(session: Session, name: Any, label: Any) -> None:
    """Create an administrator's role (no grants yet)."""
    import re

    errors = []
    if not isinstance(name, str) or not re.match(ROLE_NAME, name) or len(name) > 64:
        errors.append(FieldError("/name", "pattern", {"pattern": ROLE_NAME}))
    elif session.get(Role, name) is not None:
        errors.append(FieldError("/name", "unique", {"value": name}))
    if not isinstance(label, Mapping) or not all(
        isinstance(label.get(k), str) and label.get(k) for k in ("zh-CN", "en")
    ):
        errors.append(FieldError("/label", "required"))
    if errors:
        raise ValidationFailed(errors)
    session.add(Role(name=name, label=dict(label), pack=None))
    session.flush()


def delete_role(session: Session, name: str) -> None:
    """Delete an administrator's role (a pack's roles go with their pack)."""
    role = session.get(Role, name)
    if role is None:
        raise NotFound(f"no role '{name}'")
    if role.pack is not None or name == ADMIN_ROLE:
        raise ValidationFailed(
            [FieldError("/name", "invalid", {"detail": f"role '{name}' belongs to a pack"})]
        )
    session.execute(sa.delete(RolePermission).where(RolePermission.role == name))
    session.execute(sa.delete(UserRole).where(UserRole.role == name))
    session.delete(role)
    session.flush()


def set_permissions(
    session: Session,
    registry: Registry,
    role: str,
    pack: str | None,
    permissions: Any,
    user_id: int | None = None,
) -> None:
    """Replace the grants of `role` that `pack` declares (None: the administrator's own)
    with `permissions` (roles.json items), after checking them like a pack's roles.json."""
    found = session.get(Role, role)
    if found is None:
        raise NotFound(f"no role '{role}'")
    if role == ADMIN_ROLE:
        raise ValidationFailed([FieldError("/", "invalid", {"detail": "admin may do anything"})])
    _check(registry, pack, permissions)
    if pack is None:
        _replace_own(session, role, permissions)
    else:
        _customise_pack_role(session, pack, found, permissions, user_id)


def _check(registry: Registry, pack: str | None, permissions: Any) -> None:
    wrapped = {
        "roles": [{"name": "x", "label": {"zh-CN": "x", "en": "x"}, "permissions": permissions}]
    }
    errors = [
        FieldError(where.replace("/roles/0", "", 1), "invalid", {"detail": message})
        for where, message in metaschemas.errors("roles.schema.json", wrapped)
    ]
    if errors:
        raise ValidationFailed(errors)
    entities = dict(registry.entities)
    for i, grant in enumerate(permissions):
        key = qualify(pack or "", grant["entity"]) if pack else grant["entity"]
        if key != "*" and key not in entities:
            errors.append(
                FieldError(
                    f"/permissions/{i}/entity", "invalid", {"detail": f"unknown entity '{key}'"}
                )
            )
            continue
        for k, rule in enumerate(grant.get("rows") or []):
            for problem in rule_problems(entities, pack or "", key, rule):
                errors.append(
                    FieldError(f"/permissions/{i}/rows/{k}", "invalid", {"detail": problem})
                )
        for name in grant.get("fields") or {}:
            entity = entities.get(key)
            if entity is not None and entity.get_field(name.partition(".")[0]) is None:
                errors.append(
                    FieldError(
                        f"/permissions/{i}/fields/{name}",
                        "invalid",
                        {"detail": f"unknown field '{name}'"},
                    )
                )
    if errors:
        raise ValidationFailed(errors)


def _replace_own(session: Session, role: str, permissions: list[dict[str, Any]]) -> None:
    session.execute(
        sa.delete(RolePermission).where(RolePermission.role == role, RolePermission.pack.is_(None))
    )
    for grant in permissions:
        for action in grant["actions"]:
            session.add(
                RolePermission(
                    role=role,
                    entity=grant["entity"],
                    action=action,
                    rows=grant.get("rows") or None,
                    fields=grant.get("fields") or None,
                )
            )
    session.flush()


def _customise_pack_role(
    session: Session, pack: str, role: Role, permissions: list[dict[str, Any]], user_id: int | None
) -> None:
    from formwork.runtime.packs.lifecycle import customise

    record = pack_records(session).get(pack)
    path = (record.manifest.get("files") or {}).get("roles") if record is not None else None
    if not path:
        raise NotFound(f"pack '{pack}' declares no roles")
    document = effective_files(session, pack)[path]
    roles = [dict(r) for r in document.get("roles", [])]
    mine = [r for r in roles if r["name"] == role.name]
    if mine:
        mine[0]["permissions"] = permissions
    else:
        roles.append({"name": role.name, "label": role.label, "permissions": permissions})
    customise(session, pack, path, {"roles": roles}, user_id)


def set_member(session: Session, role: str, user_id: Any, member: bool) -> None:
    """Give `role` to a user, or take it away."""
    from formwork.runtime.models import User

    if session.get(Role, role) is None:
        raise NotFound(f"no role '{role}'")
    if (
        not isinstance(user_id, int)
        or isinstance(user_id, bool)
        or session.get(User, user_id) is None
    ):
        raise ValidationFailed([FieldError("/user", "invalid", {"detail": "no such user"})])
    found = session.get(UserRole, (user_id, role))
    if member and found is None:
        session.add(UserRole(user_id=user_id, role=role))
    elif not member and found is not None:
        session.delete(found)
    session.flush()
