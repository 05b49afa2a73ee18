"""Pages, navigation, language, permissions, CSRF and escaping."""

from __future__ import annotations

from tests.web.conftest import sign_in
from tests.web.helpers import project


def test_login_page_is_chinese_by_default_and_english_by_accept_language(web):
    client = web.test_client()
    assert "登录 Formwork" in client.get("/login").get_data(as_text=True)
    english = client.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert "Sign in to Formwork" in english.get_data(as_text=True)


def test_pages_need_sign_in(web):
    response = web.test_client().get("/app/sample/project")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_wrong_password_is_refused_in_the_users_language(web):
    browser = sign_in(web, "admin")
    fresh = type(browser)(web.test_client())
    fresh.get("/login")
    response = fresh.post("/login", {"username": "admin", "password": "nope"})
    assert response.status_code == 401
    assert "用户名或密码错误" in response.get_data(as_text=True)


def test_home_shows_navigation_grouped_by_pack_and_recent_records(web, admin, users):
    record = project(web, user_id=users["admin"]["id"])
    html = admin.html("/")
    assert 'id="nav-sample"' in html
    assert "/app/sample/project" in html and "/app/sample/day_sheet" in html
    assert "/app/sample/day_sheet_line" not in html  # line items have no page of their own
    assert f"/app/sample/project/{record['id']}" in html
    assert 'data-testid="open-tasks">0' in html


def test_navigation_shows_only_readable_entities(web):
    clerk = sign_in(web, "clerk")
    html = clerk.html("/")
    assert "/app/sample/project" in html
    assert "/app/sample/day_sheet" not in html
    assert clerk.get("/app/sample/day_sheet").status_code == 403


def test_reader_cannot_open_the_create_form_or_post_it(web):
    reader = sign_in(web, "reader")
    assert reader.get("/app/sample/project/new").status_code == 403
    html = reader.html("/app/sample/project")
    assert "/app/sample/project/new" not in html
    response = reader.post("/app/sample/project/new", {"code": "X-1", "name": "x"})
    assert response.status_code == 403


def test_switching_language_is_kept_for_the_user(web, admin):
    assert "首页" in admin.html("/")
    response = admin.post("/locale", {"locale": "en", "next": "/"})
    assert response.status_code == 302
    assert "Recent records" in admin.html("/")
    again = sign_in(web, "admin")  # a new browser: the choice is stored on the user
    assert "Recent records" in again.html("/")
    admin.post("/locale", {"locale": "zh-CN", "next": "/"})
    assert "最近的记录" in admin.html("/")


def test_locale_switch_ignores_unknown_languages_and_foreign_redirects(admin):
    response = admin.post("/locale", {"locale": "fr", "next": "//evil.example/"})
    assert response.headers["Location"] == "/"


def test_every_form_post_needs_the_csrf_token(web, admin):
    response = admin.client.post(
        "/app/sample/project/new", data={"code": "P-9", "name": "no token"}
    )
    assert response.status_code == 400
    assert "表单已过期" in response.get_data(as_text=True)
    assert admin.client.post("/locale", data={"locale": "en"}).status_code == 400


def test_html_in_text_fields_is_escaped_everywhere(web, admin):
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    record = project(web, code="P-X", name=evil)
    for path in (
        "/app/sample/project",
        f"/app/sample/project/{record['id']}",
        f"/app/sample/project/{record['id']}/edit",
    ):
        html = admin.html(path)
        assert "<script>alert" not in html
        assert "&lt;script&gt;" in html


def test_unknown_entity_and_record_give_404_pages(admin):
    assert admin.get("/app/sample/nothing").status_code == 404
    assert admin.get("/app/sample/project/999").status_code == 404
    assert admin.get("/app/sample/day_sheet_line").status_code == 404


def test_static_assets_are_built(web):
    client = web.test_client()
    for path in (
        "/static/vendor/bootstrap/bootstrap.min.css",
        "/static/vendor/htmx/htmx.min.js",
        "/static/js/formwork.js",
        "/static/css/formwork.css",
    ):
        assert client.get(path).status_code == 200, path
