"""Form and list layouts: loaded from JSON files checked against `schemas/`, or made up
from the definition when an entity has none."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from flask import current_app

from formwork.runtime import metaschemas
from formwork.runtime.definitions import EntityDef, FieldDef
from formwork.runtime.errors import FieldError
from formwork.web.widgets import filter_for

log = logging.getLogger(__name__)
DEFAULT_LIST_COLUMNS = 8
DEFAULT_PER_PAGE = 50


@dataclass(frozen=True)
class FormField:
    """One field placed on a form."""

    field: FieldDef
    widget: str = "default"
    help: Mapping[str, str] | None = None
    span: int = 1


@dataclass(frozen=True)
class Section:
    """A titled group of fields laid out in columns."""

    fields: tuple[FormField, ...]
    label: Mapping[str, str] | None = None
    help: Mapping[str, str] | None = None
    columns: int = 2


@dataclass(frozen=True)
class Tab:
    """A tab of sections (a form without tabs has one unnamed tab)."""

    sections: tuple[Section, ...]
    label: Mapping[str, str] | None = None


@dataclass(frozen=True)
class FormLayout:
    """How a create/edit form is arranged."""

    tabs: tuple[Tab, ...]

    def fields(self) -> list[FormField]:
        """Return every placed field in order."""
        return [f for t in self.tabs for s in t.sections for f in s.fields]


@dataclass(frozen=True)
class ListLayout:
    """How a list view looks."""

    columns: tuple[FieldDef, ...]
    sort: str = "-id"
    filters: Mapping[str, str] = field(default_factory=dict)
    filter_fields: tuple[FieldDef, ...] = ()
    search: tuple[str, ...] = ()
    per_page: int = DEFAULT_PER_PAGE


# -- checking -------------------------------------------------------------------------------
def _schema_errors(document: Any, schema_name: str) -> list[FieldError]:
    validator = metaschemas.validator(schema_name)
    return [
        FieldError(
            "".join(f"/{p}" for p in error.absolute_path), "schema", {"detail": error.message}
        )
        for error in validator.iter_errors(document)
    ]


def check_form_layout(document: Any, entity: EntityDef) -> list[FieldError]:
    """Return every problem with a form layout: schema, unknown, repeated or missing fields."""
    problems = _schema_errors(document, "layout.schema.json")
    if problems:
        return problems
    if "columns" in document:
        return [_problem("/columns", "this is a list layout, not a form layout")]
    if document["entity"] != entity.name:
        problems.append(_problem("/entity", f"layout is for '{document['entity']}'"))
    seen: set[str] = set()
    for pointer, item in _form_items(document):
        name = item if isinstance(item, str) else item["field"]
        fd = entity.get_field(name)
        if fd is None:
            problems.append(_problem(pointer, f"unknown field '{name}'"))
        elif name in seen:
            problems.append(_problem(pointer, f"field '{name}' is placed twice"))
        seen.add(name)
    for fd in entity.fields:
        if fd.required and not fd.read_only and fd.default is None and fd.name not in seen:
            problems.append(_problem("", f"required field '{fd.name}' is not on the form"))
    return problems


def check_list_layout(document: Any, entity: EntityDef) -> list[FieldError]:
    """Return every problem with a list layout: schema and unknown or unusable fields."""
    problems = _schema_errors(document, "list_layout.schema.json")
    if problems:
        return problems
    if document["entity"] != entity.name:
        problems.append(_problem("/entity", f"layout is for '{document['entity']}'"))
    for key in ("columns", "filter_fields", "search"):
        for i, name in enumerate(document.get(key, ())):
            fd = entity.get_field(name)
            if fd is None or not fd.kind.stored:
                problems.append(_problem(f"/{key}/{i}", f"unknown or unstored field '{name}'"))
            elif key == "filter_fields" and filter_for(fd) is None:
                problems.append(_problem(f"/{key}/{i}", f"field '{name}' cannot be filtered"))
    for term in filter(None, document.get("sort", "").split(",")):
        name = term.lstrip("-")
        fd = entity.get_field(name)
        if name != "id" and (fd is None or not fd.kind.sortable or not fd.kind.stored):
            problems.append(_problem("/sort", f"cannot sort by '{name}'"))
    return problems


def _form_items(document: Mapping[str, Any]) -> list[tuple[str, Any]]:
    out = []
    if "tabs" in document:
        for t, tab in enumerate(document["tabs"]):
            for s, section in enumerate(tab["sections"]):
                base = f"/tabs/{t}/sections/{s}/fields"
                out += [(f"{base}/{i}", item) for i, item in enumerate(section["fields"])]
    else:
        for s, section in enumerate(document["sections"]):
            base = f"/sections/{s}/fields"
            out += [(f"{base}/{i}", item) for i, item in enumerate(section["fields"])]
    return out


def _problem(pointer: str, detail: str) -> FieldError:
    return FieldError(pointer, "schema", {"detail": detail})


# -- building -------------------------------------------------------------------------------
def build_form_layout(document: Mapping[str, Any], entity: EntityDef) -> FormLayout:
    """Return the FormLayout of a checked layout document."""
    raw_tabs = document.get("tabs") or [{"sections": document["sections"]}]
    return FormLayout(
        tuple(
            Tab(tuple(_section(s, entity) for s in tab["sections"]), tab.get("label"))
            for tab in raw_tabs
        )
    )


def _section(raw: Mapping[str, Any], entity: EntityDef) -> Section:
    fields = []
    for item in raw["fields"]:
        spec: Mapping[str, Any] = {"field": item} if isinstance(item, str) else item
        fd = entity.field_map[spec["field"]]
        span = spec.get("span", 4 if fd.kind.holds_rows else 1)
        fields.append(FormField(fd, spec.get("widget", "default"), spec.get("help"), span))
    return Section(tuple(fields), raw.get("label"), raw.get("help"), raw.get("columns", 2))


def default_form_layout(entity: EntityDef) -> FormLayout:
    """Return a form with every visible field in definition order, line items last."""
    plain = [FormField(f) for f in entity.fields if not f.hidden and not f.kind.holds_rows]
    grids = [FormField(f, span=4) for f in entity.fields if not f.hidden and f.kind.holds_rows]
    sections = [Section(tuple(plain))] if plain else []
    sections += [Section((g,), g.field.opt("label"), columns=1) for g in grids]
    return FormLayout((Tab(tuple(sections)),))


def build_list_layout(document: Mapping[str, Any], entity: EntityDef) -> ListLayout:
    """Return the ListLayout of a checked layout document."""
    fmap = entity.field_map
    return ListLayout(
        columns=tuple(fmap[n] for n in document["columns"]),
        sort=document.get("sort", "-id"),
        filters=dict(document.get("filters", {})),
        filter_fields=tuple(fmap[n] for n in document.get("filter_fields", ())),
        search=tuple(document.get("search", entity.search_fields)),
        per_page=int(document.get("per_page", DEFAULT_PER_PAGE)),
    )


def default_list_layout(entity: EntityDef) -> ListLayout:
    """Return a list of the title field and the next visible short fields."""
    shown = [
        f
        for f in entity.fields
        if f.kind.stored and not f.hidden and f.kind.name not in ("text", "attachment")
    ]
    title = entity.get_field(entity.title_field or "")
    if title is not None and title in shown:
        shown.remove(title)
        shown.insert(0, title)
    columns = tuple(shown[:DEFAULT_LIST_COLUMNS])
    return ListLayout(
        columns=columns,
        filter_fields=tuple(f for f in columns if filter_for(f) not in (None, "text")),
        search=entity.search_fields,
    )


# -- loading --------------------------------------------------------------------------------
def layout_dirs() -> dict[str, Path]:
    """Return {pack: folder} of layout files (config LAYOUT_DIRS or FORMWORK_LAYOUT_DIRS)."""
    configured = current_app.config.get("LAYOUT_DIRS")
    if configured is None:
        raw = os.environ.get("FORMWORK_LAYOUT_DIRS", "")
        configured = dict(p.split("=", 1) for p in raw.split(os.pathsep) if "=" in p)
    return {pack: Path(folder) for pack, folder in configured.items()}


@lru_cache(maxsize=256)
def _read_cached(path: str, stamp: int) -> Any:
    if not stamp:
        return None
    try:
        return json.loads(Path(path).read_text("utf-8"))
    except (OSError, ValueError) as exc:
        log.error("layout %s cannot be read: %s", path, exc)
        return None


def _document(entity: EntityDef, kind: str) -> tuple[Any, Any]:
    """Return the layout document and a stamp that changes when it does."""
    folder = layout_dirs().get(entity.pack)
    if folder is not None:
        path = folder / f"{entity.name}.{kind}.json"
        stamp = path.stat().st_mtime_ns if path.exists() else 0
        if stamp:
            return _read_cached(str(path), stamp), stamp
    from formwork.web.pack_view import snapshot

    document = snapshot().layouts.get((entity.pack, entity.name, kind))
    return document, id(document) if document is not None else 0


# Built layouts per entity definition object and file stamp; the entity is kept in the
# value so its id cannot be reused while the entry lives.
_BUILT: dict[tuple[int, str], tuple[Any, EntityDef, Any]] = {}


def _cached(entity: EntityDef, kind: str, build: Any) -> Any:
    document, stamp = _document(entity, kind)
    key = (id(entity), kind)
    hit = _BUILT.get(key)
    if hit is not None and hit[0] == stamp and hit[1] is entity:
        return hit[2]
    layout = build(document)
    if len(_BUILT) > 512:
        _BUILT.clear()
    _BUILT[key] = (stamp, entity, layout)
    return layout


def _layout(entity: EntityDef, kind: str, check: Any, build: Any, default: Any) -> Any:
    """Return the entity's layout of one kind: its file when valid, else the default."""

    def make(document: Any) -> Any:
        if document is not None:
            problems = check(document, entity)
            if not problems:
                return build(document, entity)
            _log_problems(entity, kind, problems)
        return default(entity)

    return _cached(entity, kind, make)


