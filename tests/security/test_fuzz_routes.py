"""Every route of the URL map — web pages, API and sign-in — with odd values in its path,
query string and body, as an administrator and as a low-privilege user: no answer is a 500
and no request raises.

The odd values are the classes that were 500s once: digits of other scripts ('²', '١٢'),
ids past 64 bits, negative numbers, newlines, NUL, `null`, huge lists and long strings. The
routes come from `app.url_map`, so a new route is walked without anyone listing it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from flask import Flask
from werkzeug.routing import Rule

from formwork.auth.users import grant
from formwork.runtime.packs import InstallOptions, install_packs, read_pack
from tests.web import conftest as web_fixtures
from tests.web.conftest import Browser, sign_in
from tests.web.helpers import create, project

web, _catalogs, _cheap = (
    web_fixtures.web,
    web_fixtures._catalogs,
    web_fixtures._cheap_password_hashes,
)
LEDGER = Path(__file__).parents[1] / "packs" / "reports_v1"

ODD = [
    "²",
    "١٢",
    "-1",
    "0",
    str(2**64),
    str(2**63),
    "1e999",
    "null",
    "\n",
    "a\x00b",
    "%",
    "x" * 300,
    ",".join(["1"] * 300),
    "\t/evil.example",
    "' OR 1=1 --",
]
# In a path the odd value is one part at a time: the classes, without repeats.
PATH_ODD = ["²", "١٢", "-1", str(2**64), "\n", "a\x00b", "x" * 300]
QUERY_NAMES = [
    "page",
    "per_page",
    "q",
    "lookup_q",
    "sort",
    "next",
    "limit",
    "version",
    "count",
    "grid",
    "f",
    "filter",
    "scope",
    "overdue",
    "mine",
    "record_id",
    "user_id",
    "since",
    "until",
    "kind",
    "username",
    "download",
    "group",
    "sum",
    "avg",
    "min",
    "max",
    "status",
    "process",
    "step",
    "entity",
    "purge",
    "confirm",
    "demo",
    "resolution",
    "with_data",
    "with_customisations",
    "project",
    "from",
    "id__eq",
    "id__in",
    "code__eq",
    "code__in",
    "work_date__gte",
    "headcount__lt",
    "project__eq",
    "project.code__eq",
    "created_at__gte",
    "version__eq",
]
FORM_NAMES = [
    "_version",
    "action",
    "back",
    "comment",
    "label_en",
    "label_zh",
    "locale",
    "name",
    "next",
    "pack",
    "remove",
    "to",
    "to_user",
    "username",
    "password",
    "version",
    "entity",
    "ids",
    "days",
    "scopes",
    "current",
    "new",
    "confirm",
    "code",
    "work_date",
]
# Routes whose real target would end the test's own data or session: odd names only.
DESTRUCTIVE = {
    "api.packs_uninstall",
    "api.packs_disable",
    "api.packs_enable",
    "api.role_delete",
    "api.role_member_remove",
    "auth.logout",
    "auth.logout_all",
    "auth.change_password_view",
    "auth.revoke_session_view",
}
SKIPPED_METHODS = {"HEAD", "OPTIONS"}
_PART = re.compile(r"<(?:[^:>]+:)?([a-z_]+)>")


@dataclass
class World:
    """What the fuzz walks over: the app, real values for path parts, what went wrong."""

    app: Flask
    real: dict[str, str]
    failures: list[str] = field(default_factory=list)
    requests: int = 0


@pytest.fixture
def world(web: Flask, users: dict[str, Any], session: Any) -> World:
    install_packs(session, [read_pack(LEDGER)], InstallOptions())
    session.commit()
    grant(session, "clerk", "sample.day_sheet", ["read"])
    session.commit()
    p = project(web, "P-1")
    sheet = create(web, "sample.day_sheet", {"project": p["id"], "work_date": "2026-03-02"})
    real = {
        "record_id": str(sheet["id"]),
        "instance_id": "1",
        "user_id": str(users["clerk"]["id"]),
        "token_id": "1",
        "session_id": "1",
        "fmt": "csv",
        "field": "project",
        "filename": "css/formwork.css",
        "task_id": "1",
        "notification_id": "1",
        "file_id": "0" * 32,
        "token": "0" * 32,
    }
    return World(web, real)


def _fill(rule: Rule, values: dict[str, str]) -> str:
    return _PART.sub(lambda m: quote(values[m.group(1)], safe=""), rule.rule)


def _real_values(world: World, rule: Rule) -> dict[str, str]:
    """Return real values for the rule's path parts (pack and entity that exist)."""
    values = dict(world.real)
    reports = rule.rule.startswith(("/reports", "/dashboards", "/api/v1/reports"))
    values["pack"] = "ledger" if reports else "sample"
    values["entity"] = "project" if reports else "day_sheet"
    values["name"] = "overview" if rule.rule.startswith("/dashboards") else "cost_totals"
    if rule.rule.startswith(("/admin/roles", "/api/v1/roles")):
        values["name"] = "clerk"
    if rule.rule.startswith("/api/v1/packs"):
        values["name"] = "sample"
    return values


