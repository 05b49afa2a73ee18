"""Titles of referenced records and names of users, fetched for many ids in one query each.

Lists, detail pages and exports show a reference as its target's title, not its id; asking
per row would be one query per row (N+1), so callers collect the ids first and ask once.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.orm import Session

from formwork.runtime.models import User
from formwork.runtime.registry import Registry


def record_titles(
    session: Session, registry: Registry, entity_key: str, ids: Iterable[int]
) -> dict[int, str]:
    """Return {id: title} for the given records of an entity (its id when no title field)."""
    wanted = {int(i) for i in ids if i is not None}
    if not wanted:
        return {}
    meta = registry.meta(entity_key)
    table = meta.table
    title = meta.entity.title_field
    column = table.c[title] if title else table.c.id
    rows = session.execute(sa.select(table.c.id, column).where(table.c.id.in_(wanted))).all()
    return {int(row[0]): "" if row[1] is None else str(row[1]) for row in rows}


def find_by_title(
    session: Session, registry: Registry, entity_key: str, titles: Iterable[str]
) -> dict[str, int]:
    """Return {title: id} for records whose title field equals one of `titles`."""
    wanted = {t for t in titles if t}
    meta = registry.meta(entity_key)
    title = meta.entity.title_field
    if not wanted or not title:
        return {}
    table = meta.table
    rows = session.execute(
        sa.select(table.c[title], table.c.id).where(table.c[title].in_(wanted))
    ).all()
    return {str(row[0]): int(row[1]) for row in rows}


def user_names(session: Session, ids: Iterable[int]) -> dict[int, str]:
    """Return {id: display name or username} for the given users."""
    wanted = {int(i) for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.execute(
        sa.select(User.id, User.display_name, User.username).where(User.id.in_(wanted))
    ).all()
    return {int(r[0]): r[1] or r[2] for r in rows}
