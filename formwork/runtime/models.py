"""The platform's own tables: users, roles, tokens, definitions, migrations, audit, files."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


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
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))


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
    """A grant: role may do action on entity (`*` for every entity)."""

    __tablename__ = "fw_role_permissions"
    __table_args__ = (sa.UniqueConstraint("role", "entity", "action"),)
    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    role: Mapped[str] = mapped_column(sa.ForeignKey("fw_roles.name", ondelete="CASCADE"))
    entity: Mapped[str] = mapped_column(sa.String(100))
    action: Mapped[str] = mapped_column(sa.String(20))


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
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    last_used_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))


class EntityRecord(Base):
    """The stored definition of one entity (the base; overlays come with packs)."""

    __tablename__ = "fw_entities"
    key: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    pack: Mapped[str] = mapped_column(sa.String(40), index=True)
    name: Mapped[str] = mapped_column(sa.String(40))
    definition: Mapped[dict[str, Any]] = mapped_column()
    digest: Mapped[str] = mapped_column(sa.String(64))
    updated_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)


class Migration(Base):
    """One applied schema change: the recorded operations and who applied them."""

    __tablename__ = "fw_migrations"
    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    pack: Mapped[str] = mapped_column(sa.String(40), index=True)
    operations: Mapped[list[Any]] = mapped_column()
    description: Mapped[str] = mapped_column(sa.Text(), default="")
    applied_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
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
    at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)


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
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)


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
    installed_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)


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
    updated_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    updated_by: Mapped[int | None] = mapped_column(ID)
