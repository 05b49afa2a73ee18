"""A pack's roles and their grants."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from formwork.runtime.definitions import qualify
from formwork.runtime.models import Role, RolePermission, UserRole


def install_roles(session: Session, pack: str, documents: list[Any]) -> None:
    """Replace the grants on the pack's entities with those its roles.json declares."""
    remove_grants(session, pack)
    for document in documents:
        for role in document.get("roles", []):
            _ensure(session, role["name"], role["label"], pack)
            for grant in role["permissions"]:
                entity = (
                    grant["entity"] if grant["entity"] == "*" else qualify(pack, grant["entity"])
                )
                for action in grant["actions"]:
                    session.add(RolePermission(role=role["name"], entity=entity, action=action))
    session.flush()


def _ensure(session: Session, name: str, label: dict[str, str], pack: str) -> None:
    role = session.get(Role, name)
    if role is None:
        session.add(Role(name=name, label=label, pack=pack))
        session.flush()


def remove_grants(session: Session, pack: str) -> None:
    """Remove the grants on the pack's entities, and the pack's roles nobody uses any more."""
    session.execute(sa.delete(RolePermission).where(RolePermission.entity.like(f"{pack}.%")))
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
