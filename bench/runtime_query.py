"""Benchmark: list and aggregate queries through the runtime against hand-written SQL, on a
table of 1,000,000 money-bearing rows.

(a) A list query — one filter on an indexed field, a sort, page 1 of 50 with the runtime's
capped count — through the REST endpoint and through `list_records`, against the same
query written with SQLAlchemy Core. Target: median <= 30 ms and <= 1.5 x hand-written.
(b) An aggregate over every row — group by two fields and the month of a date, sum of a
money field — through `aggregate()` and the REST endpoint, against hand-written text SQL.
Target: <= 1.3 x hand-written.

The rows are bulk-loaded with Core `insert()` executemany (not through the records
service), once: `--db DIR` keeps the database file there and reuses it on later runs.

    .venv/bin/python bench/runtime_query.py [--rows 1000000] [--db DIR | --keep]
    .venv/bin/python bench/runtime_query.py --database-url postgresql+psycopg://...
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from _common import (
    Timing,
    admin_token,
    auth_headers,
    engine_of,
    install,
    json_value,
    make_app,
    open_session,
    print_table,
    reset_postgres,
    settle,
    timed,
    verdict,
)
from flask import Flask
from flask.testing import FlaskClient

from formwork.runtime.aggregate import aggregate
from formwork.runtime.fields.numeric import ExactDecimal
from formwork.runtime.query import COUNT_CAP, list_records
from formwork.runtime.registry import EntityMeta, Registry, load_registry
from formwork.runtime.schema import digest
from formwork.runtime.security import system_principal

PACK = "bench"
PROJECTS = 2_000
BATCH = 50_000
PER_PAGE = 50
LIST_TARGET_MS = 30.0
LIST_TARGET_RATIO = 1.5
AGGREGATE_TARGET_RATIO = 1.3
FIRST_DAY = dt.date(2022, 1, 1)
DAYS = 3 * 365
CREWS = ("formwork", "rebar", "concrete", "scaffold", "masonry", "electric", "plumbing", "finish")
CATEGORIES = ("labour", "material", "plant", "subcontract", "other")
AGGREGATE_QUERY = "group=crew,category,work_date:month&sum=amount"


def _label(zh: str, en: str) -> dict[str, str]:
    """Return a zh-CN/en label."""
    return {"zh-CN": zh, "en": en}


def _field(kind: str, en: str, **options: Any) -> dict[str, Any]:
    """Return a property with its `x-formwork` block."""
    return {"x-formwork": {"type": kind, "label": _label(en, en), **options}}


def _choices(values: tuple[str, ...]) -> list[dict[str, Any]]:
    """Return select options for the given values."""
    return [{"value": v, "label": _label(v, v)} for v in values]


SCHEMA = "https://json-schema.org/draft/2020-12/schema"
PROJECT = {
    "$schema": SCHEMA,
    "type": "object",
    "x-formwork": {"name": "project", "label": _label("项目", "Project"), "title_field": "code"},
    "required": ["code", "name"],
    "properties": {
        "code": {"maxLength": 20, **_field("string", "Code")},
        "name": {"maxLength": 100, **_field("string", "Name")},
    },
}
WORK_ENTRY = {
    "$schema": SCHEMA,
    "type": "object",
    "x-formwork": {"name": "work_entry", "label": _label("工作记录", "Work entry")},
    "required": ["project", "work_date", "amount"],
    "properties": {
        "project": _field("reference", "Project", entity="project"),
        "work_date": _field("date", "Work date", indexed=True),
        "crew": _field("select", "Crew", options=_choices(CREWS)),
        "category": _field("select", "Category", options=_choices(CATEGORIES)),
        "amount": _field("money", "Amount"),
        "hours": _field("decimal", "Hours", precision=8, scale=2),
        "note": {"maxLength": 200, **_field("string", "Note")},
        "approved": _field("boolean", "Approved"),
    },
}
DOCUMENTS = {"project.json": PROJECT, "work_entry.json": WORK_ENTRY}


# -- the database ---------------------------------------------------------------------------
@dataclass
class Database:
    """Where the benchmark's data lives and whether it must be (re)loaded."""

    folder: Path
    url: str
    rows: int
    marker: Path | None  # a SQLite file's "fully loaded" note; None on PostgreSQL

    @property
    def reusable(self) -> bool:
        """Return True when a complete load of the same data is already there."""
        if self.marker is None or not self.marker.exists():
            return False
        return json.loads(self.marker.read_text("utf-8")) == self.fingerprint()

    def fingerprint(self) -> dict[str, Any]:
        """Return what identifies a load: row count and definitions."""
        return {"rows": self.rows, "projects": PROJECTS, "definitions": digest(DOCUMENTS)}

    def forget(self) -> None:
        """Delete a SQLite file (and its WAL) left by an earlier or interrupted load."""
        if self.marker is None:
            return
        self.marker.unlink(missing_ok=True)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.marker.with_suffix('.db')}{suffix}").unlink(missing_ok=True)


