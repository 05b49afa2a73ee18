"""Row rules compiled to SQL: one condition that every path reading records applies.

A rule names a field of the entity (or one reference hop, `contract.project`) and says the
value is the acting user (`is: me`), a record the user is a member of (`member_of`) or one
of some constants (`in`). Membership is declared by entities (`x-formwork.membership`), so
`member_of: projects.project` becomes `project IN (SELECT project FROM <members> WHERE user =
:me)`: the database does the work with its indexes, whatever the number of records."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from formwork.runtime.definitions import EntityDef, FieldDef, qualify
from formwork.runtime.registry import EntityMeta, Registry
from formwork.runtime.security import Principal, RowRule

USER_COLUMNS = ("created_by", "updated_by")


class RuleError(ValueError):
    """A row rule that does not fit the entity it is declared on."""


def compile_rules(
    registry: Registry,
    principal: Principal,
    meta: EntityMeta,
    rules: Sequence[RowRule],
    session: Session | None = None,
    *,
    table: Any = None,
) -> Any:
    """Return the OR of the rules as a condition on `meta.table` (or on `table`, an alias
    of it) — false for no rules.

    Memberships stay subqueries: reading them first and inlining the ids was measured
    (bench/security_rows.py) to cost a round trip and win nothing once statistics exist."""
    if not rules:
        return sa.false()
    source = meta.table if table is None else table
    return sa.or_(*(_compile(registry, principal, meta, source, rule, session) for rule in rules))


def _compile(
    registry: Registry,
    principal: Principal,
    meta: EntityMeta,
    source: Any,
    rule: RowRule,
    session: Session | None,
) -> Any:
    head, _, tail = rule.field.partition(".")
    if not tail:
        column = source.c[_column(meta.entity, head)]
        return _atom(registry, principal, meta, column, rule, session)
    target = registry.meta(str(_reference_target(meta.entity, head)))
    column = target.table.c[_column(target.entity, tail)]
    inner = _atom(registry, principal, target, column, rule, session)
    return source.c[head].in_(sa.select(target.table.c.id).where(inner))


def _atom(
    registry: Registry,
    principal: Principal,
    meta: EntityMeta,
    column: Any,
    rule: RowRule,
    session: Session | None = None,
) -> Any:
    if rule.kind == "is":
        return column == principal.user_id if principal.user_id is not None else sa.false()
    if rule.kind == "in":
        field_def = meta.entity.get_field(column.name)
        values = [_constant(field_def, v) for v in rule.value]
        return column.in_(values)
    scopes = member_scopes(registry, principal, str(rule.value))
    return column.in_(scopes) if scopes is not None else sa.false()


def member_scopes(registry: Registry, principal: Principal, scope_entity: str) -> Any:
    """Return a SELECT of the ids of `scope_entity` records the principal is a member of
    (None when no entity declares membership of it, or there is no user)."""
    if principal.user_id is None:
        return None
    parts = [
        sa.select(source.table.c[scope].label("scope_id")).where(
            source.table.c[user] == principal.user_id
        )
        for source, user, scope in membership_sources(registry, scope_entity)
    ]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else sa.union(*parts)


def membership_sources(
    registry: Registry, scope_entity: str
) -> Iterator[tuple[EntityMeta, str, str]]:
    """Yield (entity, user field, scope field) for every membership of `scope_entity`."""
    for key, user, scope in registry.memberships.get(scope_entity, ()):
        yield registry.meta(key), user, scope


def _column(entity: EntityDef, name: str) -> str:
    if name == "id" or name in USER_COLUMNS:
        return name
    field_def = entity.get_field(name)
    if field_def is None or not field_def.kind.stored:
        raise RuleError(f"row rule: {entity.key} has no field '{name}'")
    return name


def _reference_target(entity: EntityDef, name: str, strict: bool = True) -> str | None:
    field_def = entity.get_field(name)
    target = field_def.kind.join_target(field_def, entity) if field_def is not None else None
    if target is None and strict:
        raise RuleError(f"row rule: {entity.key}.{name} is not a reference")
    return target


def _constant(field_def: FieldDef | None, value: Any) -> Any:
    if field_def is None or not isinstance(value, str):
        return value
    return field_def.kind.parse_filter(field_def, value)


def rule_problems(
    entities: dict[str, EntityDef],
    pack: str,
    entity_key: str,
    rule: dict[str, Any],
    unloaded: set[str] = frozenset(),  # type: ignore[assignment]
) -> Iterator[str]:
    """Yield what is wrong with one roles.json row rule on `entity_key` (for pack checks);
    names in `unloaded` packs (dependencies not installed) are taken on trust."""
    entity = entities.get(entity_key)
    if entity is None:
        return
    head, _, tail = str(rule.get("field", "")).partition(".")
    if tail:
        field_def = entity.get_field(head)
        target = field_def.kind.join_target(field_def, entity) if field_def else None
        if target is not None and target.split(".", 1)[0] in unloaded:
            return
        if target is None or target not in entities:
            yield f"'{head}' is not a reference of {entity_key}"
            return
        entity, head = entities[target], tail
    if head != "id" and head not in USER_COLUMNS and entity.get_field(head) is None:
        yield f"{entity.key} has no field '{head}'"
        return
    if "is" in rule and head not in USER_COLUMNS:
        field_def = entity.get_field(head)
        if field_def is None or field_def.kind.name != "user":
            yield f"'is: me' needs a user field; {entity.key}.{head} is not one"
    if "member_of" in rule:
        scope = qualify(pack, str(rule["member_of"]))
        if scope.split(".", 1)[0] not in unloaded:
            yield from _member_problems(entities, pack, entity, head, scope)


def _member_problems(
    entities: dict[str, EntityDef], pack: str, entity: EntityDef, head: str, scope: str
) -> Iterator[str]:
    scope = qualify(pack, scope)
    if scope not in entities:
        yield f"member_of names unknown entity '{scope}'"
        return
    pointed: str | None = entity.key
    if head != "id":
        field_def = entity.get_field(head)
        pointed = field_def.kind.join_target(field_def, entity) if field_def else None
    if pointed != scope:
        yield f"{entity.key}.{head} does not reference {scope}"
    declared = any(
        (e.options.get("membership") or {}).get("scope") is not None and _scope_of(e) == scope
        for e in entities.values()
    )
    if not declared:
        yield f"no entity declares membership of {scope} (x-formwork.membership)"


def _scope_of(entity: EntityDef) -> str | None:
    scope = entity.options["membership"]["scope"]
    if scope == "id":
        return entity.key
    return _reference_target(entity, scope, strict=False)
