"""Processes bound to records: record data in, process state out, and the platform services.

Service tasks are the only way a process changes data. Each runs in the step's transaction
through RecordService, so a failing step leaves records, state and tasks as they were.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from formwork.runtime.errors import FieldError, NotFound, ValidationFailed
from formwork.runtime.records import RecordService
from formwork.runtime.workflow.context import StepContext
from formwork.runtime.workflow.guard import process_changes
from formwork.runtime.workflow.models import Notification
from formwork.runtime.writing import read_row

Service = Callable[[StepContext, dict[str, Any]], Any]
STATES = ("draft", "in-approval", "approved", "rejected", "withdrawn")
_SYSTEM = ("created_at", "updated_at", "created_by", "updated_by")


def record_data(ctx: StepContext, entity: str, record_id: int) -> dict[str, Any]:
    """Return a record's stored values (Python values) as the process's starting data."""
    meta = _registry(ctx).meta(entity)
    values = read_row(ctx.session, meta, record_id)
    data = {k: v for k, v in values.items() if k not in _SYSTEM and not k.startswith("_")}
    data["record_id"] = record_id
    data["entity"] = entity
    return data


def set_record_state(ctx: StepContext, state: str) -> None:
    """Write the process state into the bound record's state field (when it has one)."""
    binding = ctx.binding or {}
    field_name = binding.get("state_field")
    if not field_name or ctx.instance.record_id is None or ctx.instance.entity is None:
        return
    _update(ctx, {field_name: state})


def _registry(ctx: StepContext) -> Any:
    if ctx.registry is None:
        raise NotFound("no entity definitions are loaded")
    return ctx.registry


def _update(ctx: StepContext, values: Mapping[str, Any]) -> dict[str, Any]:
    entity, record_id = ctx.instance.entity, ctx.instance.record_id
    if entity is None or record_id is None:
        raise ValidationFailed([FieldError("/", "invalid", {"detail": "no bound record"})])
    registry = _registry(ctx)
    table = registry.meta(entity).table
    version = ctx.session.scalar(sa.select(table.c.version).where(table.c.id == record_id))
    if version is None:
        raise NotFound(f"{entity} {record_id} no longer exists")
    service = RecordService(ctx.session, registry, ctx.workflow_principal(), ctx.events, ctx.clock)
    with process_changes(ctx.session):
        return service.update(entity, record_id, _json(dict(values)), version)


def update_record(ctx: StepContext, params: dict[str, Any]) -> Any:
    """Service `update_record`: change fields of the bound record (`values`), or of another
    record named by `entity` and `id` or `lookup` (e.g. retire the previous version).

    A reference value may be an id or `{"lookup": {"field": value, ...}}`.
    """
    values = params.get("values")
    if not isinstance(values, dict) or not values:
        raise ValueError("update_record needs 'values', a non-empty mapping of field to value")
    if params.get("entity") is not None:
        return _update_other(ctx, params, values)
    entity = ctx.instance.entity
    if entity is not None:
        values = resolve_lookups(ctx, entity, values)
    record = _update(ctx, values)
    return {"id": record["id"], "version": record["version"]}


def _update_other(ctx: StepContext, params: dict[str, Any], values: dict[str, Any]) -> Any:
    entity = params["entity"]
    if not isinstance(entity, str):
        raise ValueError("update_record: 'entity' must be text")
    record_id = _target_id(ctx, entity, params, "update_record")
    table = _registry(ctx).meta(entity).table
    version = ctx.session.scalar(sa.select(table.c.version).where(table.c.id == record_id))
    if version is None:
        raise NotFound(f"{entity} {record_id} does not exist")
    values = resolve_lookups(ctx, entity, values)
    with process_changes(ctx.session):
        record = _records(ctx).update(entity, record_id, _json(values), version)
    return {"id": record_id, "entity": entity, "version": record["version"]}


