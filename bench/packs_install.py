"""Benchmark: installing module packs, and upgrading a pack over a large table.

(1) Install every shipped pack (`module_packs/*/` with a `pack.json`) with its demo data on
an empty database, in one `install_packs` call. When no pack is shipped yet, the test packs
`tests/packs/site_v1` and `tests/packs/costs_v1` stand in (the output says which packs were
installed). Median of 3 fresh databases. Target: <= 3 s on SQLite.
(2) Upgrade `tests/packs/site_v1` to `tests/packs/site_v2` (adds `project.region`, renames
`project.name` to `title`, widens `day_sheet.location`, adds entity `visit`) while
`site__project` holds 100,000 rows. The rows are bulk-loaded with Core `insert()`
executemany (not through the records service). Target: <= 10 s on SQLite.

    .venv/bin/python bench/packs_install.py [--rows 100000] [--runs 3]
    .venv/bin/python bench/packs_install.py --database-url postgresql+psycopg://.../fw_bench_packs
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from _common import print_table, reset_postgres, verdict
from sqlalchemy.orm import Session, sessionmaker

from formwork.runtime.database import create_system_tables, make_engine
from formwork.runtime.packs import InstallOptions, install_packs, read_pack
from formwork.runtime.registry import load_registry

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "module_packs"
TEST_PACKS = ROOT / "tests" / "packs"
FALLBACK = (TEST_PACKS / "site_v1", TEST_PACKS / "costs_v1")
SITE_V1 = TEST_PACKS / "site_v1"
SITE_V2 = TEST_PACKS / "site_v2"
TABLE = "site__project"
BATCH = 20_000
INSTALL_TARGET_S = 3.0
UPGRADE_TARGET_S = 10.0
SPOT_CHECKS = 5


# -- databases ------------------------------------------------------------------------------
class Databases:
    """Hands out fresh, empty databases with the platform tables: SQLite files in a temporary
    folder, or the given PostgreSQL database with its schema `public` recreated each time."""

    def __init__(self, database_url: str | None) -> None:
        self.url = database_url
        self.folder = Path(tempfile.mkdtemp(prefix="formwork-bench-packs-"))
        self.count = 0

    @property
    def dialect(self) -> str:
        """Return the dialect the databases use."""
        return "sqlite" if self.url is None else sa.make_url(self.url).get_backend_name()

    def fresh(self) -> sa.Engine:
        """Return an engine on a new empty database holding only the platform tables."""
        self.count += 1
        if self.url is None:
            url = f"sqlite:///{self.folder / f'packs-{self.count}.db'}"
        else:
            reset_postgres(self.url)
            url = self.url
        engine = make_engine(url)
        create_system_tables(engine)
        return engine

    def close(self) -> None:
        """Delete the temporary folder."""
        shutil.rmtree(self.folder, ignore_errors=True)


def new_session(engine: sa.Engine) -> Session:
    """Return a new session on `engine` (the caller closes it)."""
    return sessionmaker(engine)()


# -- (1) install every shipped pack ---------------------------------------------------------
def shipped_packs() -> tuple[list[Path], bool]:
    """Return the pack folders to install and whether they are the shipped ones (else the
    test-pack stand-ins)."""
    found = sorted(p.parent for p in SHIPPED.glob("*/pack.json"))
    if found:
        return found, True
    return list(FALLBACK), False


def time_install(engine: sa.Engine, folders: list[Path]) -> tuple[float, list[str]]:
    """Install the packs at `folders` with demo data in one call and commit; return the
    seconds taken (reading the folders included) and the install report."""
    with new_session(engine) as session:
        started = time.perf_counter()
        sources = [read_pack(folder) for folder in folders]
        report = install_packs(session, sources, InstallOptions(demo=True))
        session.commit()
        seconds = time.perf_counter() - started
    return seconds, report


def install_part(databases: Databases, runs: int) -> tuple[list[str], bool]:
    """Measure part (1); return its summary lines and whether the target is met."""
    folders, shipped = shipped_packs()
    names = ", ".join(str(f.relative_to(ROOT)) for f in folders)
    origin = "shipped packs" if shipped else "NO shipped pack yet: test packs installed instead"
    print(f"(1) installing {len(folders)} pack(s) ({origin}): {names}", flush=True)
    samples: list[float] = []
    report: list[str] = []
    for run in range(1, runs + 1):
        engine = databases.fresh()
        try:
            seconds, report = time_install(engine, folders)
        finally:
            engine.dispose()
        samples.append(seconds)
        print(f"    run {run}: {seconds:.3f} s", flush=True)
    median = statistics.median(samples)
    ok = median <= INSTALL_TARGET_S
    lines = [
        f"(1) install all shipped packs with demo data on an empty {databases.dialect} database",
        f"    packs: {names}",
        f"    ({origin})",
        "    report of the last run:",
        *(f"      {line}" for line in report),
        f"    median of {runs} fresh databases: {median:.3f} s  "
        f"(runs: {', '.join(f'{s:.3f}' for s in samples)})",
        f"    target <= {INSTALL_TARGET_S:.0f} s  {verdict(ok)}",
    ]
    return lines, ok


# -- (2) upgrade over a large table ---------------------------------------------------------
def code_of(number: int) -> str:
    """Return the unique project code of bulk row `number`."""
    return f"BULK-{number:07d}"


def name_of(number: int) -> str:
    """Return the project name of bulk row `number`."""
    return f"Bulk project {number}"


def project_rows(start: int, count: int, stamp: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Yield `count` project rows numbered from `start` as insert parameters."""
    for number in range(start, start + count):
        yield {"code": code_of(number), "name": name_of(number), **stamp}


