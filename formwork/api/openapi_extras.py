"""What the OpenAPI document says about every operation at once, and the security log.

Every request may be answered 414 (a query string over the limit, formwork/hardening.py)
and 400: a malformed request (a NUL character in the path, query, form or JSON body, which
no text column holds; a body that does not parse) or a query value that breaks its schema
(formwork/api/conformance.py). Both are added to each operation here so the document lists
every status the API gives.
"""

from __future__ import annotations

from typing import Any

from formwork.api.openapi_platform import problems
from formwork.runtime.security_events import KINDS, MAX_PER_PAGE

STAMP = {"type": "string", "format": "date-time"}


def add_common_responses(document: dict[str, Any]) -> None:
    """Add 414 and 400 to every operation."""
    for item in document.get("paths", {}).values():
        for method, operation in item.items():
            if method == "parameters" or not isinstance(operation, dict):
                continue
            responses = operation.setdefault("responses", {})
            for code, answer in problems(414, 400).items():
                responses.setdefault(code, answer)


def security_paths() -> dict[str, dict[str, Any]]:
    """Return the security log's operation (administrators only)."""
    event = {
        "type": "object",
        "required": ["id", "at", "kind"],
        "properties": {
            "id": {"type": "integer"},
            "at": STAMP,
            "kind": {"type": "string"},
            "user_id": {"type": ["integer", "null"]},
            "username": {"type": ["string", "null"]},
            "ip": {"type": ["string", "null"]},
            "user_agent": {"type": ["string", "null"]},
            "detail": {"type": "object"},
        },
    }
    page = {
        "type": "object",
        "required": ["items", "page", "per_page", "has_more"],
        "properties": {
            "items": {"type": "array", "items": event},
            "page": {"type": "integer"},
            "per_page": {"type": "integer"},
            "has_more": {"type": "boolean"},
        },
    }
    query = [
        ("kind", {"type": "string", "enum": list(KINDS)}),
        ("user_id", {"type": "integer", "minimum": 1}),
        ("username", {"type": "string"}),
        ("since", {"type": "string", "description": "a date (2026-01-31) or ISO moment"}),
        ("until", {"type": "string", "description": "a date (its end) or ISO moment"}),
        ("page", {"type": "integer", "minimum": 1, "maximum": 100_000}),
        ("per_page", {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE}),
    ]
    operation = {
        "summary": "The security log, newest first (administrators)",
        "tags": ["security"],
        "parameters": [
            {"name": name, "in": "query", "required": False, "schema": schema}
            for name, schema in query
        ],
        "responses": {
            "200": {
                "description": "A page of events",
                "content": {"application/json": {"schema": page}},
            },
            **problems(400, 422),
        },
    }
    return {"/api/v1/security-events": {"get": operation}}
