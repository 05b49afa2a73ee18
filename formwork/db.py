"""Database engine and the per-request session."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app, g
from sqlalchemy.orm import Session, sessionmaker

from formwork.runtime.models import Base


def make_engine(url: str) -> sa.Engine:
    """Return an engine; SQLite gets foreign keys, WAL and a busy timeout."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_system_tables(engine: sa.Engine) -> None:
    """Create the platform's own tables when missing."""
    Base.metadata.create_all(engine)


def init_app(app: Flask) -> None:
    """Create the engine and session factory, and close the request's session at the end."""
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["formwork.engine"] = engine
    app.extensions["formwork.sessions"] = sessionmaker(engine, expire_on_commit=False)
    app.teardown_appcontext(_close_session)


def get_session() -> Session:
    """Return the current request's session, opening it on first use."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["formwork.sessions"]()
    return g.db_session  # type: ignore[no-any-return]


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()
