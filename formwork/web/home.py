"""The home page (recent records, open tasks) and the language switch."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import redirect, render_template, request, session, url_for
from flask_login import current_user, login_required

from formwork.auth import principal_cache
from formwork.context import get_session, registry
from formwork.redirects import redirect_target
from formwork.runtime.errors import NotFound
from formwork.runtime.models import AuditEntry
from formwork.runtime.titles import readable_titles
from formwork.runtime.workflow.tasks import count_open_tasks
from formwork.web import bp
from formwork.web.context import principal
from formwork.web.i18n import LOCALES, current_locale

RECENT = 10


@bp.get("/")
@login_required
def home() -> Any:
    """Show the user's recently touched records and the number of open tasks."""
    from formwork.web.reports import home_dashboards

    return render_template(
        "web/home.html", recent=recent_records(), open_tasks=open_tasks(), **home_dashboards()
    )


def recent_records() -> list[dict[str, Any]]:
    """Return the records the user changed last, newest first, with titles."""
    who = principal()
    last = sa.func.max(AuditEntry.id).label("last")
    rows = (
        get_session()
        .execute(
            sa.select(AuditEntry.entity, AuditEntry.record_id, sa.func.max(AuditEntry.at), last)
            .where(AuditEntry.user_id == who.user_id, AuditEntry.action != "delete")
            .group_by(AuditEntry.entity, AuditEntry.record_id)
            .order_by(last.desc())
            .limit(RECENT)
        )
        .all()
    )
    by_entity: dict[str, set[int]] = {}
    for entity, record_id, _at, _last in rows:
        by_entity.setdefault(entity, set()).add(record_id)
    titles, labels = {}, {}
    locale = current_locale()
    for key, ids in by_entity.items():
        try:
            meta = registry().meta(key)
        except NotFound:
            continue
        if who.can(key, "read"):
            # Only records the user may still read: a link to one they lost would 404.
            titles[key] = readable_titles(get_session(), registry(), key, ids, who)
            labels[key] = meta.entity.label(locale)
    return [
        {
            "entity": labels[key],
            "title": titles[key][record_id],
            "at": at,
            "url": url_for(
                "web.detail", pack=key.split(".")[0], entity=key.split(".")[1], record_id=record_id
            ),
        }
        for key, record_id, at, _last in rows
        if key in titles and record_id in titles[key]
    ]


def open_tasks() -> int:
    """Return how many tasks wait in the user's inbox."""
    return count_open_tasks(get_session(), principal())


@bp.post("/locale")
def set_locale() -> Any:
    """Switch the language for this browser, and for the signed-in user from now on."""
    chosen = request.form.get("locale", "")
    if chosen in LOCALES:
        session["locale"] = chosen
        if current_user.is_authenticated:
            db = get_session()
            user = db.merge(current_user.user)
            user.locale = chosen
            db.commit()
            principal_cache().clear()  # the principal carries the locale
    return redirect(redirect_target(request.form.get("next"), url_for("web.home")))
