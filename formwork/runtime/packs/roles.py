"""A pack's roles and their grants."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from formwork.runtime.definitions import qualify
from formwork.runtime.models import Role, RolePermission, UserRole


def install_roles(session: Session, pack: str, documents: list[Any]) -> None:
    """Replace the grants the pack's roles.json declared with those it declares now
    (with their row and field rules)."""
    remove_grants(session, pack)
    for document in documents:
        for role in document.get("roles", []):
            _ensure(session, role["name"], role["label"], pack)
            for grant in role["permissions"]:
                entity = (
                    grant["entity"] if grant["entity"] == "*" else qualify(pack, grant["entity"])
                )
                rows = _qualified_rows(pack, grant.get("rows"))
                for action in grant["actions"]:
                    session.add(
                        RolePermission(
                            role=role["name"],
                            entity=entity,
                            action=action,
                            rows=rows,
                            fields=grant.get("fields") or None,
                            pack=pack,
                        )
                    )
    session.flush()


def _qualified_rows(pack: str, rows: Any) -> list[dict[str, Any]] | None:
    # `member_of: project` in pack `projects` means projects.project, wherever it is read.
    if not rows:
        return None
    return [
        {**rule, "member_of": qualify(pack, rule["member_of"])} if "member_of" in rule else rule
        for rule in rows
    ]


def _ensure(session: Session, name: str, label: dict[str, str], pack: str) -> None:
    role = session.get(Role, name)
    if role is None:
        session.add(Role(name=name, label=label, pack=pack))
        session.flush()


def remove_grants(session: Session, pack: str) -> None:
    """Remove the grants the pack declared or that name its entities, and the pack's roles
    nobody uses any more."""
    session.execute(
        sa.delete(RolePermission).where(
            sa.or_(RolePermission.pack == pack, RolePermission.entity.like(f"{pack}.%"))
        )
    )
    session.flush()
    for role in session.scalars(sa.select(Role).where(Role.pack == pack)).all():
        granted = session.scalar(
            sa.select(RolePermission.id).where(RolePermission.role == role.name).limit(1)
        )
        members = session.scalar(
            sa.select(UserRole.user_id).where(UserRole.role == role.name).limit(1)
        )
        if granted is None and members is None:
            session.delete(role)
    session.flush()
