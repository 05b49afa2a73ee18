"""The kernel object: what every part of Formwork shares, built once per process.

`create_app` builds one (and keeps it in `app.extensions["formwork"]`); the CLI and the
worker use the app's; a script or a test may build one without Flask. It holds the engine
and session factories, the definitions registry cache, the event bus, the workflow runtime
with its services, the clock and the principal cache. Blueprints only read it: nothing is
assembled as a side effect of registering a blueprint.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from formwork.runtime.clock import CLOCK_KEY, Clock, clock_from_setting
from formwork.runtime.database import for_writing, make_engine
from formwork.runtime.events import EventBus
from formwork.runtime.imports.jobs import register_import_jobs
from formwork.runtime.principals import PrincipalCache
from formwork.runtime.records import RecordService
from formwork.runtime.registry import Registry, RegistryCache
from formwork.runtime.security import Principal
from formwork.runtime.workflow.service import WorkflowRuntime, WorkflowService


@dataclass(eq=False)
class Kernel:
    """The shared services of one process (see the module's docstring)."""

    engine: sa.Engine
    sessions: sessionmaker[Session]
    write_sessions: sessionmaker[Session]
    definitions: RegistryCache
    events: EventBus
    workflow: WorkflowRuntime
    clock: Clock
    principals: PrincipalCache

    def registry(self, session: Session) -> Registry:
        """Return the effective definitions of the current version."""
        return self.definitions.get(session)

    def records(self, session: Session, principal: Principal) -> RecordService:
        """Return a record service for a principal, on the kernel's clock."""
        return RecordService(session, self.registry(session), principal, self.events, self.clock)

    def workflows(self, session: Session, principal: Principal) -> WorkflowService:
        """Return a workflow service for a principal, on the kernel's clock."""
        return WorkflowService(
            session, principal, self.workflow, self.registry(session), self.events, self.clock
        )

    def definitions_changed(self) -> None:
        """Forget what was derived from the definitions (after a change in this process)."""
        self.definitions.invalidate()
        self.workflow.guard.forget()

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()


def build_kernel(settings: Mapping[str, Any]) -> Kernel:
    """Build the kernel from settings (`DATABASE_URL`, `CLOCK`, `DISPLAY_TIMEZONE`, TTLs,
    `INSTANCE_PATH` for the progress notes of background imports on SQLite)."""
    engine = make_engine(settings["DATABASE_URL"])
    zone = str(settings.get("DISPLAY_TIMEZONE") or "Asia/Shanghai")
    clock = settings.get("CLOCK")
    if not isinstance(clock, Clock):
        clock = clock_from_setting(clock, zone)
    events = EventBus()
    workflow = WorkflowRuntime()
    workflow.guard.subscribe(events)
    kernel = Kernel(
        engine=engine,
        sessions=sessionmaker(engine, expire_on_commit=False, info={CLOCK_KEY: clock}),
        write_sessions=sessionmaker(
            for_writing(engine), expire_on_commit=False, info={CLOCK_KEY: clock}
        ),
        definitions=RegistryCache(float(settings.get("REGISTRY_TTL", 2.0))),
        events=events,
        workflow=workflow,
        clock=clock,
        principals=PrincipalCache(float(settings.get("PRINCIPAL_TTL", 5.0))),
    )
    register_import_jobs(kernel, settings.get("INSTANCE_PATH") or "instance")
    return kernel
