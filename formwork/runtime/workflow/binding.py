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
    service = RecordService(ctx.session, registry, ctx.workflow_principal(), ctx.events, ctx.now)
    with process_changes(ctx.session):
        return service.update(entity, record_id, _json(dict(values)), version)


def update_record(ctx: StepContext, params: dict[str, Any]) -> Any:
    """Service `update_record`: change fields of the bound record (`values`)."""
    values = params.get("values")
    if not isinstance(values, dict) or not values:
        raise ValueError("update_record needs 'values', a non-empty mapping of field to value")
    record = _update(ctx, values)
    return {"id": record["id"], "version": record["version"]}


def create_record(ctx: StepContext, params: dict[str, Any]) -> Any:
    """Service `create_record`: create a record of `entity` with `values`."""
    entity, values = params.get("entity"), params.get("values")
    if not isinstance(entity, str) or not isinstance(values, dict):
        raise ValueError("create_record needs 'entity' (text) and 'values' (a mapping)")
    service = RecordService(
        ctx.session, _registry(ctx), ctx.workflow_principal(), ctx.events, ctx.now
    )
    with process_changes(ctx.session):
        record = service.create(entity, _json(values))
    return {"id": record["id"], "entity": entity}


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
    return {"update_record": update_record, "create_record": create_record, "notify": notify}


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
