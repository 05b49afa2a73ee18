"""The platform's own tables: users, roles, tokens, definitions, migrations, audit, files."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class UtcDateTime(sa.types.TypeDecorator[dt.datetime]):
    """A moment stored with its time zone and read back aware, in UTC, on every database.

    SQLite has no time zone type: `DateTime(timezone=True)` hands back naive values there,
    and a naive moment written to JSON has no offset (the audit history said "02:00" of no
    zone, against its OpenAPI format). Reading through this type, every platform table's
    moments come back aware."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        """Store aware moments in UTC (naive ones are taken as UTC)."""
        if value is None:
            return None
        return value.astimezone(dt.UTC) if value.tzinfo else value

    def process_result_value(self, value: Any, dialect: Any) -> dt.datetime | None:
        """Return the stored moment aware, in UTC."""
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    """Return the current moment in UTC."""
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    """Declarative base of the platform tables (entity tables are built with Core)."""

    type_annotation_map = {dict[str, Any]: sa.JSON, list[Any]: sa.JSON}


class User(Base):
    """A person who signs in."""

    __tablename__ = "fw_users"
    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(sa.String(64), unique=True)
    display_name: Mapped[str] = mapped_column(sa.String(128), default="")
    email: Mapped[str | None] = mapped_column(sa.String(255), default=None)
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    is_active: Mapped[bool] = mapped_column(default=True)
    locale: Mapped[str | None] = mapped_column(sa.String(10), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    locked_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    password_changed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())


class Role(Base):
    """A named set of permissions; `admin` may do everything."""

    __tablename__ = "fw_roles"
    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    label: Mapped[dict[str, Any]] = mapped_column(default=dict)
    pack: Mapped[str | None] = mapped_column(sa.String(40), default=None)


class UserRole(Base):
    """Membership of a user in a role."""

    __tablename__ = "fw_user_roles"
    user_id: Mapped[int] = mapped_column(
        sa.ForeignKey("fw_users.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(
        sa.ForeignKey("fw_roles.name", ondelete="CASCADE"), primary_key=True
    )


class RolePermission(Base):
    """A grant: role may do action on entity (`*` for every entity), on some rows/fields."""

    __tablename__ = "fw_role_permissions"
    __table_args__ = (sa.Index("ix_fw_role_permissions_role", "role", "entity", "action"),)
    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    role: Mapped[str] = mapped_column(sa.ForeignKey("fw_roles.name", ondelete="CASCADE"))
    entity: Mapped[str] = mapped_column(sa.String(100))
    action: Mapped[str] = mapped_column(sa.String(20))
    # Row rules (roles.json `rows`, OR-ed; NULL = every record) and field rules
    # ({field: "hidden" | "read_only"}) of this grant.
    rows: Mapped[list[Any] | None] = mapped_column(sa.JSON, default=None)
    fields: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, default=None)
    # The pack whose roles.json declared the grant (NULL: granted by an administrator), so
    # reinstalling one pack replaces its own grants and nobody else's.
    pack: Mapped[str | None] = mapped_column(sa.String(40), default=None, index=True)


class ApiToken(Base):
    """A bearer token; only its SHA-256 is stored."""

    __tablename__ = "fw_api_tokens"
    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(
        sa.ForeignKey("fw_users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(sa.String(100), default="")
    prefix: Mapped[str] = mapped_column(sa.String(16))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    # What the token may do: read, write, workflow, admin (see formwork/auth/scopes.py).
    # NULL on tokens made before scopes existed; they get the default scopes.
    scopes: Mapped[list[Any] | None] = mapped_column(default=None)


class LoginSession(Base):
    """One signed-in browser: a row per sign-in, found by the SHA-256 of the random id its
    cookie carries. Signing out revokes exactly this row; a cookie replayed after that (or
    past the idle or absolute limit) finds nothing valid."""

    __tablename__ = "fw_sessions"
    __table_args__ = (
        sa.Index("ix_fw_sessions_user", "user_id", "revoked_at"),
        sa.Index("ix_fw_sessions_created", "created_at"),
    )
    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("fw_users.id", ondelete="CASCADE"))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    last_seen_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    # logout | logout_all | password | deactivated | revoked (from the account page or CLI)
    ended_by: Mapped[str | None] = mapped_column(sa.String(20), default=None)
    ip: Mapped[str | None] = mapped_column(sa.String(45), default=None)
    user_agent: Mapped[str | None] = mapped_column(sa.String(200), default=None)


class ImportRecord(Base):
    """An uploaded spreadsheet being imported: the file, what the upload found, the
    mapping chosen, and the outcome of the last run (a dry run or the import itself)."""

    __tablename__ = "fw_imports"
    __table_args__ = (sa.Index("ix_fw_imports_user", "user_id", "created_at"),)
    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    token: Mapped[str] = mapped_column(sa.String(32), unique=True)  # the id in URLs
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("fw_users.id", ondelete="CASCADE"))
    # The browser session that uploaded it: nobody else follows its links.
    login_session_id: Mapped[int | None] = mapped_column(ID, default=None)
    entity: Mapped[str] = mapped_column(sa.String(100))
    filename: Mapped[str] = mapped_column(sa.String(255))
    kind: Mapped[str] = mapped_column(sa.String(8))
    content: Mapped[bytes] = mapped_column(sa.LargeBinary())
    header: Mapped[list[Any]] = mapped_column(default=list)
    sample: Mapped[list[Any]] = mapped_column(default=list)
    rows: Mapped[int] = mapped_column(sa.Integer(), default=0)
    # uploaded | queued | done | failed (a running import shows through its progress)
    status: Mapped[str] = mapped_column(sa.String(20), default="uploaded")
    action: Mapped[str] = mapped_column(sa.String(10), default="preview")  # or "commit"
    mapping: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, default=None)
    limits: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, default=None)
    locale: Mapped[str] = mapped_column(sa.String(10), default="zh-CN")
    progress_done: Mapped[int] = mapped_column(sa.Integer(), default=0)
    progress_total: Mapped[int] = mapped_column(sa.Integer(), default=0)
    saved: Mapped[int] = mapped_column(sa.Integer(), default=0)
    bad: Mapped[int] = mapped_column(sa.Integer(), default=0)
    problems: Mapped[list[Any] | None] = mapped_column(sa.JSON, default=None)
    error: Mapped[str | None] = mapped_column(sa.Text(), default=None)
    job_id: Mapped[int | None] = mapped_column(ID, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    finished_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())


class EntityRecord(Base):
    """The stored definition of one entity (the base; overlays come with packs)."""

    __tablename__ = "fw_entities"
    key: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    pack: Mapped[str] = mapped_column(sa.String(40), index=True)
    name: Mapped[str] = mapped_column(sa.String(40))
    definition: Mapped[dict[str, Any]] = mapped_column()
    digest: Mapped[str] = mapped_column(sa.String(64))
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)


class Migration(Base):
    """One applied schema change: the recorded operations and who applied them."""

    __tablename__ = "fw_migrations"
    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    pack: Mapped[str] = mapped_column(sa.String(40), index=True)
    operations: Mapped[list[Any]] = mapped_column()
    description: Mapped[str] = mapped_column(sa.Text(), default="")
    applied_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    applied_by: Mapped[int | None] = mapped_column(ID)


class AuditEntry(Base):
    """Who changed which record, when, and each field's old and new value."""

    __tablename__ = "fw_audit"
    __table_args__ = (
        sa.Index("ix_fw_audit_record", "entity", "record_id"),
        sa.Index("ix_fw_audit_user", "user_id", "id"),  # a user's recent records
    )
    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    entity: Mapped[str] = mapped_column(sa.String(100))
    record_id: Mapped[int] = mapped_column(ID)
    action: Mapped[str] = mapped_column(sa.String(10))
    changes: Mapped[dict[str, Any]] = mapped_column()
    user_id: Mapped[int | None] = mapped_column(ID)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)