def create_record(ctx: StepContext, params: dict[str, Any]) -> Any:
    """Service `create_record`: create a record of `entity` with `values`.

    A reference value may be an id or `{"lookup": {"field": value, ...}}`.
    """
    entity, values = params.get("entity"), params.get("values")
    if not isinstance(entity, str) or not isinstance(values, dict):
        raise ValueError("create_record needs 'entity' (text) and 'values' (a mapping)")
    values = resolve_lookups(ctx, entity, values)
    with process_changes(ctx.session):
        record = _records(ctx).create(entity, _json(values))
    return {"id": record["id"], "entity": entity}


def increment_record(ctx: StepContext, params: dict[str, Any]) -> Any:
    """Service `increment_record`: add `by` to a numeric `field` of another record.

    The record is named by `id` or by `lookup` (exactly one match); the change goes through
    RecordService, so it is validated, versioned and audited in the step's transaction.
    """
    entity, field_name = params.get("entity"), params.get("field")
    if not isinstance(entity, str) or not isinstance(field_name, str):
        raise ValueError("increment_record needs 'entity' and 'field' (text)")
    record_id = _target_id(ctx, entity, params, "increment_record")
    by = _number(params.get("by"), "increment_record 'by'")
    registry = _registry(ctx)
    meta = registry.meta(entity)
    field_def = meta.entity.get_field(field_name)
    if field_def is None or not field_def.kind.can_aggregate(field_def):
        raise ValueError(f"increment_record: '{entity}.{field_name}' is not a numeric field")
    row = ctx.session.execute(
        sa.select(meta.table.c[field_name], meta.table.c.version).where(
            meta.table.c.id == record_id
        )
    ).first()
    if row is None:
        raise NotFound(f"{entity} {record_id} does not exist")
    old = field_def.kind.from_db(field_def, row[0])
    new = (Decimal(str(old)) if old is not None else Decimal(0)) + by
    value: Any = int(new) if field_def.kind.name == "integer" else new
    with process_changes(ctx.session):
        record = _records(ctx).update(entity, record_id, _json({field_name: value}), row[1])
    return {"id": record_id, "entity": entity, "value": record.get(field_name)}


def find_record(ctx: StepContext, params: dict[str, Any]) -> Any:
    """Service `find_record`: return `field` (or the id) of the first record matching `filters`.

    Filters are `{"field": value}` equalities (`field__op` for other operators, one reference
    hop allowed). The first match by id wins; no match gives null, or an error when
    `required` is true. Use it to resolve an assignee, e.g. the project member whose
    project role is "manager".
    """
    entity, filters = params.get("entity"), params.get("filters")
    if not isinstance(entity, str) or not isinstance(filters, dict) or not filters:
        raise ValueError("find_record needs 'entity' (text) and 'filters' (a non-empty mapping)")
    field_name = params.get("field") or "id"
    meta = _registry(ctx).meta(entity)
    if field_name != "id" and meta.entity.get_field(field_name) is None:
        raise ValueError(f"find_record: '{entity}' has no field '{field_name}'")
    ids = _matching_ids(ctx, entity, filters, limit=1)
    if not ids:
        if params.get("required"):
            raise NotFound(f"find_record: no {entity} matches {_json(filters)}")
        return None
    if field_name == "id":
        return ids[0]
    return read_row(ctx.session, meta, ids[0]).get(field_name)


