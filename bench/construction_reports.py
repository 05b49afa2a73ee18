"""Time two construction reports over 3 years of data for 50 projects.

Data: the projects, cost_center and labor packs installed (with their fixtures: the cost
account tree), then bulk-loaded with Core `insert()` executemany through the runtime's own
`Table` objects (money stored as the column type decides), in one transaction per table, with
the entity indexes dropped during the load and rebuilt after it, then ANALYZE:
50 projects, 400 crews, 4,000 workers, 200,000 approved day-work sheets with 1,000,000 line
items (computed values — amounts, hours, totals, the lines' copies of project, crew, date and
state — filled in by the loader with the pack's rules), 200,000 cost entries, one current
target cost per project with a line per cost account, and 40 commitments per project.

Measured, for one project at a time (a different one each run): the labour summary by crew ×
month (`labor/labour_by_crew_month`, every month of the 3 years) and the cost variance
report (`cost_center/cost_variance`):
- `run_report` — the kernel: every dataset's SQL, merge, expressions, totals, labels;
- `page` — the HTML page `/reports/<pack>/<name>?project=N` through the test client, signed in
  as an administrator (table and chart data rendered);
- `SQL only` — the statements `run_report` sent, replayed on the raw DB-API connection
  (execute + fetchall), without anything the runtime does around them.
Median of `--runs` runs after 3 warm-up runs. Target: page median ≤ 500 ms.

Usage: .venv/bin/python bench/construction_reports.py [--database-url postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (  # noqa: E402
    BENCH_PASSWORD,
    BENCH_USER,
    admin_token,
    engine_of,
    make_app,
    open_session,
    print_table,
    reset_postgres,
    verdict,
)
from formwork.runtime.packs import InstallOptions, install_packs, read_pack  # noqa: E402
from formwork.runtime.registry import load_registry  # noqa: E402
from formwork.runtime.reports.engine import run_report  # noqa: E402
from formwork.runtime.reports.store import find_report  # noqa: E402
from formwork.runtime.security import system_principal  # noqa: E402

PACKS = Path(__file__).resolve().parents[1] / "module_packs"
BATCH = 20_000
TRADES = ("carpenter", "rebar", "concrete", "mason", "scaffolder", "electrician", "general")
CENT = Decimal("0.01")


class Loader:
    """Bulk inserts into entity tables, with the system columns filled in."""

    def __init__(self, conn: sa.Connection, registry: Any, now: dt.datetime) -> None:
        self.conn = conn
        self.registry = registry
        self.stamp = {"created_at": now, "updated_at": now, "version": 1}

    def table(self, entity: str) -> sa.Table:
        """Return an entity's table."""
        return self.registry.meta(entity).table  # type: ignore[no-any-return]

    def insert(self, entity: str, rows: Iterator[dict[str, Any]]) -> int:
        """Insert rows in batches with the entity's indexes dropped; return how many."""
        table = self.table(entity)
        for index in table.indexes:
            index.drop(self.conn)
        count, batch = 0, []
        for row in rows:
            batch.append({**self.stamp, **row})
            if len(batch) == BATCH:
                self.conn.execute(sa.insert(table), batch)
                count, batch = count + len(batch), []
        if batch:
            self.conn.execute(sa.insert(table), batch)
            count += len(batch)
        for index in table.indexes:
            index.create(self.conn)
        return count

    def ids(self, entity: str) -> list[int]:
        """Return the ids of an entity's records in order."""
        table = self.table(entity)
        return list(self.conn.execute(sa.select(table.c.id).order_by(table.c.id)).scalars())


