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
        "dashboards": _dashboard,
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
    from formwork.runtime.reports.checks import check_report

    yield from check_report(checker.manifest.name, document, _Lookup(checker))


def _reports_by_name(checker: _Checker) -> dict[str, Any]:
    return {
        str(d.get("name")): d for _p, d in checker.checked.of_kind("reports") if isinstance(d, dict)
    }


def _dashboard(document: dict[str, Any], checker: _Checker) -> Iterator[Found]:
    from formwork.runtime.reports.checks import check_dashboard

    reports = _reports_by_name(checker)
    yield from check_dashboard(checker.manifest.name, document, reports, _Lookup(checker))


def _roles(document: dict[str, Any], checker: _Checker) -> Iterator[Found]:
    for i, role in enumerate(document.get("roles", [])):
        for j, grant in enumerate(role.get("permissions", [])):
            name = grant.get("entity")
            here = f"/roles/{i}/permissions/{j}"
            entity = _entity(checker, name)
            if name != "*" and entity is None:
                if not _in_unloaded_dependency(checker, name):
                    yield _missing_entity(f"{here}/entity", "pack.E041", name)
                continue
            if entity is not None:
                yield from _grant_rules(grant, entity, here, checker)


def _grant_rules(
    grant: dict[str, Any], entity: Any, here: str, checker: _Checker
) -> Iterator[Found]:
    from formwork.runtime.row_rules import rule_problems

    entities = checker.all_entities()
    unloaded = _unloaded_dependencies(checker)
    for k, rule in enumerate(grant.get("rows") or []):
        found = rule_problems(entities, checker.manifest.name, entity.key, rule, unloaded)
        for problem in found:
            yield f"{here}/rows/{k}", "pack.E042", f"row rule: {problem}", _RULE_HINT
    for name in grant.get("fields") or {}:
        head, _, tail = name.partition(".")
        fd = entity.get_field(head)
        child = _child_entity(checker, entity, fd) if tail else None
        if fd is None or (tail and (child is None or child.get_field(tail) is None)):
            yield (
                f"{here}/fields/{name}",
                "pack.E043",
                f"unknown field '{name}' of {entity.key}",
                _close(head, entity),
            )


class _Lookup:
    """Entities by name for the report checks, and which names to take on trust."""

    def __init__(self, checker: _Checker) -> None:
        self.checker = checker

    def __call__(self, name: str) -> Any:
        return _entity(self.checker, name)

    def trusted(self, name: str) -> bool:
        """Return True for a name in a dependency that is not installed."""
        return _in_unloaded_dependency(self.checker, name)


def _unloaded_dependencies(checker: _Checker) -> set[str]:
    # A dependency that is not installed (a pack checked on its own) cannot be looked into;
    # names in it are taken on trust here and checked again when the packs are installed.
    loaded = {key.split(".", 1)[0] for key in checker.all_entities()}
    return {pack for pack in checker.manifest.depends if pack not in loaded}


def _in_unloaded_dependency(checker: _Checker, name: Any) -> bool:
    pack = qualify(checker.manifest.name, str(name)).split(".", 1)[0]
    return pack in _unloaded_dependencies(checker)


_RULE_HINT = (
    "a rule names a field of the entity (or one reference hop) and is/member_of/in; "
    "member_of needs an entity declaring x-formwork.membership of the scope"
)


def _child_entity(checker: _Checker, entity: Any, fd: Any) -> Any:
    if fd is None or not fd.kind.holds_rows:
        return None
    return checker.all_entities().get(qualify(entity.pack, str(fd.opt("entity") or "")))


def _menu(document: dict[str, Any], checker: _Checker) -> Iterator[Found]:
    reports = set(_reports_by_name(checker))
    dashboards = {
        str(d.get("name")) for _p, d in checker.checked.of_kind("dashboards") if isinstance(d, dict)
    }
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
        if "dashboard" in item and item["dashboard"] not in dashboards:
            yield (
                f"/items/{i}/dashboard",
                "pack.E051",
                f"unknown dashboard '{item['dashboard']}'",
                "list the dashboard under files.dashboards",
            )


def _fixture(document: dict[str, Any], checker: _Checker) -> Iterator[Found]:
    if "users" in document:
        return  # a users file: its roles may come from any pack, so nothing to cross-check
    entity = _entity(checker, document.get("entity"))
    if entity is None:
        if not _in_unloaded_dependency(checker, document.get("entity")):
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
