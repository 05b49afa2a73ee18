"""Web hardening: security headers and CSP on every kind of response, templates free of
inline code, CSRF on every state-changing request, escaped output, and size limits."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from formwork.auth.users import grant
from tests.web import conftest as web_fixtures
from tests.web.conftest import sign_in
from tests.web.helpers import create, project
from tests.workflow import conftest as workflow_fixtures
from tests.workflow.test_process import act, new_request, ready

# The page-test fixtures (sample layouts, cheap password hashes, compiled catalogs) and the
# workflow fixtures (change requests, approvers), for this module only.
web, _catalogs, _cheap = (
    web_fixtures.web,
    web_fixtures._catalogs,
    web_fixtures._cheap_password_hashes,
)
ccb, runtime, wf_for = workflow_fixtures.ccb, workflow_fixtures.runtime, workflow_fixtures.wf_for

TEMPLATES = Path(__file__).resolve().parents[2] / "formwork" / "templates"
PAYLOADS = ("<script>alert(1)</script>", '"><img src=x onerror=alert(1)>')
COMMON = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def directives(policy: str) -> dict[str, list[str]]:
    """Return a CSP header as {directive: [sources]}."""
    out = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


def assert_hardened(response: Any, cached: bool = False) -> None:
    for name, value in COMMON.items():
        assert response.headers.get(name) == value, name
    assert response.headers["Referrer-Policy"] in ("same-origin", "strict-origin-when-cross-origin")
    permissions = response.headers["Permissions-Policy"]
    assert all(f"{f}=()" in permissions for f in ("camera", "microphone", "geolocation"))
    policy = directives(response.headers["Content-Security-Policy"])
    assert policy["script-src"] == ["'self'"] and policy["default-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"] and policy["form-action"] == ["'self'"]
    assert not any("unsafe" in s for d, s in policy.items() for s in s if d != "style-src-attr")
    assert "Strict-Transport-Security" not in response.headers  # plain HTTP here
    if not cached:
        assert response.headers["Cache-Control"] == "no-store"


def test_headers_on_html_api_static_and_error_responses(web, users):
    admin = sign_in(web, "admin")
    assert_hardened(admin.get("/"))
    assert_hardened(admin.get("/login"))
    assert_hardened(admin.get("/app/no/such-entity"))  # a 404 page
    api = web.test_client()
    bearer = {"Authorization": f"Bearer {users['admin']['token']}"}
    assert_hardened(api.get("/api/v1/sample/project", headers=bearer))
    assert_hardened(api.get("/api/v1/nothing-here", headers=bearer))  # problem+json 404
    assert_hardened(api.get("/api/v1/sample/project"))  # 401
    static = web.test_client().get("/static/css/formwork.css")
    assert static.status_code == 200
    assert_hardened(static, cached=True)
    assert static.headers.get("Cache-Control") != "no-store"  # static files keep caching


def test_hsts_only_over_https(web, users):
    client = web.test_client()
    assert "Strict-Transport-Security" not in client.get("/login").headers
    secure = client.get("/login", base_url="https://formwork.example")
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=")


def test_the_policy_never_allows_inline_or_eval_scripts(web):
    policy = directives(web.test_client().get("/login").headers["Content-Security-Policy"])
    assert "'unsafe-inline'" not in policy["script-src"]
    assert "'unsafe-eval'" not in policy["script-src"]
    assert policy.get("style-src") == ["'self'"]
    # Style attributes: only the few fixed strings frappe-gantt writes, each by its hash.
    attrs = policy["style-src-attr"]
    assert attrs[0] == "'unsafe-hashes'" and "'unsafe-inline'" not in attrs
    assert all(re.fullmatch(r"'sha256-[A-Za-z0-9+/]{43}='", h) for h in attrs[1:])


# -- templates: no inline code, CSRF in every POST form -------------------------------------

SCRIPT_TAG = re.compile(r"<script\b([^>]*)>", re.I)
HANDLER = re.compile(r"""\s(on[a-z]+)\s*=\s*["'{]""", re.I)
FORBIDDEN = {
    "style attribute": re.compile(r"""\sstyle\s*=\s*["'{]""", re.I),
    "<style> element": re.compile(r"<style\b", re.I),
    "javascript: URL": re.compile(r"javascript:", re.I),
    "hx-on (needs eval)": re.compile(r"\shx-on", re.I),
    "hx-vars (needs eval)": re.compile(r"\shx-vars\b", re.I),
    "js: value (needs eval)": re.compile(r"""hx-vals\s*=\s*['"]\s*js:""", re.I),
    "hx-headers (CSRF comes from js/formwork.js)": re.compile(r"\shx-headers\b", re.I),
}
POST_FORM = re.compile(r"<form\b[^>]*method\s*=\s*[\"']?post[^>]*>(.*?)</form>", re.I | re.S)
CSRF_FIELD = re.compile(r"csrf_token\(\)|\.csrf_token\b|hidden_tag\(\)")


