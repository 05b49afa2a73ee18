"""What the benchmarks share: an app on a chosen database, an admin token, timing and the
summary table.

Nothing here is collected by pytest (no `test_` names) and nothing here is imported by
`formwork`.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from formwork.app import create_app
from formwork.auth.scopes import SCOPES
from formwork.auth.users import create_token, create_user
from formwork.runtime.database import create_system_tables
from formwork.runtime.models import User

BENCH_USER = "bench_admin"
BENCH_PASSWORD = "Bench-pass-1"  # a throw-away user in a throw-away database


def make_app(folder: Path, database_url: str | None = None, *, ttl: float = 2.0) -> Flask:
    """Return an app whose instance folder is `folder`, on a SQLite file there by default."""
    url = database_url or f"sqlite:///{folder / 'bench.db'}"
    app = create_app({"INSTANCE_PATH": str(folder), "DATABASE_URL": url, "REGISTRY_TTL": ttl})
    create_system_tables(engine_of(app))
    return app


def engine_of(app: Flask) -> sa.Engine:
    """Return the app's engine."""
    return app.extensions["formwork"].engine  # type: ignore[no-any-return]


def open_session(app: Flask) -> Session:
    """Return a new session from the app's session factory (the caller closes it)."""
    return app.extensions["formwork"].sessions()  # type: ignore[no-any-return]


def reset_postgres(url: str) -> None:
    """Drop and recreate schema `public` of the PostgreSQL database at `url`."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()


def install(app: Flask, pack: str, documents: Mapping[str, Any]) -> list[str]:
    """Apply entity definitions to the app's database and commit; return what was done."""
    from formwork.runtime.schema import apply_definitions  # needs runtime.migrations

    with open_session(app) as session:
        done = apply_definitions(session, pack, documents)
        session.commit()
    return done


def admin_token(app: Flask) -> str:
    """Return a fresh API token of the bench admin user, creating the user when missing."""
    with open_session(app) as session:
        user = session.scalar(sa.select(User).where(User.username == BENCH_USER))
        if user is None:
            user = create_user(session, BENCH_USER, BENCH_PASSWORD, ["admin"])
        token = create_token(session, user, "bench", scopes=SCOPES)
        session.commit()
    return token


def auth_headers(token: str) -> dict[str, str]:
    """Return the request headers carrying a bearer token."""
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Timing:
    """Per-call durations in seconds of one side of a comparison."""

    name: str
    samples: list[float] = field(default_factory=list)

    def add(self, seconds: float) -> None:
        """Record one call."""
        self.samples.append(seconds)

    @property
    def total(self) -> float:
        """Return the time spent in every recorded call, in seconds."""
        return sum(self.samples)

    def rate(self) -> float:
        """Return calls per second over the recorded calls."""
        return len(self.samples) / self.total if self.total else 0.0

    def median_ms(self) -> float:
        """Return the median call in milliseconds."""
        return statistics.median(self.samples) * 1000 if self.samples else 0.0

    def quantile_ms(self, q: float) -> float:
        """Return the `q` quantile (0 < q < 1) in milliseconds."""
        ordered = sorted(self.samples)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def timed(timing: Timing, call: Callable[[], Any]) -> Any:
    """Run `call`, add its duration to `timing` and return its result."""
    start = time.perf_counter()
    result = call()
    timing.add(time.perf_counter() - start)
    return result


def settle() -> None:
    """Collect garbage between rounds so a collection does not land inside one side only."""
    gc.collect()


def verdict(ok: bool) -> str:
    """Return PASS or FAIL."""
    return "PASS" if ok else "FAIL"


def json_value(value: Any) -> Any:
    """Return a column value as JSON would carry it (decimals as text, ISO dates)."""
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def print_table(title: str, lines: list[str]) -> None:
    """Print the summary table under a title."""
    rule = "=" * max(len(title), *(len(line) for line in lines))
    print(f"\n{rule}\n{title}\n{rule}")
    for line in lines:
        print(line)
    print(rule)
