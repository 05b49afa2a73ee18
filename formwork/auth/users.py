"""Users, roles, passwords and API tokens (no Flask: used by the CLI and the web)."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from formwork.auth.errors import PasswordRejected, UserError
from formwork.auth.passwords import MIN_PASSWORD, check_password_policy
from formwork.auth.scopes import DEFAULT_SCOPES, normalise_scopes
from formwork.auth.session_store import revoke_user_sessions
from formwork.runtime.clock import session_clock
from formwork.runtime.models import ApiToken, Role, RolePermission, User, UserRole
from formwork.runtime.security import ACTIONS, ADMIN_ROLE

__all__ = ["MIN_PASSWORD", "PasswordRejected", "UserError", "check_password_policy"]

TOKEN_PREFIX = "fw_"  # noqa: S105  (a prefix, not a secret)
USERNAME_RE = r"^[A-Za-z0-9_.@-]{2,64}$"
TOKEN_DAYS = 90
TOKEN_MAX_DAYS = 365
# last_used_at (and the token.used event) is written at most this often per token.
TOKEN_TOUCH_INTERVAL = dt.timedelta(minutes=1)
# Hashes made with weaker settings than these are replaced at the next sign-in.
PBKDF2_MIN_ITERATIONS = 600_000
SCRYPT_MIN_N = 2**15


def hash_password(password: str) -> str:
    """Return a salted hash of a password (werkzeug's scrypt by default)."""
    return generate_password_hash(password)


def needs_rehash(password_hash: str) -> bool:
    """Return True when a hash was made with outdated or weak parameters."""
    method = password_hash.split("$", 1)[0]
    name, _, params = method.partition(":")
    if name == "scrypt":
        n = params.split(":", 1)[0]
        return not n.isdigit() or int(n) < SCRYPT_MIN_N
    if name == "pbkdf2":
        iterations = params.rpartition(":")[2]
        return not iterations.isdigit() or int(iterations) < PBKDF2_MIN_ITERATIONS
    return True


@functools.cache
def _dummy_hash() -> str:
    # Checked against when there is no user to check, so that an unknown username costs the
    # same time as a wrong password and cannot be told apart by timing.
    return generate_password_hash(secrets.token_urlsafe(16))


def verify_password(user: User | None, password: str) -> bool:
    """Return True when the (active) user's password matches; time does not depend on why not."""
    if user is None:
        check_password_hash(_dummy_hash(), password)
        return False
    return check_password_hash(user.password_hash, password) and bool(user.is_active)


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
    if not re.match(USERNAME_RE, username):
        raise UserError(f"username '{username}' must be 2–64 letters, digits or _.@-")
    if session.scalar(sa.select(User.id).where(User.username == username)) is not None:
        raise UserError(f"user '{username}' already exists")
    check_password_policy(password, username)
    user = User(
        username=username,
        display_name=display_name or username,
        email=email,
        password_hash=hash_password(password),
        password_changed_at=session_clock(session).now(),
    )
    session.add(user)
    session.flush()
    for role in roles:
        ensure_role(session, role)
        session.add(UserRole(user_id=user.id, role=role))
    session.flush()
    return user


def authenticate(session: Session, username: str, password: str) -> User | None:
    """Return the active user whose password matches (rehashing an outdated hash), or None."""
    user = session.scalar(sa.select(User).where(User.username == username))
    if not verify_password(user, password):
        return None
    assert user is not None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def grant(
    session: Session,
    role: str,
    entity: str,
    actions: Iterable[str],
    rows: list[Any] | None = None,
    fields: dict[str, str] | None = None,
) -> None:
    """Allow `role` the `actions` on `entity` (`*` for every entity), on the records `rows`
    reach (None: all) with the field rules `fields`; replaces an administrator's earlier grant."""
    ensure_role(session, role)
    for action in actions:
        if action not in ACTIONS:
            raise UserError(f"unknown action '{action}'; use {', '.join(ACTIONS)}")
        found = session.scalar(
            sa.select(RolePermission).where(
                RolePermission.role == role,
                RolePermission.entity == entity,
                RolePermission.action == action,
                RolePermission.pack.is_(None),
            )
        )
        if found is None:
            found = RolePermission(role=role, entity=entity, action=action)
            session.add(found)
        found.rows = rows or None
        found.fields = fields or None
    session.flush()


def hash_token(token: str) -> str:
    """Return the SHA-256 of a token, which is all that is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(
    session: Session,
    user: User,
    name: str = "",
    days: int = TOKEN_DAYS,
    scopes: Iterable[str] | None = None,
) -> str:
    """Create an API token for a user and return it (shown once, stored hashed)."""
    if not 1 <= days <= TOKEN_MAX_DAYS:
        raise UserError(f"a token must expire within 1 to {TOKEN_MAX_DAYS} days, not {days}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiToken(
            user_id=user.id,
            name=name[:100],
            prefix=token[:10],
            token_hash=hash_token(token),
            expires_at=session_clock(session).now() + dt.timedelta(days=days),
            scopes=normalise_scopes(scopes),
        )
    )
    session.flush()
    return token


@dataclass(frozen=True)
class TokenCheck:
    """The outcome of presenting a token: the user and token row, or why it was refused."""

    user: User | None
    token: ApiToken | None
    refused: str | None  # unknown | revoked | expired | inactive, or None when accepted

    @property
    def scopes(self) -> frozenset[str]:
        """Return what the token may do (tokens older than scopes get the default scopes)."""
        if self.token is None:
            return frozenset()
        return frozenset(self.token.scopes if self.token.scopes is not None else DEFAULT_SCOPES)


def as_utc(moment: dt.datetime | None) -> dt.datetime | None:
    """Return a stored moment as an aware UTC datetime (SQLite hands back naive ones)."""
    return moment.replace(tzinfo=moment.tzinfo or dt.UTC) if moment is not None else None


def check_token(session: Session, token: str, now: dt.datetime | None = None) -> TokenCheck:
    """Look a presented token up in one query and say whether, and why not, it is valid."""
    row = session.execute(
        sa.select(User, ApiToken)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.token_hash == hash_token(token))
    ).first()
    if row is None:
        return TokenCheck(None, None, "unknown")
    user, found = row
    expires = as_utc(found.expires_at)
    if found.revoked_at is not None:
        return TokenCheck(user, found, "revoked")
    if expires is not None and expires <= (now or session_clock(session).now()):
        return TokenCheck(user, found, "expired")
    if not user.is_active:
        return TokenCheck(user, found, "inactive")
    return TokenCheck(user, found, None)


def user_for_token(session: Session, token: str) -> tuple[User, dt.datetime | None] | None:
    """Return the active user of a valid token and the token's expiry, or None."""
    checked = check_token(session, token)
    if checked.refused is not None or checked.user is None or checked.token is None:
        return None
    return checked.user, as_utc(checked.token.expires_at)


def token_due_touch(token: ApiToken, now: dt.datetime) -> bool:
    """Return True when the token's last use was noted over a minute ago (or never)."""
    last = as_utc(token.last_used_at)
    return last is None or now - last >= TOKEN_TOUCH_INTERVAL


def touch_token(session: Session, token_id: int, now: dt.datetime | None = None) -> bool:
    """Set a token's last_used_at unless set within the last minute; return True when set.

    One conditional UPDATE, so two workers seeing the same token cannot both claim the minute.
    """
    now = now or session_clock(session).now()
    result = session.execute(
        sa.update(ApiToken)
        .where(
            ApiToken.id == token_id,
            sa.or_(
                ApiToken.last_used_at.is_(None),
                ApiToken.last_used_at < now - TOKEN_TOUCH_INTERVAL,
            ),
        )
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def list_tokens(session: Session, user: User | None = None) -> list[ApiToken]:
    """Return the tokens of a user (or of everyone), newest first."""
    query = sa.select(ApiToken).order_by(ApiToken.id.desc())
    if user is not None:
        query = query.where(ApiToken.user_id == user.id)
    return list(session.scalars(query))


def revoke_token(
    session: Session, token_id: int, owner: User | None = None, now: dt.datetime | None = None
) -> ApiToken:
    """Revoke a token by id (only the owner's when `owner` is given); return it."""
    token = session.get(ApiToken, token_id)
    if token is None or (owner is not None and token.user_id != owner.id):
        raise UserError(f"no token {token_id}")
    if token.revoked_at is None:
        token.revoked_at = now or session_clock(session).now()
    session.flush()
    return token


def find_user(session: Session, username: str) -> User:
    """Return the user called `username`, or raise UserError."""
    user = session.scalar(sa.select(User).where(User.username == username))
    if user is None:
        raise UserError(f"no user '{username}'")
    return user


def set_password(session: Session, user: User, password: str) -> None:
    """Set a new password (policy checked) and end the user's other sessions."""
    check_password_policy(password, user.username)
    user.password_hash = hash_password(password)
    user.password_changed_at = session_clock(session).now()
    revoke_user_sessions(session, user.id, user.password_changed_at, "password")
    session.flush()


def change_password(session: Session, user: User, current: str, new: str) -> None:
    """Change a user's own password; the current one must be given and right."""
    if not check_password_hash(user.password_hash, current):
        raise PasswordRejected("wrong_current", "the current password is wrong")
    if current == new:
        raise PasswordRejected("unchanged", "the new password must differ from the current one")
    set_password(session, user, new)


def set_active(session: Session, user: User, active: bool) -> None:
    """Activate or deactivate a user; deactivating ends their sessions (tokens stop working)."""
    user.is_active = active
    if not active:
        revoke_user_sessions(session, user.id, session_clock(session).now(), "deactivated")
    session.flush()


def logout_everywhere(
    session: Session,
    user: User,
    revoke_tokens: bool = False,
    now: dt.datetime | None = None,
    keep: int | None = None,
) -> int:
    """End every session of a user but `keep` (and revoke their tokens when asked); return
    the number of tokens revoked."""
    now = now or session_clock(session).now()
    revoke_user_sessions(session, user.id, now, "logout_all", keep)
    revoked = 0
    if revoke_tokens:
        result = session.execute(
            sa.update(ApiToken)
            .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
            .values(revoked_at=now)
            .execution_options(synchronize_session="fetch")
        )
        revoked = int(getattr(result, "rowcount", 0) or 0)
    session.flush()
    return revoked


def is_admin_present(session: Session) -> bool:
    """Return True when some user holds the admin role."""
    return (
        session.scalar(sa.select(UserRole.user_id).where(UserRole.role == ADMIN_ROLE).limit(1))
        is not None
    )