def load(app: Any, projects: int, years: int, lines: int, entries: int, seed: int) -> None:
    """Fill the database; print how long each part took."""
    pick = random.Random(seed)
    today = dt.date.today()
    start_day = today - dt.timedelta(days=365 * years)
    days = (today - start_day).days
    with open_session(app) as session:
        registry = load_registry(session)
    with engine_of(app).begin() as conn:
        loader = Loader(conn, registry, dt.datetime.now(dt.UTC))
        started = time.perf_counter()
        loader.insert("projects.project", (
            {"code": f"B{n:04d}", "name": f"基准项目 {n}", "status": "active",
             "contract_value": Decimal(pick.randint(20, 300) * 1_000_000)}
            for n in range(projects)
        ))  # fmt: skip
        project_ids = loader.ids("projects.project")
        loader.insert("labor.crew", (
            {"code": f"BZ{n:04d}", "name": f"班组 {n}", "main_trade": TRADES[n % len(TRADES)],
             "active": True}
            for n in range(projects * 8)
        ))  # fmt: skip
        crew_ids = loader.ids("labor.crew")
        loader.insert("labor.worker", (
            {"name": f"工人{n}", "id_number": f"{110105197001010000 + n:018d}",
             "trade": TRADES[n % len(TRADES)], "crew": crew_ids[n // 10],
             "day_rate": Decimal(260 + (n % 15) * 10), "active": True}
            for n in range(len(crew_ids) * 10)
        ))  # fmt: skip
        worker_ids = loader.ids("labor.worker")
        rates = {w: Decimal(260 + (i % 15) * 10) for i, w in enumerate(worker_ids)}
        sheets = lines // 5
        plan = _sheet_plan(pick, project_ids, crew_ids, sheets, start_day, days)
        loader.insert("labor.day_sheet", _sheets(plan, worker_ids, rates))
        sheet_ids = loader.ids("labor.day_sheet")
        loaded = loader.insert("labor.day_sheet_line", _lines(plan, sheet_ids, worker_ids, rates))
        print(
            f"  day-work: {sheets:,} sheets, {loaded:,} lines"
            f" ({time.perf_counter() - started:.0f} s)"
        )
        started = time.perf_counter()
        _cost_data(loader, pick, project_ids, entries, start_day, days)
        print(f"  cost: {entries:,} entries ({time.perf_counter() - started:.0f} s)")
        conn.execute(sa.text("ANALYZE"))


def _sheet_plan(
    pick: random.Random,
    projects: list[int],
    crews: list[int],
    count: int,
    start: dt.date,
    days: int,
) -> list[tuple[int, int, dt.date, list[tuple[int, str, str]]]]:
    """Return (project, crew, date, [(worker offset, work-days, overtime)]) per sheet."""
    per_project = len(crews) // len(projects)
    out = []
    for n in range(count):
        p = n % len(projects)
        crew_index = p * per_project + pick.randrange(per_project)
        day = start + dt.timedelta(days=pick.randrange(days))
        team = [(crew_index * 10 + k, pick.choice(("0.5", "1", "1", "1.5")),
                 pick.choice(("0", "0", "1", "2", "5"))) for k in range(5)]  # fmt: skip
        out.append((projects[p], crews[crew_index], day, team))
    out.sort(key=lambda item: item[2])
    return out


def _amount(days: str, overtime: str, rate: Decimal) -> Decimal:
    """The pack's rule: work-days × rate + overtime hours × rate ÷ 8 × 1.5, to the cent."""
    raw = Decimal(days) * rate + Decimal(overtime) * rate / 8 * Decimal("1.5")
    return raw.quantize(CENT, ROUND_HALF_UP)


def _sheets(
    plan: list[Any], workers: list[int], rates: dict[int, Decimal]
) -> Iterator[dict[str, Any]]:
    per_day: dict[dt.date, int] = {}
    for project, crew, day, team in plan:
        per_day[day] = per_day.get(day, 0) + 1
        total = sum((_amount(d, o, rates[workers[w]]) for w, d, o in team), Decimal(0))
        yield {
            "number": f"DW-{day:%Y%m%d}-{per_day[day]:03d}", "project": project, "crew": crew,
            "work_date": day, "reason": "minor", "approval_state": "approved", "total": total,
            "total_days": sum((Decimal(d) for _w, d, _o in team), Decimal(0)),
            "total_hours": sum((8 + Decimal(o) for _w, _d, o in team), Decimal(0)),
        }  # fmt: skip


def _lines(
    plan: list[Any], sheet_ids: list[int], workers: list[int], rates: dict[int, Decimal]
) -> Iterator[dict[str, Any]]:
    for (project, crew, day, team), sheet in zip(plan, sheet_ids, strict=True):
        for order, (w, days, overtime) in enumerate(team):
            worker = workers[w]
            yield {
                "parent_id": sheet, "row_order": order, "worker": worker,
                "work_days": Decimal(days),
                "regular_hours": Decimal(8), "overtime_hours": Decimal(overtime),
                "day_rate": rates[worker], "rate": rates[worker], "hours": 8 + Decimal(overtime),
                "amount": _amount(days, overtime, rates[worker]), "project": project, "crew": crew,
                "work_date": day, "state": "approved",
            }  # fmt: skip


def _cost_data(
    loader: Loader,
    pick: random.Random,
    projects: list[int],
    entries: int,
    start: dt.date,
    days: int,
) -> None:
    accounts = loader.conn.execute(
        sa.select(
            loader.table("cost_center.cost_account").c.id,
            loader.table("cost_center.cost_account").c.code,
        )
    ).all()
    leaves = [a.id for a in accounts if len(a.code) == 4]
    loader.insert("cost_center.target_cost", (
        {"code": f"TC-{p}", "name": "目标成本", "project": p, "stage": "contract", "revision": 1,
         "status": "approved", "is_current": True}
        for p in projects
    ))  # fmt: skip
    targets = loader.ids("cost_center.target_cost")
    loader.insert("cost_center.target_cost_line", (
        {"target_cost": t, "account": a, "amount": Decimal(pick.randint(100, 5000) * 1000)}
        for t in targets for a in leaves
    ))  # fmt: skip
    loader.insert("cost_center.commitment", (
        {"project": p, "account": pick.choice(leaves),
         "kind": pick.choice(("contract", "estimate")),
         "amount": Decimal(pick.randint(10, 3000) * 1000), "date": start}
        for p in projects for _ in range(40)
    ))  # fmt: skip
    loader.insert("cost_center.cost_entry", (
        {"project": projects[n % len(projects)], "account": pick.choice(leaves),
         "date": start + dt.timedelta(days=pick.randrange(days)), "source": "expense",
         "amount": Decimal(pick.randint(100, 500_000)) / 100, "source_ref": f"CE-{n}"}
        for n in range(entries)
    ))  # fmt: skip


# -- measuring --------------------------------------------------------------------------------


class Recorder:
    """Capture the statements a call sends, to replay them on the raw connection."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.statements: list[tuple[str, Any]] = []
        sa.event.listen(engine, "before_cursor_execute", self._remember)

    def _remember(self, conn: Any, cursor: Any, statement: str, params: Any, *args: Any) -> None:
        self.statements.append((statement, params))

    def close(self) -> None:
        """Stop listening."""
        sa.event.remove(self.engine, "before_cursor_execute", self._remember)


def sql_only(engine: sa.Engine, statements: list[tuple[str, Any]]) -> float:
    """Return the seconds the statements take on the raw DB-API connection (execute + fetch)."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        started = time.perf_counter()
        for statement, params in statements:
            cursor.execute(statement, params)
            if cursor.description is not None:
                cursor.fetchall()
        elapsed = time.perf_counter() - started
        raw.rollback()
        return elapsed
    finally:
        raw.close()


def signed_in_client(app: Any) -> Any:
    """Return a test client signed in as the bench administrator."""
    admin_token(app)  # creates the user
    client = app.test_client()
    form = client.get("/login").get_data(as_text=True)
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form)
    token = found.group(1) if found else ""
    response = client.post(
        "/login", data={"username": BENCH_USER, "password": BENCH_PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 302, response.status_code
    return client


def measure(app: Any, pack: str, name: str, params: Callable[[int], dict[str, str]], runs: int,
            projects: list[int]) -> dict[str, float]:  # fmt: skip
    """Return the medians (ms) of run_report, the page and the SQL alone."""
    engine = engine_of(app)
    client = signed_in_client(app)
    kernel, page, sql = [], [], []
    for n in range(runs + 3):
        project = projects[(n * 7) % len(projects)]
        values = params(project)
        with open_session(app) as session:
            registry = load_registry(session)
            report = find_report(session, pack, name)
            recorder = Recorder(engine)
            started = time.perf_counter()
            result = run_report(
                session, registry, system_principal(), report, values, dt.date.today()
            )
            elapsed = time.perf_counter() - started
            recorder.close()
        assert result.rows, f"{name}: no rows for project {project}"
        query = "&".join(f"{k}={v}" for k, v in values.items())
        started = time.perf_counter()
        response = client.get(f"/reports/{pack}/{name}?{query}")
        page_elapsed = time.perf_counter() - started
        assert response.status_code == 200, response.status_code
        replay = sql_only(
            engine, [s for s in recorder.statements if s[0].lstrip().upper().startswith("SELECT")]
        )
        if n >= 3:
            kernel.append(elapsed)
            page.append(page_elapsed)
            sql.append(replay)
    return {
        k: statistics.median(v) * 1000
        for k, v in (("kernel", kernel), ("page", page), ("sql", sql))
    }


def main(argv: list[str] | None = None) -> int:
    """Build the data, time the reports and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="PostgreSQL URL (default: a SQLite file)")
    parser.add_argument("--projects", type=int, default=50)
    parser.add_argument("--years", type=int, default=3)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--cost-entries", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--reuse", action="store_true", help="PostgreSQL: measure the data a previous run loaded"
    )
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="fw-cons-bench-"))
    reuse = bool(args.reuse and args.database_url)
    if args.database_url and not reuse:
        reset_postgres(args.database_url)
    app = make_app(folder, args.database_url)
    if not reuse:
        with open_session(app) as session:
            packs = [read_pack(PACKS / p) for p in ("projects", "cost_center", "labor")]
            install_packs(session, packs, InstallOptions())
            session.commit()
        started = time.perf_counter()
        load(app, args.projects, args.years, args.lines, args.cost_entries, args.seed)
        print(f"loaded in {time.perf_counter() - started:.0f} s")
    with open_session(app) as session:
        table = load_registry(session).meta("projects.project").table
        projects = list(session.execute(sa.select(table.c.id)).scalars())
    since = (dt.date.today() - dt.timedelta(days=365 * args.years + 1)).isoformat()
    cases = {
        "labour by crew × month": ("labor", "labour_by_crew_month",
                                   lambda p: {"project": str(p), "from": since}),
        "cost variance": ("cost_center", "cost_variance", lambda p: {"project": str(p)}),
    }  # fmt: skip
    database = "PostgreSQL" if args.database_url else "SQLite"
    lines, ok = [], True
    for label, (pack, name, params) in cases.items():
        got = measure(app, pack, name, params, args.runs, projects)
        ok = ok and got["page"] <= 500
        lines.append(
            f"{database:<10} {label:<24} page {got['page']:7.1f} ms"
            f"   run_report {got['kernel']:7.1f} ms"
            f"   SQL only {got['sql']:7.1f} ms   {verdict(got['page'] <= 500)}"
        )
    print_table(
        f"Construction reports, one project of {args.projects} ({args.lines:,} day-work lines, "
        f"{args.cost_entries:,} cost entries), median of {args.runs}; target page <= 500 ms",
        lines,
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
