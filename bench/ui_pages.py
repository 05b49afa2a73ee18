"""Page render times of the generated UI on a 1,000,000-row table.

Measured through the Flask test client, signed in as an admin (session cookie):

- list page: 50 rows of a 12-column entity with two reference columns (`bench.ticket`,
  referencing `bench.site` and `bench.crew`), first page, a filtered page and a deep page;
  the number of SQL statements per list page is printed too (it must not depend on rows);
- form page: the create form and the edit form of one ticket.

Targets: list page median <= 80 ms, form page median <= 40 ms. Exit status 0 when met.

    .venv/bin/python bench/ui_pages.py                      # 1,000,000 rows in a temp folder
    .venv/bin/python bench/ui_pages.py --rows 200000 --db /tmp/fw-ui-bench   # keep the file
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    BENCH_PASSWORD,
    BENCH_USER,
    Timing,
    admin_token,
    engine_of,
    install,
    make_app,
    settle,
    timed,
    verdict,
)

LIST_TARGET_MS = 80.0
FORM_TARGET_MS = 40.0
BATCH = 50_000


def _label(zh: str, en: str) -> dict[str, str]:
    return {"zh-CN": zh, "en": en}


def _field(kind: str, zh: str, en: str, **extra: Any) -> dict[str, Any]:
    return {"x-formwork": {"type": kind, "label": _label(zh, en), **extra}}


def documents() -> dict[str, Any]:
    """Return the three bench entities."""
    small = {
        "code": {"maxLength": 20, **_field("string", "编号", "Code", unique=True)},
        "name": {"maxLength": 100, **_field("string", "名称", "Name")},
    }

    def entity(name: str, zh: str, en: str, props: dict[str, Any], **opts: Any) -> Any:
        return {
            "type": "object",
            "x-formwork": {"name": name, "label": _label(zh, en), **opts},
            "properties": props,
        }

    ticket = {
        "code": {"maxLength": 30, **_field("string", "单号", "Number", indexed=True)},
        "title": {"maxLength": 100, **_field("string", "标题", "Title")},
        "site": _field("reference", "工地", "Site", entity="site"),
        "crew": _field("reference", "班组", "Crew", entity="crew"),
        "amount": _field("money", "金额", "Amount"),
        "qty": _field("integer", "数量", "Quantity"),
        "rate": _field("decimal", "系数", "Rate", precision=10, scale=3),
        "day": _field("date", "日期", "Day", indexed=True),
        "at": _field("datetime", "时间", "At"),
        "status": _field(
            "select",
            "状态",
            "Status",
            indexed=True,
            options=[
                {"value": "open", "label": _label("进行中", "Open")},
                {"value": "done", "label": _label("完成", "Done")},
            ],
        ),
        "done": _field("boolean", "已完成", "Done"),
        "note": {"maxLength": 200, **_field("string", "备注", "Note")},
    }
    return {
        "site.json": entity("site", "工地", "Site", small, title_field="code", search=["code"]),
        "crew.json": entity("crew", "班组", "Crew", small, title_field="code", search=["code"]),
        "ticket.json": entity(
            "ticket", "单据", "Ticket", ticket, title_field="code", search=["code", "title"]
        ),
    }


def fill(app: Any, rows: int) -> None:
    """Insert the referenced records and `rows` tickets (skipped when already there)."""
    from formwork.runtime.registry import load_registry

    engine = engine_of(app)
    with app.extensions["formwork"].sessions() as session:
        registry = load_registry(session)
    site, crew, ticket = (registry.meta(f"bench.{n}").table for n in ("site", "crew", "ticket"))
    with engine.begin() as conn:
        have = conn.execute(sa.select(sa.func.count()).select_from(ticket)).scalar() or 0
        if have >= rows:
            return
        now = dt.datetime.now(dt.UTC)
        stamp = {"created_at": now, "updated_at": now, "version": 1}
        if not conn.execute(sa.select(sa.func.count()).select_from(site)).scalar():
            for table, prefix in ((site, "S"), (crew, "C")):
                conn.execute(
                    table.insert(),
                    [
                        {"code": f"{prefix}-{i:04d}", "name": f"{prefix}{i}", **stamp}
                        for i in range(500)
                    ],
                )
    rng = random.Random(7)
    start = time.perf_counter()
    done = have
    while done < rows:
        count = min(BATCH, rows - done)
        batch = [
            {
                "code": f"T-{done + i:07d}",
                "title": f"单据 {done + i}",
                "site": rng.randint(1, 500),
                "crew": rng.randint(1, 500),
                "amount": Decimal(rng.randint(100, 10_000_000)) / 100,
                "qty": rng.randint(1, 500),
                "rate": Decimal(rng.randint(500, 2000)) / 1000,
                "day": dt.date(2025, 1, 1) + dt.timedelta(days=rng.randint(0, 700)),
                "at": now,
                "status": rng.choice(("open", "done")),
                "done": rng.random() < 0.5,
                "note": "",
                **stamp,
            }
            for i in range(count)
        ]
        with engine.begin() as conn:
            conn.execute(ticket.insert(), batch)
        done += count
        print(f"  inserted {done:,} rows ({time.perf_counter() - start:.0f} s)", flush=True)


def signed_in_client(app: Any) -> Any:
    """Return a test client signed in as the bench admin through the login form."""
    admin_token(app)  # creates the user
    client = app.test_client()
    response = client.post("/login", data={"username": BENCH_USER, "password": BENCH_PASSWORD})
    assert response.status_code == 302, response.status_code
    return client


def measure(client: Any, path: str, rounds: int) -> Timing:
    """Render `path` `rounds` times (after a warm-up) and return the timings."""
    timing = Timing(path)
    for _ in range(3):
        assert client.get(path).status_code == 200
    settle()
    for _ in range(rounds):
        response = timed(timing, lambda: client.get(path))
        assert response.status_code == 200, path
    return timing


def count_statements(app: Any, client: Any, path: str) -> int:
    """Return how many SQL statements one render of `path` runs."""
    seen: list[str] = []

    def remember(*args: Any) -> None:
        seen.append(args[2])

    engine = engine_of(app)
    sa.event.listen(engine, "before_cursor_execute", remember)
    try:
        client.get(path)
    finally:
        sa.event.remove(engine, "before_cursor_execute", remember)
    return len(seen)


def main() -> int:
    """Build the data, render the pages and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--db", type=Path, default=None, help="folder to keep the SQLite file in")
    args = parser.parse_args()
    folder = args.db or Path(tempfile.mkdtemp(prefix="fw-ui-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    app = make_app(folder, ttl=60.0)
    app.config.update(WTF_CSRF_ENABLED=False, REGISTRY_TTL=60.0)  # bench sign-in only
    install(app, "bench", documents())
    print(f"filling {args.rows:,} rows in {folder} …")
    fill(app, args.rows)
    client = signed_in_client(app)
    pages = {
        "list, first page": "/app/bench/ticket?f=1&per_page=50",
        "list, filtered": "/app/bench/ticket?f=1&per_page=50&status__eq=open&sort=-day",
        "list, page 200": "/app/bench/ticket?f=1&per_page=50&page=200",
        "form, new": "/app/bench/ticket/new",
        "form, edit": "/app/bench/ticket/12345/edit",
    }
    results = {name: measure(client, path, args.rounds) for name, path in pages.items()}
    statements = count_statements(app, client, pages["list, first page"])
    print()
    print(f"{'page':<20} {'median ms':>10} {'p90 ms':>8} {'target':>8}  verdict")
    ok = True
    for name, timing in results.items():
        target = LIST_TARGET_MS if name.startswith("list") else FORM_TARGET_MS
        passed = timing.median_ms() <= target
        ok &= passed
        print(
            f"{name:<20} {timing.median_ms():>10.1f} {timing.quantile_ms(0.9):>8.1f}"
            f" {target:>8.0f}  {verdict(passed)}"
        )
    print(f"SQL statements per list page: {statements} (independent of the rows shown)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
