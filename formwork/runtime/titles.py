"""Titles of referenced records and names of users, fetched for many ids in one query each.

Lists, detail pages and exports show a reference as its target's title, not its id; asking
per row would be one query per row (N+1), so callers collect the ids first and ask once.
Titles are read as the viewer: a record outside their read rows (or of an entity they may
not read) shows a neutral placeholder, never its title.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.orm import Session

from formwork.runtime.models import User
from formwork.runtime.registry import Registry
from formwork.runtime.security import Principal, row_condition

NO_ACCESS = {"zh-CN": "（无权查看）", "en": "(no access)"}


def no_access_text(locale: str) -> str:
    """Return the neutral text shown instead of the title of a record one may not read."""
    return NO_ACCESS["en" if locale.lower().startswith("en") else "zh-CN"]


def readable_titles(
    session: Session, registry: Registry, entity_key: str, ids: Iterable[int], principal: Principal
) -> dict[int, str]:
    """Return {id: title} for those of the given records the principal may read (their id
    as `#id` when the title field is hidden from them, or the entity has none)."""
    wanted = {int(i) for i in ids if i is not None}
    if not wanted or not principal.can(entity_key, "read"):
        return {}
    meta = registry.meta(entity_key)
    table = meta.table
    title = meta.entity.title_field
    shown = title if title and principal.may_read_field(entity_key, title) else None
    column = table.c[shown] if shown else table.c.id
    where = [table.c.id.in_(wanted)]
    rows_rule = row_condition(registry, principal, meta, "read")
    if rows_rule is not None:
        where.append(rows_rule)
    rows = session.execute(sa.select(table.c.id, column).where(*where)).all()
    if not shown:
        return {int(row[0]): f"#{row[0]}" for row in rows}
    return {int(row[0]): "" if row[1] is None else str(row[1]) for row in rows}


def record_titles(
    session: Session,
    registry: Registry,
    entity_key: str,
    ids: Iterable[int],
    principal: Principal,
    locale: str | None = None,
) -> dict[int, str]:
    """Return {id: title} for every given id: the title of a record the principal may read,
    a neutral "(no access)" for any other. A missing id reads the same as an unreadable one,
    so a title never confirms that a record exists."""
    wanted = {int(i) for i in ids if i is not None}
    found = readable_titles(session, registry, entity_key, wanted, principal)
    placeholder = no_access_text(locale or principal.locale)
    return {i: found.get(i, placeholder) for i in wanted}


def find_by_title(
    session: Session,
    registry: Registry,
    entity_key: str,
    titles: Iterable[str],
    principal: Principal | None = None,
) -> dict[str, int]:
    """Return {title: id} for records whose title field equals one of `titles`; with a
    principal, only records they may read (an import names only what its author sees)."""
    wanted = {t for t in titles if t}
    meta = registry.meta(entity_key)
    title = meta.entity.title_field
    if not wanted or not title:
        return {}
    table = meta.table
    where = [table.c[title].in_(wanted)]
    if principal is not None:
        if not principal.may_read_field(entity_key, title):
            return {}
        rows_rule = row_condition(registry, principal, meta, "read")
        if rows_rule is not None:
            where.append(rows_rule)
    rows = session.execute(sa.select(table.c[title], table.c.id).where(*where)).all()
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
