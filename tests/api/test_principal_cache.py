"""Principals are cached briefly, so an API call does not reload its user and grants."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from formwork.runtime.models import ApiToken

# Outcomes depend on the clock's date: `make test` runs these again a year ahead.
pytestmark = pytest.mark.dates


def statements_of(app, call):
    seen = []

    def remember(conn, cursor, statement, *args):
        seen.append(statement)

    engine = app.extensions["formwork"].engine
    sa.event.listen(engine, "before_cursor_execute", remember)
    try:
        assert call().status_code == 200
    finally:
        sa.event.remove(engine, "before_cursor_execute", remember)
    return seen


def test_second_call_skips_the_token_and_grant_queries(api, sample):
    sample.extensions["formwork"].principals.ttl = 60
    first = statements_of(sample, lambda: api.get("/api/v1/sample/project"))
    second = statements_of(sample, lambda: api.get("/api/v1/sample/project"))
    assert any("fw_api_tokens" in s for s in first)
    assert not any("fw_api_tokens" in s or "fw_role_permissions" in s for s in second)
    sample.extensions["formwork"].principals.clear()
    third = statements_of(sample, lambda: api.get("/api/v1/sample/project"))
    assert any("fw_api_tokens" in s for s in third)


def test_revoked_and_expired_tokens_are_refused_when_not_cached(api, sample, session, clock):
    assert api.get("/api/v1/sample/project").status_code == 200
    session.execute(sa.update(ApiToken).values(revoked_at=clock.now()))
    session.commit()
    assert api.get("/api/v1/sample/project").status_code == 401
    session.execute(
        sa.update(ApiToken).values(
            revoked_at=None, expires_at=clock.now() - dt.timedelta(seconds=1)
        )
    )
    session.commit()
    assert api.get("/api/v1/sample/project").status_code == 401
