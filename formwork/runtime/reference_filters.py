"""Reference filters: which records a reference field may point to, declared as data.

On a reference field, `"filter": {"project": "$project"}` says the chosen record's
`project` must be this record's `project`; `"$parent.crew"` reads the parent record (on a
line item); any other JSON value is a constant (a list: one of them). A term whose source
is empty is not applied (nothing to compare yet). One compiled form serves the save check
(`problems`), the reference look-up (`conditions`) and the pack check (`definition_problems`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from formwork.runtime.definitions import EntityDef, FieldDef, qualify
from formwork.runtime.errors import FieldError
from formwork.runtime.fields.choice import option_label
from formwork.runtime.registry import EntityMeta

SELF, PARENT, CONSTANT = "self", "parent", "constant"


@dataclass(frozen=True)
class Term:
    """One condition of a filter: the target's `field` equals a source value."""

    field: str
    scope: str  # SELF, PARENT or CONSTANT
    source: str = ""  # the field read from this record or its parent
    value: Any = None  # a constant

    @classmethod
    def parse(cls, field: str, value: Any) -> Term:
        """Return the term `field: value` of a filter declaration."""
        if isinstance(value, str) and value.startswith("$parent."):
            return cls(field, PARENT, value.removeprefix("$parent."))
        if isinstance(value, str) and value.startswith("$"):
            return cls(field, SELF, value[1:])
        return cls(field, CONSTANT, value=value)


def terms(fd: FieldDef) -> tuple[Term, ...]:
    """Return the terms of a reference field's filter (none when it declares no filter)."""
    declared = fd.opt("filter") or {}
    return tuple(Term.parse(str(k), v) for k, v in sorted(declared.items()))


def source_value(term: Term, record: Mapping[str, Any], parent: Mapping[str, Any] | None) -> Any:
    """Return the value a term compares with (None: the term does not apply)."""
    if term.scope == CONSTANT:
        return term.value
    holder = parent if term.scope == PARENT else record
    return None if holder is None else holder.get(term.source)


def conditions(
    target: EntityMeta,
    fd: FieldDef,
    record: Mapping[str, Any],
    parent: Mapping[str, Any] | None = None,
) -> list[Any]:
    """Return SQL conditions on the target's table that the chosen record must meet, given
    the (Python) values of this record and its parent; empty sources are left out."""
    out = []
    for term in terms(fd):
        value = source_value(term, record, parent)
        if value is None or value == []:
            continue
        column = target.table.c[term.field]
        tfd = target.entity.get_field(term.field)
        if isinstance(value, list | tuple):
            out.append(column.in_([_stored(tfd, v) for v in value]))
        else:
            out.append(column == _stored(tfd, value))
    return out


def _stored(tfd: FieldDef | None, value: Any) -> Any:
    if tfd is None:
        return value
    if isinstance(value, str):  # a constant or a posted input: parse it like a filter value
        value = tfd.kind.parse_filter(tfd, value)
    return tfd.kind.to_db(tfd, value)


def problems(
    ctx: Any,
    meta: EntityMeta,
    record: Mapping[str, Any],
    pointer: str,
    *,
    parent: Mapping[str, Any] | None = None,
    old: Mapping[str, Any] | None = None,
    old_parent: Mapping[str, Any] | None = None,
    skip: frozenset[str] = frozenset(),
) -> list[FieldError]:
    """Return a problem for every filtered reference of the record whose chosen record does
    not meet its filter. A relation the save does not change (same reference, same source
    values as stored in `old`) is not checked again; pointers in `skip` already failed."""
    errors = []
    for fd in meta.entity.fields:
        path = f"{pointer}/{fd.name}"
        value = record.get(fd.name)
        if value is None or path in skip or not terms(fd):
            continue
        if old is not None and not _changed(fd, record, parent, old, old_parent):
            continue
        target = ctx.registry.meta(qualify(meta.entity.pack, fd.opt("entity")))
        where = conditions(target, fd, record, parent)
        if where and not ctx.matches(target, value, where):
            errors.append(FieldError(path, "reference_filter", _describe(ctx, meta, fd, target)))
    return errors


def _changed(
    fd: FieldDef,
    record: Mapping[str, Any],
    parent: Mapping[str, Any] | None,
    old: Mapping[str, Any],
    old_parent: Mapping[str, Any] | None,
) -> bool:
    if record.get(fd.name) != old.get(fd.name):
        return True
    return any(
        source_value(t, record, parent) != source_value(t, old, old_parent) for t in terms(fd)
    )


