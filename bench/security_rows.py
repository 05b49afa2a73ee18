"""Row rules cost: a member's list vs an administrator's, on 1,000,000 records.

Issue [security]: "A list query with a row rule (projects I am a member of, user in 50 of
2,000 projects, 1,000,000 rows): median time ≤ 1.5 × the same query as an admin without the
rule."

The entities are declared like a pack would declare them: `bench.project` (2,000),
`bench.member` (membership of a project: `x-formwork.membership`), and `bench.entry`
(1,000,000 records, each on a random project). The member holds a role whose grant on
`bench.entry` has the row rule `{"field": "project", "member_of": "bench.project"}` and is a
member of 50 projects. Both sides call the same kernel function, `list_records`, with the
same parameters; the only difference is the principal. Two queries are timed: the default
list (newest first, page 1 of 50, with the capped count) and the same with a filter on a
second field. Rows are bulk-loaded with Core inserts; the database is kept in a folder
(`--folder`) so a second run skips the load.

    .venv/bin/python bench/security_rows.py                # SQLite, 1,000,000 rows
    .venv/bin/python bench/security_rows.py --rows 100000 --runs 9
    .venv/bin/python bench/security_rows.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from _common import (
    Timing,
    engine_of,
    install,
    make_app,
    open_session,
    print_table,
    reset_postgres,
    settle,
    timed,
    verdict,
)

from formwork.auth.users import create_user, grant
from formwork.runtime.models import User
from formwork.runtime.query import list_records
from formwork.runtime.registry import load_registry
from formwork.runtime.security import load_principal, system_principal

PROJECTS = 2_000
MEMBER_OF = 50
TARGET = 1.5
RULE = [{"field": "project", "member_of": "bench.project"}]
QUERIES = {
    "default list (newest first)": {},
    "filter status + sort by date": {"status__eq": ["open"], "sort": ["-day"]},
}
# Printed, not judged: a hop is the member's own read of the project, so the join carries
# the project's row rule too. The member sorts all 25,000 of their rows where the admin
# stops at page 1 of the date index, so no ratio to the admin is meaningful here.
INFO = {"filter through a hop (project)": {"project.code__startswith": ["P0"], "sort": ["-day"]}}
PROJECT_RULE = [{"field": "id", "member_of": "bench.project"}]


def _text(zh: str, en: str) -> dict[str, str]:
    return {"zh-CN": zh, "en": en}


def definitions() -> dict[str, Any]:
    """Return the three entity definitions."""
    project = {
        "type": "object",
        "x-formwork": {"name": "project", "label": _text("项目", "Project"), "title_field": "code"},
        "properties": {
            "code": {
                "maxLength": 20,
                "x-formwork": {"type": "string", "label": _text("编号", "Code")},
            }
        },
    }
    member = {
        "type": "object",
        "x-formwork": {
            "name": "member",
            "label": _text("成员", "Member"),
            "membership": {"user": "user", "scope": "project"},
        },
        "properties": {
            "project": {
                "x-formwork": {
                    "type": "reference",
                    "entity": "project",
                    "label": _text("项目", "Project"),
                }
            },
            "user": {"x-formwork": {"type": "user", "label": _text("用户", "User")}},
        },
    }
    entry = {
        "type": "object",
        "x-formwork": {
            "name": "entry",
            "label": _text("记录", "Entry"),
            # What a pack declares for lists its members filter and sort: the row rule's
            # field first. Both sides of the comparison run on the same table and indexes.
            "indexes": [
                {"fields": ["project", "status", "day"]},
                {"fields": ["status", "day"]},
            ],
        },
        "properties": {
            "project": {
                "x-formwork": {
                    "type": "reference",
                    "entity": "project",
                    "label": _text("项目", "Project"),
                }
            },
            "day": {"x-formwork": {"type": "date", "indexed": True, "label": _text("日期", "Day")}},
            "status": {
                "x-formwork": {
                    "type": "select",
                    "indexed": True,
                    "label": _text("状态", "Status"),
                    "options": [
                        {"value": "open", "label": _text("进行", "Open")},
                        {"value": "closed", "label": _text("关闭", "Closed")},
                    ],
                }
            },
            "amount": {"x-formwork": {"type": "money", "label": _text("金额", "Amount")}},
        },
    }
    return {"project.json": project, "member.json": member, "entry.json": entry}


def load(app: Any, rows: int) -> int:
    """Create the entities, projects, the member user with their memberships and `rows`
    entries; return the member's user id."""
    install(app, "bench", definitions())
    pick = random.Random(7)
    with open_session(app) as session:
        user = create_user(session, "member", "Bench-pass-1", ["site_member"])
        grant(session, "site_member", "bench.entry", ["read"], rows=RULE)
        grant(session, "site_member", "bench.project", ["read"], rows=PROJECT_RULE)
        session.commit()
        member_id = user.id
    meta = _registry(app)
    stamp = {
        "created_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        "updated_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        "version": 1,
    }
    with engine_of(app).begin() as conn:
        conn.execute(
            sa.insert(meta["project"]),
            [{**stamp, "code": f"P{i:04d}"} for i in range(1, PROJECTS + 1)],
        )
        mine = pick.sample(range(1, PROJECTS + 1), MEMBER_OF)
        conn.execute(
            sa.insert(meta["member"]), [{**stamp, "project": p, "user": member_id} for p in mine]
        )
        start = dt.date(2024, 1, 1)
        for first in range(0, rows, 50_000):
            batch = [
                {
                    **stamp,
                    "project": pick.randint(1, PROJECTS),
                    "day": start + dt.timedelta(days=pick.randint(0, 1000)),
                    "status": pick.choice(("open", "closed")),
                    "amount": meta["amount"](pick.randint(100, 10_000_000)),
                }
                for _ in range(min(50_000, rows - first))
            ]
            conn.execute(sa.insert(meta["entry"]), batch)
    # Statistics for both databases; on PostgreSQL also the visibility map, which a fresh
    # bulk load lacks and autovacuum sets on a live database (index-only scans need it).
    engine = engine_of(app)
    statement = "VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE"
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text(statement))
    return member_id


