"""Keep bound records honest: the document lifecycle, enforced on every save and delete.

A record bound to a process may be changed or deleted by people only while it is editable
(draft, rejected, withdrawn): in approval it changes only through its tasks, approved or
cancelled only through cancel/amend. Its state field, and fields declared `set_by: process`,
are written only by the process. Changes made by a process (its service tasks, a task's
declared form fields, a cancellation's reversal) carry a flag on the session, so they pass.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from formwork.runtime.errors import FieldError, ValidationFailed
from formwork.runtime.events import EventBus, RecordEvent
from formwork.runtime.workflow.lifecycle import refuse_change
from formwork.runtime.workflow.models import ProcessDefinition

FLAG = "formwork.workflow_step"


@contextmanager
def process_changes(session: Session) -> Iterator[None]:
    """Mark the record changes made inside as the process's own."""
    before = session.info.get(FLAG)
    session.info[FLAG] = True
    try:
        yield
    finally:
        session.info[FLAG] = before


def by_process(session: Session) -> bool:
    """Return True inside `process_changes`."""
    return bool(session.info.get(FLAG))


class RecordGuard:
    """Refuse people's edits of records that are not editable, and of process fields."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Bindings of processes deployed by hand, keyed by the newest definition id: a new
        # deploy (in any process) changes the key, so the cache is never stale.
        self._deployed: tuple[int, dict[str, dict[str, Any]]] = (-1, {})

    def subscribe(self, events: EventBus) -> None:
        """Attach the guard to a bus: before a change (update or delete, before the input is
        even validated) and before a save (the state field) of every entity."""
        events.subscribe("before_change", self.before_change)
        events.subscribe("before_save", self.before_save)

    def before_change(self, event: RecordEvent) -> None:
        """Refuse a person's change or deletion of a record that is not editable."""
        if by_process(event.session) or event.record_id is None:
            return
        binding = self.binding(event.session, event.entity)
        if binding is None:
            return
        state_field = binding.get("state_field")
        stored = (event.old or {}).get(state_field) if state_field else None
        refuse_change(
            event.session, event.entity.key, event.record_id, binding, "changed or deleted", stored
        )

    def before_save(self, event: RecordEvent) -> None:
        """Refuse a person's setting of the state field (the process's alone)."""
        if by_process(event.session):
            return
        binding = self.binding(event.session, event.entity)
        state_field = (binding or {}).get("state_field")
        if state_field:
            _refuse_state_change(event, str(state_field))

    def binding(self, session: Session, entity: Any) -> dict[str, Any] | None:
        """Return the binding of an entity to a process (None: not bound)."""
        option = entity.options.get("workflow") or {}
        if option.get("process"):
            return dict(option)
        return self._deployed_bindings(session).get(entity.key)

    def _deployed_bindings(self, session: Session) -> dict[str, dict[str, Any]]:
        newest = session.scalar(sa.select(sa.func.max(ProcessDefinition.id))) or 0
        key, found = self._deployed
        if key == newest:
            return found
        rows = session.execute(
            sa.select(ProcessDefinition.binding).order_by(ProcessDefinition.id)
        ).all()
        found = {
            b["entity"]: dict(b) for (b,) in rows if isinstance(b, Mapping) and b.get("entity")
        }
        with self._lock:
            self._deployed = (newest, found)
        return found

    def forget(self) -> None:
        """Re-read the deployed bindings on next use."""
        with self._lock:
            self._deployed = (-1, {})


def _refuse_state_change(event: RecordEvent, state_field: str) -> None:
    old = (event.old or {}).get(state_field) if event.old is not None else None
    new = event.record.get(state_field)
    if new != old and not (event.old is None and new in (None, "draft")):
        raise ValidationFailed([FieldError(f"/{state_field}", "set_by_process")])
