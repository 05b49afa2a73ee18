"""Users, roles, passwords and API tokens (no Flask: used by the CLI and the web)."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from formwork.runtime.models import ApiToken, Role, RolePermission, User, UserRole, utcnow
from formwork.runtime.security import ACTIONS, ADMIN_ROLE

MIN_PASSWORD = 8
TOKEN_PREFIX = "fw_"  # noqa: S105  (a prefix, not a secret)
USERNAME_RE = r"^[A-Za-z0-9_.@-]{2,64}$"


class UserError(ValueError):
    """A user, role or token request was refused; the message says why."""


def check_password_policy(password: str) -> None:
    """Raise UserError unless the password is long enough and not all one kind."""
    if len(password) < MIN_PASSWORD:
        raise UserError(f"password must be at least {MIN_PASSWORD} characters")
    if password.isdigit() or password.isalpha():
        raise UserError("password must mix letters with digits or symbols")


def ensure_role(session: Session, name: str, label: dict[str, str] | None = None) -> Role:
    """Return the role, creating it when missing."""
    role = session.get(Role, name)
    if role is None:
        role = Role(name=name, label=label or {"zh-CN": name, "en": name})
        session.add(role)
        session.flush()
    return role


def create_user(
    session: Session,
    username: str,
    password: str,
    roles: Iterable[str] = (),
    display_name: str = "",
    email: str | None = None,
) -> User:
    """Create a user with a hashed password and the given roles (created when missing)."""
    import re

    if not re.match(USERNAME_RE, username):
        raise UserError(f"username '{username}' must be 2–64 letters, digits or _.@-")
    if session.scalar(sa.select(User.id).where(User.username == username)) is not None:
        raise UserError(f"user '{username}' already exists")
    check_password_policy(password)
    user = User(
        username=username,
        display_name=display_name or username,
        email=email,
        password_hash=generate_password_hash(password),
    )
    session.add(user)
    session.flush()
    for role in roles:
        ensure_role(session, role)
        session.add(UserRole(user_id=user.id, role=role))
    session.flush()
    return user


def authenticate(session: Session, username: str, password: str) -> User | None:
    """Return the active user whose password matches, or None."""
    user = session.scalar(sa.select(User).where(User.username == username))
    if user is None or not user.is_active or not check_password_hash(user.password_hash, password):
        return None
    return user


def grant(session: Session, role: str, entity: str, actions: Iterable[str]) -> None:
    """Allow `role` the `actions` on `entity` (`*` for every entity)."""
    ensure_role(session, role)
    for action in actions:
        if action not in ACTIONS:
            raise UserError(f"unknown action '{action}'; use {', '.join(ACTIONS)}")
        exists = session.scalar(
            sa.select(RolePermission.id).where(
                RolePermission.role == role,
                RolePermission.entity == entity,
                RolePermission.action == action,
            )
        )
        if exists is None:
            session.add(RolePermission(role=role, entity=entity, action=action))
    session.flush()


def hash_token(token: str) -> str:
    """Return the SHA-256 of a token, which is all that is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, user: User, name: str = "", days: int | None = 90) -> str:
    """Create an API token for a user and return it (shown once, stored hashed)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires = utcnow() + dt.timedelta(days=days) if days else None
    session.add(
        ApiToken(
            user_id=user.id,
            name=name,
            prefix=token[:10],
            token_hash=hash_token(token),
            expires_at=expires,
        )
    )
    session.flush()
    return token


def user_for_token(session: Session, token: str) -> tuple[User, dt.datetime | None] | None:
    """Return the active user of a valid token and the token's expiry, in one query."""
    row = session.execute(
        sa.select(User, ApiToken.expires_at)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None))
    ).first()
    if row is None or not row[0].is_active:
        return None
    expires = row[1]
    if expires is not None:
        expires = expires.replace(tzinfo=expires.tzinfo or dt.UTC)
        if expires < utcnow():
            return None
    return row[0], expires


def is_admin_present(session: Session) -> bool:
    """Return True when some user holds the admin role."""
    return (
        session.scalar(sa.select(UserRole.user_id).where(UserRole.role == ADMIN_ROLE).limit(1))
        is not None
    )
