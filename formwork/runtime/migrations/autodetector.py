"""Turn the difference between two sets of entity definitions into schema operations."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence

from formwork.runtime.definitions import EntityDef, FieldDef, qualify
from formwork.runtime.migrations.conversions import storage_change
from formwork.runtime.migrations.operations import (
    AddCompositeIndex,
    AddField,
    AddIndex,
    AlterField,
    CreateEntity,
    DropEntity,
    Operation,
    RemoveCompositeIndex,
    RemoveField,
    RemoveIndex,
    RenameEntity,
    RenameField,
)
from formwork.runtime.storage import composite_indexes, table_columns


def detect(old: Mapping[str, EntityDef], new: Mapping[str, EntityDef]) -> list[Operation]:
    """Return the operations that turn the schema of `old` into that of `new` (keys `pack.name`).

    Order: entity renames, then new tables (referenced ones first), then field changes entity by
    entity, then dropped tables (referencing ones first), so every step finds what it needs.
    """
    renames = _entity_renames(old, new)
    created = [key for key in new if key not in old and key not in renames.values()]
    dropped = [key for key in old if key not in new and key not in renames]
    ops: list[Operation] = []
    for old_key, new_key in sorted(renames.items()):
        before, after = old[old_key], new[new_key]
        ops.append(
            RenameEntity(
                after.pack,
                before.name,
                after.name,
                before.table_name,
                after.table_name,
                dict(after.document),
            )
        )
    for key in _dependency_order([new[k] for k in created]):
        entity = new[key]
        ops.append(CreateEntity(entity.pack, entity.name, entity.table_name, dict(entity.document)))
    pairs = {new_key: old[old_key] for old_key, new_key in renames.items()}
    pairs.update({key: old[key] for key in new if key in old})
    for key in sorted(pairs):
        ops += detect_fields(pairs[key], new[key], renames)
    for key in reversed(_dependency_order([old[k] for k in dropped])):
        entity = old[key]
        ops.append(DropEntity(entity.pack, entity.name, entity.table_name, dict(entity.document)))
    return ops


def detect_fields(
    old: EntityDef, new: EntityDef, renamed_entities: Mapping[str, str] | None = None
) -> list[Operation]:
    """Return the field operations that turn `old`'s table into `new`'s (already renamed).

    `renamed_entities` maps old entity keys to new ones: a reference to a renamed entity still
    points at the same rows (the table is renamed, the ids stay), so it is not a change.
    """
    renamed_entities = renamed_entities or {}
    old_fields = {f.name: _retarget(f, old.pack, renamed_entities) for f in old.stored_fields()}
    new_fields = {f.name: f for f in new.stored_fields()}
    renamed = _field_renames(old_fields, new_fields)
    matched = {name: old_fields[name] for name in new_fields if name in old_fields}
    matched.update({new_name: old_fields[old_name] for old_name, new_name in renamed.items()})
    args = (new.pack, new.name, new.table_name)
    renames: list[Operation] = [
        RenameField(*args, old_name, new_name, dict(new_fields[new_name].schema))
        for old_name, new_name in sorted(renamed.items())
    ]
    removed_indexes, alters, added_indexes = _changes(args, matched, new_fields)
    removes: list[Operation] = [
        RemoveField(*args, name, dict(old_fields[name].schema))
        for name in sorted(old_fields)
        if name not in new_fields and name not in renamed
    ]
    adds: list[Operation] = [
        AddField(*args, name, dict(new_fields[name].schema))
        for name in sorted(new_fields)
        if name not in matched
    ]
    dropped, created = _composite_changes(args, old, new, alters)
    # Indexes go before type changes and come back after them, so a unique constraint is
    # checked against the converted values. Composite indexes over a renamed, altered or
    # removed field go first and come back last (a SQLite rebuild cannot carry them across).
    return dropped + renames + removed_indexes + alters + removes + adds + added_indexes + created


def _field_renames(old: Mapping[str, FieldDef], new: Mapping[str, FieldDef]) -> dict[str, str]:
    """Return {old name: new name} for new fields whose `renamed_from` names a vanished one."""
    return {
        f.opt("renamed_from"): f.name
        for f in new.values()
        if f.opt("renamed_from") in old and f.opt("renamed_from") not in new
    }


def _changes(
    args: tuple[str, str, str], matched: Mapping[str, FieldDef], new: Mapping[str, FieldDef]
) -> tuple[list[Operation], list[Operation], list[Operation]]:
    """Return (indexes to remove, type changes, indexes to add) of fields present on both sides."""
    removed: list[Operation] = []
    alters: list[Operation] = []
    added: list[Operation] = []
    pack, entity, _table = args
    for name in sorted(matched):
        before, after = matched[name], new[name]
        change = storage_change(pack, entity, _named(before, name), after)
        if change != "same":
            alters.append(AlterField(*args, name, dict(before.schema), dict(after.schema), change))
        for unique, was, now in _index_states(before, after):
            if was and not now:
                removed.append(RemoveIndex(*args, name, unique))
            elif now and not was:
                added.append(AddIndex(*args, name, unique))
    return removed, alters, added


def _composite_changes(
    args: tuple[str, str, str], old: EntityDef, new: EntityDef, alters: Sequence[Operation]
) -> tuple[list[Operation], list[Operation]]:
    """Return (composite indexes to drop, composite indexes to create).

    An index is the same when its name, columns and uniqueness are (the old one named as in the
    new table); one over an altered column is dropped and created again all the same.
    """
    altered = {
        column.name
        for field in (new.field_map[op.field] for op in alters if isinstance(op, AlterField))
        for column in field.kind.columns(field, new)
    }
    before = composite_indexes(old, new.table_name)
    after = composite_indexes(new)
    dropped = [i for i in before if i not in after or altered & set(i.columns)]
    created = [i for i in after if i not in before or i in dropped]
    return (
        [RemoveCompositeIndex(*args, *index) for index in dropped],
        [AddCompositeIndex(*args, *index) for index in created],
    )


def describe_plan(ops: Iterable[Operation]) -> list[str]:
    """Return one line per operation, destructive ones marked."""
    return [f"{op.describe()}{'  [destructive]' if op.destructive else ''}" for op in ops]


def _entity_renames(old: Mapping[str, EntityDef], new: Mapping[str, EntityDef]) -> dict[str, str]:
    """Return {old key: new key} for new entities whose `renamed_from` names a vanished one."""
    renames: dict[str, str] = {}
    for key, entity in sorted(new.items()):
        source = entity.options.get("renamed_from")
        old_key = f"{entity.pack}.{source}"
        if source and key not in old and old_key in old and old_key not in new:
            renames[old_key] = key
    return renames


def _retarget(field: FieldDef, pack: str, renamed_entities: Mapping[str, str]) -> FieldDef:
    """Return the field pointing at its target's new name when the target was renamed."""
    target = field.opt("entity")
    new_key = renamed_entities.get(qualify(pack, target)) if target else None
    if not new_key:
        return field
    new_pack, new_name = new_key.split(".", 1)
    schema = copy.deepcopy(dict(field.schema))
    schema["x-formwork"]["entity"] = new_name if new_pack == pack else new_key
    return FieldDef(field.name, field.kind, schema, field.required)


