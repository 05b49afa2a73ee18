"""Benchmark: create and get-by-id through the runtime's REST API against a hand-written
Flask + SQLAlchemy endpoint serving the same 10-field entity.

Both sides run in one process, on one SQLite file, through the same Flask app and the
Flask test client, with the same bearer token (the hand-written side ignores it unless
`--baseline-auth`). Rounds interleave the two sides and alternate which goes first.
Target: runtime throughput at least 0.75 x the hand-written one, for create and for
get-by-id.

    .venv/bin/python bench/runtime_crud.py [--rounds 20] [--per-round 100] [--baseline-auth]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
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
    print_table,
    settle,
    timed,
    verdict,
)
from flask import Flask, jsonify, request
from flask.testing import FlaskClient
from sqlalchemy.exc import IntegrityError

from formwork.runtime.fields.numeric import ExactDecimal
from formwork.runtime.models import ApiToken, User

TARGET = 0.75
PACK = "bench"
API = f"/api/v1/{PACK}/item"
BASELINE = "/baseline/items"
STATUSES = ("open", "checked", "closed")


def _label(zh: str, en: str) -> dict[str, str]:
    """Return a zh-CN/en label."""
    return {"zh-CN": zh, "en": en}


SITE = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "x-formwork": {"name": "site", "label": _label("工地", "Site"), "title_field": "name"},
    "required": ["name"],
    "properties": {
        "name": {
            "maxLength": 100,
            "x-formwork": {"type": "string", "label": _label("名称", "Name")},
        }
    },
}

ITEM = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "x-formwork": {"name": "item", "label": _label("条目", "Item"), "title_field": "code"},
    "required": ["code", "site", "amount"],
    "properties": {
        "code": {
            "maxLength": 40,
            "x-formwork": {"type": "string", "label": _label("编号", "Code")},
        },
        "description": {"x-formwork": {"type": "text", "label": _label("说明", "Description")}},
        "quantity": {
            "minimum": 0,
            "x-formwork": {"type": "integer", "label": _label("数量", "Quantity")},
        },
        "rate": {
            "x-formwork": {
                "type": "decimal",
                "precision": 10,
                "scale": 3,
                "label": _label("系数", "Rate"),
            }
        },
        "amount": {
            "minimum": 0,
            "x-formwork": {"type": "money", "label": _label("金额", "Amount")},
        },
        "due_date": {
            "x-formwork": {"type": "date", "indexed": True, "label": _label("到期", "Due")}
        },
        "checked_at": {"x-formwork": {"type": "datetime", "label": _label("检查", "Checked at")}},
        "approved": {"x-formwork": {"type": "boolean", "label": _label("批准", "Approved")}},
        "status": {
            "x-formwork": {
                "type": "select",
                "label": _label("状态", "Status"),
                "options": [{"value": s, "label": _label(s, s)} for s in STATUSES],
            }
        },
        "site": {
            "x-formwork": {"type": "reference", "entity": "site", "label": _label("工地", "Site")}
        },
    },
}


# -- the hand-written side ------------------------------------------------------------------
def baseline_table() -> sa.Table:
    """Return the item table as a developer would declare it by hand (same SQL table)."""
    return sa.Table(
        f"{PACK}__item",
        sa.MetaData(),
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Integer()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.Integer()),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(40)),
        sa.Column("description", sa.Text()),
        sa.Column("quantity", sa.BigInteger()),
        sa.Column("rate", ExactDecimal(10, 3)),
        sa.Column("amount", ExactDecimal(18, 2)),
        sa.Column("due_date", sa.Date()),
        sa.Column("checked_at", sa.DateTime(timezone=True)),
        sa.Column("approved", sa.Boolean()),
        sa.Column("status", sa.String(64)),
        sa.Column("site", sa.Integer()),
    )


def _text(limit: int) -> Callable[[Any], str]:
    """Return a converter accepting text of at most `limit` characters."""

    def convert(value: Any) -> str:
        """Return the text or raise ValueError."""
        if not isinstance(value, str) or len(value) > limit:
            raise ValueError(f"expected text of at most {limit} characters")
        return value

    return convert


def _whole(value: Any) -> int:
    """Return a whole number >= 0 or raise ValueError."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError("expected a whole number >= 0")
    return value


