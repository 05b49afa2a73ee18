"""Lifecycle events of records: later subsystems subscribe instead of being called."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from formwork.runtime.definitions import EntityDef
    from formwork.runtime.security import Principal

# before_change: an existing record is about to be updated or deleted (before its input is
# validated), so a record that may not change at all is refused first, with the reason.
EVENTS = ("before_change", "before_save", "after_insert", "on_update", "on_delete")


@dataclass
class RecordEvent:
    """What a handler is told: the record (Python values), its old state, and who acts."""

    name: str
    entity: EntityDef
    record: dict[str, Any]
    old: dict[str, Any] | None
    principal: Principal
    session: Session
    record_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


Handler = Callable[[RecordEvent], None]


class EventBus:
    """Dispatch record events to handlers, optionally filtered by entity key.

    Handlers run inside the save's transaction, so what they write commits or rolls
    back with the record; a handler that raises ValidationFailed stops the save.
    """

    def __init__(self) -> None:
        self._handlers: dict[str, list[tuple[str | None, Handler]]] = {e: [] for e in EVENTS}

    def subscribe(self, event: str, handler: Handler, entity: str | None = None) -> None:
        """Call `handler` for `event` (only for entity key `entity` when given)."""
        if event not in self._handlers:
            raise ValueError(f"unknown event '{event}'; use one of {', '.join(EVENTS)}")
        self._handlers[event].append((entity, handler))

    def emit(self, event: RecordEvent) -> None:
        """Call every handler subscribed to the event, in subscription order."""
        for entity, handler in self._handlers[event.name]:
            if entity is None or entity == event.entity.key:
                handler(event)
