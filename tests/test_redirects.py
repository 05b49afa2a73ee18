"""local_target: a `next` or `back` parameter read as a browser reads it."""

from __future__ import annotations

import pytest

from formwork.redirects import local_target, redirect_target


@pytest.mark.parametrize(
    "raw",
    [
        "//evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
        "/\r\n/evil.example",
        "\t//evil.example",
        " //evil.example",
        "\x00//evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "\\/evil.example",
        "https://evil.example/",
        "HTTPS:evil.example",
        "javascript:alert(1)",
        "evil.example",
        "/\x0b/evil.example",
        "",
        None,
    ],
)
def test_what_would_leave_the_site_is_refused(raw):
    assert local_target(raw) is None
    assert redirect_target(raw, "/home") == "/home"


@pytest.mark.parametrize(
    ("raw", "sent"),
    [
        ("/app/sample/project?page=2&sort=-code", "/app/sample/project?page=2&sort=-code"),
        ("/app/x?q=%E6%90%9C", "/app/x?q=%E6%90%9C"),
        ("/app/x?q=搜", "/app/x?q=%E6%90%9C"),
        ("/a\tb", "/ab"),  # the browser drops the tab; so do we, before checking
        ("/%2F%2Fevil.example", "/%2F%2Fevil.example"),  # a path on this site
    ],
)
def test_a_path_on_this_site_is_kept_as_the_browser_reads_it(raw, sent):
    assert local_target(raw) == sent
