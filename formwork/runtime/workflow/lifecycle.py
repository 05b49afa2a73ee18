"""Documents have a lifecycle (DESIGN.md decision 13), as ERP users know it (Frappe's
docstatus, 审核/反审核): a record bound to a process is a draft (editable), then in approval
(read-only: an approver changes only what their task's form declares, through the task),
then approved (read-only) and, when it must change, cancelled (作废) or amended (变更: the
old one cancelled, a new draft linked to it). Rejected and withdrawn requests are editable
again and may be resubmitted.

The state lives in `fw_documents` (one row per record that was ever submitted); the record's
state field shows the same value.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from formwork.runtime.errors import Conflict
from formwork.runtime.workflow.models import DocumentState

DRAFT = "draft"
IN_APPROVAL = "in-approval"
APPROVED = "approved"
REJECTED = "rejected"
WITHDRAWN = "withdrawn"
CANCELLED = "cancelled"
PLATFORM_STATES = (DRAFT, IN_APPROVAL, APPROVED, REJECTED, WITHDRAWN, CANCELLED)
# What an end event may give a record; a binding may add states of its own.
OUTCOMES = (APPROVED, REJECTED, WITHDRAWN)
_EDITABLE = frozenset({DRAFT, REJECTED, WITHDRAWN})


def document(session: Session, entity: str, record_id: int) -> DocumentState | None:
    """Return the lifecycle row of a record (None: never submitted, a draft)."""
    return session.scalars(
        sa.select(DocumentState).where(
            DocumentState.entity == entity, DocumentState.record_id == record_id
        )
    ).first()


def state_of(session: Session, entity: str, record_id: int, stored: Any = None) -> str:
    """Return where a record stands in its lifecycle.

    A record without a lifecycle row was never submitted here: it is a draft, unless its
    state field (`stored`) says otherwise — records loaded as pack data (demo history) or
    kept from before lifecycles were recorded.
    """
    found = document(session, entity, record_id)
    if found is not None:
        return found.state
    return str(stored) if isinstance(stored, str) and stored else DRAFT


def editable_states(binding: Mapping[str, Any] | None) -> frozenset[str]:
    """Return the states in which people may edit, delete and (re)submit a record: draft,
    rejected, withdrawn, and the binding's own outcome states declared `editable`."""
    extra = {
        str(outcome.get("state"))
        for outcome in ((binding or {}).get("outcomes") or {}).values()
        if isinstance(outcome, Mapping) and outcome.get("editable")
    }
    return _EDITABLE | extra


def move(
    session: Session,
    entity: str,
    record_id: int,
    state: str,
    *,
    now: dt.datetime,
    user_id: int | None,
    instance_id: int | None = None,
    reason: str = "",
) -> DocumentState:
    """Put a record in a lifecycle state (in the caller's transaction); return its row."""
    row = document(session, entity, record_id)
    if row is None:
        row = DocumentState(entity=entity, record_id=record_id)
        session.add(row)
    row.state = state
    row.updated_at, row.updated_by = now, user_id
    if instance_id is not None:
        row.instance_id = instance_id
    if reason:
        row.reason = reason[:2000]
    session.flush()
    return row


def refuse_change(
    session: Session,
    entity: str,
    record_id: int,
    binding: Mapping[str, Any] | None,
    verb: str,
    stored: Any = None,
) -> None:
    """Raise Conflict (saying why) unless people may change the record in its state."""
    state = state_of(session, entity, record_id, stored)
    if state in editable_states(binding):
        return
    code = {IN_APPROVAL: "locked_in_approval", CANCELLED: "locked_cancelled"}.get(
        state, "locked_approved"
    )
    raise Conflict(
        f"{entity} {record_id} is {state} and cannot be {verb}"
        + ("; withdraw it first" if state == IN_APPROVAL else "; cancel or amend it instead")
    ).coded(code, state=state, verb=verb)


def refuse_submit(
    session: Session,
    entity: str,
    record_id: int,
    binding: Mapping[str, Any] | None,
    stored: Any = None,
) -> None:
    """Raise Conflict unless the record may be submitted (again) for approval."""
    state = state_of(session, entity, record_id, stored)
    if state in editable_states(binding):
        return
    code = "already_in_approval" if state == IN_APPROVAL else "not_resubmittable"
    raise Conflict(f"{entity} {record_id} is {state}; it cannot be submitted").coded(
        code, state=state
    )
