"""RFC 9457 problem details for every API error."""

from __future__ import annotations

from typing import Any

from flask import Response, json

from formwork.runtime.errors import FieldError

PROBLEM_TYPE = "https://formwork.invalid/problems/"


def problem(
    status: int,
    title: str,
    detail: str,
    kind: str,
    errors: list[FieldError] | None = None,
    locale: str = "zh-CN",
    **extra: Any,
) -> Response:
    """Return an `application/problem+json` response."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE + kind,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = [e.as_dict(locale) for e in errors]
    body.update(extra)
    return Response(
        json.dumps(body, ensure_ascii=False), status=status, mimetype="application/problem+json"
    )
