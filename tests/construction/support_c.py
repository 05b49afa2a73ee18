"""Shared helpers for the labor, ccb_approval and cross-pack tests: one database per test
module with the construction packs and their demo data, people resolved from that data, and
a way to drive approvals as those people."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from formwork.auth.users import create_token, create_user
from formwork.runtime.clock import session_clock
from formwork.runtime.models import User, UserRole
from formwork.runtime.registry import load_registry
from formwork.runtime.reports.engine import run_report
from formwork.runtime.reports.store import find_report
from formwork.runtime.security import Principal, load_principal, system_principal
from formwork.runtime.workflow.actions import complete
from formwork.runtime.workflow.service import WorkflowRuntime, WorkflowService
from formwork.runtime.workflow.tasks import instance_rows
from tests.conftest import Api
from tests.construction.conftest import build

ROOT = Path(__file__).resolve().parents[2] / "module_packs"
PACKS = ("projects", "cost_center", "schedule", "labor", "ccb_approval")


@pytest.fixture(scope="module")
def cons(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """Return an app whose database holds the construction packs with their demo data."""
    built = build(tmp_path_factory.mktemp("cons"), list(PACKS))
    built.session.close()
    yield built.app
    built.app.extensions["formwork"].engine.dispose()


def api_for(app: Any, session: Any, user_id: int | None) -> Api:
    """Return an API client signed in as an existing user."""
    token = create_token(session, session.get(User, user_id), "t")
    session.commit()
    return Api(app.test_client(), token)


@pytest.fixture
def admin(cons: Any, db: Any) -> Api:
    """Return an API client for an administrator."""
    user = db.scalar(sa.select(User).where(User.username == "t_admin"))
    if user is None:
        user = create_user(db, "t_admin", "Secret-pass-1", ["admin"])
    return api_for(cons, db, user.id)


@pytest.fixture
def db(cons: Flask) -> Iterator[Any]:
    """Return a session on the construction database (rolled back unless committed)."""
    session = cons.extensions["formwork"].sessions()
    yield session
    session.rollback()
    session.close()


def table(session: Any, entity: str) -> sa.Table:
    """Return the table of an entity."""
    return load_registry(session).meta(entity).table


def rows(session: Any, entity: str, **equal: Any) -> list[Any]:
    """Return the rows of an entity's table whose fields equal `equal` (a list: any of),
    in id order: raw SQL, independent of the records service and the report engine."""
    t = table(session, entity)
    where = [t.c[k].in_(v) if isinstance(v, list) else t.c[k] == v for k, v in equal.items()]
    return list(session.execute(sa.select(t).where(*where).order_by(t.c.id)).mappings())


def money(value: Any) -> Decimal:
    """Return a stored money value as a Decimal (SQLite keeps scaled integers)."""
    if value is None:
        return Decimal(0)
    return Decimal(str(value))


def id_of(session: Any, entity: str, **equal: Any) -> int:
    """Return the id of the one record whose fields equal `equal`."""
    t = table(session, entity)
    found = (
        session.execute(sa.select(t.c.id).where(*(t.c[k] == v for k, v in equal.items())))
        .scalars()
        .all()
    )
    assert len(found) == 1, f"{entity} {equal}: {len(found)} matches"
    return int(found[0])


def member_user(session: Any, project_id: int, role: str) -> int | None:
    """Return the first member of a project in a project role (what the workflow picks)."""
    t = table(session, "projects.member")
    return session.execute(
        sa.select(t.c.user)
        .where(t.c.project == project_id, t.c.project_role == role)
        .order_by(t.c.id)
        .limit(1)
    ).scalar()


def user_with_role(session: Any, role: str, other_than: int | None = None) -> int:
    """Return a user holding `role` other than `other_than` (created when none does)."""
    query = sa.select(UserRole.user_id).where(UserRole.role == role)
    if other_than is not None:
        query = query.where(UserRole.user_id != other_than)
    found = session.execute(query.order_by(UserRole.user_id).limit(1)).scalar()
    if found is None:
        found = create_user(session, f"t_{role}_{other_than or 0}", "Secret-pass-1", [role]).id
        session.commit()
    return int(found)


def principal(session: Any, user_id: int | None) -> Principal:
    """Return the principal of a user (the system principal for None)."""
    if user_id is None:
        return system_principal()
    user = session.get(User, user_id)
    assert user is not None
    return load_principal(session, user)


RUNTIME = WorkflowRuntime()


def workflow(session: Any, user_id: int | None, now: dt.datetime | None = None) -> WorkflowService:
    """Return a workflow service acting as a user."""
    return WorkflowService(
        session, principal(session, user_id), RUNTIME, load_registry(session), clock=now
    )


def ready(session: Any, instance_id: int) -> list[Any]:
    """Return the ready task rows of an instance, ordered by step."""
    return sorted(instance_rows(session, [instance_id]), key=lambda r: r.step)


def act(
    session: Any, instance_id: int, step: str, action: str = "approve", data: Any = None
) -> Any:
    """Complete the ready task of `step` as the user it is assigned to (or one in its role)."""
    row = next((r for r in ready(session, instance_id) if r.step == step), None)
    assert row is not None, f"no ready task {step}: {[r.step for r in ready(session, instance_id)]}"
    actor = row.assignee_id
    if actor is None:  # a step open to a role: one of its holders, never the submitter
        actor = user_with_role(session, row.role, row.excluded_id)
    comment = {"approve": ""}.get(action, f"{action}: 请补充说明")
    instance = complete(workflow(session, actor), row.id, action, comment, data)
    session.commit()
    return instance


def report(session: Any, pack: str, name: str, user_id: Any = None, **params: Any) -> Any:
    """Run a pack's report as a user (the system principal by default)."""
    registry = load_registry(session)
    definition = find_report(session, pack, name)
    today = session_clock(session).today()
    return run_report(session, registry, principal(session, user_id), definition, params, today)


def by(result: Any, *key: str) -> dict[Any, dict[str, Any]]:
    """Return report rows keyed by the given columns."""
    return {
        (tuple(r.get(k) for k in key) if len(key) > 1 else r.get(key[0])): r for r in result.rows
    }
