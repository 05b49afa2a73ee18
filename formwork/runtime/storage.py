"""Storage: each entity is a real SQL table built with SQLAlchemy Core."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa

from formwork.runtime.definitions import EntityDef, qualify
from formwork.runtime.models import Base

ID_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s",
    "pk": "pk_%(table_name)s",
}


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


def build_table(entity: EntityDef, metadata: sa.MetaData) -> sa.Table:
    """Return the entity's Table in `metadata`."""
    return sa.Table(entity.table_name, metadata, *table_columns(entity))


def build_tables(entities: Iterable[EntityDef]) -> tuple[sa.MetaData, Mapping[str, sa.Table]]:
    """Return a MetaData with every entity's table, and the tables keyed by entity key."""
    metadata = new_metadata()
    tables = {entity.key: build_table(entity, metadata) for entity in entities}
    return metadata, tables