def templates() -> list[Path]:
    found = sorted(TEMPLATES.rglob("*.html"))
    assert len(found) >= 10
    return found


def test_templates_hold_no_inline_script_handler_or_style():
    problems = []
    for path in templates():
        text = path.read_text("utf-8")
        name = path.relative_to(TEMPLATES)
        for match in SCRIPT_TAG.finditer(text):
            attrs = match.group(1)
            if "src=" not in attrs and 'type="application/json"' not in attrs:
                problems.append(f"{name}: inline <script{attrs}>")
        problems += [f"{name}: handler {m.group(1)}=" for m in HANDLER.finditer(text)]
        for what, pattern in FORBIDDEN.items():
            if pattern.search(text):
                problems.append(f"{name}: {what}")
    assert problems == []


UNESCAPED = re.compile(r"\|\s*safe\b|autoescape\s+false", re.I)
# Markup() only around a literal template whose values are escaped by .format()/.join().
MARKUP_CALL = re.compile(r"Markup\(")
SAFE_MARKUP = re.compile(r"""Markup\(\s*(['"])(?:(?!\1).)*\1\s*\)\s*\.(format|join)\(""")


def test_nothing_is_marked_safe_by_hand():
    problems = [
        f"{path.relative_to(TEMPLATES)}: unescaped output"
        for path in templates()
        if UNESCAPED.search(path.read_text("utf-8"))
    ]
    for path in sorted((TEMPLATES.parent).rglob("*.py")):
        text = path.read_text("utf-8")
        calls = len(MARKUP_CALL.findall(text))
        if calls != len(SAFE_MARKUP.findall(text)):
            problems.append(f"{path.name}: Markup() around something other than a literal")
    assert problems == []


def test_every_post_form_in_every_template_carries_the_csrf_token():
    missing, forms = [], 0
    for path in templates():
        for match in POST_FORM.finditer(path.read_text("utf-8")):
            forms += 1
            if not CSRF_FIELD.search(match.group(1)):
                missing.append(f"{path.relative_to(TEMPLATES)}: {match.group(0)[:80]}")
    assert forms >= 5 and missing == []


def test_the_page_configures_htmx_without_eval_and_exposes_the_token(web):
    html = sign_in(web, "admin").html("/")
    config = re.search(r"<meta name=\"htmx-config\" content='([^']+)'>", html)
    assert config is not None
    assert '"allowEval": false' in config.group(1) and '"allowScriptTags": false' in config.group(1)
    assert '"includeIndicatorStyles": false' in config.group(1)
    assert re.search(r'<meta name="csrf-token" content="[^"]+">', html)
    script = (TEMPLATES.parent / "static" / "js" / "formwork.js").read_text("utf-8")
    assert "htmx:configRequest" in script and "X-CSRFToken" in script


# -- CSRF on the pages, none needed with a bearer token --------------------------------------


def may_submit(session: Any) -> None:
    grant(session, "clerk", "ccb.change_request", ["read", "create", "update", "submit"])
    session.commit()


def test_posts_without_the_csrf_token_are_refused(web, session, ccb, wf_for):
    may_submit(session)
    admin = sign_in(web, "admin")
    pid = project(web)["id"]
    instance = wf_for("submitter").submit("ccb.change_request", new_request(session, ccb))
    session.commit()
    task = ready(session, instance.id)["site_review"]
    posts = {
        "/locale": {"locale": "en"},
        "/logout": {},
        "/app/sample/project/new": {"code": "P-2", "name": "x"},
        f"/app/sample/project/{pid}/edit": {"code": "P-1", "name": "y", "_version": "1"},
        f"/app/sample/project/{pid}/delete": {"_version": "1"},
        "/app/sample/project/bulk-delete": {"ids": str(pid)},
        "/app/sample/day_sheet/compute": {"headcount": "3"},
        f"/app/tasks/{task.id}": {"action": "approve"},
    }
    for path, data in posts.items():
        response = admin.client.post(path, data=data)
        assert response.status_code == 400, path
        assert "text/html" in response.content_type
    htmx = admin.client.post(
        "/app/sample/day_sheet/compute", data={"headcount": "3"}, headers={"HX-Request": "true"}
    )
    assert htmx.status_code == 400
    assert admin.html(f"/app/sample/project/{pid}")  # still there, still signed in
    with_header = admin.client.post(
        "/app/sample/day_sheet/compute",
        data={"headcount": "3"},
        headers={"X-CSRFToken": admin.token},
    )
    assert with_header.status_code == 200  # what js/formwork.js adds to htmx requests


def test_the_api_needs_no_csrf_token_with_a_bearer_token_but_does_with_a_session(web, users):
    bearer = {"Authorization": f"Bearer {users['admin']['token']}"}
    body = {"code": "P-7", "name": "API"}
    created = web.test_client().post("/api/v1/sample/project", json=body, headers=bearer)
    assert created.status_code == 201, created.json
    admin = sign_in(web, "admin")
    refused = admin.client.post("/api/v1/sample/project", json={"code": "P-8", "name": "x"})
    assert refused.status_code == 403 and refused.mimetype == "application/problem+json"


