"""The application factory."""

from __future__ import annotations

from typing import Any

from flask import Flask, request
from flask_wtf import CSRFProtect
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from formwork import api, auth, cli, context, hardening, web
from formwork.api.problems import http_problem
from formwork.config import load_config
from formwork.runtime.kernel import build_kernel


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Create the Formwork web application."""
    settings = load_config(config)
    app = Flask(__name__, instance_path=settings["INSTANCE_PATH"], instance_relative_config=False)
    app.config.update(settings)
    hardening.init_app(app)  # first: its limits run before CSRFProtect reads the form
    CSRFProtect(app)
    context.init_app(app, build_kernel(app.config))
    auth.init_app(app)
    api.init_app(app)
    web.init_app(app)
    cli.init_app(app)
    app.register_error_handler(404, _not_found)
    app.register_error_handler(405, _not_allowed)
    return app


def _not_found(exc: HTTPException) -> Any:
    if request.path.startswith("/api/"):
        return http_problem(NotFound("no such endpoint"))
    return exc


def _not_allowed(exc: HTTPException) -> Any:
    if request.path.startswith("/api/"):
        allowed = MethodNotAllowed(
            getattr(exc, "valid_methods", None),
            description=f"this endpoint does not accept {request.method}",
        )
        return http_problem(allowed)  # with the Allow header RFC 9110 asks of a 405
    return exc
