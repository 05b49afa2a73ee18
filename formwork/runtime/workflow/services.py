"""The services BPMN service tasks call, each declared with its parameters.

Service tasks are the only way a process changes data. Each runs in the step's transaction as
the process principal (its pack's entities and its dependencies', never an administrator),
through RecordService, so changes are validated, versioned and audited, and a failing step
leaves records, state and tasks as they were. Changes to other records are postings: once
per instance and step (`postings.py`), reversed when the approved record is cancelled.

Each service declares its parameters (`ServiceSpec`): `pack check` and deploy refuse an
unknown service, an unknown or missing parameter, and an entity outside the pack's reach.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from formwork.runtime.errors import NotFound, PermissionDenied
from formwork.runtime.workflow import postings
from formwork.runtime.workflow.binding import records, to_json, update_bound
from formwork.runtime.workflow.context import StepContext
from formwork.runtime.workflow.guard import process_changes
from formwork.runtime.workflow.models import Notification
from formwork.runtime.writing import read_row

Service = Callable[[StepContext, dict[str, Any]], Any]


@dataclass(frozen=True)
class Param:
    """One parameter of a service: required or not; `literal` ("entity", "field") means a
    quoted constant, so `pack check` can verify what it names."""

    required: bool = False
    literal: str | None = None


@dataclass(frozen=True)
class ServiceSpec:
    """A service a service task may call: its function and its declared parameters."""

    name: str
    run: Service
    params: Mapping[str, Param] = field(default_factory=dict)
    description: str = ""
    one_of: tuple[tuple[str, ...], ...] = ()  # groups of which at least one is required

    def __call__(self, ctx: StepContext, params: dict[str, Any]) -> Any:
        """Run the service."""
        return self.run(ctx, params)


# -- the services ----------------------------------------------------------------------------


def update_record(ctx: StepContext, params: dict[str, Any]) -> Any:
    """Service `update_record`: change fields of the bound record (`values`), or of another
    record named by `entity` and `id` or `lookup` (a posting, e.g. retire a previous version).

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
    record = update_bound(ctx, values)
    return {"id": record["id"], "version": record["version"]}


def _update_other(ctx: StepContext, params: dict[str, Any], values: dict[str, Any]) -> Any:
    entity = _entity(ctx, params.get("entity"), "update_record")
    claimed = postings.claim(ctx, "update_record", entity)
    if postings.repeated(claimed):
        return dict(claimed.result) if claimed is not None else None
    record_id = _target_id(ctx, entity, params, "update_record")
    values = resolve_lookups(ctx, entity, values)
    service = records(ctx)
    before = service.get(entity, record_id)
    with process_changes(ctx.session):
        record = service.update(entity, record_id, to_json(values), before["version"])
    payload = {
        "before": {k: before.get(k) for k in values},
        "after": {k: record.get(k) for k in values},
    }
    result = {"id": record_id, "entity": entity, "version": record["version"]}
    return postings.done(claimed, record_id, payload, result)


def create_record(ctx: StepContext, params: dict[str, Any]) -> Any:
    """Service `create_record`: create a record of `entity` with `values` (a posting).

    A reference value may be an id or `{"lookup": {"field": value, ...}}`.
    """
    entity, values = params.get("entity"), params.get("values")
    if not isinstance(values, dict):
        raise ValueError("create_record needs 'values' (a mapping)")
    entity = _entity(ctx, entity, "create_record")
    claimed = postings.claim(ctx, "create_record", entity)
    if postings.repeated(claimed):
        return dict(claimed.result) if claimed is not None else None
    values = to_json(resolve_lookups(ctx, entity, values))
    with process_changes(ctx.session):
        record = records(ctx).create(entity, values)
    return postings.done(claimed, record["id"], values, {"id": record["id"], "entity": entity})


def increment_record(ctx: StepContext, params: dict[str, Any]) -> Any:
    """Service `increment_record`: add `by` to a numeric `field` of another record (a
    posting). The record is named by `id` or by `lookup` (exactly one match)."""
    entity, field_name = params.get("entity"), params.get("field")
    if not isinstance(field_name, str):
        raise ValueError("increment_record needs 'field' (text)")
    entity = _entity(ctx, entity, "increment_record")
    claimed = postings.claim(ctx, "increment_record", entity)
    if postings.repeated(claimed):
        return dict(claimed.result) if claimed is not None else None
    record_id = _target_id(ctx, entity, params, "increment_record")
    by = _number(params.get("by"), "increment_record 'by'")
    meta = ctx.registry.meta(entity) if ctx.registry is not None else None
    assert meta is not None
    field_def = meta.entity.get_field(field_name)
    if field_def is None or not field_def.kind.can_aggregate(field_def):
        raise ValueError(f"increment_record: '{entity}.{field_name}' is not a numeric field")
    row = read_row(ctx.session, meta, record_id, lock=True)
    old = row.get(field_name)
    new = (Decimal(str(old)) if old is not None else Decimal(0)) + by
    value: Any = int(new) if field_def.kind.name == "integer" else new
    with process_changes(ctx.session):
        record = records(ctx).update(
            entity, record_id, to_json({field_name: value}), row["version"]
        )
    result = {"id": record_id, "entity": entity, "value": record.get(field_name)}
    payload = {"field": field_name, "by": str(by)}
    return postings.done(claimed, record_id, payload, result)


