"""What one workflow step works with: session, actor, registry, the instance and the clock."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from formwork.runtime.clock import DEFAULT_ZONE, Clock
from formwork.runtime.errors import RuntimeFailure
from formwork.runtime.events import EventBus
from formwork.runtime.registry import Registry
from formwork.runtime.security import Principal, process_principal
from formwork.runtime.workflow.models import HistoryEntry, ProcessInstance


class StepFailed(RuntimeFailure):
    """The engine raised while running a step; nothing of the step was kept."""

    status = 422
    title = "Workflow step failed"
    kind = "step-failed"

    def __init__(
        self,
        message: str,
        instance_id: int | None = None,
        *,
        step: str | None = None,
        element: str | None = None,
        cause: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.instance_id = instance_id
        # Where and why (see workflow/errors.py): the step's name, the BPMN element id, the
        # cause, and the error code (a service's, or the kind of what failed).
        self.step, self.element, self.cause, self.code = step, element, cause, code


@dataclass
class StepContext:
    """The explicit context of one step; service tasks receive it."""

    session: Session
    actor: Principal
    registry: Registry | None
    events: EventBus
    instance: ProcessInstance
    now: dt.datetime
    binding: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    zone: str = DEFAULT_ZONE
    # The entities the process may act on: its pack's and its declared dependencies'.
    reach: frozenset[str] = frozenset()
    # The BPMN element whose service is running and the id of that run of it (a task of the
    # workflow): a posting's idempotency key.
    element: str | None = None
    run: str = ""

    @property
    def clock(self) -> Clock:
        """Return a clock fixed at the step's moment (one step, one moment)."""
        return Clock(self.now, self.zone)

    def workflow_principal(self) -> Principal:
        """Return the process principal: every action on the entities the process reaches
        (its pack's and its dependencies'), nothing else, and never an administrator. Its
        changes are attributed to the person whose step ran it."""
        return process_principal(self.instance.process_key, self.reach, self.actor)

    def history(
        self,
        action: str,
        *,
        task_id: str | None = None,
        step: str | None = None,
        comment: str = "",
        details: dict[str, Any] | None = None,
    ) -> None:
        """Record one action on the instance."""
        self.session.add(
            HistoryEntry(
                instance_id=self.instance.id,
                task_id=task_id,
                step=step,
                action=action,
                comment=comment or "",
                details=details or {},
                user_id=self.actor.user_id,
                at=self.now,
            )
        )
