"""Imports larger than IMPORT_SYNC_ROWS run in `formwork worker`: the request queues them,
their page shows the progress and then the result, and the import is all rows or none, in
the job's one transaction. The worker's own job runner runs them here."""

from __future__ import annotations

import io
from functools import partial
from pathlib import Path

import sqlalchemy as sa
from openpyxl import Workbook

from formwork.runtime.imports.jobs import IMPORT_JOB, ProgressBoard, run_import_job
from formwork.runtime.models import ImportRecord, SecurityEvent
from formwork.runtime.workflow.jobs import run_jobs
from formwork.runtime.workflow.models import Job
from tests.web.conftest import sign_in

HEADER = ["项目编号", "项目名称"]
MAPPING = {"col-0": "code", "col-1": "name"}


def _xlsx(rows: list[list[object]]) -> bytes:
    book = Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _upload(browser, rows: list[list[object]]) -> str:
    browser.get("/app/sample/project/import")
    response = browser.post(
        "/app/sample/project/import",
        {"file": (io.BytesIO(_xlsx([HEADER, *rows])), "big.xlsx")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:1000]
    return str(response.headers["Location"])


def _work(app) -> tuple[int, int]:
    kernel = app.extensions["formwork"]
    return run_jobs(kernel.write_sessions, kernel.workflow.jobs)


def _total(browser) -> int:
    return browser.client.get("/api/v1/sample/project").get_json()["total"]


def _projects(n: int, bad_at: int | None = None) -> list[list[object]]:
    return [[f"P-{i}" if i != bad_at else "bad code", f"项目{i}"] for i in range(n)]


def test_a_large_import_runs_in_the_background_with_a_result_page(web):
    web.config["IMPORT_SYNC_ROWS"] = 5
    admin = sign_in(web, "admin")
    mapping_url = _upload(admin, _projects(30))
    queued = admin.post(mapping_url, {**MAPPING, "action": "commit"})
    assert queued.status_code == 302
    status_url = queued.headers["Location"]
    assert status_url.endswith("/status")
    waiting = admin.html(status_url)
    assert 'data-status="queued"' in waiting and 'hx-trigger="every 2s"' in waiting
    assert _total(admin) == 0 and admin.get(mapping_url).status_code == 302  # to the status
    assert _work(web) == (1, 0)
    done = admin.html(status_url)
    assert 'data-status="done"' in done and "已导入 30 条记录" in done and "every 2s" not in done
    assert _total(admin) == 30
    assert admin.get(mapping_url).status_code == 404  # imported: the upload is gone
    with web.extensions["formwork"].sessions() as db:
        event = db.scalars(sa.select(SecurityEvent).where(SecurityEvent.kind == "data.imported"))
        assert [e.detail["records"] for e in event] == [30]
        assert db.scalar(sa.select(ImportRecord.content)) == b""


def test_a_background_import_is_all_rows_or_none(web):
    web.config["IMPORT_SYNC_ROWS"] = 5
    admin = sign_in(web, "admin")
    mapping_url = _upload(admin, _projects(30, bad_at=17))
    status_url = admin.post(mapping_url, {**MAPPING, "action": "commit"}).headers["Location"]
    assert _work(web) == (1, 0)  # the job ran; its outcome is the refusal
    html = admin.html(status_url)
    assert "30 行中有 1 行有问题" in html and "<tr><td>19</td>" in html  # the sheet's row
    assert _total(admin) == 0
    assert admin.get(mapping_url).status_code == 200  # fix the mapping and run again


def test_a_background_dry_run_saves_nothing(web):
    web.config["IMPORT_SYNC_ROWS"] = 5
    admin = sign_in(web, "admin")
    mapping_url = _upload(admin, _projects(12))
    status_url = admin.post(mapping_url, {**MAPPING, "action": "preview"}).headers["Location"]
    _work(web)
    assert "全部 12 行都可以导入" in admin.html(status_url)
    assert _total(admin) == 0


def test_a_job_that_fails_outright_shows_its_error(web, app):
    web.config["IMPORT_SYNC_ROWS"] = 5
    admin = sign_in(web, "admin")
    mapping_url = _upload(admin, _projects(10))
    status_url = admin.post(mapping_url, {**MAPPING, "action": "commit"}).headers["Location"]
    kernel = app.extensions["formwork"]
    with kernel.write_sessions() as db:  # limits a newer version wrote, say: the job breaks
        db.execute(sa.update(ImportRecord).values(limits={"unknown_limit": 1}))
        db.commit()
    assert _work(web) == (0, 1)
    html = admin.get(status_url).get_data(as_text=True)
    assert "导入中止" in html and "unknown_limit" in html and 'data-status="failed"' in html
    assert _total(admin) == 0


def test_only_the_uploading_browser_follows_the_links(web):
    web.config["IMPORT_SYNC_ROWS"] = 5
    admin = sign_in(web, "admin")
    mapping_url = _upload(admin, _projects(10))
    status_url = admin.post(mapping_url, {**MAPPING, "action": "commit"}).headers["Location"]
    other = sign_in(web, "admin")
    assert other.get(status_url).status_code == 404
    assert other.get(mapping_url).status_code == 404


def test_progress_is_noted_where_other_processes_read_it(web, app):
    web.config["IMPORT_SYNC_ROWS"] = 5
    admin = sign_in(web, "admin")
    mapping_url = _upload(admin, _projects(450))
    status_url = admin.post(mapping_url, {**MAPPING, "action": "commit"}).headers["Location"]
    kernel = app.extensions["formwork"]
    seen: list[str] = []

    class Watched(ProgressBoard):
        """The real board; after each note, the page is read as another process would."""

        def note(self, import_id: int, done: int, total: int) -> None:
            super().note(import_id, done, total)
            seen.append(admin.get(status_url).get_data(as_text=True))

    folder = Path(web.config["INSTANCE_PATH"]) / "imports"
    real = kernel.workflow.jobs[IMPORT_JOB]
    kernel.workflow.jobs[IMPORT_JOB] = partial(
        run_import_job, kernel, Watched(kernel.engine, folder)
    )
    try:
        assert _work(web) == (1, 0)
    finally:
        kernel.workflow.jobs[IMPORT_JOB] = real
    assert any("已检查 450 行中的 200 行" in page for page in seen), seen[:2]
    assert "已导入 450 条记录" in admin.html(status_url)
    with kernel.sessions() as db:
        assert db.scalar(sa.select(Job.status)) == "done"
