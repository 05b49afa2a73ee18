"""Shared fixtures: an app on a fresh database (SQLite file, or PostgreSQL when
FORMWORK_TEST_DATABASE_URL says so), users, tokens and the sample entities."""

from __future__ import annotations

import datetime as dt
import glob
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from formwork.app import create_app
from formwork.auth.scopes import SCOPES
from formwork.auth.users import create_token, create_user, grant
from formwork.runtime.clock import Clock
from formwork.runtime.database import create_system_tables
from formwork.runtime.registry import load_registry
from formwork.runtime.schema import apply_definitions

HERE = Path(__file__).parent
SAMPLE = HERE / "entities" / "sample"
PASSWORD = "Secret-pass-1"
TEST_NOW = dt.datetime(2026, 3, 16, 2, 0, tzinfo=dt.UTC)  # 10:00 in Beijing


def database_url(tmp_path: Path) -> str:
    """Return the test database URL, emptying a PostgreSQL schema first."""
    url = os.environ.get("FORMWORK_TEST_DATABASE_URL")
    if not url:
        return f"sqlite:///{tmp_path / 'test.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()
    return url


def sample_documents() -> dict[str, Any]:
    """Return the sample definitions keyed by file path."""
    return {
        p: json.loads(Path(p).read_text("utf-8")) for p in sorted(glob.glob(str(SAMPLE / "*.json")))
    }


def test_now() -> dt.datetime:
    """Return the moment every test app's clock starts at: a fixed Monday morning in
    Beijing, moved by FORMWORK_TEST_CLOCK_SHIFT_DAYS (`make test` runs the date-sensitive
    tests a second time a year ahead, so a test that assumes what day it is fails there)."""
    shift = int(os.environ.get("FORMWORK_TEST_CLOCK_SHIFT_DAYS", "0"))
    return TEST_NOW + dt.timedelta(days=shift)


def test_today() -> dt.date:
    """Return the test clock's day in Beijing (what `@today` means to the apps under test)."""
    return Clock(test_now()).today()


def make_test_app(folder: Path) -> Flask:
    """Return an app on an empty database (in `folder`, or the PostgreSQL test database)
    with the platform tables, a fixed clock (`test_now()`), and caches that never serve a
    stale registry or principal."""
    app = create_app(
        {
            "INSTANCE_PATH": str(folder / "instance"),
            "DATABASE_URL": database_url(folder),
            "TESTING": True,
            "REGISTRY_TTL": 0.0,
            "PRINCIPAL_TTL": 0.0,
            "CLOCK": Clock(test_now()),
        }
    )
    create_system_tables(app.extensions["formwork"].engine)
    return app


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    """Return an app on an empty database with the platform tables."""
    app = make_test_app(tmp_path)
    yield app
    app.extensions["formwork"].engine.dispose()


@pytest.fixture
def clock(app: Flask) -> Clock:
    """Return the app's kernel clock (fixed at `test_now()`; a test may move it on)."""
    return app.extensions["formwork"].clock  # type: ignore[no-any-return]


@pytest.fixture
def session(app: Flask) -> Iterator[Any]:
    """Return a session bound to the app's engine."""
    session = app.extensions["formwork"].sessions()
    yield session
    session.close()


@pytest.fixture
def sample(app: Flask, session: Any) -> Flask:
    """Install the sample entities (every field type) under pack `sample`."""
    apply_definitions(session, "sample", sample_documents())
    session.commit()
    return app


@pytest.fixture
def registry(sample: Flask, session: Any) -> Any:
    """Return the registry with the sample entities."""
    return load_registry(session)


@pytest.fixture
def users(app: Flask, session: Any) -> dict[str, Any]:
    """Create admin, a reader and a clerk (read+create on sample.project); return tokens."""
    out = {}
    for name, roles in (("admin", ["admin"]), ("reader", ["reader"]), ("clerk", ["clerk"])):
        user = create_user(session, name, PASSWORD, roles)
        out[name] = {"id": user.id, "token": create_token(session, user, "test", scopes=SCOPES)}
    grant(session, "reader", "*", ["read"])
    grant(session, "clerk", "sample.project", ["read", "create"])
    session.commit()
    return out


class Api:
    """A test client that speaks JSON with a bearer token."""

    def __init__(self, client: FlaskClient, token: str | None) -> None:
        self.client = client
        self.token = token

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return {**headers, **(extra or {})}

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, headers=self._headers(kw.pop("headers", None)), **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.client.post(
            path, json=body, headers=self._headers(kw.pop("headers", None)), **kw
        )

    def patch(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.client.patch(
            path, json=body, headers=self._headers(kw.pop("headers", None)), **kw
        )

    def put(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.client.put(
            path, json=body, headers=self._headers(kw.pop("headers", None)), **kw
        )

    def delete(self, path: str, **kw: Any) -> Any:
        return self.client.delete(path, headers=self._headers(kw.pop("headers", None)), **kw)


@pytest.fixture
def api(sample: Flask, users: dict[str, Any]) -> Api:
    """Return an API client signed in as admin, with the sample entities installed."""
    return Api(sample.test_client(), users["admin"]["token"])


@pytest.fixture
def api_as(sample: Flask, users: dict[str, Any]) -> Any:
    """Return a factory of API clients for a named test user (or None: anonymous)."""
    return lambda name: Api(sample.test_client(), users[name]["token"] if name else None)