def resolve_lookups(ctx: StepContext, entity: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """Replace `{"lookup": {...}}` reference values (also in line items) by record ids."""
    registry = _registry(ctx)
    definition = registry.entity(entity)
    out = dict(values)
    for name, value in values.items():
        field_def = definition.get_field(name)
        if field_def is None or not isinstance(value, Mapping | list):
            continue
        target = field_def.kind.join_target(field_def, definition)
        if isinstance(value, Mapping) and "lookup" in value and target is not None:
            out[name] = lookup_id(ctx, target, value["lookup"], f"{entity}.{name}")
        elif isinstance(value, list) and field_def.kind.name == "children":
            child = registry.entity(_child_key(definition, field_def)).key
            out[name] = [
                resolve_lookups(ctx, child, v) if isinstance(v, Mapping) else v for v in value
            ]
    return out


def lookup_id(ctx: StepContext, entity: str, criteria: Any, where: str) -> int:
    """Return the id of the one record of `entity` matching `criteria` (else an error)."""
    if not isinstance(criteria, Mapping) or not criteria:
        raise ValueError(f"{where}: 'lookup' needs a non-empty mapping of field to value")
    ids = _matching_ids(ctx, entity, criteria, limit=2)
    if len(ids) != 1:
        found = "no record" if not ids else "more than one record"
        raise ValueError(f"{where}: {found} of {entity} matches {_json(dict(criteria))}")
    return ids[0]


def _matching_ids(
    ctx: StepContext, entity: str, criteria: Mapping[str, Any], limit: int
) -> list[int]:
    from formwork.runtime.query import Query

    meta = _registry(ctx).meta(entity)
    query = Query(_registry(ctx), meta)
    params: dict[str, list[str]] = {}
    for key, value in criteria.items():
        if value is None:
            params[f"{key}__isnull"] = ["true"]
        else:
            param = key if "__" in key else f"{key}__eq"
            params[param] = [str(_json(value))]
    conditions = query.conditions(params)
    if query.errors:
        details = "; ".join(f"{e.pointer}: {e.code} {dict(e.params)}" for e in query.errors)
        raise ValueError(f"lookup in {entity}: {details}")
    select = sa.select(meta.table.c.id).select_from(query.from_clause()).where(*conditions)
    rows = ctx.session.execute(select.order_by(meta.table.c.id).limit(limit)).scalars()
    return [int(r) for r in rows]


def _target_id(ctx: StepContext, entity: str, params: Mapping[str, Any], service: str) -> int:
    if params.get("id") is not None:
        try:
            return int(params["id"])
        except (TypeError, ValueError):
            raise ValueError(f"{service}: 'id' must be a record id") from None
    if params.get("lookup") is not None:
        return lookup_id(ctx, entity, params["lookup"], f"{service} {entity}")
    raise ValueError(f"{service} needs 'id' or 'lookup'")


def _number(value: Any, what: str) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{what} must be a number")
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        raise ValueError(f"{what} must be a number, not {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"{what} must be a finite number")
    return number


def _child_key(definition: Any, field_def: Any) -> str:
    from formwork.runtime.definitions import qualify

    return qualify(definition.pack, field_def.opt("entity"))


def _records(ctx: StepContext) -> RecordService:
    return RecordService(
        ctx.session, _registry(ctx), ctx.workflow_principal(), ctx.events, ctx.clock
    )


def notify(ctx: StepContext, params: dict[str, Any]) -> Any:
    """Service `notify`: leave a message for a user (`user`) or a role (`role`)."""
    subject = params.get("subject")
    if not isinstance(subject, str) or not subject:
        raise ValueError("notify needs a 'subject'")
    user, role = params.get("user"), params.get("role")
    if user is None and role is None:
        raise ValueError("notify needs a 'user' or a 'role'")
    note = Notification(
        user_id=int(user) if user is not None else None,
        role=str(role) if role is not None else None,
        subject=subject[:255],
        body=str(params.get("body") or ""),
        instance_id=ctx.instance.id,
        created_at=ctx.now,
    )
    ctx.session.add(note)
    ctx.session.flush()
    return {"notification": note.id}


def default_services() -> dict[str, Service]:
    """Return the services the platform registers for BPMN service tasks."""
    return {
        "update_record": update_record,
        "create_record": create_record,
        "increment_record": increment_record,
        "find_record": find_record,
        "notify": notify,
    }


def _json(value: Any) -> Any:
    """Return process values as the JSON the records API takes (exact decimals as text)."""
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


to_json = _json
