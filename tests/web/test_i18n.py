"""Catalogs and locale-aware formats."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po

from formwork.web import i18n
from tests.web.conftest import TRANSLATIONS

ROOT = Path(__file__).resolve().parents[2]


def test_every_chrome_string_is_in_both_catalogs_and_translated(tmp_path):
    pot = tmp_path / "messages.pot"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "extract",
            "-F",
            "babel.cfg",
            "-o",
            str(pot),
            "--no-location",
            ".",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    wanted = {m.id for m in read_po(pot.open("rb")) if m.id}
    for folder in ("zh_Hans_CN", "en"):
        catalog = read_po((TRANSLATIONS / folder / "LC_MESSAGES" / "messages.po").open("rb"))
        have = {m.id for m in catalog if m.id}
        assert wanted <= have, f"{folder} misses {sorted(wanted - have)}"
        if folder == "zh_Hans_CN":
            untranslated = [m.id for m in catalog if m.id and not m.string]
            assert untranslated == []


def test_dates_and_money_follow_the_locale(app):
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert i18n.display_money("1234567.5") == "CN¥1,234,567.50"
        assert i18n.display_date("2026-11-24") == "Nov 24, 2026"
        assert i18n.display_datetime("2026-11-24T01:00:00+00:00") == "Nov 24, 2026, 9:00:00\u202fAM"
    with app.test_request_context():
        assert i18n.current_locale() == "zh-CN"
        assert i18n.display_money("1234567.5") == "¥1,234,567.50"
        assert i18n.display_date("2026-11-24") == "2026年11月24日"
        assert i18n.display_number("1234.5", 2) == "1,234.50"
        assert i18n.display_money(None) == ""
