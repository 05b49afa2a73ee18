"""Role administration over REST (administrators only): roles, their grants with row and
field rules, and who holds them. Every change is a security event."""

from __future__ import annotations

from typing import Any

from flask import jsonify

from formwork.api import bp
from formwork.api.context import json_body
from formwork.auth import current_principal, principal_cache
from formwork.auth.events import record_request_event
from formwork.context import get_session, kernel, registry
from formwork.runtime import role_admin
from formwork.runtime.errors import FieldError, PermissionDenied, ValidationFailed


def _admin() -> int | None:
    principal = current_principal()
    if principal is None or not principal.is_admin:
        raise PermissionDenied("role administration is for administrators")
    return principal.user_id


def _object() -> dict[str, Any]:
    body = json_body()
    if not isinstance(body, dict):
        raise ValidationFailed([FieldError("/", "not_object")])
    return body


def _changed(kind: str, **detail: Any) -> None:
    record_request_event(kind, **detail)
    get_session().commit()
    principal_cache().clear()  # grants are part of every cached principal
    kernel().definitions_changed()


@bp.get("/roles")
def roles_list() -> Any:
    """List roles with their grants (per declaring pack) and member counts."""
    _admin()
    return jsonify(items=role_admin.list_roles(get_session()))


@bp.post("/roles")
def role_create() -> Any:
    """Create an administrator's role: {"name", "label": {"zh-CN", "en"}}."""
    _admin()
    body = _object()
    role_admin.create_role(get_session(), body.get("name"), body.get("label"))
    _changed("role.changed", role=body["name"], change="created")
    return jsonify(role_admin.get_role(get_session(), body["name"])), 201


@bp.get("/roles/<name>")
def role_get(name: str) -> Any:
    """Return one role with its grants."""
    _admin()
    return jsonify(role_admin.get_role(get_session(), name))


@bp.delete("/roles/<name>")
def role_delete(name: str) -> Any:
    """Delete an administrator's role."""
    _admin()
    role_admin.delete_role(get_session(), name)
    _changed("role.changed", role=name, change="deleted")
    return "", 204


@bp.put("/roles/<name>/permissions")
def role_permissions(name: str) -> Any:
    """Replace the grants one pack gives the role (`pack`: null for the administrator's own):
    {"pack": "labor", "permissions": [roles.json permission items]}."""
    user_id = _admin()
    body = _object()
    pack, permissions = body.get("pack"), body.get("permissions")
    if pack is not None and not isinstance(pack, str):
        raise ValidationFailed([FieldError("/pack", "type", {"expected": "string or null"})])
    if not isinstance(permissions, list):
        raise ValidationFailed([FieldError("/permissions", "type", {"expected": "array"})])
    role_admin.set_permissions(get_session(), registry(), name, pack, permissions, user_id)
    _changed("permission.changed", role=name, pack=pack, grants=permissions)
    return jsonify(role_admin.get_role(get_session(), name))


@bp.put("/roles/<name>/members/<int:user_id>")
def role_member_add(name: str, user_id: int) -> Any:
    """Give the role to a user."""
    _admin()
    role_admin.set_member(get_session(), name, user_id, True)
    _changed("role.changed", role=name, change="member added", member=user_id)
    return "", 204


@bp.delete("/roles/<name>/members/<int:user_id>")
def role_member_remove(name: str, user_id: int) -> Any:
    """Take the role from a user."""
    _admin()
    role_admin.set_member(get_session(), name, user_id, False)
    _changed("role.changed", role=name, change="member removed", member=user_id)
    return "", 204
