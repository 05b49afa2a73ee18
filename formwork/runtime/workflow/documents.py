"""Cancel (作废) and amend (变更) an approved record, and what a record's page shows about its
lifecycle.

Changing an approved record is an explicit action by a role granted it: `cancel` reverses
what the approval posted (reversing entries, never a silent delete) and marks the record
cancelled; `amend` does the same and makes a new draft, a copy linked to the old record, to
be changed and submitted again. Both happen in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from formwork.runtime.errors import Conflict, FieldError, NotFound, ValidationFailed
from formwork.runtime.registry import EntityMeta
from formwork.runtime.security import Principal, row_condition
from formwork.runtime.workflow.binding import records, set_record_state
from formwork.runtime.workflow.guard import process_changes
from formwork.runtime.workflow.lifecycle import (
    APPROVED,
    CANCELLED,
    DRAFT,
    document,
    editable_states,
    move,
    state_of,
)
from formwork.runtime.workflow.models import HistoryEntry, ProcessInstance
from formwork.runtime.workflow.postings import reverse_instance
from formwork.runtime.workflow.service import WorkflowService

MAX_REASON = 2000


def cancel(service: WorkflowService, entity: str, record_id: int, reason: Any) -> dict[str, Any]:
    """Cancel an approved record: reverse its approval's postings, mark it cancelled."""
    reason = _reason(reason)
    _require(service, entity, record_id, "cancel")
    reversed_ids = _cancel(service, entity, record_id, reason)
    return lifecycle(service, entity, record_id) | {"reversed": reversed_ids}


def amend(service: WorkflowService, entity: str, record_id: int, reason: Any) -> dict[str, Any]:
    """Amend an approved (or cancelled) record: cancel it if approved, and create a new
    draft copied from it, linked both ways. Return the new record."""
    reason = _reason(reason)
    _require(service, entity, record_id, "amend")
    service.principal.require(entity, "create")
    source = service_records(service).get(entity, record_id)
    if _state(service, entity, record_id) != CANCELLED:
        _cancel(service, entity, record_id, reason)
    assert service.registry is not None
    state_field = (_binding(service, entity) or {}).get("state_field")
    payload = draft_copy(service.registry.meta(entity), source, state_field)
    copy = service_records(service).create(entity, payload)
    now, user = service.now, service.principal.user_id
    move(service.session, entity, copy["id"], DRAFT, now=now, user_id=user)
    old = document(service.session, entity, record_id)
    new = document(service.session, entity, copy["id"])
    assert old is not None and new is not None
    old.amended_to, new.amended_from = copy["id"], record_id
    service.session.flush()
    return copy


def lifecycle(service: WorkflowService, entity: str, record_id: int) -> dict[str, Any]:
    """Return where a record stands, its approval instance, its amendment links and what
    the principal may do with it now."""
    state = _state(service, entity, record_id)
    found = document(service.session, entity, record_id)
    who = service.principal
    editable = state in editable_states(_binding(service, entity))
    return {
        "state": state,
        "instance_id": found.instance_id if found is not None else None,
        "amended_from": found.amended_from if found is not None else None,
        "amended_to": found.amended_to if found is not None else None,
        "reason": found.reason if found is not None else "",
        "editable": editable,
        "can": {
            "update": editable and who.can(entity, "update"),
            "delete": editable and who.can(entity, "delete"),
            "submit": editable and who.can(entity, "submit"),
            "cancel": state == APPROVED and who.can(entity, "cancel"),
            "amend": state in (APPROVED, CANCELLED) and who.can(entity, "amend"),
        },
    }


def draft_copy(
    meta: EntityMeta, record: Mapping[str, Any], state_field: str | None = None
) -> dict[str, Any]:
    """Return what a new draft copies from a record: the fields people fill in (not computed
    values, numbers, the state or process-set fields), line items without their ids."""
    out: dict[str, Any] = {}
    for fd in meta.entity.fields:
        if fd.kind.holds_rows:
            child = dict(meta.children)[fd.name]
            out[fd.name] = [draft_copy(child, row) for row in record.get(fd.name) or []]
        elif _copied(fd, state_field) and record.get(fd.name) is not None:
            out[fd.name] = record[fd.name]
    return out