class Sequence(Base):
    """A gap-free counter, incremented inside the transaction that uses the number."""

    __tablename__ = "fw_sequences"
    key: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    value: Mapped[int] = mapped_column(sa.BigInteger(), default=0)


class StoredFile(Base):
    """An uploaded file kept under `instance/files`, addressed by a random id."""

    __tablename__ = "fw_files"
    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(255))
    content_type: Mapped[str] = mapped_column(sa.String(100))
    size: Mapped[int] = mapped_column(sa.BigInteger())
    sha256: Mapped[str] = mapped_column(sa.String(64))
    created_by: Mapped[int | None] = mapped_column(ID)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)


class Setting(Base):
    """A platform-wide value, such as the definitions' version counter."""

    __tablename__ = "fw_settings"
    key: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    value: Mapped[str] = mapped_column(sa.Text())


class PackRecord(Base):
    """An installed module pack: its manifest, version and whether it is switched on."""

    __tablename__ = "fw_packs"
    name: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    version: Mapped[str] = mapped_column(sa.String(40))
    manifest: Mapped[dict[str, Any]] = mapped_column()
    enabled: Mapped[bool] = mapped_column(default=True)
    # installed | archived (uninstalled, data kept)
    status: Mapped[str] = mapped_column(sa.String(20), default="installed")
    installed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)


class PackFile(Base):
    """One file of a pack's base as installed (the overlay never writes here)."""

    __tablename__ = "fw_pack_files"
    pack: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    path: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(20))
    content: Mapped[str] = mapped_column(sa.Text())


class Customisation(Base):
    """A customer's change to one pack file, kept as a JSON merge patch over the base."""

    __tablename__ = "fw_customisations"
    pack: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    path: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    patch: Mapped[dict[str, Any]] = mapped_column()
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_by: Mapped[int | None] = mapped_column(ID)


class SecurityEvent(Base):
    """A security-relevant event (sign-in, token use, role or pack change): who, when, where."""

    __tablename__ = "fw_security_events"
    __table_args__ = (
        sa.Index("ix_fw_security_events_kind_at", "kind", "at"),
        sa.Index("ix_fw_security_events_user_at", "user_id", "at"),
    )
    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    kind: Mapped[str] = mapped_column(sa.String(40))
    # No foreign key: the trail outlives the user it mentions.
    user_id: Mapped[int | None] = mapped_column(ID)
    username: Mapped[str | None] = mapped_column(sa.String(64))
    ip: Mapped[str | None] = mapped_column(sa.String(45))
    user_agent: Mapped[str | None] = mapped_column(sa.String(200))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class LoginFailure(Base):
    """A failed sign-in, counted per username and per address to lock out guessing."""

    __tablename__ = "fw_login_failures"
    __table_args__ = (
        sa.Index("ix_fw_login_failures_username_at", "username", "at"),
        sa.Index("ix_fw_login_failures_ip_at", "ip", "at"),
    )
    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    username: Mapped[str] = mapped_column(sa.String(64))
    ip: Mapped[str | None] = mapped_column(sa.String(45))