def choose_database(folder: Path, rows: int, database_url: str | None) -> Database:
    """Return the database to use: a SQLite file in `folder`, or the given URL."""
    if database_url:
        return Database(folder, database_url, rows, None)
    path = folder / f"query-{rows}.db"
    return Database(folder, f"sqlite:///{path}", rows, path.with_suffix(".json"))


def prepare(db: Database) -> tuple[Flask, float | None]:
    """Return the app on a loaded database and the load time (None when reused)."""
    if db.marker is None:
        reset_postgres(db.url)
    elif not db.reusable:
        db.forget()
    reused = db.reusable
    app = make_app(db.folder, db.url)
    install(app, PACK, DOCUMENTS)  # a no-op on a reused file: the note holds their digest
    if reused:
        return app, None
    started = time.perf_counter()
    load(app, db.rows)
    seconds = time.perf_counter() - started
    if db.marker is not None:
        db.marker.write_text(json.dumps(db.fingerprint()), "utf-8")
    return app, seconds


def load(app: Flask, rows: int) -> None:
    """Bulk-load the projects and `rows` work entries in one transaction, then ANALYZE."""
    with open_session(app) as session:
        registry = load_registry(session)
    projects, entries = (registry.meta(f"{PACK}.{n}").table for n in ("project", "work_entry"))
    stamp = {"created_at": dt.datetime(2025, 1, 1, tzinfo=dt.UTC), "version": 1}
    stamp["updated_at"] = stamp["created_at"]
    generator = random.Random(20240601)
    engine = engine_of(app)
    with engine.begin() as conn:
        conn.execute(sa.insert(projects), list(_project_rows(stamp)))
        indexes = list(entries.indexes)
        for index in indexes:  # rebuilding beats maintaining them row by row
            index.drop(conn)
        for start in range(0, rows, BATCH):
            batch = _entry_rows(generator, min(BATCH, rows - start), stamp)
            conn.execute(sa.insert(entries), batch)
            print(f"  loaded {start + len(batch):>9,} / {rows:,} rows", flush=True)
        for index in indexes:
            index.create(conn)
        conn.execute(sa.text("ANALYZE"))
    if engine.dialect.name == "sqlite":  # move the load out of the WAL, as a later run finds it
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def _project_rows(stamp: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Yield the project rows, ids 1..PROJECTS."""
    for number in range(1, PROJECTS + 1):
        yield {"id": number, "code": f"P-{number:05d}", "name": f"Project {number}", **stamp}


def _entry_rows(pick: random.Random, count: int, stamp: dict[str, Any]) -> list[dict[str, Any]]:
    """Return `count` random work entries as insert parameters."""
    days = [FIRST_DAY + dt.timedelta(days=n) for n in range(DAYS)]
    return [
        {
            "project": pick.randrange(1, PROJECTS + 1),
            "work_date": pick.choice(days),
            "crew": pick.choice(CREWS),
            "category": pick.choice(CATEGORIES),
            "amount": Decimal(pick.randrange(100, 5_000_000)).scaleb(-2),
            "hours": Decimal(pick.randrange(25, 1200)).scaleb(-2),
            "note": f"pour {pick.randrange(1000)}",
            "approved": pick.random() < 0.7,
            **stamp,
        }
        for _ in range(count)
    ]


# -- the hand-written side ------------------------------------------------------------------
def work_table() -> sa.Table:
    """Return the work-entry table as a developer would declare it by hand."""
    return sa.Table(
        f"{PACK}__work_entry",
        sa.MetaData(),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True)),
        sa.Column("created_by", sa.BigInteger()),
        sa.Column("updated_at", sa.DateTime(timezone=True)),
        sa.Column("updated_by", sa.BigInteger()),
        sa.Column("version", sa.Integer()),
        sa.Column("project", sa.BigInteger()),
        sa.Column("work_date", sa.Date()),
        sa.Column("crew", sa.String(64)),
        sa.Column("category", sa.String(64)),
        sa.Column("amount", ExactDecimal(18, 2)),
        sa.Column("hours", ExactDecimal(8, 2)),
        sa.Column("note", sa.String(200)),
        sa.Column("approved", sa.Boolean()),
    )


def _row_json(row: Any) -> dict[str, Any]:
    """Return a row as JSON-ready values."""
    out = {}
    for name, value in row.items():
        if isinstance(value, dt.datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)  # SQLite hands back naive UTC values
        out[name] = json_value(value)
    return out


def hand_list(
    engine: sa.Engine, table: sa.Table, where: Any, order: list[Any], count: bool
) -> dict[str, Any]:
    """Return page 1 as JSON-ready rows and, when asked, the same capped count as the
    runtime (skipped when the page is not full)."""
    with engine.connect() as conn:
        statement = sa.select(table).where(where).order_by(*order).limit(PER_PAGE).offset(0)
        items = [_row_json(row) for row in conn.execute(statement).mappings()]
        total = -1
        if count and len(items) < PER_PAGE:
            total = len(items)
        elif count:
            inner = sa.select(table.c.id).where(where).limit(COUNT_CAP + 1).subquery()
            total = min(
                conn.execute(sa.select(sa.func.count()).select_from(inner)).scalar_one(), COUNT_CAP
            )
    return {"items": items, "total": total}


def hand_aggregate(engine: sa.Engine) -> list[dict[str, Any]]:
    """Return the aggregate with hand-written SQL, as JSON-ready rows."""
    sqlite = engine.dialect.name == "sqlite"
    month = "strftime('%Y-%m', work_date)" if sqlite else "to_char(work_date, 'YYYY-MM')"
    sql = sa.text(
        f"SELECT crew, category, {month} AS month, count(*) AS n, sum(amount) AS total "
        f"FROM {PACK}__work_entry GROUP BY crew, category, month "
        "ORDER BY crew, category, month"
    )
    with engine.connect() as conn:
        rows = conn.execute(sql).all()
    return [
        {
            "crew": crew,
            "category": category,
            "work_date:month": month,
            "count": n,
            "sum_amount": str(Decimal(total).scaleb(-2) if sqlite else total),
        }
        for crew, category, month, n, total in rows
    ]


# -- the runs -------------------------------------------------------------------------------
@dataclass
class Scenario:
    """One list query: its query string, its hand-written WHERE and ORDER BY."""

    label: str
    params: Callable[[int], dict[str, str]]
    where: Callable[[sa.Table, int], Any]
    order: Callable[[sa.Table], list[Any]]


SCENARIOS = (
    Scenario(
        "project=N, sort=-work_date",
        lambda n: {"project": str(n % PROJECTS + 1), "sort": "-work_date"},
        lambda t, n: t.c.project == n % PROJECTS + 1,
        lambda t: [t.c.work_date.desc(), t.c.id.desc()],
    ),
    Scenario(
        "work_date=D, sort=-amount",
        lambda n: {
            "work_date": (FIRST_DAY + dt.timedelta(days=n % DAYS)).isoformat(),
            "sort": "-amount",
        },
        lambda t, n: t.c.work_date == FIRST_DAY + dt.timedelta(days=n % DAYS),
        lambda t: [t.c.amount.desc(), t.c.id.desc()],
    ),
)


class Runner:
    """Run the same query on every side, with what each side needs."""

    def __init__(self, app: Flask, token: str) -> None:
        """Load the registry and prepare a client, an engine and the hand-declared table."""
        self.app = app
        self.client: FlaskClient = app.test_client()
        self.headers = auth_headers(token)
        self.engine = engine_of(app)
        self.table = work_table()
        with open_session(app) as session:
            self.registry: Registry = load_registry(session)
        self.meta: EntityMeta = self.registry.meta(f"{PACK}.work_entry")

    def rest(self, path: str, params: dict[str, str]) -> Any:
        """Return the JSON of a GET through the REST API (exit on an error status)."""
        response = self.client.get(path, query_string=params, headers=self.headers)
        if response.status_code != 200:
            sys.exit(f"GET {path}: HTTP {response.status_code}: {response.get_data(True)}")
        return response.get_json()

    def runtime_list(self, params: dict[str, str]) -> Any:
        """Return a page from `list_records` in a fresh session."""
        with open_session(self.app) as session:
            return list_records(
                session,
                self.registry,
                self.meta,
                {k: [v] for k, v in params.items()},
                principal=system_principal(),
            )

    def runtime_aggregate(self) -> Any:
        """Return the aggregate from `aggregate()` in a fresh session."""
        params = {k: [v] for k, v in (p.split("=") for p in AGGREGATE_QUERY.split("&"))}
        with open_session(self.app) as session:
            return aggregate(
                session, self.registry, self.meta, params, principal=system_principal()
            )


def list_sides(runner: Runner, scenario: Scenario) -> dict[str, Callable[[int], Any]]:
    """Return the list query of each side, as a call taking the run number."""
    path = f"/api/v1/{PACK}/work_entry"
    table = runner.table

    def hand(n: int, count: bool) -> Any:
        """Run the hand-written list query of run `n`."""
        return hand_list(
            runner.engine, table, scenario.where(table, n), scenario.order(table), count
        )

    return {
        "REST API": lambda n: runner.rest(path, scenario.params(n)),
        "list_records": lambda n: runner.runtime_list(scenario.params(n)),
        "list_records count=0": lambda n: runner.runtime_list({**scenario.params(n), "count": "0"}),
        "hand-written + count": partial(hand, count=True),
        "hand-written, no count": partial(hand, count=False),
    }


def measure(sides: dict[str, Callable[[int], Any]], runs: int, warm: int) -> dict[str, Timing]:
    """Time every side `runs` times, interleaved, rotating which side goes first."""
    timings = {name: Timing(name) for name in sides}
    names = list(sides)
    for number in range(warm + runs):
        settle()
        shift = number % len(names)
        for name in names[shift:] + names[:shift]:
            call = partial(sides[name], number)
            if number < warm:
                call()
            else:
                timed(timings[name], call)
    return timings


def check_list_agrees(runner: Runner, scenario: Scenario) -> None:
    """Exit unless the runtime and the hand-written query return the same page and count."""
    sides = list_sides(runner, scenario)
    ours, theirs = sides["REST API"](3), sides["hand-written + count"](3)
    names = ["id", *WORK_ENTRY["properties"]]  # type: ignore[list-item]
    left = [{k: item[k] for k in names} for item in ours["items"]]
    right = [{k: item[k] for k in names} for item in theirs["items"]]
    if left != right or ours["total"] != theirs["total"]:
        sys.exit(f"{scenario.label}: runtime and hand-written results differ")


def aggregate_sides(runner: Runner) -> dict[str, Callable[[int], Any]]:
    """Return the aggregate of each side, as a call taking the run number."""
    path = f"/api/v1/{PACK}/work_entry/aggregate"
    params = dict(p.split("=") for p in AGGREGATE_QUERY.split("&"))
    return {
        "REST API": lambda _n: runner.rest(path, params)["items"],
        "aggregate()": lambda _n: runner.runtime_aggregate(),
        "hand-written SQL": lambda _n: hand_aggregate(runner.engine),
    }


# -- the report -----------------------------------------------------------------------------
def list_lines(scenario: Scenario, timings: dict[str, Timing]) -> list[str]:
    """Return the summary lines of one list scenario."""
    median = {name: t.median_ms() for name, t in timings.items()}
    hand = median["hand-written + count"]
    ratio = median["list_records"] / hand
    rest_ratio = median["REST API"] / hand
    ok = median["REST API"] <= LIST_TARGET_MS and ratio <= LIST_TARGET_RATIO
    lines = [f"list  {scenario.label}  (page 1 of {PER_PAGE}, capped count)"]
    lines += [f"      {name:<24} median {ms:8.2f} ms" for name, ms in median.items()]
    lines.append(
        f"      REST {median['REST API']:.1f} ms, list_records/hand {ratio:.2f}, REST/hand "
        f"{rest_ratio:.2f}  (target <= {LIST_TARGET_MS:.0f} ms, <= {LIST_TARGET_RATIO}x) "
        f"{verdict(ok)}"
    )
    return lines


def aggregate_lines(timings: dict[str, Timing]) -> list[str]:
    """Return the summary lines of the aggregate."""
    median = {name: t.median_ms() for name, t in timings.items()}
    ratio = median["aggregate()"] / median["hand-written SQL"]
    rest_ratio = median["REST API"] / median["hand-written SQL"]
    lines = [f"aggregate  {AGGREGATE_QUERY}  (every row)"]
    lines += [f"      {name:<24} median {ms:8.1f} ms" for name, ms in median.items()]
    lines.append(
        f"      aggregate()/hand {ratio:.2f}, REST/hand {rest_ratio:.2f}  "
        f"(target <= {AGGREGATE_TARGET_RATIO}x) {verdict(ratio <= AGGREGATE_TARGET_RATIO)}"
    )
    return lines


def run(app: Flask, args: argparse.Namespace, load_seconds: float | None) -> bool:
    """Measure both parts, print the summary table and return True when targets are met."""
    runner = Runner(app, admin_token(app))
    lines, met = [], True
    for scenario in SCENARIOS:
        check_list_agrees(runner, scenario)
        timings = measure(list_sides(runner, scenario), args.runs, warm=3)
        lines += [*list_lines(scenario, timings), ""]
        median = {name: t.median_ms() for name, t in timings.items()}
        met &= median["REST API"] <= LIST_TARGET_MS
        met &= median["list_records"] <= LIST_TARGET_RATIO * median["hand-written + count"]
    sides = aggregate_sides(runner)
    if sides["aggregate()"](0) != sides["hand-written SQL"](0):
        sys.exit("aggregate: runtime and hand-written results differ")
    timings = measure(sides, args.aggregate_runs, warm=1)
    lines += aggregate_lines(timings)
    median = {name: t.median_ms() for name, t in timings.items()}
    met &= median["aggregate()"] <= AGGREGATE_TARGET_RATIO * median["hand-written SQL"]
    loaded = "reused from an earlier run" if load_seconds is None else f"{load_seconds:.0f} s"
    lines += [
        "",
        f"{engine_of(app).dialect.name}: {args.rows:,} work entries + {PROJECTS:,} projects, "
        "loaded in bulk with Core insert() executemany,",
        f"NOT through the records service (load: {loaded})",
        f"medians of {args.runs} list and {args.aggregate_runs} aggregate runs",
    ]
    print_table("runtime queries vs hand-written SQL", lines)
    return met


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Return the command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="work entries (1,000,000)")
    parser.add_argument("--runs", type=int, default=30, help="runs of each list query (30)")
    parser.add_argument("--aggregate-runs", type=int, default=5, help="aggregate runs (5)")
    parser.add_argument("--db", type=Path, help="folder that keeps the SQLite file for reuse")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the temporary folder (without --db) and print its path",
    )
    parser.add_argument(
        "--database-url",
        help="run on this PostgreSQL database instead; its schema public is DROPPED and recreated",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures; return 0 when every target is met."""
    args = parse_args(argv)
    folder = args.db or Path(tempfile.mkdtemp(prefix="formwork-bench-query-"))
    folder.mkdir(parents=True, exist_ok=True)
    db = choose_database(folder, args.rows, args.database_url)
    try:
        if not db.reusable:
            print(f"loading {args.rows:,} rows into {db.url.split('@')[-1]} ...", flush=True)
        app, load_seconds = prepare(db)
        met = run(app, args, load_seconds)
        engine_of(app).dispose()
    finally:
        if args.db is None and not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
        elif args.db is None:
            print(f"kept {folder}; reuse it with --db {folder}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
