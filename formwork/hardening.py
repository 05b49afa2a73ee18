"""Web hardening: security headers and a strict Content-Security-Policy on every response,
request size limits, and clear answers (problem+json or a page) when a limit is hit."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, Response, current_app, render_template, request
from flask_babel import gettext as _
from werkzeug.exceptions import (
    BadRequest,
    HTTPException,
    RequestEntityTooLarge,
    RequestURITooLarge,
)
from werkzeug.routing import IntegerConverter

from formwork.api.problems import http_problem
from formwork.runtime.files import DEFAULT_ALLOWED
from formwork.runtime.params import MAX_SQL_INT

# No 'unsafe-inline' or 'unsafe-eval' anywhere: templates hold no inline script, handler or
# style attribute (tests/security scans them), data reaches scripts through data-* attributes
# and <script type="application/json"> blocks, which are never executed. bpmn-js and ECharts
# (with canvas tooltips, renderMode "richText") style through the CSSOM, which CSP allows.
# frappe-gantt writes three fixed style attributes (weekend shading, ignored days): exactly
# those three strings are allowed by hash ('unsafe-hashes' admits hashes for attributes only),
# nothing else. See docs/architecture.md, "Decisions taken here".
GANTT_STYLE_HASHES = (
    # "fill: var(--g-weekend-highlight-color);"
    "'sha256-ODxXw7+nKIwPrj+Vn3jyuGRPE9G7RIsLdzdoNStDgzg='",
    # "fill: url(#diagonalHatch);"
    "'sha256-ejMRzEhsVI/WwIJ6+XtfEiwPe2YGUWOFNdigc1Ljf+k='",
    # "stroke:grey; stroke-width:0.3" (the hatch pattern's lines)
    "'sha256-ZQQd4z8TNrVc2nE0CfAROCXKHG3tNEIdbONqn8Sl1Gk='",
)
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    f"style-src-attr 'unsafe-hashes' {' '.join(GANTT_STYLE_HASHES)}; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
# Uploaded files are served with their own, stricter policy (see api/files.py).
FILE_CSP = "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'"
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}
HSTS = "max-age=31536000; includeSubDomains"
LIMITS = {
    # Werkzeug's own defaults (500 kB per field, 1,000 parts) are too small for a form
    # with a hundred line items; these still stop a request from exhausting memory.
    "MAX_FORM_MEMORY_SIZE": 2 * 1024 * 1024,
    "MAX_FORM_PARTS": 5_000,
    "MAX_QUERY_STRING": 8 * 1024,
}


class StoredInt(IntegerConverter):
    """`<int:...>` in a route: at most what a 64-bit column holds, unless a rule says less.

    Werkzeug's own converter takes any number of digits, and an id past 2**63 - 1 failed
    in the database driver (a 500); past the bound the URL matches no route (a 404)."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:  # noqa: A002
        kwargs.setdefault("max", MAX_SQL_INT)
        super().__init__(map, *args, **kwargs)


def init_app(app: Flask) -> None:
    """Install the bounded integer converter, the header hook, the request limits and the
    413/414 answers (before any blueprint registers a route)."""
    app.url_map.converters["int"] = StoredInt
    for key, value in LIMITS.items():
        app.config.setdefault(key, value)
    _upload_settings(app)
    app.config.setdefault("CONTENT_SECURITY_POLICY", CSP)
    app.before_request(_check_query_string)
    app.before_request(_check_urlencoded_form)
    app.before_request(_refuse_nul)
    app.after_request(add_security_headers)
    app.register_error_handler(413, _too_large)
    app.register_error_handler(414, _too_large)


