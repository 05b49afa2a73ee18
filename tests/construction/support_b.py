"""Shared helpers for the schedule and funds tests: the demo files read back with their date
tokens resolved (independently of the loader), ids by code, sessions, and a way to run a report
as a person."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from formwork.runtime.models import User
from formwork.runtime.registry import load_registry
from formwork.runtime.reports.engine import ReportResult, run_report
from formwork.runtime.reports.store import find_report
from formwork.runtime.security import Principal, load_principal, system_principal
from tests.conftest import test_today

ROOT = Path(__file__).resolve().parents[2] / "module_packs"


def today() -> dt.date:
    """Return today's date as the reports and the demo loader see it (the test clock's)."""
    return test_today()


def session_of(app: Flask) -> Iterator[Any]:
    """Yield a session on the app's database (rolled back unless committed), then close it."""
    session = app.extensions["formwork"].sessions()
    yield session
    session.rollback()
    session.close()


def principal(session: Any, username: str | None) -> Principal:
    """Return a user's principal (the system principal for None)."""
    if username is None:
        return system_principal()
    user = session.scalar(sa.select(User).where(User.username == username))
    assert user is not None, username
    return load_principal(session, user)


def resolve(value: Any, on: dt.date) -> Any:
    """Return a demo value with "@today±N" resolved to a date (other values unchanged)."""
    if isinstance(value, str) and value.startswith("@today"):
        rest = value[len("@today") :]
        return on + dt.timedelta(days=int(rest) if rest else 0)
    if isinstance(value, dict):
        return {k: resolve(v, on) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, on) for v in value]
    return value


def demo(pack: str, name: str) -> list[dict[str, Any]]:
    """Return a pack's demo records (from the file, tokens resolved for today)."""
    document = json.loads((ROOT / pack / "demo" / f"{name}.json").read_text("utf-8"))
    return [resolve(r, today()) for r in document["records"]]


def ids(session: Any, entity: str, field: str = "code") -> dict[Any, int]:
    """Return {field value: id} of an entity's records (raw SQL, not the records service)."""
    t = load_registry(session).meta(entity).table
    return {row[0]: int(row[1]) for row in session.execute(sa.select(t.c[field], t.c.id))}


def report(
    session: Any, pack: str, name: str, username: str | None = None, **params: Any
) -> ReportResult:
    """Run a pack's report as a person (the system principal by default)."""
    definition = find_report(session, pack, name)
    registry = load_registry(session)
    return run_report(session, registry, principal(session, username), definition, params, today())


def d(value: Any) -> Decimal:
    """Return a number (or its text) as an exact Decimal; None counts as 0."""
    return Decimal(0) if value is None else Decimal(str(value))


def installed(*packs: str) -> Any:
    """Return a module-scoped fixture: the packs with their demo data on an empty database."""
    from tests.construction.conftest import build

    @pytest.fixture(scope="module")
    def cons(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
        built = build(tmp_path_factory.mktemp(packs[-1]), list(packs))
        yield built
        built.session.close()
        built.app.extensions["formwork"].engine.dispose()

    return cons


@pytest.fixture(scope="module")
def app_b(cons: Any) -> Flask:
    """Return the app of the module's installed packs."""
    return cons.app  # type: ignore[no-any-return]


@pytest.fixture
def db(app_b: Flask) -> Iterator[Any]:
    """Return a session on the module's database."""
    yield from session_of(app_b)