def _decimal(places: int) -> Callable[[Any], Decimal]:
    """Return a converter to Decimal with at most `places` decimals."""

    def convert(value: Any) -> Decimal:
        """Return the Decimal or raise ValueError."""
        if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
            raise ValueError("expected a decimal number")
        try:
            number = Decimal(str(value))
        except InvalidOperation as exc:
            raise ValueError("expected a decimal number") from exc
        if not number.is_finite() or number.as_tuple().exponent < -places:  # type: ignore[operator]
            raise ValueError(f"expected a finite number with at most {places} decimals")
        return number

    return convert


def _money(value: Any) -> Decimal:
    """Return an amount >= 0 with at most 2 decimals or raise ValueError."""
    number = _decimal(2)(value)
    if number < 0:
        raise ValueError("expected an amount >= 0")
    return number


def _date(value: Any) -> dt.date:
    """Return the date of ISO text or raise ValueError."""
    if not isinstance(value, str):
        raise ValueError("expected YYYY-MM-DD")
    return dt.date.fromisoformat(value)


def _moment(value: Any) -> dt.datetime:
    """Return the UTC moment of ISO text (no offset means UTC) or raise ValueError."""
    if not isinstance(value, str):
        raise ValueError("expected an ISO 8601 date-time")
    moment = dt.datetime.fromisoformat(value)
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def _flag(value: Any) -> bool:
    """Return a JSON boolean or raise ValueError."""
    if not isinstance(value, bool):
        raise ValueError("expected true or false")
    return value


def _status(value: Any) -> str:
    """Return one of the status options or raise ValueError."""
    if value not in STATUSES:
        raise ValueError(f"expected one of {', '.join(STATUSES)}")
    return str(value)


def _site(value: Any) -> int:
    """Return a positive site id or raise ValueError."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError("expected a site id")
    return value


CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "code": _text(40),
    "description": _text(65535),
    "quantity": _whole,
    "rate": _decimal(3),
    "amount": _money,
    "due_date": _date,
    "checked_at": _moment,
    "approved": _flag,
    "status": _status,
    "site": _site,
}
REQUIRED = ("code", "site", "amount")


def validate(body: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """Return the converted values and the problems of a create body, by field."""
    if not isinstance(body, dict):
        return {}, {"/": "expected a JSON object"}
    problems = {name: "unknown field" for name in body if name not in CONVERTERS}
    problems.update({name: "required" for name in REQUIRED if body.get(name) is None})
    values: dict[str, Any] = {}
    for name, value in body.items():
        if name in problems or name not in CONVERTERS:
            continue
        try:
            values[name] = None if value is None else CONVERTERS[name](value)
        except ValueError as exc:
            problems[name] = str(exc)
    return values, problems


def token_user(conn: sa.Connection, header: str) -> int | None:
    """Return the active user of a valid bearer token, in one query (or None)."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    tokens, users = ApiToken.__table__, User.__table__
    query = (
        sa.select(users.c.id)
        .join(tokens, tokens.c.user_id == users.c.id)
        .where(
            tokens.c.token_hash == hashlib.sha256(token.strip().encode()).hexdigest(),
            tokens.c.revoked_at.is_(None),
            sa.or_(tokens.c.expires_at.is_(None), tokens.c.expires_at > dt.datetime.now(dt.UTC)),
            users.c.is_active.is_(True),
        )
    )
    return conn.execute(query).scalar()


def add_baseline_routes(app: Flask, check_token: bool) -> None:
    """Register the hand-written endpoints on `app` (before its first request); with
    `check_token` they verify the bearer token as a careful developer would."""
    table = baseline_table()
    engine = engine_of(app)

    def signed_in(conn: sa.Connection) -> int | None:
        """Return the user id (0 when tokens are not checked) or None."""
        return token_user(conn, request.headers.get("Authorization", "")) if check_token else 0

    def create_item() -> Any:
        """Validate, insert and return a new item."""
        values, problems = validate(request.get_json(silent=True))
        if problems:
            return jsonify(errors=problems), 422
        now = dt.datetime.now(dt.UTC)
        row = {**values, "created_at": now, "updated_at": now, "version": 1}
        try:
            with engine.begin() as conn:
                user = signed_in(conn)
                if user is None:
                    return jsonify(error="unauthorized"), 401
                row["created_by"] = row["updated_by"] = user or None
                inserted = conn.execute(sa.insert(table).values(row)).inserted_primary_key
                new_id = inserted[0]  # type: ignore[index]
        except IntegrityError:
            return jsonify(errors={"site": "no such site"}), 422
        body = {name: json_value(value) for name, value in row.items()}
        return jsonify(id=new_id, **body), 201

    def get_item(item_id: int) -> Any:
        """Return one item by id."""
        with engine.connect() as conn:
            if signed_in(conn) is None:
                return jsonify(error="unauthorized"), 401
            row = conn.execute(sa.select(table).where(table.c.id == item_id)).mappings().first()
        if row is None:
            return jsonify(error="not found"), 404
        return jsonify({name: json_value(_aware(value)) for name, value in row.items()})

    app.add_url_rule(BASELINE, "baseline_create", create_item, methods=["POST"])
    app.add_url_rule(f"{BASELINE}/<int:item_id>", "baseline_get", get_item, methods=["GET"])
    app.extensions["csrf"].exempt(create_item)


