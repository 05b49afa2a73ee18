"""The security log for administrators: a page and GET /api/v1/security-events."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import jsonify, render_template, request
from flask_babel import gettext as _
from flask_login import login_required

from formwork.api import bp as api_bp
from formwork.auth import bp, current_principal
from formwork.context import get_session
from formwork.runtime.errors import FieldError, PermissionDenied, ValidationFailed
from formwork.runtime.params import whole_number
from formwork.runtime.security_events import KINDS, EventFilter, event_as_dict, list_events

PER_PAGE = 50


def _require_admin() -> None:
    principal = current_principal()
    if principal is None or not principal.is_admin:
        raise PermissionDenied("the security log is for administrators")


def _moment(name: str, end_of_day: bool = False) -> dt.datetime | None:
    """Return a date or ISO moment from the query string (a date's end is the next midnight)."""
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    try:
        if len(raw) == 10:
            day = dt.date.fromisoformat(raw) + dt.timedelta(days=1 if end_of_day else 0)
            return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
        moment = dt.datetime.fromisoformat(raw)
    except ValueError as exc:
        detail = "use a date (2026-01-31) or an ISO 8601 moment"
        raise ValidationFailed([FieldError(f"/{name}", "invalid", {"detail": detail})]) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _number(name: str, default: int, largest: int) -> int:
    raw = request.args.get(name, "").strip()
    if not raw:
        return default
    value = whole_number(raw, 1, largest)
    if value is None:
        detail = f"use a whole number from 1 to {largest}"
        raise ValidationFailed([FieldError(f"/{name}", "invalid", {"detail": detail})])
    return value


def _filter() -> EventFilter:
    kind = request.args.get("kind", "").strip() or None
    if kind is not None and kind not in KINDS:
        detail = f"use one of {', '.join(KINDS)}"
        raise ValidationFailed([FieldError("/kind", "invalid", {"detail": detail})])
    user_id = request.args.get("user_id", "").strip()
    return EventFilter(
        kind=kind,
        user_id=_number("user_id", 0, 2**62) if user_id else None,
        username=request.args.get("username", "").strip() or None,
        since=_moment("since"),
        until=_moment("until", end_of_day=True),
    )


@bp.get("/admin/security-events")
@login_required
def security_events() -> Any:
    """Show the security log (administrators only), filtered and paged."""
    try:
        _require_admin()
    except PermissionDenied:
        message = _("You do not have permission to do this.")
        return render_template("web/error.html", status=403, message=message), 403
    try:
        where, page = _filter(), _number("page", 1, 100_000)
    except ValidationFailed:
        message = _("The filter is not valid: use dates like 2026-01-31.")
        return render_template("web/error.html", status=400, message=message), 400
    events, has_more = list_events(get_session(), where, page, PER_PAGE)
    return render_template(
        "auth/security_events.html",
        events=events,
        kinds=KINDS,
        page=page,
        has_more=has_more,
        args={k: v for k, v in request.args.items() if k != "page"},
    )


@api_bp.get("/security-events", endpoint="security_events")
def security_events_api() -> Any:
    """List security events, newest first (administrators only).

    Query: kind, user_id, username, since, until (date or ISO moment), page, per_page (≤ 200).
    Answer: {"items": [{id, at, kind, user_id, username, ip, user_agent, detail}],
    "page", "per_page", "has_more"}.
    """
    _require_admin()
    where = _filter()
    page, per_page = _number("page", 1, 100_000), _number("per_page", PER_PAGE, 200)
    events, has_more = list_events(get_session(), where, page, per_page)
    return jsonify(
        items=[event_as_dict(e) for e in events], page=page, per_page=per_page, has_more=has_more
    )
