"""Principals and role permissions: who is acting and what they may do."""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session

from formwork.runtime.errors import PermissionDenied
from formwork.runtime.models import RolePermission, User, UserRole

ACTIONS = ("read", "create", "update", "delete")
ADMIN_ROLE = "admin"


@dataclass(frozen=True)
class Principal:
    """The acting user with their roles and grants, passed explicitly to the runtime."""

    user_id: int | None
    username: str
    roles: frozenset[str] = frozenset()
    grants: frozenset[tuple[str, str]] = field(default_factory=frozenset)
    locale: str = "zh-CN"

    @property
    def is_admin(self) -> bool:
        """Return True for members of the admin role."""
        return ADMIN_ROLE in self.roles

    def can(self, entity_key: str, action: str) -> bool:
        """Return True when the principal may perform `action` on `entity_key`."""
        if self.is_admin:
            return True
        return (entity_key, action) in self.grants or ("*", action) in self.grants

    def require(self, entity_key: str, action: str) -> None:
        """Raise PermissionDenied unless the principal may perform the action."""
        if not self.can(entity_key, action):
            raise PermissionDenied(f"'{self.username}' may not {action} {entity_key}")


def system_principal() -> Principal:
    """Return the principal used by the CLI and background work (all permissions)."""
    return Principal(None, "system", frozenset({ADMIN_ROLE}))


def load_principal(session: Session, user: User, locale: str | None = None) -> Principal:
    """Return the principal of a user, with their roles and grants, in one query."""
    rows = session.execute(
        sa.select(UserRole.role, RolePermission.entity, RolePermission.action)
        .outerjoin(RolePermission, RolePermission.role == UserRole.role)
        .where(UserRole.user_id == user.id)
    ).all()
    roles = frozenset(str(r) for r, _e, _a in rows)
    grants = frozenset((str(e), str(a)) for _r, e, a in rows if e is not None)
    return Principal(user.id, user.username, roles, grants, locale or user.locale or "zh-CN")
