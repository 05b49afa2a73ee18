"""The widget registry: one widget per field-type class, and each widget's conversions."""

from __future__ import annotations

import datetime as dt

import pytest

from formwork.runtime.fields import FIELD_TYPES
from formwork.web.widgets import TEXT, Lookups, WidgetError, widget, widget_for


@pytest.mark.parametrize("name", sorted(FIELD_TYPES))
def test_every_field_type_has_its_own_widget(name):
    found = widget_for(FIELD_TYPES[name])
    assert found is not TEXT or name == "string"


def _fd(registry, key, name):
    return registry.entity(key).field_map[name]


def test_form_text_to_json_values(app, registry):
    cases = [
        ("sample.day_sheet", "headcount", "1,200", 1200),
        ("sample.day_sheet", "rate", " 1,234.125 ", "1234.125"),
        ("sample.project", "contract_value", "¥12,345.60", "12345.60"),
        ("sample.day_sheet", "progress", "40%", "40"),
        ("sample.day_sheet", "work_date", "2026/11/05", "2026-11-05"),
        ("sample.project", "active", "1", True),
        ("sample.project", "active", "", False),
        ("sample.project", "tags", ["", "road"], ["road"]),
        ("sample.day_sheet", "project", "7", 7),
        ("sample.day_sheet", "location", "", None),
    ]
    with app.test_request_context():
        for key, name, raw, expected in cases:
            fd = _fd(registry, key, name)
            assert widget(fd).parse(fd, raw) == expected, name
        moment = _fd(registry, "sample.day_sheet", "submitted_at")
        parsed = widget(moment).parse(moment, "2026-11-20T08:30")
        assert dt.datetime.fromisoformat(parsed).astimezone(dt.UTC).hour == 0  # Asia/Shanghai
        for name, raw, code in (
            ("headcount", "1.5", "integer"),
            ("rate", "x", "decimal"),
            ("work_date", "2026-02-30", "date"),
            ("project", "P-1", "integer"),
        ):
            fd = _fd(registry, "sample.day_sheet", name)
            with pytest.raises(WidgetError) as caught:
                widget(fd).parse(fd, raw)
            assert caught.value.code == code


def test_display_per_locale(app, registry):
    fd = _fd(registry, "sample.project", "contract_value")
    status = _fd(registry, "sample.project", "status")
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert widget(fd).display(fd, "1234.50", Lookups()) == "CN¥1,234.50"
        assert widget(status).display(status, "closed", Lookups()) == "Closed"
    with app.test_request_context():
        assert widget(fd).display(fd, "1234.50", Lookups()) == "¥1,234.50"
        assert widget(status).display(status, "closed", Lookups()) == "竣工"
