"""End-to-end tests in Debian's Chromium through Playwright: the pages as people use them.

Skipped when /usr/bin/chromium or Playwright is missing (`make test` then runs the rest;
`.ci/run` installs Chromium first). Screenshots go to screenshots/ (git-ignored)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook

from tests.browser import MARKS, launched, serving
from tests.conftest import PASSWORD
from tests.web.conftest import LAYOUTS
from tests.web.helpers import create, project
from tests.workflow import conftest as workflow_fixtures

# The workflow fixtures: the change-request entity, its approvers and process.
ccb, runtime, wf_for = workflow_fixtures.ccb, workflow_fixtures.runtime, workflow_fixtures.wf_for

SHOTS = Path(__file__).resolve().parents[2] / "screenshots"
playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = MARKS


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with launched() as browser:
        yield browser


@pytest.fixture
def server(sample, users) -> Iterator[str]:
    sample.config["LAYOUT_DIRS"] = {"sample": str(LAYOUTS)}
    sample.config["REGISTRY_TTL"] = 60.0
    with serving(sample) as base:
        yield base


def _page(chromium: Any, base: str, width: int = 1280, user: str = "admin") -> Any:
    context = chromium.new_context(viewport={"width": width, "height": 900}, locale="zh-CN")
    context.set_default_timeout(8000)
    page = context.new_page()
    page.goto(base + "/login")
    page.get_by_label("用户名").fill(user)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(base + "/")
    return page


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _pick_project(page: Any, code: str) -> None:
    box = page.locator("#project-search")
    box.fill(code[:3])
    page.locator(f'#project-options [data-fw-title="{code}"]').click()


def test_create_with_lines_fix_a_validation_error_and_see_the_history(chromium, server, web):
    project(web, code="P-1", name="一号项目")
    page = _page(chromium, server)
    _shot(page, "home")
    page.goto(server + "/app/sample/day_sheet/new")
    _pick_project(page, "P-1")
    page.get_by_label("日期").fill("2026-11-20")
    page.get_by_label("部位").fill("<b>3号楼</b>")
    page.get_by_label("人数").fill("500")
    grid = page.locator('[data-fw-grid="lines"]')
    for worker, days, rate in (("张三", "1", "1200.5"), ("李四", "0.5", "300")):
        grid.get_by_role("button", name="添加行").click()
        row = grid.locator("tbody tr").last
        row.get_by_label("工人").fill(worker)
        row.get_by_label("工日").fill(days)
        row.get_by_label("日单价").fill(rate)
        row.get_by_label("日单价").blur()
    playwright_api.expect(grid.locator("tbody tr").first.get_by_label("日单价")).to_have_value(
        "1,200.50"
    )
    playwright_api.expect(page.locator("#out-total")).to_have_text("¥1,350.50")  # live total
    playwright_api.expect(grid.locator('output[data-fw-total-of="amount"]')).to_have_text(
        "1,350.50"
    )
    _shot(page, "form-new")
    page.get_by_role("button", name="保存").click()
    error = page.get_by_test_id("error-headcount")
    playwright_api.expect(error).to_have_text("人数不能超过 200")
    playwright_api.expect(page.get_by_label("人数")).to_be_focused()
    _shot(page, "form-validation-error")
    page.get_by_label("人数").fill("12")
    grid.locator("tbody tr").nth(1).get_by_role("button", name="上移一行").click()
    page.get_by_role("button", name="保存").click()
    page.wait_for_url("**/app/sample/day_sheet/1")
    playwright_api.expect(page.get_by_test_id("value-total")).to_have_text("¥1,350.50")
    playwright_api.expect(page.get_by_test_id("value-location")).to_have_text("<b>3号楼</b>")
    workers = page.locator("table.fw-list tbody td[data-label='工人']").all_inner_texts()
    assert workers == ["李四", "张三"]  # reordered
    _shot(page, "detail")


def test_filter_and_sort_a_list_also_at_phone_width(chromium, server, web):
    p1 = project(web, code="P-1", name="一号")
    p2 = project(web, code="P-2", name="二号")
    for proj, day, location, reason in (
        (p1, "2026-11-01", "A区", "extra"),
        (p2, "2026-11-02", "B区", "minor"),
        (p1, "2026-11-03", "C区", "minor"),
    ):
        create(
            web,
            "sample.day_sheet",
            {"project": proj["id"], "work_date": day, "location": location, "reason": reason},
        )
    page = _page(chromium, server)
    page.goto(server + "/app/sample/day_sheet")
    cells = page.locator("td[data-label='部位']")
    playwright_api.expect(cells).to_have_text(["C区", "B区", "A区"])  # layout: newest first
    page.get_by_role("link", name="部位").click()
    playwright_api.expect(cells).to_have_text(["A区", "B区", "C区"])
    page.get_by_role("link", name="部位 ▲").click()
    playwright_api.expect(cells).to_have_text(["C区", "B区", "A区"])
    page.get_by_role("link", name="部位 ▼").click()
    page.get_by_label("事由").select_option("minor")
    page.get_by_role("button", name="筛选").click()
    playwright_api.expect(cells).to_have_text(["B区", "C区"])
    assert "reason__eq=minor" in page.url
    page.locator("#filter-project-search").fill("P-2")
    page.locator('#filter-project-options [data-fw-title="P-2"]').click()
    page.get_by_role("button", name="筛选").click()
    playwright_api.expect(cells).to_have_text(["B区"])
    _shot(page, "list")
    phone = _page(chromium, server, width=390)
    phone.goto(server + "/app/sample/day_sheet")
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways at 390 px ({width})"
    _shot(phone, "list-390px")
    phone.goto(server + "/app/sample/day_sheet/new")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 400
    _shot(phone, "form-390px")


def test_two_browsers_editing_the_same_record_see_a_conflict(chromium, server, web):
    record = project(web, code="P-5", name="旧名")
    first, second = _page(chromium, server), _page(chromium, server)
    edit = f"{server}/app/sample/project/{record['id']}/edit"
    first.goto(edit)
    second.goto(edit)
    first.get_by_label("项目名称").fill("甲改的")
    first.get_by_role("button", name="保存").click()
    first.wait_for_url(f"**/app/sample/project/{record['id']}")
    second.get_by_label("项目名称").fill("乙改的")
    second.get_by_role("button", name="保存").click()
    playwright_api.expect(second.get_by_test_id("conflict")).to_contain_text("其他人已先保存")
    playwright_api.expect(second.get_by_test_id("theirs-name")).to_have_text("甲改的")
    playwright_api.expect(second.get_by_label("项目名称")).to_have_value("乙改的")
    _shot(second, "form-conflict")
    second.get_by_role("button", name="保存").click()
    second.wait_for_url(f"**/app/sample/project/{record['id']}")
    playwright_api.expect(second.get_by_test_id("value-name")).to_have_text("乙改的")


def _workbook(tmp_path: Path) -> Path:
    book = Workbook()
    sheet = book.active
    sheet.append(["项目编号", "项目名称", "合同额"])
    sheet.append(["P-10", "一号", 1000])
    sheet.append(["bad code", "二号", -1])
    sheet.append(["P-12", "三号", 3000])
    path = tmp_path / "projects.xlsx"
    out = io.BytesIO()
    book.save(out)
    path.write_bytes(out.getvalue())
    return path


def test_import_an_excel_file_with_one_bad_row(chromium, server, web, tmp_path):
    page = _page(chromium, server)
    page.goto(server + "/app/sample/project/import")
    page.get_by_label("文件").set_input_files(str(_workbook(tmp_path)))
    page.get_by_role("button", name="上传并对应列").click()
    page.wait_for_url("**/import/*")
    page.get_by_role("button", name="检查（试导入）").click()
    problems = page.get_by_test_id("import-problems")
    playwright_api.expect(problems).to_contain_text("3 行中有 1 行有问题")
    playwright_api.expect(problems.locator("tbody tr")).to_have_count(1)
    playwright_api.expect(problems.locator("tbody tr td").first).to_have_text("3")
    _shot(page, "import-dry-run")
    page.get_by_role("button", name="导入全部行").click()
    playwright_api.expect(page.get_by_test_id("import-problems")).to_be_visible()
    page.goto(server + "/app/sample/project?f=1")
    playwright_api.expect(page.get_by_text("没有符合条件的记录")).to_be_visible()


def test_leaving_a_changed_form_asks_first(chromium, server, web):
    page = _page(chromium, server)
    page.goto(server + "/app/sample/project/new")
    page.get_by_label("项目名称").fill("未保存")
    seen: list[str] = []

    def answer(dialog: Any) -> None:
        seen.append(dialog.type)
        dialog.dismiss()  # stay on the page

    page.on("dialog", answer)
    page.get_by_role("link", name="取消").click()
    page.wait_for_timeout(300)
    assert seen == ["beforeunload"]
    playwright_api.expect(page.get_by_label("项目名称")).to_have_value("未保存")


def test_keyboard_reaches_every_input_of_a_form_in_order(chromium, server, web):
    page = _page(chromium, server)
    page.goto(server + "/app/sample/project/new")
    page.get_by_label("项目编号").focus()
    order: list[str] = []
    for _ in range(10):
        name = page.evaluate("document.activeElement.name || document.activeElement.id")
        if not order or order[-1] != name:  # a date input takes one Tab per part
            order.append(name)
        page.keyboard.press("Tab")
    assert order[:6] == ["code", "name", "contract_value", "start_date", "status", "tags"]


def test_switch_language(chromium, server, web):
    page = _page(chromium, server)
    playwright_api.expect(page.get_by_role("heading", name="首页")).to_be_visible()
    page.get_by_test_id("lang-switch").click()
    playwright_api.expect(page.get_by_role("heading", name="Home")).to_be_visible()
    page.goto(server + "/app/sample/project/new")
    playwright_api.expect(page.get_by_label("Code")).to_be_visible()
    _shot(page, "form-en")
    page.get_by_test_id("lang-switch").click()
    playwright_api.expect(page.get_by_label("项目编号")).to_be_visible()


def test_process_view_draws_the_diagram_with_steps_marked(chromium, server, session, ccb, wf_for):
    from formwork.runtime.security import system_principal
    from formwork.runtime.workflow.deploy import deploy
    from tests.workflow.test_process import act, ready

    bpmn = (Path(__file__).parent / "bpmn" / "two_reviews.bpmn").read_text("utf-8")
    deploy(session, bpmn, principal=system_principal())
    instance_id = wf_for("submitter").start("two_reviews", title="排水沟变更").id
    session.commit()
    act(wf_for, "boss", ready(session, instance_id)["first_review"], comment="图纸齐全")
    page = _page(chromium, server, user="submitter")
    page.goto(f"{server}/app/processes/{instance_id}")
    canvas = page.get_by_test_id("process-canvas")
    playwright_api.expect(canvas).to_have_attribute("data-rendered", "true")
    assert canvas.locator("svg").count() >= 1
    current = page.locator('.djs-element.fw-step-current[data-element-id="second_review"]')
    playwright_api.expect(current).to_have_count(1)
    done = page.locator('.djs-element.fw-step-completed[data-element-id="first_review"]')
    playwright_api.expect(done).to_have_count(1)
    playwright_api.expect(page.get_by_test_id("history")).to_contain_text("图纸齐全")
    _shot(page, "process")