def _copied(fd: Any, state_field: str | None) -> bool:
    return not (
        fd.read_only or fd.opt("set_by") == "process" or fd.opt("from_parent")
        or fd.name == state_field
    )  # fmt: skip


def _cancel(service: WorkflowService, entity: str, record_id: int, reason: str) -> list[int]:
    state = _state(service, entity, record_id)
    if state != APPROVED:
        raise Conflict(f"{entity} {record_id} is {state}; only an approved record can be cancelled")
    instance = _approving_instance(service, entity, record_id)
    if instance is None:  # approved before lifecycles were recorded: nothing was posted here
        move(service.session, entity, record_id, CANCELLED, now=service.now,
             user_id=service.principal.user_id, reason=reason)  # fmt: skip
        _mirror_state(service, entity, record_id)
        return []
    ctx = service.context_for(instance)
    with process_changes(service.session):
        reversed_ids = reverse_instance(ctx, records(ctx))
    set_record_state(ctx, CANCELLED)
    move(service.session, entity, record_id, CANCELLED, now=ctx.now, user_id=ctx.actor.user_id,
         reason=reason)  # fmt: skip
    ctx.history("cancel", comment=reason, details={"reversed": reversed_ids})
    return reversed_ids


def _approving_instance(
    service: WorkflowService, entity: str, record_id: int
) -> ProcessInstance | None:
    found = document(service.session, entity, record_id)
    if found is not None and found.instance_id is not None:
        return service.session.get(ProcessInstance, found.instance_id)
    return None


def _mirror_state(service: WorkflowService, entity: str, record_id: int) -> None:
    """Show the cancelled state in the record's state field (a record with no instance)."""
    name = (_binding(service, entity) or {}).get("state_field")
    if not name:
        return
    assert service.registry is not None
    table = service.registry.meta(entity).table
    with process_changes(service.session):
        service.session.execute(
            sa.update(table).where(table.c.id == record_id).values({name: CANCELLED})
        )


def _require(service: WorkflowService, entity: str, record_id: int, action: str) -> None:
    assert service.registry is not None
    service.principal.require(entity, action)
    meta = service.registry.meta(entity)
    condition = row_condition(service.registry, service.principal, meta, action, service.session)
    query = sa.select(meta.table.c.id).where(meta.table.c.id == record_id)
    if condition is not None:
        query = query.where(condition)
    if service.session.scalar(query) is None:
        raise NotFound(f"{entity} {record_id} does not exist")


def _state(service: WorkflowService, entity: str, record_id: int) -> str:
    assert service.registry is not None
    name = (_binding(service, entity) or {}).get("state_field")
    table = service.registry.meta(entity).table
    stored = None
    if name and name in table.c:
        stored = service.session.scalar(sa.select(table.c[name]).where(table.c.id == record_id))
    return state_of(service.session, entity, record_id, stored)


def _binding(service: WorkflowService, entity: str) -> dict[str, Any] | None:
    assert service.registry is not None
    return service.runtime.guard.binding(service.session, service.registry.entity(entity))


def service_records(service: WorkflowService) -> Any:
    """Return a records service acting as the service's own principal."""
    from formwork.runtime.records import RecordService

    assert service.registry is not None
    return RecordService(
        service.session, service.registry, service.principal, service.events, service.clock
    )


def _reason(reason: Any) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationFailed([FieldError("/reason", "comment_required")])
    if len(reason) > MAX_REASON:
        raise ValidationFailed([FieldError("/reason", "max_length", {"limit": MAX_REASON})])
    return reason.strip()


def may_withdraw(session: Any, instance: ProcessInstance | None, who: Principal) -> bool:
    """Return True when `who` submitted a running instance nobody has acted on yet."""
    from formwork.runtime.workflow.actions import ACTED

    if instance is None or instance.status != "running" or instance.started_by != who.user_id:
        return False
    acted = session.scalar(
        sa.select(HistoryEntry.id)
        .where(HistoryEntry.instance_id == instance.id, HistoryEntry.action.in_(ACTED))
        .limit(1)
    )
    return acted is None
