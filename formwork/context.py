"""The Flask side of the kernel: the app's one `Kernel`, the request's session, and the
registry and services every blueprint reads from them.

`create_app` builds the kernel and keeps it in `app.extensions["formwork"]`; blueprints
call the functions here and nothing else assembles services.
"""

from __future__ import annotations

from flask import Flask, current_app, g, has_request_context, request
from sqlalchemy.orm import Session

from formwork.runtime.clock import Clock
from formwork.runtime.errors import NotFound
from formwork.runtime.kernel import Kernel
from formwork.runtime.records import RecordService
from formwork.runtime.registry import Registry
from formwork.runtime.security import Principal
from formwork.runtime.workflow.service import WorkflowService

EXTENSION = "formwork"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def init_app(app: Flask, kernel: Kernel) -> None:
    """Keep the kernel on the app and close the request's session at the end."""
    app.extensions[EXTENSION] = kernel
    app.teardown_appcontext(_close_session)


def kernel() -> Kernel:
    """Return the current app's kernel."""
    return current_app.extensions[EXTENSION]  # type: ignore[no-any-return]


def clock() -> Clock:
    """Return the kernel's clock."""
    return kernel().clock


def get_session() -> Session:
    """Return the current request's session, opening it on first use (writers on SQLite
    take the write lock when their transaction begins)."""
    if "db_session" not in g:
        writes = not has_request_context() or request.method not in SAFE_METHODS
        found = kernel()
        g.db_session = (found.write_sessions if writes else found.sessions)()
    return g.db_session  # type: ignore[no-any-return]


def registry() -> Registry:
    """Return the current effective definitions."""
    return kernel().registry(get_session())


def entity_key(pack: str, entity: str) -> str:
    """Return the key of an existing, top-level entity of an enabled pack, or raise NotFound."""
    key = f"{pack}.{entity}"
    current = registry()
    meta = current.meta(key)
    if not current.is_enabled(key):
        raise NotFound(f"pack '{pack}' is switched off")
    if meta.entity.child_of:
        raise NotFound(f"'{key}' holds line items; reach them through their parent")
    return key


def record_service(principal: Principal) -> RecordService:
    """Return a record service for a principal in the request's session."""
    return kernel().records(get_session(), principal)


def workflow_service(principal: Principal) -> WorkflowService:
    """Return a workflow service for a principal in the request's session."""
    return kernel().workflows(get_session(), principal)


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()
