"""What the page views share: the entity of a URL, the record service, navigation and the
look-ups (reference titles, user names) that render a page of records in a few queries."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import current_app, url_for

from formwork.auth import current_principal
from formwork.context import entity_key, get_session, record_service, registry
from formwork.runtime.errors import NotFound
from formwork.runtime.fields.relation import ReferenceType, UserType
from formwork.runtime.params import parse_id
from formwork.runtime.records import RecordService
from formwork.runtime.registry import EntityMeta
from formwork.runtime.security import Principal, row_condition
from formwork.runtime.titles import record_titles, user_names
from formwork.web.i18n import current_locale
from formwork.web.layouts import (
    FormLayout,
    ListLayout,
    form_layout,
    list_layout,
    visible_form_layout,
    visible_list_layout,
)
from formwork.web.pack_view import snapshot
from formwork.web.widgets import Lookups

SYSTEM_USER_COLUMNS = ("created_by", "updated_by")


def principal() -> Principal:
    """Return the signed-in principal (views are login_required)."""
    found = current_principal()
    if found is None:
        raise NotFound("no principal")
    return found


def entity_meta(pack: str, entity: str, action: str = "read") -> EntityMeta:
    """Return the meta of a top-level entity the user may act on, or raise."""
    meta = registry().meta(entity_key(pack, entity))  # 404 for a switched-off pack
    principal().require(meta.entity.key, action)
    return meta


def form_for(meta: EntityMeta, action: str = "read") -> FormLayout:
    """Return the entity's form as the signed-in user may see and fill it for `action`."""
    who = principal()
    key = meta.entity.key
    locked = who.read_only_fields(key, action) if action in ("create", "update") else frozenset()
    return visible_form_layout(form_layout(meta.entity), who.hidden_fields(key), locked)


def list_for(meta: EntityMeta) -> ListLayout:
    """Return the entity's list layout without the fields hidden from the signed-in user."""
    return visible_list_layout(list_layout(meta.entity), principal().hidden_fields(meta.entity.key))


def service() -> RecordService:
    """Return a record service for the signed-in user."""
    return record_service(principal())


def reference_target(meta: EntityMeta, name: str) -> str:
    """Return the entity key a reference field of `meta` points to."""
    fd = meta.entity.field_map[name]
    return fd.kind.target(fd, meta.entity)  # type: ignore[attr-defined,no-any-return]


def lookups_for(meta: EntityMeta, records: Iterable[Mapping[str, Any]]) -> Lookups:
    """Return titles of every referenced record and names of every user in `records`
    (including their line items): one query per reference field and one for users."""
    rows = list(records)
    lookups = Lookups()
    user_ids: set[int] = set()
    _collect(meta, rows, lookups, user_ids)
    for name, child in meta.children:
        lines = [line for row in rows for line in row.get(name) or []]
        _collect(child, lines, lookups, user_ids)
    lookups.users = user_names(get_session(), user_ids)
    return lookups


def _collect(
    meta: EntityMeta, rows: list[Mapping[str, Any]], lookups: Lookups, user_ids: set[int]
) -> None:
    for fd in meta.entity.fields:
        if isinstance(fd.kind, UserType):
            user_ids.update(r[fd.name] for r in rows if r.get(fd.name) is not None)
        elif isinstance(fd.kind, ReferenceType):
            target = fd.kind.target(fd, meta.entity)
            ids = {r[fd.name] for r in rows if r.get(fd.name) is not None}
            lookups.targets.setdefault(fd.name, target)
            # Merged, not replaced: a line item may have a field of the same name (a copy of
            # the parent's project), and an empty page of lines must not wipe the titles.
            found = lookups.titles.setdefault(fd.name, {})
            if ids:
                found.update(
                    record_titles(
                        get_session(), registry(), target, ids, principal(), current_locale()
                    )
                )
    for key in SYSTEM_USER_COLUMNS:
        user_ids.update(r[key] for r in rows if r.get(key) is not None)


@dataclass(frozen=True)
class NavItem:
    """One link in the menu."""

    label: str
    url: str
    key: str


