"""Form and list layouts: the meta-schemas, the checks against the definition, defaults for
entities without a layout, and the sample layouts themselves."""

from __future__ import annotations

import json
import logging

import pytest

from formwork.runtime.metaschemas import validator
from formwork.web.layouts import (
    check_form_layout,
    check_list_layout,
    default_form_layout,
    default_list_layout,
)
from tests.web.conftest import LAYOUTS


@pytest.fixture
def day_sheet(registry):
    return registry.entity("sample.day_sheet")


@pytest.mark.parametrize("path", sorted(LAYOUTS.glob("*.json")), ids=lambda p: p.name)
def test_sample_layouts_pass_their_checks(registry, path):
    document = json.loads(path.read_text("utf-8"))
    entity = registry.entity(f"sample.{document['entity']}")
    check = check_form_layout if path.name.endswith(".form.json") else check_list_layout
    assert check(document, entity) == []


def test_meta_schemas_are_valid_json_schema():
    import jsonschema

    for name in ("layout.schema.json", "list_layout.schema.json"):
        jsonschema.Draft202012Validator.check_schema(validator(name).schema)


def test_form_layout_problems_are_all_reported_with_pointers(day_sheet):
    document = {
        "entity": "day_sheet",
        "sections": [
            {"fields": ["project", "nope", "project", {"field": "location", "widget": "slider"}]}
        ],
    }
    problems = check_form_layout(document, day_sheet)
    assert [p.pointer for p in problems] == ["/sections/0/fields/3"]  # schema first
    document["sections"][0]["fields"][3] = "location"
    details = [(p.pointer, p.params["detail"]) for p in check_form_layout(document, day_sheet)]
    assert ("/sections/0/fields/1", "unknown field 'nope'") in details
    assert ("/sections/0/fields/2", "field 'project' is placed twice") in details
    assert ("", "required field 'work_date' is not on the form") in details


def test_list_layout_problems(day_sheet):
    document = {
        "entity": "day_sheet",
        "columns": ["number", "lines"],
        "sort": "-photo",
        "filter_fields": ["photo"],
        "filters": {"reason__eq": "extra"},
    }
    details = [p.params["detail"] for p in check_list_layout(document, day_sheet)]
    assert "unknown or unstored field 'lines'" in details
    assert "cannot sort by 'photo'" in details
    assert "field 'photo' cannot be filtered" in details
    bad = check_list_layout(
        {"entity": "day_sheet", "columns": [], "filters": {"Bad name": "1"}}, day_sheet
    )
    assert {p.pointer for p in bad} == {"/columns", "/filters"}


def test_default_layouts_cover_every_visible_field(day_sheet):
    form = default_form_layout(day_sheet)
    names = [f.field.name for f in form.fields()]
    assert names[-1] == "lines"  # line items in their own section at the end
    assert set(names) == {f.name for f in day_sheet.fields}
    listing = default_list_layout(day_sheet)
    assert listing.columns[0].name == "number"  # the title field first
    assert all(c.kind.name not in ("text", "attachment", "children") for c in listing.columns)
    assert listing.search == ("number", "location")


def test_entity_without_layout_gets_default_pages(sample, users, admin):
    sample.config["LAYOUT_DIRS"] = {}
    html = admin.html("/app/sample/day_sheet/new")
    assert 'name="work_date"' in html and 'data-fw-grid="lines"' in html
    assert 'role="tablist"' not in html  # no tabs without a layout
    assert "单号" in admin.html("/app/sample/day_sheet")


def test_invalid_layout_file_falls_back_to_the_default_and_is_logged(
    sample, users, admin, tmp_path, caplog
):
    (tmp_path / "day_sheet.form.json").write_text('{"entity": "day_sheet", "tabs": []}', "utf-8")
    sample.config["LAYOUT_DIRS"] = {"sample": str(tmp_path)}
    with caplog.at_level(logging.ERROR):
        html = admin.html("/app/sample/day_sheet/new")
    assert 'name="work_date"' in html
    assert "form layout of sample.day_sheet ignored" in caplog.text


def test_sample_form_layout_places_tabs_sections_and_help(admin):
    html = admin.html("/app/sample/day_sheet/new")
    assert 'role="tablist"' in html and "附件与备注" in html and "基本信息" in html
    assert html.index('data-field="number"') < html.index('data-field="project"')
    assert 'class="col-12 col-md-4" data-field="work_date"' in html  # three columns


def test_the_pack_checkers_layout_schema_accepts_both_kinds():
    from formwork.runtime import metaschemas

    for path in sorted(LAYOUTS.glob("*.json")):
        assert metaschemas.errors("layout.schema.json", json.loads(path.read_text("utf-8"))) == []
    wrong = {"entity": "day_sheet", "columns": ["number"], "sections": []}
    assert metaschemas.errors("layout.schema.json", wrong) != []


def test_a_list_layout_is_not_taken_for_a_form_layout(day_sheet):
    document = {"entity": "day_sheet", "columns": ["number"]}
    assert [p.pointer for p in check_form_layout(document, day_sheet)] == ["/columns"]
