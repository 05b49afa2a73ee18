"""The strict Content-Security-Policy in Debian's Chromium: home, a list, a form with line
items, the BPMN process view, an ECharts chart and a frappe-gantt schedule render with no
CSP violation.

Skipped when /usr/bin/chromium or Playwright is missing, like tests/web/test_browser.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, Response, render_template_string

from tests.browser import MARKS, launched, serving
from tests.conftest import PASSWORD
from tests.web import conftest as web_fixtures
from tests.web.helpers import project
from tests.workflow import conftest as workflow_fixtures

# The page-test fixtures (sample layouts, cheap password hashes, compiled catalogs) and the
# workflow fixtures (change requests, approvers), for this module only.
web, _catalogs, _cheap = (
    web_fixtures.web,
    web_fixtures._catalogs,
    web_fixtures._cheap_password_hashes,
)
ccb, runtime, wf_for = workflow_fixtures.ccb, workflow_fixtures.runtime, workflow_fixtures.wf_for

# Every violation is also reported to the page as an event; Playwright's init script is not
# subject to the page's CSP, so it can record them where the test reads them.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI + " " + (e.sample || ""));
});
"""
# Test-only pages standing in for the reports and schedule pages: a library from
# static/vendor, a same-origin script, and the data in a JSON block (never executed).
LIBRARY_PAGE = """{% extends "base.html" %}
{% block head %}
{% for css in styles %}
<link rel="stylesheet" href="{{ url_for('static', filename=css) }}">
{% endfor %}
<script src="{{ url_for('static', filename=library) }}" defer></script>
<script src="/test-only/{{ name }}.js" defer></script>
{% endblock %}
{% block content %}
<div id="{{ name }}" data-testid="{{ name }}"></div>
<script type="application/json" id="{{ name }}-data">{{ data|tojson }}</script>
{% endblock %}"""
# ECharts' HTML tooltip writes style attributes into innerHTML, which the policy blocks;
# the canvas-drawn tooltip (renderMode "richText") needs none (docs/architecture.md).
CHART_JS = """
document.addEventListener("DOMContentLoaded", function () {
  var data = JSON.parse(document.getElementById("chart-data").textContent);
  var el = document.getElementById("chart");
  var chart = window.echarts.init(el, null, { width: 600, height: 360 });
  chart.setOption({
    tooltip: { trigger: "axis", renderMode: "richText" }, legend: {},
    xAxis: { type: "category", data: data.labels },
    yAxis: { type: "value" }, series: [{ name: "人工费", type: "bar", data: data.values }]
  });
  chart.dispatchAction({ type: "showTip", seriesIndex: 0, dataIndex: 1 });
  el.dataset.rendered = "true";
});
"""
GANTT_JS = """
document.addEventListener("DOMContentLoaded", function () {
  var tasks = JSON.parse(document.getElementById("gantt-data").textContent);
  new window.Gantt("#gantt", tasks, { view_mode: "Day" });
  document.getElementById("gantt").dataset.rendered = "true";
});
"""
PAGES = {
    "chart": (
        "vendor/echarts/echarts.min.js", [], CHART_JS,
        {"labels": ["一月", "二月", "三月"], "values": [120, 200, 150]},
    ),
    "gantt": (
        "vendor/frappe-gantt/frappe-gantt.umd.js", ["vendor/frappe-gantt/frappe-gantt.css"],
        GANTT_JS,
        [
            {"id": "t1", "name": "基础施工", "start": "2026-11-01", "end": "2026-11-10",
             "progress": 40, "dependencies": ""},
            {"id": "t2", "name": "主体结构", "start": "2026-11-11", "end": "2026-11-30",
             "progress": 0, "dependencies": "t1"},
        ],
    ),
}  # fmt: skip

playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = MARKS


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with launched() as browser:
        yield browser