# -- escaping -----------------------------------------------------------------------------


def assert_escaped(html: str, where: str) -> None:
    for payload in PAYLOADS:
        assert payload not in html, where
    assert "<img src=x" not in html and "<script>alert" not in html, where


def test_hostile_text_is_escaped_on_list_detail_form_task_and_history(web, session, ccb, wf_for):
    admin = sign_in(web, "admin")
    record = project(web, "P-1", PAYLOADS[0])
    admin.html(f"/app/sample/project/{record['id']}/edit")
    changed = admin.post(
        f"/app/sample/project/{record['id']}/edit",
        {"code": "P-1", "name": PAYLOADS[1], "active": "1", "_version": record["version"]},
    )
    assert changed.status_code == 302, changed.get_data(as_text=True)[:2000]
    sheet = {"project": record["id"], "work_date": "2026-11-20", "location": PAYLOADS[1]}
    sheet_id = create(web, "sample.day_sheet", {**sheet, "notes": PAYLOADS[0], "lines": []})["id"]
    pages = {
        "list": "/app/sample/project",
        "search": "/app/sample/project?q=%3Cscript%3E",
        "detail and audit history": f"/app/sample/project/{record['id']}",
        "form": f"/app/sample/project/{record['id']}/edit",
        "reference title and notes": f"/app/sample/day_sheet/{sheet_id}",
        "look-up": "/app/sample/day_sheet/lookup/project?lookup_q=P",
    }
    for where, path in pages.items():
        html = admin.html(path)
        assert_escaped(html, where)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in admin.html(
        f"/app/sample/project/{record['id']}"
    )
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in admin.html("/app/sample/project")

    may_submit(session)
    record_id = new_request(session, ccb, title=PAYLOADS[0][:100], note=PAYLOADS[1])
    instance = wf_for("submitter").submit("ccb.change_request", record_id)
    session.commit()
    act(wf_for, "site", ready(session, instance.id)["site_review"], comment=PAYLOADS[1])
    task = ready(session, instance.id)["cost_review"]
    cost = sign_in(web, "cost")
    for where, path in {
        "task": f"/app/tasks/{task.id}",
        "inbox": "/app/tasks",
        "process history": f"/app/processes/{instance.id}",
    }.items():
        assert_escaped(cost.html(path), where)


def test_error_messages_echoing_input_are_escaped(web):
    admin = sign_in(web, "admin")
    html = admin.html("/app/sample/project?name__eq=%3Cscript%3Ealert(1)%3C/script%3E&sort=%3Cimg")
    assert_escaped(html, "list with bad filter")


# -- size limits ---------------------------------------------------------------------------


def test_an_oversized_form_gets_a_friendly_413_page(web):
    admin = sign_in(web, "admin")
    web.config["MAX_CONTENT_LENGTH"] = 10_000
    admin.html("/app/sample/project/new")
    response = admin.post("/app/sample/project/new", {"code": "P-1", "name": "x" * 20_000})
    assert response.status_code == 413
    assert response.mimetype == "text/html" and 'role="alert"' in response.get_data(as_text=True)
    assert_hardened(response)


def test_too_many_form_parts_are_refused(web):
    admin = sign_in(web, "admin")
    web.config["MAX_FORM_PARTS"] = 50
    admin.html("/app/sample/project/new")
    fields = [(f"f{i}", "x") for i in range(200)]
    response = admin.post("/app/sample/project/new", [("code", "P-1"), *fields])
    assert response.status_code == 413


def test_a_long_query_string_is_refused_as_414(web, users):
    admin = sign_in(web, "admin")
    long = "q=" + "x" * 9_000
    page = admin.client.get(f"/app/sample/project?{long}")
    assert page.status_code == 414 and page.mimetype == "text/html"
    bearer = {"Authorization": f"Bearer {users['admin']['token']}"}
    api = web.test_client().get(f"/api/v1/sample/project?{long}", headers=bearer)
    assert api.status_code == 414 and api.mimetype == "application/problem+json"


def test_a_json_body_over_the_api_limit_is_413_problem_json(web, users):
    web.config["API_MAX_BODY"] = 1_000
    bearer = {"Authorization": f"Bearer {users['admin']['token']}"}
    body = {"code": "P-1", "name": "x" * 2_000}
    response = web.test_client().post("/api/v1/sample/project", json=body, headers=bearer)
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json" and response.json["status"] == 413


@pytest.mark.parametrize("limit", ["MAX_CONTENT_LENGTH", "MAX_FORM_MEMORY_SIZE", "MAX_FORM_PARTS"])
def test_every_request_limit_is_set(web, limit):
    assert isinstance(web.config[limit], int) and web.config[limit] > 0
