"""Uploads: types from the bytes, the allow-list, size limits, safe download names and
headers, and who may download a file."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook

from formwork.auth.users import create_token, create_user, grant
from formwork.runtime.files import (
    DEFAULT_ALLOWED,
    FileStore,
    FileTypeRefused,
    content_disposition,
    is_allowed,
    sniff,
)
from tests.conftest import PASSWORD
from tests.web import conftest as web_fixtures
from tests.web.conftest import sign_in
from tests.web.helpers import create, day_sheet_form, project

# The page-test fixtures (sample layouts, cheap password hashes, compiled catalogs).
web, _catalogs, _cheap = (
    web_fixtures.web,
    web_fixtures._catalogs,
    web_fixtures._cheap_password_hashes,
)

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
PDF = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n"
HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"
SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FILES = "/api/v1/files"


def xlsx_bytes() -> bytes:
    book = Workbook()
    book.active.append(["项目", "金额"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def plain_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("readme.txt", "not an office file")
    return out.getvalue()


@pytest.mark.parametrize(
    ("head", "name", "expected"),
    [
        (PNG, "a.png", "image/png"),
        (JPEG, "a.jpg", "image/jpeg"),
        (b"GIF89a\x01\x00\x01\x00", "a.gif", "image/gif"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "a.webp", "image/webp"),
        (PDF, "合同.pdf", "application/pdf"),
        (b"PK\x03\x04rest", "a.xlsx", XLSX),
        (b"PK\x03\x04rest", "a.zip", "application/zip"),
        ("编号,金额\nP-1,100\n".encode(), "a.csv", "text/csv"),
        ("备注：第一行".encode("gb18030"), "a.txt", "text/plain"),
        (b"\xef\xbb\xbf  <!doctype html><p>x", "a.txt", "text/html"),
        (b"<script>alert(1)</script>", "photo.png", "text/html"),
        (SVG, "a.svg", "image/svg+xml"),
        (b"\x00\x01\x02\x03binary", "a.dwg", "application/octet-stream"),
    ],
)
def test_the_type_comes_from_the_bytes(head, name, expected):
    assert sniff(head, name) == expected


def test_the_allow_list_never_admits_html_and_svg_only_by_name():
    assert not is_allowed("text/html", {"text/html", "text/*"})
    assert not is_allowed("image/svg+xml", {"image/*"})
    assert is_allowed("image/svg+xml", {"image/svg+xml"})
    assert is_allowed("image/webp", {"image/*"})
    assert not is_allowed("application/zip", DEFAULT_ALLOWED)


def test_download_names_are_ascii_with_the_utf8_name_beside():
    header = content_disposition('合同 "终版"\r\n.pdf')
    assert header.startswith('attachment; filename="download.pdf"; ')
    assert "filename*=UTF-8''%E5%90%88%E5%90%8C" in header  # 合同
    assert header.isascii() and "\r" not in header and '"终版"' not in header
    assert content_disposition("../../etc/passwd").endswith("filename*=UTF-8''passwd")
    assert content_disposition("photo 1.png", inline=True).startswith(
        'inline; filename="photo 1.png"'
    )
    assert 'filename="report-final.xlsx"' in content_disposition("report-final.xlsx")


def test_a_file_is_checked_before_it_is_kept(app, session, tmp_path):
    store = FileStore(tmp_path / "files")
    with pytest.raises(FileTypeRefused):
        store.save(session, io.BytesIO(HTML), "photo.png", "image/png", 10_000, None)
    with pytest.raises(FileTypeRefused):  # a JPEG is not the PDF its name says
        store.save(session, io.BytesIO(JPEG), "scan.pdf", "application/pdf", 10_000, None)
    with pytest.raises(FileTypeRefused):  # a zip renamed .xlsx is not a workbook
        store.save(session, io.BytesIO(plain_zip()), "book.xlsx", XLSX, 10_000, None)
    assert [p for p in (tmp_path / "files").rglob("*") if p.is_file()] == []
    row = store.save(session, io.BytesIO(xlsx_bytes()), "成本.xlsx", None, 100_000, None)
    assert row.content_type == XLSX and store.path(row.id).read_bytes().startswith(b"PK")
    kept = store.save(session, io.BytesIO(PNG), "photo.jpg", "image/jpeg", 10_000, None)
    assert kept.content_type == "image/png"  # a mislabelled image is kept as what it is


def upload(client: Any, data: bytes, name: str, mimetype: str, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {"file": (io.BytesIO(data), name, mimetype)}
    return client.post(FILES, data=body, headers=headers, content_type="multipart/form-data")


def test_api_upload_refuses_html_posing_as_an_image_and_svg(sample, users):
    client, token = sample.test_client(), users["admin"]["token"]
    for data, name, mimetype in (
        (HTML, "photo.png", "image/png"),
        (SVG, "logo.svg", "image/svg+xml"),
    ):
        response = upload(client, data, name, mimetype, token)
        assert response.status_code == 422, response.json
        (error,) = response.json["errors"]
        assert error["pointer"] == "/file" and error["code"] == "file_type"
    files_dir = Path(sample.config["FILES_DIR"])
    assert not files_dir.exists() or not [p for p in files_dir.rglob("*") if p.is_file()]


def test_api_upload_is_stored_outside_static_with_the_sniffed_type(sample, users):
    client, token = sample.test_client(), users["admin"]["token"]
    response = upload(client, PNG, "现场照片.png", "application/octet-stream", token)
    assert response.status_code == 201, response.json
    assert response.json["content_type"] == "image/png" and response.json["name"] == "现场照片.png"
    stored = FileStore(sample.config["FILES_DIR"]).path(response.json["id"])
    assert stored.read_bytes() == PNG
    static = Path(sample.static_folder or "").resolve()
    assert static not in stored.resolve().parents
    assert not list(static.rglob(response.json["id"]))


def test_api_upload_limits_size_and_types_from_the_configuration(sample, users):
    client, token = sample.test_client(), users["admin"]["token"]
    sample.config["UPLOAD_MAX_BYTES"] = 100
    response = upload(client, PDF + b" " * 100, "big.pdf", "application/pdf", token)
    assert response.status_code == 422 and response.json["errors"][0]["code"] == "file_too_large"
    sample.config["UPLOAD_MAX_BYTES"] = 10_000
    sample.config["UPLOAD_ALLOWED_TYPES"] = frozenset({"application/pdf"})
    refused = upload(client, PNG, "a.png", "image/png", token)
    assert refused.status_code == 422 and refused.json["errors"][0]["code"] == "file_type"
    assert upload(client, PDF, "a.pdf", "application/pdf", token).status_code == 201


def test_a_request_over_max_content_length_is_413_problem_json(sample, users):
    sample.config["MAX_CONTENT_LENGTH"] = 2_000
    response = upload(
        sample.test_client(),
        PDF + b" " * 5_000,
        "a.pdf",
        "application/pdf",
        users["admin"]["token"],
    )
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json" and response.json["status"] == 413


def test_download_headers_inline_images_attachment_otherwise(sample, users):
    client, token = sample.test_client(), users["admin"]["token"]
    headers = {"Authorization": f"Bearer {token}"}
    image = upload(client, PNG, "照片.png", "image/png", token).json
    sheet = upload(client, xlsx_bytes(), "成本 汇总.xlsx", XLSX, token).json
    shown = client.get(f"{FILES}/{image['id']}", headers=headers)
    assert shown.status_code == 200 and shown.data == PNG and shown.mimetype == "image/png"
    assert shown.headers["Content-Disposition"].startswith('inline; filename="download.png"')
    assert shown.headers["Content-Security-Policy"].startswith("sandbox")
    assert shown.headers["X-Content-Type-Options"] == "nosniff"
    assert shown.headers["Cache-Control"] == "no-store"
    got = client.get(f"{FILES}/{sheet['id']}", headers=headers)
    disposition = got.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="download.xlsx"')
    assert "filename*=UTF-8''%E6%88%90%E6%9C%AC%20%E6%B1%87%E6%80%BB.xlsx" in disposition
    forced = client.get(f"{FILES}/{image['id']}?download=1", headers=headers)
    assert forced.headers["Content-Disposition"].startswith("attachment;")


@pytest.fixture
def people(sample: Any, session: Any, users: dict[str, Any]) -> dict[str, str]:
    """Tokens of: a site clerk (creates day sheets), a reader of day sheets, an outsider
    who may read projects only, and a reader who sees only their own day sheets."""
    roles = {
        "site": ("site_clerk", "sample.day_sheet", ["read", "create", "update"], None),
        "viewer": ("sheet_viewer", "sample.day_sheet", ["read"], None),
        "outsider": ("project_reader", "sample.project", ["read"], None),
        "own": ("own_sheets", "sample.day_sheet", ["read"], [{"field": "created_by", "is": "me"}]),
    }
    tokens = {}
    for name, (role, entity, actions, rows) in roles.items():
        user = create_user(session, name, PASSWORD, [role])
        grant(session, role, entity, actions, rows=rows)
        tokens[name] = create_token(session, user, "t")
    grant(session, "site_clerk", "sample.project", ["read"])
    session.commit()
    return tokens


def test_only_the_uploader_and_readers_of_a_record_holding_the_file_may_download(sample, people):
    client = sample.test_client()
    file_id = upload(client, PNG, "现场.png", "image/png", people["site"]).json["id"]
    url = f"{FILES}/{file_id}"

    def status(who: str) -> int:
        return client.get(url, headers={"Authorization": f"Bearer {people[who]}"}).status_code

    assert status("site") == 200  # the uploader
    assert (status("viewer"), status("outsider"), status("own")) == (404, 404, 404)
    project_id = project(sample, "P-9")["id"]
    sheet = {**_sheet_fields(project_id), "photo": file_id}
    create(sample, "sample.day_sheet", sheet, user_id=_user_id(sample, "site"))
    assert status("viewer") == 200  # may read a day sheet that holds the photo
    assert status("outsider") == 404  # may read projects, not day sheets
    assert status("own") == 404  # may read only their own day sheets, not this one
    assert client.get(url).status_code == 401


def test_only_ones_own_uploads_can_be_attached_and_held_files_stay(sample, people, users):
    client = sample.test_client()
    theirs = upload(client, PNG, "别人的.png", "image/png", people["viewer"]).json["id"]
    mine = upload(client, PNG, "我的.png", "image/png", people["site"]).json["id"]
    site = {"Authorization": f"Bearer {people['site']}"}
    project_id = project(sample, "P-8")["id"]
    refused = client.post(
        "/api/v1/sample/day_sheet",
        json={**_sheet_fields(project_id), "photo": theirs},
        headers=site,
    )
    assert refused.status_code == 422
    assert refused.json["errors"][0]["pointer"] == "/photo"
    assert refused.json["errors"][0]["code"] == "file_not_yours"
    # Attaching the other user's file would have let every reader of sheets download it.
    assert client.get(f"{FILES}/{theirs}", headers=site).status_code == 404
    created = client.post(
        "/api/v1/sample/day_sheet", json={**_sheet_fields(project_id), "photo": mine}, headers=site
    )
    assert created.status_code == 201, created.json
    admin = {"Authorization": f"Bearer {users['admin']['token']}"}
    sheet = client.get(f"/api/v1/sample/day_sheet/{created.json['id']}", headers=admin).json
    swapped = client.patch(
        f"/api/v1/sample/day_sheet/{sheet['id']}",
        json={"photo": theirs, "version": sheet["version"]},
        headers=admin,
    )
    assert swapped.status_code == 200  # an administrator may attach any file
    kept = client.patch(
        f"/api/v1/sample/day_sheet/{sheet['id']}",
        json={"location": "5号楼", "photo": theirs, "version": swapped.json["version"]},
        headers=site,
    )
    assert kept.status_code == 200, kept.json  # the record already holds it


def _sheet_fields(project_id: int) -> dict[str, Any]:
    return {"project": project_id, "work_date": "2026-11-20", "location": "3号楼", "lines": []}


def _user_id(app: Any, username: str) -> int:
    from sqlalchemy import select

    from formwork.runtime.models import User

    session = app.extensions["formwork"].sessions()
    try:
        return int(session.scalar(select(User.id).where(User.username == username)))
    finally:
        session.close()


def test_form_upload_of_html_named_png_is_refused_inline(web, session):
    admin = sign_in(web, "admin")
    project_id = project(web)["id"]
    admin.html("/app/sample/day_sheet/new")
    form = [*day_sheet_form(project_id), ("photo", (io.BytesIO(HTML), "photo.png", "image/png"))]
    response = admin.post("/app/sample/day_sheet/new", form, content_type="multipart/form-data")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'data-testid="error-photo"' in html or 'id="photo-error"' in html
    assert "text/html" in html
    files_dir = Path(web.config["FILES_DIR"])
    assert not files_dir.exists() or not [p for p in files_dir.rglob("*") if p.is_file()]


def test_form_upload_of_a_real_image_is_kept_and_linked(web, session):
    admin = sign_in(web, "admin")
    project_id = project(web)["id"]
    admin.html("/app/sample/day_sheet/new")
    form = [*day_sheet_form(project_id), ("photo", (io.BytesIO(PNG), "照片.png", "image/png"))]
    response = admin.post("/app/sample/day_sheet/new", form, content_type="multipart/form-data")
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    detail = admin.html(response.headers["Location"])
    assert "/api/v1/files/" in detail


FOLDER = {
    "type": "object",
    "x-formwork": {"name": "folder", "label": {"zh-CN": "资料夹", "en": "Folder"}},
    "properties": {
        "title": {"x-formwork": {"type": "string", "label": {"zh-CN": "标题", "en": "Title"}}},
        "files": {"x-formwork": {"type": "attachment", "multiple": True,
                                 "label": {"zh-CN": "附件", "en": "Files"}}},
        "secret": {"x-formwork": {"type": "attachment",
                                  "label": {"zh-CN": "内部", "en": "Internal"}}},
        "items": {"x-formwork": {"type": "children", "entity": "folder_item",
                                 "label": {"zh-CN": "明细", "en": "Items"}}},
    },
}  # fmt: skip
FOLDER_ITEM = {
    "type": "object",
    "x-formwork": {"name": "folder_item", "label": {"zh-CN": "明细", "en": "Item"},
                   "child_of": "folder"},
    "properties": {
        "scan": {"x-formwork": {"type": "attachment", "label": {"zh-CN": "扫描件", "en": "Scan"}}},
    },
}  # fmt: skip


def test_files_in_multiple_fields_and_line_items_reach_readers_but_not_hidden_fields(app, session):
    from formwork.runtime.schema import apply_definitions

    apply_definitions(session, "vault", {"folder.json": FOLDER, "folder_item.json": FOLDER_ITEM})
    admin = create_user(session, "boss", PASSWORD, ["admin"])
    reader = create_user(session, "clerk", PASSWORD, ["folder_reader"])
    grant(session, "folder_reader", "vault.folder", ["read"], fields={"secret": "hidden"})
    tokens = {
        "boss": create_token(session, admin, "t"),
        "clerk": create_token(session, reader, "t"),
    }
    session.commit()
    client = app.test_client()
    ids = [
        upload(client, PDF, f"{n}.pdf", "application/pdf", tokens["boss"]).json["id"]
        for n in range(4)
    ]
    folder = {"title": "竣工资料", "files": ids[:2], "secret": ids[2], "items": [{"scan": ids[3]}]}
    made = client.post(
        "/api/v1/vault/folder", json=folder, headers={"Authorization": f"Bearer {tokens['boss']}"}
    )
    assert made.status_code == 201, made.json

    def status(file_id: str) -> int:
        headers = {"Authorization": f"Bearer {tokens['clerk']}"}
        return client.get(f"{FILES}/{file_id}", headers=headers).status_code

    # Both files of the multiple field and the line item's scan; not the hidden field's file.
    assert [status(i) for i in ids] == [200, 200, 404, 200]