def _paths(world: World, rule: Rule) -> Iterator[str]:
    """Yield the rule filled with real values, then with each odd value in each part."""
    real = _real_values(world, rule)
    if rule.endpoint not in DESTRUCTIVE:
        yield _fill(rule, real)
    for name in _PART.findall(rule.rule):
        for odd in PATH_ODD:
            yield _fill(rule, {**real, name: odd})


def _queries() -> Iterator[str]:
    """Yield query strings: every parameter at once with each odd value, then each
    parameter alone with one odd value in turn."""
    for odd in ODD:
        yield urlencode({name: odd for name in QUERY_NAMES})
    for index, name in enumerate(QUERY_NAMES):
        yield urlencode({name: ODD[index % len(ODD)]})


def _check(world: World, who: str, method: str, url: str, call: Any) -> None:
    world.requests += 1
    try:
        response = call()
    except Exception as exc:  # noqa: BLE001  (what the fuzz is looking for)
        world.failures.append(f"{who} {method} {url[:200]!r}: raised {exc!r}"[:400])
        return
    if response.status_code >= 500:
        world.failures.append(f"{who} {method} {url[:200]!r}: {response.status_code}")


def _walk_reads(world: World, who: str, browser: Browser, headers: dict[str, str]) -> None:
    for rule in world.app.url_map.iter_rules():
        if "GET" not in rule.methods:
            continue
        paths = list(_paths(world, rule))
        for path in paths:
            _check(world, who, "GET", path, lambda p=path: browser.client.get(p, headers=headers))
        if rule.endpoint in DESTRUCTIVE or not paths:
            continue
        if browser.client.get(paths[0], headers=headers).status_code >= 400:
            continue  # refused or missing for this user: its query string is never read
        for query in _queries():
            url = f"{paths[0]}?{query}"
            _check(world, who, "GET", url, lambda u=url: browser.client.get(u, headers=headers))


def _walk_writes(world: World, who: str, headers: dict[str, str]) -> None:
    for rule in world.app.url_map.iter_rules():
        for method in sorted(rule.methods - SKIPPED_METHODS - {"GET"}):
            browser = sign_in(world.app, who)  # a fresh session: a write may end the last one
            browser.get("/account")
            for path in list(_paths(world, rule))[:3]:
                for odd in ODD:
                    _send(world, who, browser, method, path, odd, headers)


def _send(
    world: World,
    who: str,
    browser: Browser,
    method: str,
    path: str,
    odd: str,
    headers: dict[str, str],
) -> None:
    client = browser.client
    if path.startswith("/api/"):
        body = {name: odd for name in FORM_NAMES}
        call = lambda: client.open(  # noqa: E731
            path, method=method, json=body, headers={**headers, "X-CSRFToken": browser.token}
        )
    else:
        form = {name: odd for name in FORM_NAMES} | {"csrf_token": browser.token}
        call = lambda: client.open(path, method=method, data=form, headers=headers)  # noqa: E731
    _check(world, who, method, path, call)


@pytest.mark.slow
@pytest.mark.parametrize("who", ["admin", "clerk"])
def test_no_route_answers_500_to_odd_values(world: World, who: str) -> None:
    browser = sign_in(world.app, who)
    headers = {"Accept-Language": "en"}
    _walk_reads(world, who, browser, headers)
    _walk_writes(world, who, headers)
    assert world.requests > 2_000
    assert not world.failures, f"{len(world.failures)} failures:\n" + "\n".join(world.failures[:40])