def _describe(ctx: Any, meta: EntityMeta, fd: FieldDef, target: EntityMeta) -> dict[str, str]:
    """Return the message parameters: what the chosen record must meet, in both locales."""
    parent_key = qualify(meta.entity.pack, meta.entity.child_of) if meta.entity.child_of else None
    holders = (meta.entity, ctx.registry.entity(parent_key) if parent_key else None)
    out = {}
    for locale, suffix in (("zh-CN", "zh"), ("en", "en")):
        parts = [_term_text(holders, target, t, locale) for t in terms(fd)]
        out[f"condition_{suffix}"] = ("；" if suffix == "zh" else "; ").join(parts)
        out[f"entity_{suffix}"] = target.entity.label(locale) or target.entity.name
    return out


def _term_text(
    holders: tuple[EntityDef, EntityDef | None], target: EntityMeta, term: Term, locale: str
) -> str:
    tfd = target.entity.get_field(term.field)
    what = tfd.label(locale) if tfd is not None else term.field
    if term.scope == CONSTANT:
        values = term.value if isinstance(term.value, list) else [term.value]
        shown = (" / " if locale == "en" else "或").join(_shown(tfd, v, locale) for v in values)
        return f"{what}须为{shown}" if locale == "zh-CN" else f"its {what} must be {shown}"
    holder = holders[0] if term.scope == SELF else holders[1]
    sfd = holder.get_field(term.source) if holder is not None else None
    source = sfd.label(locale) if sfd is not None else term.source
    names = {"zh-CN": ("本单", "上级单据"), "en": ("this record", "the parent record")}[locale]
    whose = names[0] if term.scope == SELF else names[1]
    if locale == "zh-CN":
        return f"{what}须与{whose}的{source}相同"
    return f"its {what} must be the {source} of {whose}"


def _shown(tfd: FieldDef | None, value: Any, locale: str) -> str:
    if tfd is not None and tfd.opt("options") and isinstance(value, str):
        return option_label(tfd, value, locale)
    return str(value)


def definition_problems(
    entity: EntityDef, entities: Mapping[str, EntityDef]
) -> Iterator[tuple[str, str]]:
    """Yield (pointer, message) for every reference filter of `entity` that does not fit:
    unknown target fields, unknown sources, `$parent` outside a line item, or a source of
    another kind than the field it is compared with. A target that is not loaded (a
    dependency checked on its own) is taken on trust; unknown targets are reported apart."""
    parent = _parent_of(entity, entities)
    for fd in entity.fields:
        if not fd.opt("filter"):
            continue
        base = f"/properties/{fd.name}/x-formwork/filter"
        if fd.kind.name != "reference":
            yield base, f"a filter needs a reference field; '{fd.name}' is a {fd.kind.name}"
            continue
        target = entities.get(qualify(entity.pack, str(fd.opt("entity"))))
        if target is None:
            continue
        for term in terms(fd):
            for message in _term_problems(entity, parent, target, term):
                yield f"{base}/{term.field}", message


def _parent_of(entity: EntityDef, entities: Mapping[str, EntityDef]) -> EntityDef | None:
    return entities.get(qualify(entity.pack, entity.child_of)) if entity.child_of else None


def _term_problems(
    entity: EntityDef, parent: EntityDef | None, target: EntityDef, term: Term
) -> Iterator[str]:
    tfd = target.get_field(term.field)
    if tfd is None or not tfd.kind.stored or tfd.kind.holds_rows:
        yield f"{target.key} has no stored field '{term.field}'"
        return
    if term.scope == CONSTANT:
        yield from _constant_problems(tfd, term.value)
        return
    holder = entity if term.scope == SELF else parent
    if holder is None:
        yield f"'$parent.{term.source}': {entity.key} is not a line item"
        return
    sfd = holder.get_field(term.source)
    if sfd is None or not sfd.kind.stored:
        yield f"{holder.key} has no stored field '{term.source}'"
    elif not _comparable(sfd, holder, tfd, target):
        yield f"{holder.key}.{term.source} ({sfd.kind.name}) cannot be compared with " + (
            f"{target.key}.{term.field} ({tfd.kind.name})"
        )


def _constant_problems(tfd: FieldDef, value: Any) -> Iterator[str]:
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, dict | list) or item is None:
            yield f"'{item!r}' is not a constant for {tfd.name}"
            continue
        try:
            _stored(tfd, item)
        except (ValueError, TypeError, ArithmeticError) as exc:
            yield f"'{item}' is not a value of {tfd.name}: {exc}"


def _comparable(sfd: FieldDef, holder: EntityDef, tfd: FieldDef, target: EntityDef) -> bool:
    source_to = sfd.kind.join_target(sfd, holder)
    target_to = tfd.kind.join_target(tfd, target)
    if source_to is not None or target_to is not None:
        return source_to == target_to
    return sfd.kind.name == tfd.kind.name
