"""A task's instructions for the person who does it (`spiffworkflow:instructionsForEndUser`).

The text comes from a pack, so it is never a template of any template engine: only its
`{{ expression }}` placeholders are filled in, each through the safe expression language
over the task's data (checked at deploy like every other expression). The result is plain
text; pages escape it when they show it.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from formwork.runtime.expressions import ExpressionError, evaluate
from formwork.runtime.workflow.models import ProcessInstance, TaskRow
from formwork.runtime.workflow.spiff import find_task

_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
MAX_TEXT = 20_000
UNREADABLE = "[?]"


def render(text: str, data: Mapping[str, Any], now: dt.datetime | None = None) -> str:
    """Return `text` with each `{{ expression }}` replaced by its value over `data`."""

    def value(match: re.Match[str]) -> str:
        try:
            return _shown(evaluate(match.group(1).strip(), data, now=now))
        except ExpressionError:
            return UNREADABLE

    return _PLACEHOLDER.sub(value, text[:MAX_TEXT])


def _shown(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal | int | float | str):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return json.dumps(value, ensure_ascii=False, default=str)


def instructions_of(task: Any) -> str | None:
    """Return a task spec's raw instructions, if it has any."""
    extensions = getattr(task.task_spec, "extensions", None) or {}
    text = extensions.get("instructionsForEndUser")
    return text if isinstance(text, str) and text.strip() else None


def task_instructions(service: Any, row: TaskRow) -> str | None:
    """Return the instructions of a ready task, filled in from its data (None: none)."""
    if row.status != "ready":
        return None
    instance = service.session.get(ProcessInstance, row.instance_id)
    if instance is None:
        return None
    task = find_task(service.read(instance), row.id)
    if task is None:
        return None
    text = instructions_of(task)
    return render(text, task.data, service.clock.local_now()) if text else None
