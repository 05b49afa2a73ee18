"""The signed-in home page (the generated end-user pages arrive with the UI work)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, render_template
from flask_login import login_required

from formwork.api.context import registry
from formwork.auth import current_principal

bp = Blueprint("web", __name__)


def init_app(app: Flask) -> None:
    """Register the web pages."""
    app.register_blueprint(bp)


@bp.get("/")
@login_required
def home() -> Any:
    """Show the entities the user may read, with links to their API."""
    principal = current_principal()
    entities = [e for e in registry().top_level() if principal and principal.can(e.key, "read")]
    locale = principal.locale if principal else "zh-CN"
    return render_template("web/home.html", entities=entities, locale=locale)