def _upload_settings(app: Flask) -> None:
    """Set the per-file limit and the allowed types (environment, else the defaults)."""
    size = os.environ.get("FORMWORK_UPLOAD_MAX_BYTES")
    app.config.setdefault(
        "UPLOAD_MAX_BYTES", int(size) if size else app.config.get("MAX_UPLOAD_SIZE", 20 << 20)
    )
    listed = os.environ.get("FORMWORK_UPLOAD_ALLOWED_TYPES", "")
    types = [t.strip().lower() for t in listed.split(",") if t.strip()]
    app.config.setdefault("UPLOAD_ALLOWED_TYPES", frozenset(types) or DEFAULT_ALLOWED)


def _check_query_string() -> None:
    limit = int(current_app.config["MAX_QUERY_STRING"])
    if len(request.query_string) > limit:
        raise RequestURITooLarge(f"the query string is longer than {limit} bytes")


def _check_urlencoded_form() -> None:
    # Werkzeug applies MAX_FORM_MEMORY_SIZE and MAX_FORM_PARTS to multipart bodies only; a
    # url-encoded body is parsed whole, so its size and field count are checked here. The
    # body is cached, and the form parser reads the cached copy.
    if request.mimetype != "application/x-www-form-urlencoded":
        return
    limit = int(current_app.config["MAX_FORM_MEMORY_SIZE"])
    if (request.content_length or 0) > limit:
        raise RequestEntityTooLarge(f"the form is larger than {limit} bytes")
    body = request.get_data(cache=True)
    if len(body) > limit:
        raise RequestEntityTooLarge(f"the form is larger than {limit} bytes")
    parts = int(current_app.config["MAX_FORM_PARTS"])
    if body.count(b"&") >= parts:
        raise RequestEntityTooLarge(f"the form has more than {parts} fields")


FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def _refuse_nul() -> None:
    """Refuse a NUL character anywhere in the path, query or form: no text column holds one
    (PostgreSQL refuses it outright), so it is bad input, not a value to look up."""
    found = "\x00" in request.path or _holds_nul(request.args.items(multi=True))
    if not found and request.mimetype in FORM_TYPES:
        # A multipart part whose name does not decode has no name (None) in Werkzeug's parse.
        found = _holds_nul(request.form.items(multi=True)) or any(
            "\x00" in (key or "") or "\x00" in (upload.filename or "")
            for key, upload in request.files.items(multi=True)
        )
    if found:
        raise BadRequest("the request holds a NUL character")


def _holds_nul(pairs: Any) -> bool:
    return any("\x00" in (key or "") or "\x00" in (value or "") for key, value in pairs)


def refuse_nul_in(document: Any, depth: int = 0) -> None:
    """Raise BadRequest when a decoded JSON document holds a NUL character in any text."""
    if isinstance(document, str):
        if "\x00" in document:
            raise BadRequest("the body holds a NUL character")
    elif isinstance(document, dict) and depth < 64:
        for key, value in document.items():
            refuse_nul_in(key, depth + 1)
            refuse_nul_in(value, depth + 1)
    elif isinstance(document, list) and depth < 64:
        for value in document:
            refuse_nul_in(value, depth + 1)


def add_security_headers(response: Response) -> Response:
    """Add the security headers; keep a stricter policy a view has set itself."""
    headers = response.headers
    for name, value in HEADERS.items():
        headers.setdefault(name, value)
    headers.setdefault("Content-Security-Policy", current_app.config["CONTENT_SECURITY_POLICY"])
    if request.is_secure:
        headers.setdefault("Strict-Transport-Security", HSTS)
    if request.endpoint != "static":
        # Pages and API answers carry personal data and CSRF tokens: never keep them in a
        # shared or browser cache. Static files keep Flask's caching headers.
        headers["Cache-Control"] = "no-store"
        headers.pop("Expires", None)
    return response


def _too_large(exc: HTTPException) -> Any:
    status = exc.code or 413
    if request.path.startswith("/api/"):
        return http_problem(exc)
    too_large = _("The upload is too large.")
    message = too_large if status == 413 else _("The address is too long.")
    if request.headers.get("HX-Request"):
        return message, status
    return render_template("web/error.html", status=status, message=message), status