def bulk_load(engine: sa.Engine, rows: int) -> float:
    """Insert `rows` projects into `site__project` with Core executemany, in batches, in one
    transaction (not through the records service); return the seconds taken."""
    with new_session(engine) as session:
        table = load_registry(session).meta("site.project").table
    created = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    stamp = {"created_at": created, "updated_at": created, "version": 1}
    started = time.perf_counter()
    with engine.begin() as conn:
        for start in range(1, rows + 1, BATCH):
            batch = list(project_rows(start, min(BATCH, rows + 1 - start), stamp))
            conn.execute(sa.insert(table), batch)
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text(f"ANALYZE {TABLE}"))
    return time.perf_counter() - started


def verify(engine: sa.Engine, rows: int) -> list[str]:
    """Exit unless the bulk rows survived the upgrade with `title` holding the old names;
    return what was checked."""
    with engine.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns(TABLE)}
        if "title" not in columns or "name" in columns or "region" not in columns:
            sys.exit(f"upgrade: unexpected columns of {TABLE}: {sorted(columns)}")
        table = sa.table(TABLE, sa.column("code"), sa.column("title"))
        bulk = table.c.code.like("BULK-%")
        count = conn.scalar(sa.select(sa.func.count()).select_from(table).where(bulk))
        if count != rows:
            sys.exit(f"upgrade: {count:,} bulk rows found in {TABLE}, expected {rows:,}")
        step = max(1, rows // SPOT_CHECKS)
        numbers = sorted({1, rows, *range(step, rows, step)})
        found = dict(
            conn.execute(
                sa.select(table.c.code, table.c.title).where(
                    table.c.code.in_([code_of(n) for n in numbers])
                )
            ).all()
        )
    for number in numbers:
        if found.get(code_of(number)) != name_of(number):
            sys.exit(f"upgrade: {code_of(number)} has title {found.get(code_of(number))!r}")
    return [
        f"    verified: {count:,} bulk rows present; columns title and region present, name gone;",
        f"    title = former name in {len(numbers)} spot-checked rows "
        f"({code_of(numbers[0])} ... {code_of(numbers[-1])})",
    ]


def upgrade_part(databases: Databases, rows: int) -> tuple[list[str], bool]:
    """Measure part (2); return its summary lines and whether the target is met."""
    engine = databases.fresh()
    try:
        with new_session(engine) as session:
            install_packs(session, [read_pack(SITE_V1)])
            session.commit()
        print(f"(2) bulk-loading {rows:,} rows into {TABLE} ...", flush=True)
        load_seconds = bulk_load(engine, rows)
        print(f"    loaded in {load_seconds:.1f} s; upgrading site to v2 ...", flush=True)
        with new_session(engine) as session:
            started = time.perf_counter()
            report = install_packs(session, [read_pack(SITE_V2)])
            session.commit()
            seconds = time.perf_counter() - started
        checked = verify(engine, rows)
    finally:
        engine.dispose()
    ok = seconds <= UPGRADE_TARGET_S
    lines = [
        f"(2) upgrade site 1.0.0 -> 1.1.0 with {rows:,} rows in {TABLE} on {databases.dialect}",
        f"    rows bulk-loaded with Core insert() executemany, {BATCH:,} per batch,",
        f"    NOT through the records service (load: {load_seconds:.1f} s)",
        "    report:",
        *(f"      {line}" for line in report),
        *checked,
        f"    install_packs(site_v2) + commit: {seconds:.3f} s",
        f"    target <= {UPGRADE_TARGET_S:.0f} s  {verdict(ok)}",
    ]
    return lines, ok


# -- main -----------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Return the command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows in site__project")
    parser.add_argument("--runs", type=int, default=3, help="fresh databases for (1) (3)")
    parser.add_argument(
        "--database-url",
        help="run on this PostgreSQL database instead; its schema public is DROPPED and "
        "recreated before every run (do not use the test suite's database `test`)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run both parts and print their figures; return 0 when every target is met."""
    args = parse_args(argv)
    if args.database_url and sa.make_url(args.database_url).database == "test":
        sys.exit("refusing database `test` (the test suite's): create e.g. fw_bench_packs")
    databases = Databases(args.database_url)
    try:
        install_lines, install_ok = install_part(databases, args.runs)
        upgrade_lines, upgrade_ok = upgrade_part(databases, args.rows)
    finally:
        databases.close()
    print_table("[packs] install and upgrade", [*install_lines, "", *upgrade_lines])
    return 0 if install_ok and upgrade_ok else 1


if __name__ == "__main__":
    sys.exit(main())
