"""Security events from a request: who (the signed-in user), from where (address, browser)."""

from __future__ import annotations

from typing import Any

from flask import g, has_request_context, request

from formwork.context import get_session
from formwork.runtime.security_events import record_event


def client_ip() -> str | None:
    """Return the client's address (the proxy's X-Forwarded-For only when TRUST_PROXY)."""
    return request.remote_addr if has_request_context() else None


def user_agent() -> str | None:
    """Return the request's User-Agent, if any."""
    return request.headers.get("User-Agent") if has_request_context() else None


def record_request_event(
    kind: str, *, user_id: int | None = None, username: str | None = None, **detail: Any
) -> None:
    """Add a security event for this request to the request's transaction (caller commits).

    The user is the request's principal unless `user_id`/`username` say otherwise.
    """
    principal = request_principal()
    if principal is not None and user_id is None and username is None:
        user_id, username = principal.user_id, principal.username
    if user_id is None and username is None and has_request_context():
        user_id, username = _session_user()
    record_event(
        get_session(),
        kind,
        user_id=user_id,
        username=username,
        ip=client_ip(),
        user_agent=user_agent(),
        detail=detail,
    )


def _session_user() -> tuple[int | None, str | None]:
    from flask_login import current_user

    if current_user.is_authenticated:
        return current_user.user.id, current_user.user.username
    return None, None


def request_principal() -> Any:
    """Return the principal this request has already resolved, or None (never one a
    previous request left in a shared app context)."""
    if not has_request_context():
        return None
    if g.get("principal_request") is not request._get_current_object():  # type: ignore[attr-defined]
        return None
    return g.get("principal")
