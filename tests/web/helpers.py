"""Shared helpers for the page tests: records created through the API layer's service."""

from __future__ import annotations

from typing import Any

from flask import Flask

from formwork.runtime.events import EventBus
from formwork.runtime.records import RecordService
from formwork.runtime.registry import load_registry
from formwork.runtime.security import system_principal


def create(app: Flask, key: str, payload: dict[str, Any], user_id: int | None = None) -> Any:
    """Create a record directly through the runtime and commit; return it."""
    session = app.extensions["formwork"].sessions()
    try:
        principal = system_principal()
        if user_id is not None:
            from dataclasses import replace

            principal = replace(principal, user_id=user_id, username=f"user{user_id}")
        service = RecordService(session, load_registry(session), principal, EventBus())
        record = service.create(key, payload)
        session.commit()
        return record
    finally:
        session.close()


def project(
    app: Flask, code: str = "P-1", name: str = "一号项目", user_id: int | None = None, **extra: Any
) -> Any:
    """Create a sample project."""
    return create(app, "sample.project", {"code": code, "name": name, **extra}, user_id)


def day_sheet_form(project_id: int, **extra: Any) -> list[tuple[str, str]]:
    """Return a complete day-sheet form post with two lines."""
    fields = {
        "project": str(project_id),
        "work_date": "2026-11-20",
        "location": "3号楼",
        "reason": "extra",
        "headcount": "12",
        "rate": "1.250",
        "progress": "40",
        "submitted_at": "2026-11-20T08:30",
        "notes": "备注",
        **extra,
    }
    rows = [
        ("lines-a-id", ""),
        ("lines-a-worker", "张三"),
        ("lines-a-days", "1"),
        ("lines-a-day_rate", "1,200.50"),
        ("lines-b-id", ""),
        ("lines-b-worker", "李四"),
        ("lines-b-days", "0.5"),
        ("lines-b-day_rate", "300"),
    ]
    return [*fields.items(), *rows]
