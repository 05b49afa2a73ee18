"""What the authentication tests share: a sign-in through the form, a clock the test moves,
CSRF tokens read from pages and the security events written so far."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import sqlalchemy as sa

from formwork.runtime.models import SecurityEvent

CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
META_CSRF_RE = re.compile(r'name="csrf-token" content="([^"]+)"')
AGENT = "pytest-browser/1.0"


class MovingClock:
    """The app's kernel clock, as the authentication tests move it forward."""

    def __init__(self, app: Any) -> None:
        self.clock = app.extensions["formwork"].clock

    @property
    def now(self) -> dt.datetime:
        return self.clock.now()

    def advance(self, **delta: float) -> None:
        self.clock.advance(dt.timedelta(**delta))


def use_clock(app: Any) -> MovingClock:
    """Return the app's (fixed) kernel clock, for the test to move on."""
    return MovingClock(app)


def csrf_of(response: Any) -> str:
    """Return the CSRF token of an HTML page (form field or meta tag)."""
    text = response.get_data(as_text=True)
    found = CSRF_RE.search(text) or META_CSRF_RE.search(text)
    assert found, text[:500]
    return found.group(1)


def sign_in(client: Any, username: str, password: str, ip: str = "10.0.0.1") -> Any:
    """Post the sign-in form from `ip` and return the response."""
    page = client.get("/login", environ_base={"REMOTE_ADDR": ip})
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": csrf_of(page)},
        headers={"User-Agent": AGENT},
        environ_base={"REMOTE_ADDR": ip},
    )


def events(app: Any, kind: str | None = None) -> list[SecurityEvent]:
    """Return the security events written so far (of one kind), oldest first."""
    with app.extensions["formwork"].sessions() as session:
        query = sa.select(SecurityEvent).order_by(SecurityEvent.id)
        if kind is not None:
            query = query.where(SecurityEvent.kind == kind)
        return list(session.scalars(query))


def cheap_hashes(monkeypatch: Any) -> None:
    """Make password hashing cheap (test-only) where its cost is not what is tested."""
    import functools

    from werkzeug.security import generate_password_hash

    import formwork.auth.users

    cheap = functools.partial(generate_password_hash, method="pbkdf2:sha256:1000")
    monkeypatch.setattr(formwork.auth.users, "generate_password_hash", cheap)