def find_record(ctx: StepContext, params: dict[str, Any]) -> Any:
    """Service `find_record`: return `field` (or the id) of the first record matching `filters`.

    Filters are `{"field": value}` equalities (`field__op` for other operators, one reference
    hop allowed). The first match by id wins; no match gives null, or an error when
    `required` is true. Use it to resolve an assignee, e.g. the project member whose
    project role is "manager".
    """
    entity, filters = params.get("entity"), params.get("filters")
    if not isinstance(filters, dict) or not filters:
        raise ValueError("find_record needs 'filters' (a non-empty mapping)")
    entity = _entity(ctx, entity, "find_record")
    field_name = params.get("field") or "id"
    meta = _registry(ctx).meta(entity)
    if field_name != "id" and meta.entity.get_field(field_name) is None:
        raise ValueError(f"find_record: '{entity}' has no field '{field_name}'")
    ids = _matching_ids(ctx, entity, filters, limit=1)
    if not ids:
        if params.get("required"):
            raise NotFound(f"find_record: no {entity} matches {to_json(filters)}")
        return None
    if field_name == "id":
        return ids[0]
    return read_row(ctx.session, meta, ids[0]).get(field_name)


def notify(ctx: StepContext, params: dict[str, Any]) -> Any:
    """Service `notify`: leave a message for a user (`user`) or a role (`role`); it shows in
    their inbox."""
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


# -- helpers ---------------------------------------------------------------------------------


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
    _entity(ctx, entity, where)
    ids = _matching_ids(ctx, entity, criteria, limit=2)
    if len(ids) != 1:
        found = "no record" if not ids else "more than one record"
        raise ValueError(f"{where}: {found} of {entity} matches {to_json(dict(criteria))}")
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
            params[param] = [str(to_json(value))]
    conditions = query.conditions(params)
    if query.errors:
        details = "; ".join(f"{e.pointer}: {e.code} {dict(e.params)}" for e in query.errors)
        raise ValueError(f"lookup in {entity}: {details}")
    select = sa.select(meta.table.c.id).select_from(query.from_clause()).where(*conditions)
    rows = ctx.session.execute(select.order_by(meta.table.c.id).limit(limit)).scalars()
    return [int(r) for r in rows]


def _entity(ctx: StepContext, entity: Any, service: str) -> str:
    """Return an entity key the process may act on, or refuse."""
    if not isinstance(entity, str) or not entity:
        raise ValueError(f"{service} needs 'entity' (text)")
    _registry(ctx).meta(entity)  # NotFound for an unknown entity
    if entity not in ctx.reach:
        raise PermissionDenied(
            f"{service}: process '{ctx.instance.process_key}' may not act on '{entity}' "
            "(only its pack's entities and those of the packs it depends on)"
        )
    return entity


def _registry(ctx: StepContext) -> Any:
    if ctx.registry is None:
        raise NotFound("no entity definitions are loaded")
    return ctx.registry


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


ENTITY = Param(required=True, literal="entity")
TARGET = (("id", "lookup"),)


def platform_services() -> dict[str, ServiceSpec]:
    """Return every service the platform itself registers (records, notify, messages)."""
    from formwork.runtime.workflow.messages import event_services

    return {**default_services(), **event_services()}


def default_services() -> dict[str, ServiceSpec]:
    """Return the services the platform registers for BPMN service tasks."""
    specs = (
        ServiceSpec(
            "update_record", update_record,
            {"values": Param(True), "entity": Param(literal="entity"), "id": Param(),
             "lookup": Param()},
            "change the bound record, or another record (a posting)",
        ),
        ServiceSpec(
            "create_record", create_record, {"entity": ENTITY, "values": Param(True)},
            "create a record (a posting)",
        ),
        ServiceSpec(
            "increment_record", increment_record,
            {"entity": ENTITY, "field": Param(True, "field"), "by": Param(True), "id": Param(),
             "lookup": Param()},
            "add to a number of another record (a posting)", TARGET,
        ),
        ServiceSpec(
            "find_record", find_record,
            {"entity": ENTITY, "filters": Param(True), "field": Param(literal="field"),
             "required": Param()},
            "read a field of the first matching record",
        ),
        ServiceSpec(
            "notify", notify,
            {"subject": Param(True), "body": Param(), "user": Param(), "role": Param()},
            "leave a message for a user or a role", (("user", "role"),),
        ),
    )  # fmt: skip
    return {spec.name: spec for spec in specs}
