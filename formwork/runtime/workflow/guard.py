"""Keep records honest while they are in approval.

A record with a running (or failed) instance cannot be edited or deleted by people, and the
state field of a bound entity is written only by its process. Changes made by a process's
service tasks carry a flag on the session, so they pass.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from formwork.runtime.errors import Conflict, FieldError, ValidationFailed
from formwork.runtime.events import EventBus, RecordEvent
from formwork.runtime.workflow.models import ProcessDefinition, ProcessInstance

FLAG = "formwork.workflow_step"
OPEN = ("running", "error")


@contextmanager
def process_changes(session: Session) -> Iterator[None]:
    """Mark the record changes made inside as the process's own."""
    before = session.info.get(FLAG)
    session.info[FLAG] = True
    try:
        yield
    finally:
        session.info[FLAG] = before


class RecordGuard:
    """Refuse edits of records in approval and hand edits of the state field."""

    def __init__(self, ttl: float = 2.0) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._state_fields: dict[str, str] = {}
        self._read_at = -1e9

    def subscribe(self, events: EventBus) -> None:
        """Attach the guard to a bus (before_save and on_delete of every entity)."""
        events.subscribe("before_save", self.before_save)
        events.subscribe("on_delete", self.on_delete)

    def before_save(self, event: RecordEvent) -> None:
        """Refuse a person's change of a record in approval, or of its state field."""
        if event.session.info.get(FLAG):
            return
        state_field = self.state_field(event.session, event.entity)
        if state_field is None:
            return
        if event.record_id is not None:
            _refuse_if_open(event.session, event.entity.key, event.record_id, "changed")
        if not state_field:
            return
        old = (event.old or {}).get(state_field) if event.old is not None else None
        new = event.record.get(state_field)
        if new != old and not (event.old is None and new in (None, "draft")):
            detail = "the approval state is set by the process"
            raise ValidationFailed([FieldError(f"/{state_field}", "invalid", {"detail": detail})])

    def on_delete(self, event: RecordEvent) -> None:
        """Refuse deleting a record in approval."""
        if event.session.info.get(FLAG) or event.record_id is None:
            return
        if self.state_field(event.session, event.entity) is not None:
            _refuse_if_open(event.session, event.entity.key, event.record_id, "deleted")

    def state_field(self, session: Session, entity: Any) -> str | None:
        """Return the state field of a bound entity ("" without one; None: not bound)."""
        option = entity.options.get("workflow") or {}
        if option.get("process"):
            return str(option.get("state_field") or "")
        now = time.monotonic()
        if now - self._read_at > self.ttl:
            with self._lock:
                rows = session.execute(sa.select(ProcessDefinition.binding)).all()
                self._state_fields = {
                    b["entity"]: b.get("state_field") or ""
                    for (b,) in rows
                    if isinstance(b, dict) and b.get("entity")
                }
                self._read_at = now
        return self._state_fields.get(entity.key)

    def forget(self) -> None:
        """Re-read the bindings on next use (after a deploy in this process)."""
        self._read_at = -1e9


def _refuse_if_open(session: Session, entity: str, record_id: int, verb: str) -> None:
    running = session.scalar(
        sa.select(ProcessInstance.id)
        .where(
            ProcessInstance.entity == entity,
            ProcessInstance.record_id == record_id,
            ProcessInstance.status.in_(OPEN),
        )
        .limit(1)
    )
    if running is not None:
        raise Conflict(
            f"{entity} {record_id} is in approval (instance {running}) and cannot be {verb}; "
            "withdraw it first"
        )