def _aware(value: Any) -> Any:
    """Return datetimes as aware UTC values (SQLite hands back naive ones)."""
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


# -- the run --------------------------------------------------------------------------------
@dataclass
class Side:
    """One side of the comparison: where it creates and reads, and its timings."""

    name: str
    base: str
    create: Timing = field(init=False)
    get: Timing = field(init=False)
    created: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        """Start empty timings."""
        self.create = Timing(f"{self.name} create")
        self.get = Timing(f"{self.name} get")


class Driver:
    """Send the requests of both sides through one test client."""

    def __init__(self, client: FlaskClient, token: str, sites: list[int], seed: int) -> None:
        """Keep the client, the token header and the site ids; seed the payloads."""
        self.client = client
        self.headers = auth_headers(token)
        self.sites = sites
        self.random = random.Random(seed)
        self.ids: list[int] = []
        self.serial = 0

    def payload(self) -> dict[str, Any]:
        """Return a new valid item, different every call."""
        self.serial += 1
        pick = self.random
        day = dt.date(2024, 1, 1) + dt.timedelta(days=pick.randrange(730))
        start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
        moment = start + dt.timedelta(minutes=pick.randrange(10**6))
        return {
            "code": f"IT-{self.serial:07d}",
            "description": "Formwork panel check, east wing, level " + str(pick.randrange(40)),
            "quantity": pick.randrange(1, 500),
            "rate": f"{pick.randrange(1, 10**6) / 1000:.3f}",
            "amount": f"{pick.randrange(1, 10**8) / 100:.2f}",
            "due_date": day.isoformat(),
            "checked_at": moment.isoformat(),
            "approved": pick.random() < 0.5,
            "status": pick.choice(STATUSES),
            "site": pick.choice(self.sites),
        }

    def create(self, side: Side, count: int) -> None:
        """Create `count` items through `side`, timing each request."""
        for _ in range(count):
            body = self.payload()
            post = partial(self.client.post, side.base, json=body, headers=self.headers)
            response = timed(side.create, post)
            _expect(response, 201, side.name, "create")
            side.created.append(response.get_json()["id"])
            self.ids.append(side.created[-1])

    def get(self, side: Side, ids: list[int]) -> None:
        """Read the given items through `side`, timing each request."""
        for item_id in ids:
            url = f"{side.base}/{item_id}"
            response = timed(side.get, partial(self.client.get, url, headers=self.headers))
            _expect(response, 200, side.name, "get")

    def sample_ids(self, count: int) -> list[int]:
        """Return `count` ids of existing items (from both sides), the same for each side."""
        return [self.random.choice(self.ids) for _ in range(count)]


def _expect(response: Any, status: int, side: str, what: str) -> None:
    """Exit with the response body unless it has the expected status."""
    if response.status_code != status:
        sys.exit(f"{side} {what}: HTTP {response.status_code}: {response.get_data(as_text=True)}")


def run_rounds(driver: Driver, sides: tuple[Side, Side], rounds: int, per_round: int) -> None:
    """Interleave the sides round by round, alternating which one goes first."""
    for number in range(rounds):
        order = sides if number % 2 == 0 else sides[::-1]
        settle()
        for side in order:
            driver.create(side, per_round)
        ids = driver.sample_ids(per_round)
        settle()
        for side in order:
            driver.get(side, ids)


def check_same_record(driver: Driver, sides: tuple[Side, Side]) -> None:
    """Exit unless both sides read back the same field values for the same items."""
    for item_id in (sides[0].created[-1], sides[1].created[-1]):
        bodies = [
            driver.client.get(f"{side.base}/{item_id}", headers=driver.headers).get_json()
            for side in sides
        ]
        names = ["id", "version", *ITEM["properties"]]  # type: ignore[list-item]
        left, right = ({n: body.get(n) for n in names} for body in bodies)
        if left != right:
            sys.exit(f"the two sides disagree on item {item_id}:\n{left}\n{right}")


