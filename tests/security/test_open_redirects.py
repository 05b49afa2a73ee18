"""Every place that takes a redirect target (sign-in `next`, the language switch's `next`,
bulk delete's `back`) sends the browser only to a path on this site, read as a browser
reads it; a newline in the target is not a 500."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from tests.conftest import PASSWORD
from tests.security.auth_helpers import cheap_hashes, csrf_of

HOSTILE = [
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\n\r\nSet-Cookie: x=1",
    "//evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    " https://evil.example",
    "https:evil.example",
]


def browser_reads(location: str) -> Any:
    """Return the URL a browser follows for a Location header (tabs and newlines dropped,
    backslashes read as slashes, relative to this site)."""
    cleaned = location.strip("".join(map(chr, range(0x21)))).replace("\\", "/")
    cleaned = cleaned.replace("\t", "").replace("\n", "").replace("\r", "")
    return urlsplit(cleaned)


def assert_stays(response: Any) -> None:
    assert response.status_code in (302, 303), response.get_data(as_text=True)[:300]
    target = browser_reads(response.headers["Location"])
    assert target.netloc in ("", "localhost"), response.headers["Location"]
    assert target.scheme in ("", "http")


@pytest.fixture
def signed_out(app, users, monkeypatch):
    cheap_hashes(monkeypatch)
    return app.test_client()


@pytest.mark.parametrize("target", HOSTILE)
def test_sign_in_never_redirects_off_site(signed_out, target):
    page = signed_out.get("/login")
    response = signed_out.post(
        f"/login?next={quote(target)}",
        data={"username": "admin", "password": PASSWORD, "csrf_token": csrf_of(page)},
    )
    assert_stays(response)


def test_sign_in_still_follows_a_local_next(signed_out):
    page = signed_out.get("/login")
    response = signed_out.post(
        "/login?next=%2Fapp%2Fsample%2Fproject%3Fpage%3D2",
        data={"username": "admin", "password": PASSWORD, "csrf_token": csrf_of(page)},
    )
    assert response.headers["Location"] == "/app/sample/project?page=2"


@pytest.mark.parametrize("target", HOSTILE)
def test_the_language_switch_never_redirects_off_site(signed_out, target):
    page = signed_out.get("/login")
    response = signed_out.post(
        "/locale", data={"locale": "en", "next": target, "csrf_token": csrf_of(page)}
    )
    assert_stays(response)


@pytest.mark.parametrize("target", HOSTILE)
def test_bulk_delete_never_redirects_off_site(sample, signed_out, target):
    page = signed_out.get("/login")
    signed_out.post(
        "/login", data={"username": "admin", "password": PASSWORD, "csrf_token": csrf_of(page)}
    )
    page = signed_out.get("/app/sample/project")
    response = signed_out.post(
        "/app/sample/project/bulk-delete",
        data={"back": target, "csrf_token": csrf_of(page)},
    )
    assert_stays(response)
