"""Storage: each entity is a real SQL table built with SQLAlchemy Core."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.sql.elements import conv

from formwork.runtime.definitions import EntityDef, IndexDef, qualify
from formwork.runtime.models import Base

ID_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s",
    "pk": "pk_%(table_name)s",
}
# PostgreSQL cuts identifiers at 63 bytes; composite index names are made to fit on every database.
MAX_NAME = 63
HASH_LENGTH = 8


class CompositeIndex(NamedTuple):
    """A composite index as the database holds it: its name, its columns in order, uniqueness."""

    name: str
    columns: tuple[str, ...]
    unique: bool


def new_metadata() -> sa.MetaData:
    """Return a MetaData holding the users table, which entity tables may reference."""
    metadata = sa.MetaData(naming_convention=NAMING)
    Base.metadata.tables["fw_users"].to_metadata(metadata)
    return metadata


def system_columns() -> list[sa.Column[Any]]:
    """Return fresh system columns: id, who and when, and the optimistic-lock version."""
    return [
        sa.Column("id", ID_TYPE, primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", ID_TYPE, nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", ID_TYPE, nullable=True),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
    ]


def child_columns(entity: EntityDef) -> list[sa.Column[Any]]:
    """Return the parent key and row order of a line-item entity (none otherwise)."""
    if not entity.child_of:
        return []
    parent = qualify(entity.pack, entity.child_of).replace(".", "__")
    return [
        sa.Column(
            "parent_id",
            ID_TYPE,
            sa.ForeignKey(f"{parent}.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("row_order", sa.Integer(), nullable=False, server_default="0"),
    ]


def table_columns(entity: EntityDef) -> list[sa.Column[Any]]:
    """Return fresh Column objects for every column of the entity's table."""
    columns = system_columns() + child_columns(entity)
    for field in entity.stored_fields():
        columns += field.kind.columns(field, entity)
    return columns


def composite_index_name(table: str, index: IndexDef) -> str:
    """Return `ix_<table>_<name or fields>` (`uq_` when unique), hashed to fit 63 characters."""
    name = f"{'uq' if index.unique else 'ix'}_{table}_{index.suffix}"
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:HASH_LENGTH]
    return f"{name[: MAX_NAME - HASH_LENGTH - 1]}_{digest}"


def composite_indexes(entity: EntityDef, table: str | None = None) -> list[CompositeIndex]:
    """Return the entity's composite indexes, named for `table` (default: its own table)."""
    table = table or entity.table_name
    found = []
    for index in entity.indexes:
        columns: list[str] = []
        for name in index.fields:
            field = entity.get_field(name)
            columns += [c.name for c in field.kind.columns(field, entity)] if field else [name]
        found.append(
            CompositeIndex(composite_index_name(table, index), tuple(columns), index.unique)
        )
    return found


def table_indexes(entity: EntityDef) -> list[sa.Index]:
    """Return fresh Index objects of the entity's composite indexes (columns given by name)."""
    # `conv` marks the name final, so the metadata's naming convention leaves it alone.
    return [
        sa.Index(conv(index.name), *index.columns, unique=index.unique)
        for index in composite_indexes(entity)
    ]


def build_table(entity: EntityDef, metadata: sa.MetaData) -> sa.Table:
    """Return the entity's Table in `metadata`, with its composite indexes."""
    return sa.Table(entity.table_name, metadata, *table_columns(entity), *table_indexes(entity))


def build_tables(entities: Iterable[EntityDef]) -> tuple[sa.MetaData, Mapping[str, sa.Table]]:
    """Return a MetaData with every entity's table, and the tables keyed by entity key."""
    metadata = new_metadata()
    tables = {entity.key: build_table(entity, metadata) for entity in entities}
    return metadata, tables