@contextmanager
def counting(engine: sa.Engine) -> Iterator[list[str]]:
    """Yield a list that collects the SQL statements run on `engine` meanwhile."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        """Remember one statement (the cursor-execute event's third argument)."""
        seen.append(" ".join(str(args[2]).split())[:60])

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def statements_per_request(app: Flask, driver: Driver, sides: tuple[Side, Side]) -> dict[str, int]:
    """Return how many SQL statements one create and one get issue on each side."""
    counts = {}
    for measured in sides:
        side = Side(measured.name, measured.base)  # keeps the probe out of the timings
        with counting(engine_of(app)) as seen:
            driver.create(side, 1)
        counts[f"{side.name} create"] = len(seen)
        with counting(engine_of(app)) as seen:
            driver.get(side, side.created)
        counts[f"{side.name} get"] = len(seen)
    return counts


def setup(folder: Path, check_token: bool) -> tuple[Flask, str, list[int]]:
    """Return the app with both entities installed, an admin token and the site ids."""
    app = make_app(folder)
    install(app, PACK, {"site.json": SITE, "item.json": ITEM})
    add_baseline_routes(app, check_token)
    token = admin_token(app)
    client = app.test_client()
    sites = []
    for number in range(20):
        response = client.post(
            f"/api/v1/{PACK}/site", json={"name": f"Site {number}"}, headers=auth_headers(token)
        )
        _expect(response, 201, "runtime", "create site")
        sites.append(response.get_json()["id"])
    _check_columns(app)
    return app, token, sites


def _check_columns(app: Flask) -> None:
    """Exit unless the hand-declared table has the runtime table's columns."""
    reflected = sa.inspect(engine_of(app)).get_columns(f"{PACK}__item")
    declared = {c.name for c in baseline_table().columns}
    if {c["name"] for c in reflected} != declared:
        sys.exit(f"hand-written table differs from the runtime's: {reflected}")


def report(
    sides: tuple[Side, Side], statements: dict[str, int], elapsed: float, checked: bool
) -> None:
    """Print the figures and the summary table."""
    runtime, baseline = sides
    lines = []
    for op in ("create", "get"):
        ours, theirs = getattr(runtime, op), getattr(baseline, op)
        ratio = ours.rate() / theirs.rate()
        label = "create" if op == "create" else "get-by-id"
        lines.append(
            f"{label:<10} runtime {ours.rate():6.0f} req/s  baseline {theirs.rate():6.0f} req/s  "
            f"ratio {ratio:.2f}  (target >= {TARGET}) {verdict(ratio >= TARGET)}"
        )
    lines.append("")
    for op in ("create", "get"):
        for side in sides:
            timing = getattr(side, op)
            lines.append(
                f"{timing.name:<17} median {timing.median_ms():6.3f} ms  "
                f"p90 {timing.quantile_ms(0.9):6.3f} ms  n={len(timing.samples)}  "
                f"SQL statements/request {statements[timing.name]}"
            )
    auth = "verifies the token (one query)" if checked else "ignores the token"
    lines.append(f"\nbaseline {auth}; SQLite file, Flask test client, one process")
    lines.append(f"wall time {elapsed:.1f} s")
    print_table("runtime REST vs hand-written Flask + SQLAlchemy Core", lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures; return 0 when both targets are met."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20, help="interleaved rounds (20)")
    parser.add_argument("--per-round", type=int, default=100, help="requests per side (100)")
    parser.add_argument("--seed", type=int, default=7, help="random seed of the payloads")
    parser.add_argument(
        "--baseline-auth",
        action="store_true",
        help="make the hand-written side verify the bearer token too (one query)",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="formwork-bench-") as tmp:
        app, token, sites = setup(Path(tmp), args.baseline_auth)
        driver = Driver(app.test_client(), token, sites, args.seed)
        sides = (Side("runtime", API), Side("baseline", BASELINE))
        warm_up = (Side("runtime", API), Side("baseline", BASELINE))
        run_rounds(driver, warm_up, 1, 20)
        run_rounds(driver, sides, args.rounds, args.per_round)
        check_same_record(driver, sides)
        statements = statements_per_request(app, driver, sides)
        engine_of(app).dispose()
    report(sides, statements, time.perf_counter() - started, args.baseline_auth)
    met = all(
        getattr(sides[0], op).rate() >= TARGET * getattr(sides[1], op).rate()
        for op in ("create", "get")
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
