"""Reminders a process leaves (`notify` service tasks): the ones addressed to a user or to
one of their roles, newest first, and marking one read.

This is the inbox's list; a full notification centre (per-user settings, email through the
outbox) is the next step (see the [daily-use] issue).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from formwork.runtime.errors import NotFound
from formwork.runtime.security import Principal
from formwork.runtime.workflow.models import Notification


def notifications_for(
    session: Session, who: Principal, unread_only: bool = True, limit: int = 50
) -> list[dict[str, Any]]:
    """Return the reminders addressed to the principal or to one of their roles."""
    mine = Notification.user_id == who.user_id
    if who.roles:
        mine = sa.or_(mine, Notification.role.in_(who.roles))
    query = sa.select(Notification).where(mine)
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    rows = session.scalars(query.order_by(Notification.id.desc()).limit(limit))
    return [_json(row) for row in rows]


def mark_read(session: Session, who: Principal, notification_id: int, now: dt.datetime) -> None:
    """Mark a reminder addressed to the principal (or their role) read."""
    row = session.get(Notification, notification_id)
    if row is None or not (row.user_id == who.user_id or (row.role and row.role in who.roles)):
        raise NotFound(f"no notification {notification_id}")
    row.read_at = row.read_at or now
    session.flush()


def _json(row: Notification) -> dict[str, Any]:
    at = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=dt.UTC)
    return {
        "id": row.id,
        "subject": row.subject,
        "body": row.body,
        "user_id": row.user_id,
        "role": row.role,
        "instance_id": row.instance_id,
        "created_at": at.isoformat(),
        "read": row.read_at is not None,
    }