def _named(field: FieldDef, name: str) -> FieldDef:
    """Return the field under `name` (a renamed field is compared under its new name)."""
    return FieldDef(name, field.kind, field.schema, field.required)


def _index_states(old: FieldDef, new: FieldDef) -> list[tuple[bool, bool, bool]]:
    """Return (unique, had it, has it) for the unique constraint and for the plain index."""
    return [
        (True, old.unique, new.unique),
        (False, old.indexed and not old.unique, new.indexed and not new.unique),
    ]


def _dependency_order(entities: Sequence[EntityDef]) -> list[str]:
    """Return entity keys so that a table comes after the tables its foreign keys point at."""
    by_table = {e.table_name: e.key for e in entities}
    needs = {
        e.key: {by_table[t] for t in _referenced_tables(e) if t in by_table} - {e.key}
        for e in entities
    }
    order: list[str] = []
    while needs:
        ready = sorted(key for key, deps in needs.items() if not deps - set(order))
        if not ready:  # a cycle: keep the rest in name order rather than loop forever
            ready = sorted(needs)
        for key in ready:
            order.append(key)
            del needs[key]
    return order


def _referenced_tables(entity: EntityDef) -> set[str]:
    """Return the tables the entity's foreign keys point at (its parent's among them)."""
    return {
        fk.target_fullname.rsplit(".", 1)[0]
        for column in table_columns(entity)
        for fk in column.foreign_keys
    }
