"""What API views need from the app: the session, the registry and a record service."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import current_app, request
from werkzeug.exceptions import RequestEntityTooLarge, UnsupportedMediaType

from formwork.auth import current_principal
from formwork.db import get_session
from formwork.runtime.errors import FieldError, NotFound, ValidationFailed
from formwork.runtime.packs.source import load_json
from formwork.runtime.records import RecordService
from formwork.runtime.registry import Registry


def registry() -> Registry:
    """Return the current registry of effective definitions."""
    return current_app.extensions["formwork.registry"].get(get_session())  # type: ignore[no-any-return]


def record_service() -> RecordService:
    """Return a record service for the request's principal."""
    principal = current_principal()
    assert principal is not None  # the API's before_request refused anonymous calls
    return RecordService(
        get_session(), registry(), principal, current_app.extensions["formwork.events"]
    )


def entity_key(pack: str, entity: str) -> str:
    """Return the key of an existing, top-level entity, or raise NotFound."""
    key = f"{pack}.{entity}"
    current = registry()
    meta = current.meta(key)
    if not current.is_enabled(key):
        raise NotFound(f"pack '{pack}' is switched off")
    if meta.entity.child_of:
        raise NotFound(f"'{key}' holds line items; reach them through their parent")
    return key


def json_body() -> Any:
    """Return the request's JSON body with numbers as exact Decimals (size-limited)."""
    limit = current_app.config["API_MAX_BODY"]
    if request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge(f"the body is larger than {limit} bytes")
    if not (request.mimetype or "").endswith("json"):
        raise UnsupportedMediaType("send the body as application/json")
    raw = request.stream.read(limit + 1)
    if len(raw) > limit:
        raise RequestEntityTooLarge(f"the body is larger than {limit} bytes")
    try:
        # load_json: also refuses 100,000 nested arrays (RecursionError) and 5,000-digit ints.
        return load_json(raw, parse_float=Decimal)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValidationFailed([FieldError("/", "malformed_json", {"detail": str(exc)})]) from exc