def _library_routes(app: Flask) -> None:
    @app.get("/test-only/<name>")
    def library_page(name: str) -> Any:
        library, styles, _script, data = PAGES[name]
        return render_template_string(
            LIBRARY_PAGE, name=name, library=library, styles=styles, data=data
        )

    @app.get("/test-only/<name>.js")
    def library_script(name: str) -> Any:
        return Response(PAGES[name][2], mimetype="text/javascript")


@pytest.fixture
def server(web: Flask, ccb: Any) -> Iterator[str]:
    web.config["REGISTRY_TTL"] = 60.0
    _library_routes(web)
    with serving(web) as base:
        yield base


class Watched:
    """A signed-in page that collects console messages and CSP violation events."""

    def __init__(self, chromium: Any, base: str, user: str) -> None:
        context = chromium.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
        context.set_default_timeout(8000)
        context.add_init_script(RECORD_VIOLATIONS)
        self.page = context.new_page()
        self.console: list[str] = []
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        self.page.goto(base + "/login")
        self.page.get_by_label("用户名").fill(user)
        self.page.get_by_label("密码").fill(PASSWORD)
        self.page.get_by_role("button", name="登录").click()
        self.page.wait_for_url(base + "/")

    def problems(self) -> list[str]:
        """Return the CSP messages and violations seen so far."""
        events = self.page.evaluate("window.__cspViolations || []")
        logged = [m for m in self.console if "Content Security Policy" in m]
        return [*logged, *events]


def test_pages_render_with_no_csp_violation(chromium, server, web, session, ccb, wf_for):
    from formwork.runtime.security import system_principal
    from formwork.runtime.workflow.deploy import deploy
    from tests.workflow.test_process import act, ready

    project(web, "P-1", "一号项目")
    bpmn = (Path(__file__).parents[1] / "web" / "bpmn" / "two_reviews.bpmn").read_text("utf-8")
    deploy(session, bpmn, principal=system_principal())
    instance_id = wf_for("submitter").start("two_reviews", title="排水沟变更").id
    session.commit()
    act(wf_for, "boss", ready(session, instance_id)["first_review"], comment="图纸齐全")

    watched = Watched(chromium, server, "boss")
    page = watched.page
    # TMP page.goto(server + "/app/sample/project")  # LIST
    # TMP playwright_api.expect(page.locator("table.fw-list")).to_be_visible()
    page.goto(server + "/app/sample/day_sheet/new")
    page.get_by_role("button", name="添加行").click()  # the grid's template row, htmx-processed
    page.get_by_label("项目").fill("P")  # the reference look-up: an htmx GET
    playwright_api.expect(page.locator("[data-fw-pick]").first).to_be_visible()
    page.goto(f"{server}/app/processes/{instance_id}")
    canvas = page.get_by_test_id("process-canvas")
    playwright_api.expect(canvas).to_have_attribute("data-rendered", "true")
    current = page.locator('.djs-element.fw-step-current[data-element-id="second_review"]')
    playwright_api.expect(current).to_have_count(1)
    page.goto(server + "/test-only/chart")
    playwright_api.expect(page.get_by_test_id("chart")).to_have_attribute("data-rendered", "true")
    page.wait_for_timeout(300)  # the tooltip is drawn on the next frame
    assert page.locator("#chart canvas").count() >= 1
    page.goto(server + "/test-only/gantt")
    playwright_api.expect(page.get_by_test_id("gantt")).to_have_attribute("data-rendered", "true")
    playwright_api.expect(page.locator("#gantt .bar-wrapper")).to_have_count(2)
    assert watched.problems() == [], "\n".join(watched.problems())


def test_htmx_posts_carry_the_csrf_token(chromium, server, web):
    watched = Watched(chromium, server, "admin")
    page = watched.page
    page.goto(server + "/app/sample/day_sheet/new")
    with page.expect_response("**/compute") as info:
        page.get_by_label("人数").fill("3")  # typing posts the form to /compute through htmx
    assert info.value.status == 200
    assert info.value.request.header_value("X-CSRFToken")
    assert watched.problems() == []