@dataclass(frozen=True)
class NavGroup:
    """The menu group of one pack."""

    pack: str
    label: str
    items: tuple[NavItem, ...]


def navigation() -> list[NavGroup]:
    """Return one group per enabled pack with the entities (and reports) the user may read,
    in the order of the pack's menu.json when it has one."""
    who = current_principal()
    if who is None:
        return []
    locale = current_locale()
    packs = snapshot()
    groups: dict[str, list[NavItem]] = {}
    for entity in registry().top_level():
        if entity.pack in packs.disabled or not who.can(entity.key, "read"):
            continue
        url = url_for("web.list_view", pack=entity.pack, entity=entity.name)
        groups.setdefault(entity.pack, []).append(
            NavItem(entity.label(locale) or entity.name, url, entity.key)
        )
    for provider in current_app.extensions.get("formwork.nav_providers", []):
        for pack, label, url, *key in provider(who, locale):
            # A provider may add a menu key ("<pack>:report:<name>") to be placed by menu.json.
            if pack not in packs.disabled:
                groups.setdefault(pack, []).append(NavItem(label, url, key[0] if key else url))
    out = []
    for pack, items in groups.items():
        menu = packs.menus.get(pack, {})
        title = menu.get("label") or packs.titles.get(pack)
        ordered = _menu_order(pack, items, menu, locale)
        out.append(
            (menu.get("order", 1000), NavGroup(pack, _pack_label(title, pack, locale), ordered))
        )
    return [group for _order, group in sorted(out, key=lambda o: (o[0], o[1].pack))]


def _menu_order(
    pack: str, items: list[NavItem], menu: Mapping[str, Any], locale: str
) -> tuple[NavItem, ...]:
    by_key = {item.key: item for item in items}
    ordered: list[NavItem] = []
    for entry in menu.get("items", ()):
        found = by_key.pop(_entry_key(pack, entry), None)
        if found is not None:
            label = entry.get("label")
            ordered.append(NavItem(_pack_label(label, found.label, locale), found.url, found.key))
    return (*ordered, *by_key.values())


def _entry_key(pack: str, entry: Mapping[str, Any]) -> str:
    for kind in ("report", "dashboard"):
        if kind in entry:
            return f"{pack}:{kind}:{entry[kind]}"
    return f"{pack}.{entry.get('entity')}"


def _pack_label(title: Any, fallback: str, locale: str) -> str:
    if isinstance(title, Mapping):
        return str(title.get(locale) or title.get("zh-CN") or fallback)
    return fallback


def begin_transaction() -> None:
    """Open the database transaction now (savepoints then nest inside it)."""
    get_session().connection()


LOOKUP_LIMIT = 10


def lookup_options(
    target: EntityMeta, text: str, conditions: Iterable[Any] = ()
) -> list[tuple[int, str]]:
    """Return up to ten (id, title) of the records of `target` the signed-in user may read
    that match `text` in their search fields (not the hidden ones) or by id, and meet the
    `conditions` (a reference field's filter). A hidden title field shows as `#id`."""
    from formwork.web.filters import quick_search

    who = principal()
    key = target.entity.key
    who.require(key, "read")
    shut = who.hidden_fields(key)
    title = target.entity.title_field
    title = title if title and title not in shut else None
    names = tuple(n for n in target.entity.search_fields if n not in shut) or (
        (title,) if title else ()
    )
    table = target.table
    title_col = table.c[title] if title else table.c.id
    condition = quick_search(target, names, text)
    wanted = parse_id(text)
    if wanted is not None:
        id_match = table.c.id == wanted
        condition = id_match if condition is None else sa.or_(condition, id_match)
    where = [*conditions] + ([] if condition is None else [condition])
    allowed = row_condition(registry(), who, target, "read")
    if allowed is not None:
        where.append(allowed)  # only records the user may read are offered
    statement = sa.select(table.c.id, title_col).where(*where).order_by(title_col)
    rows = get_session().execute(statement.limit(LOOKUP_LIMIT)).all()
    if title is None:
        return [(int(r[0]), f"#{r[0]}") for r in rows]
    return [(int(r[0]), "" if r[1] is None else str(r[1])) for r in rows]
