"""What API views need besides the kernel: the caller's record service and the JSON body."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import current_app, request
from werkzeug.exceptions import RequestEntityTooLarge, UnsupportedMediaType

from formwork import context
from formwork.auth import current_principal
from formwork.hardening import refuse_nul_in
from formwork.runtime.errors import FieldError, ValidationFailed
from formwork.runtime.packs.source import load_json
from formwork.runtime.records import RecordService


def record_service() -> RecordService:
    """Return a record service for the request's principal."""
    principal = current_principal()
    assert principal is not None  # the API's before_request refused anonymous calls
    return context.record_service(principal)


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
        document = load_json(raw, parse_float=Decimal)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValidationFailed([FieldError("/", "malformed_json", {"detail": str(exc)})]) from exc
    refuse_nul_in(document)  # no text column holds a NUL; PostgreSQL refuses it outright
    return document
