"""RFC 9457 problem details for every API error."""

from __future__ import annotations

from typing import Any

from flask import Response, json
from werkzeug.exceptions import HTTPException

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


def http_problem(exc: HTTPException) -> Response:
    """Return a problem for an HTTP error, keeping the headers it must carry (Allow on a
    405, WWW-Authenticate on a 401, Retry-After...)."""
    status = exc.code or 500
    kind = exc.name.lower().replace(" ", "-")
    response = problem(status, exc.name, exc.description or exc.name, kind)
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response