def form_layout(entity: EntityDef) -> FormLayout:
    """Return the entity's form layout (its file when valid, else the default)."""
    return _layout(  # type: ignore[no-any-return]
        entity, "form", check_form_layout, build_form_layout, default_form_layout
    )


def list_layout(entity: EntityDef) -> ListLayout:
    """Return the entity's list layout (its file when valid, else the default)."""
    return _layout(  # type: ignore[no-any-return]
        entity, "list", check_list_layout, build_list_layout, default_list_layout
    )


def _log_problems(entity: EntityDef, kind: str, problems: list[FieldError]) -> None:
    details = "; ".join(f"{p.pointer or '/'}: {p.message('en')}" for p in problems)
    log.error("%s layout of %s ignored: %s", kind, entity.key, details)


# -- what one principal sees ----------------------------------------------------------------
def visible_form_layout(
    layout: FormLayout, hidden: frozenset[str], locked: frozenset[str] = frozenset()
) -> FormLayout:
    """Return the form without the `hidden` fields and with the `locked` ones read-only
    (a role's field rules: the bank card a crew leader may not see, a rate he may not set)."""
    if not hidden and not locked:
        return layout
    tabs = []
    for tab in layout.tabs:
        sections = []
        for section in tab.sections:
            fields = tuple(
                replace(f, field=read_only_copy(f.field)) if f.field.name in locked else f
                for f in section.fields
                if f.field.name not in hidden
            )
            if fields:
                sections.append(replace(section, fields=fields))
        if sections:
            tabs.append(replace(tab, sections=tuple(sections)))
    return FormLayout(tuple(tabs))


def visible_list_layout(layout: ListLayout, hidden: frozenset[str]) -> ListLayout:
    """Return the list layout without the `hidden` fields (columns, filters, search)."""
    if not hidden:
        return layout
    return replace(
        layout,
        columns=tuple(f for f in layout.columns if f.name not in hidden),
        filters={k: v for k, v in layout.filters.items() if k.split("__")[0] not in hidden},
        filter_fields=tuple(f for f in layout.filter_fields if f.name not in hidden),
        search=tuple(n for n in layout.search if n not in hidden),
        sort=layout.sort if layout.sort.lstrip("-") not in hidden else "-id",
    )


def read_only_copy(fd: FieldDef) -> FieldDef:
    """Return the field as one the form shows but does not post."""
    return replace(fd, schema={**fd.schema, "readOnly": True})
