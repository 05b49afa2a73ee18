"""Fixtures for the page tests: the sample layouts, compiled catalogs and signed-in clients."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import PASSWORD

LAYOUTS = Path(__file__).resolve().parents[1] / "entities" / "sample_layouts"
TRANSLATIONS = Path(__file__).resolve().parents[2] / "formwork" / "translations"
CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def compile_catalogs() -> None:
    """Compile the .po catalogs when their .mo is missing or older (the build does this too)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    for po in TRANSLATIONS.glob("*/LC_MESSAGES/messages.po"):
        mo = po.with_suffix(".mo")
        if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
            with po.open("rb") as handle:
                catalog = read_po(handle)
            with mo.open("wb") as out:
                write_mo(out, catalog)


@pytest.fixture(scope="session", autouse=True)
def _catalogs() -> None:
    compile_catalogs()


@pytest.fixture(autouse=True)
def _cheap_password_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    # Page tests sign in many times; a fast (test-only) hash keeps the suite quick.
    import functools

    from werkzeug.security import generate_password_hash

    import formwork.auth.users

    cheap = functools.partial(generate_password_hash, method="pbkdf2:sha256:1000")
    monkeypatch.setattr(formwork.auth.users, "generate_password_hash", cheap)


@pytest.fixture
def web(sample: Flask, users: dict[str, Any]) -> Flask:
    """Return the app with the sample entities, users and the sample layouts."""
    sample.config["LAYOUT_DIRS"] = {"sample": str(LAYOUTS)}
    return sample


class Browser:
    """A test client signed in through the login form, which knows the page's CSRF token."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.token = ""

    def get(self, path: str, **kw: Any) -> Any:
        response = self.client.get(path, **kw)
        self._remember(response)
        return response

    def post(self, path: str, data: Any = None, **kw: Any) -> Any:
        body = dict(data or {}) if not isinstance(data, list) else data
        if isinstance(body, dict):
            body.setdefault("csrf_token", self.token)
        else:
            body = [*body, ("csrf_token", self.token)]
        response = self.client.post(path, data=_multi(body), **kw)
        self._remember(response)
        return response

    def _remember(self, response: Any) -> None:
        if response.mimetype == "text/html":
            found = CSRF_RE.search(response.get_data(as_text=True))
            if found:
                self.token = found.group(1)

    def html(self, path: str, status: int = 200) -> str:
        response = self.get(path)
        assert response.status_code == status, response.get_data(as_text=True)[:2000]
        return response.get_data(as_text=True)


def _multi(body: Any) -> Any:
    from werkzeug.datastructures import MultiDict

    return MultiDict(body) if isinstance(body, list) else body


def sign_in(app: Flask, username: str, headers: dict[str, str] | None = None) -> Browser:
    """Return a Browser signed in as `username` through the login form."""
    browser = Browser(app.test_client())
    browser.get("/login", headers=headers or {})
    response = browser.post("/login", {"username": username, "password": PASSWORD})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    browser.get(response.headers["Location"])  # sign-in starts a new session: new CSRF token
    return browser


@pytest.fixture
def admin(web: Flask) -> Browser:
    """Return a browser signed in as admin."""
    return sign_in(web, "admin")
