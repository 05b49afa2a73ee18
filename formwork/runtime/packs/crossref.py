"""Cross-references inside a pack: layouts, reports, roles, menus and fixtures must name
entities and fields that exist."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from formwork.runtime.definitions import qualify

if TYPE_CHECKING:
    from formwork.runtime.packs.check import _Checker

Found = tuple[str, str, str, str]  # (where, code, message, hint)


def check(kind: str, document: Any, checker: _Checker) -> Iterator[Found]:
    """Yield cross-reference problems of one parsed pack file."""
    if not isinstance(document, dict):
        return
    handler = {
        "layouts": _layout,
        "reports": _report,
        "roles": _roles,
        "menu": _menu,
        "fixtures": _fixture,
        "demo": _fixture,
    }.get(kind)
    if handler is not None:
        yield from handler(document, checker)


def _entity(checker: _Checker, name: Any) -> Any:
    if not isinstance(name, str):
        return None
    return checker.all_entities().get(qualify(checker.manifest.name, name))


def _field_names(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    # Every string under a "field" key, or in a "fields"/"columns" list, names a field.
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{path}/{key}"
            if key == "field" and isinstance(value, str):
                yield here, value
            elif key in ("fields", "columns", "search", "sort") and isinstance(value, list):
                for i, item in enumerate(value):
                    if isinstance(item, str):
                        yield f"{here}/{i}", item.lstrip("-")
                    else:
                        yield from _field_names(item, f"{here}/{i}")
            else:
                yield from _field_names(value, here)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _field_names(item, f"{path}/{i}")


def _unknown_fields(document: Any, entity: Any, code: str, skip: str = "") -> Iterator[Found]:
    for where, name in _field_names(document):
        if skip and where.startswith(skip):
            continue
        base = name.split(":", 1)[0].split(".", 1)[0]
        if base not in entity.field_map and base not in ("id", "created_at", "updated_at"):
            yield where, code, f"unknown field '{name}' of {entity.key}", _close(base, entity)


def _close(name: str, entity: Any) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(entity.field_map), n=1)
    return f"did you mean '{close[0]}'?" if close else ""


def _missing_entity(where: str, code: str, name: Any) -> Found:
    return where, code, f"unknown entity '{name}'", "name an entity of this pack or a dependency"


def _layout(document: dict[str, Any], checker: _Checker) -> Iterator[Found]:
    entity = _entity(checker, document.get("entity"))
    if entity is None:
        yield _missing_entity("/entity", "pack.E021", document.get("entity"))
        return
    yield from _unknown_fields(document, entity, "pack.E021")


def _report(document: dict[str, Any], checker: _Checker) -> Iterator[Found]:
    entity = _entity(checker, document.get("entity"))
    if entity is None:
        yield _missing_entity("/entity", "pack.E031", document.get("entity"))
        return
    yield from _unknown_fields(document, entity, "pack.E031")
    for i, group in enumerate(document.get("group", [])):
        base = str(group).split(":", 1)[0].split(".", 1)[0]
        if base not in entity.field_map:
            yield (
                f"/group/{i}",
                "pack.E031",
                f"unknown field '{group}' of {entity.key}",
                _close(base, entity),
            )
    for key in document.get("filters", {}):
        base = key.rsplit("__", 1)[0].split(".", 1)[0]
        if base not in entity.field_map:
            yield f"/filters/{key}", "pack.E031", f"unknown filter field '{base}'", ""


def _roles(document: dict[str, Any], checker: _Checker) -> Iterator[Found]:
    for i, role in enumerate(document.get("roles", [])):
        for j, grant in enumerate(role.get("permissions", [])):
            name = grant.get("entity")
            if name != "*" and _entity(checker, name) is None:
                yield _missing_entity(f"/roles/{i}/permissions/{j}/entity", "pack.E041", name)


def _menu(document: dict[str, Any], checker: _Checker) -> Iterator[Found]:
    reports = (
        {str(d.get("name")) for _p, d in checker.checked.of_kind("reports") if isinstance(d, dict)}
        if hasattr(checker, "checked")
        else set()
    )
    for i, item in enumerate(document.get("items", [])):
        if "entity" in item and _entity(checker, item["entity"]) is None:
            yield _missing_entity(f"/items/{i}/entity", "pack.E051", item["entity"])
        if "report" in item and item["report"] not in reports:
            yield (
                f"/items/{i}/report",
                "pack.E051",
                f"unknown report '{item['report']}'",
                "list the report under files.reports",
            )


def _fixture(document: dict[str, Any], checker: _Checker) -> Iterator[Found]:
    entity = _entity(checker, document.get("entity"))
    if entity is None:
        yield _missing_entity("/entity", "pack.E071", document.get("entity"))
        return
    key = document.get("key")
    if key and key not in entity.field_map:
        yield "/key", "pack.E071", f"unknown key field '{key}'", _close(key, entity)
    for i, record in enumerate(document.get("records", [])):
        for name in record if isinstance(record, dict) else ():
            if name not in entity.field_map:
                yield (
                    f"/records/{i}/{name}",
                    "pack.E071",
                    f"unknown field '{name}' of {entity.key}",
                    _close(name, entity),
                )