def _registry(app: Any) -> dict[str, Any]:
    from decimal import Decimal

    with open_session(app) as session:
        registry = load_registry(session)
    entry = registry.meta("bench.entry")
    money = entry.entity.get_field("amount")
    assert money is not None

    def amount(cents: int) -> Any:
        return money.kind.to_db(money, Decimal(cents) / 100)

    return {
        "project": registry.meta("bench.project").table,
        "member": registry.meta("bench.member").table,
        "entry": entry.table,
        "amount": amount,
    }


def measure(app: Any, member_id: int, runs: int) -> list[str]:
    """Time each query as admin and as the member; return the summary lines."""
    with open_session(app) as session:
        registry = load_registry(session)
        member = load_principal(session, session.get(User, member_id))
    meta = registry.meta("bench.entry")
    admin = system_principal()
    lines, met = [], True
    for name, params in {**QUERIES, **INFO}.items():
        sides = {"admin": Timing("admin"), "member": Timing("member")}
        found = {}
        for i in range(runs + 2):
            for side, who in (
                (("admin", admin), ("member", member))
                if i % 2
                else (("member", member), ("admin", admin))
            ):
                settle()
                with open_session(app) as session:
                    timing = sides[side] if i >= 2 else Timing("warm-up")
                    page = timed(
                        timing,
                        lambda s=session, w=who, p=params: list_records(
                            s, registry, meta, p, principal=w
                        ),
                    )
                    found[side] = page
        ratio = sides["member"].median_ms() / sides["admin"].median_ms()
        judged = name in QUERIES
        met &= ratio <= TARGET or not judged
        lines.append(
            f"{name:30} admin {sides['admin'].median_ms():8.2f} ms ({found['admin'].total} rows)"
            f"   member {sides['member'].median_ms():8.2f} ms ({found['member'].total} rows)"
            f"   ratio {ratio:5.2f}  {verdict(ratio <= TARGET) if judged else '(info)'}"
        )
        _check(app, found["member"], registry, member_id)
    lines.append(f"target: member median ≤ {TARGET} × admin median on each query — {verdict(met)}")
    return lines


def _check(app: Any, page: Any, registry: Any, member_id: int) -> None:
    """Fail loudly if the member saw a record outside their projects."""
    table = registry.meta("bench.member").table
    with engine_of(app).connect() as conn:
        query = sa.select(table.c.project).where(table.c.user == member_id)
        allowed = {r[0] for r in conn.execute(query)}
    outside = [i["id"] for i in page.items if i["project"] not in allowed]
    if outside or not page.items:
        sys.exit(f"the member's page is wrong: {len(page.items)} rows, outside: {outside[:5]}")


def main(argv: list[str] | None = None) -> int:
    """Load (or reuse) the data, time both sides and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--folder", type=Path, default=Path("/tmp/fw_bench_security"))
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args(argv)
    kind = "pg" if args.database_url else "sqlite"
    # v4: the member also reads their projects (the hop query)
    folder = args.folder / f"{kind}-{args.rows}-v4"
    marker = folder / "loaded"
    fresh = not marker.exists()
    folder.mkdir(parents=True, exist_ok=True)
    if fresh and args.database_url:
        reset_postgres(args.database_url)
    if fresh and not args.database_url:
        (folder / "bench.db").unlink(missing_ok=True)
    app = make_app(folder, args.database_url)
    if fresh:
        member_id = load(app, args.rows)
        marker.write_text(str(member_id))
    else:
        member_id = int(marker.read_text())
    lines = measure(app, member_id, args.runs)
    database = "PostgreSQL" if args.database_url else "SQLite"
    print_table(
        f"Row rule (member of {MEMBER_OF} of {PROJECTS} projects) vs admin, "
        f"{args.rows:,} rows, {database}, median of {args.runs}",
        lines,
    )
    return 0 if lines[-1].endswith("PASS") else 1


if __name__ == "__main__":
    sys.exit(main())
