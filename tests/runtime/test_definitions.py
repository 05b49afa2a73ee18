"""Entity definitions are checked against the meta-schema, reporting every problem."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from formwork.runtime.definitions import parse_entity
from formwork.runtime.errors import DefinitionInvalid
from formwork.runtime.schema import cross_check, parse_documents

SAMPLE = Path(__file__).parents[1] / "entities" / "sample"


def load(name):
    return json.loads((SAMPLE / f"{name}.json").read_text("utf-8"))


def test_sample_definitions_parse():
    sheet = parse_entity("sample", load("day_sheet"))
    assert sheet.key == "sample.day_sheet"
    assert sheet.table_name == "sample__day_sheet"
    assert [f.name for f in sheet.fields][:3] == ["number", "project", "work_date"]
    assert sheet.field_map["number"].read_only
    assert sheet.field_map["project"].required


def test_every_meta_schema_error_is_reported_with_its_path():
    document = load("project")
    document["x-formwork"]["label"] = {"zh-CN": "项目"}
    document["properties"]["code"]["x-formwork"]["type"] = "strng"
    document["properties"]["Bad Name"] = {
        "x-formwork": {"type": "string", "label": {"zh-CN": "x", "en": "x"}}
    }
    document["properties"]["status"]["x-formwork"].pop("options")
    document["properties"]["id"] = document["properties"]["name"]
    with pytest.raises(DefinitionInvalid) as caught:
        parse_entity("sample", document)
    pointers = {e.pointer for e in caught.value.errors}
    assert "/x-formwork/label" in pointers
    assert "/properties/code/x-formwork/type" in pointers
    assert "/properties/status/x-formwork" in pointers
    assert "/properties" in pointers  # bad names: 'Bad Name' and the system column 'id'
    assert len(caught.value.errors) >= 5


def test_type_specific_checks():
    document = load("day_sheet")
    document["properties"]["number"]["x-formwork"]["pattern"] = "DW-{YYYY}-{nope}"
    document["properties"]["total"]["x-formwork"]["expression"] = "__import__('os')"
    document["x-formwork"]["search"] = ["number", "ghost"]
    with pytest.raises(DefinitionInvalid) as caught:
        parse_entity("sample", document)
    pointers = {e.pointer for e in caught.value.errors}
    assert "/properties/number/x-formwork/pattern" in pointers
    assert "/properties/total/x-formwork/expression" in pointers
    assert "/x-formwork/search/1" in pointers


def test_unknown_reference_target_with_hint():
    documents = {"a.json": load("project"), "b.json": copy.deepcopy(load("day_sheet"))}
    documents["b.json"]["properties"]["project"]["x-formwork"]["entity"] = "projct"
    documents["b.json"]["properties"].pop("lines")
    documents["b.json"]["properties"]["total"]["x-formwork"]["expression"] = "0"
    entities = {e.key: e for e in parse_documents("sample", documents)}
    problems = cross_check(entities)
    assert len(problems) == 1
    detail = problems[0].message("en")
    assert "unknown entity 'sample.projct'" in detail
    assert "did you mean 'sample.project'" in detail


def test_problems_of_several_files_are_all_reported():
    bad = load("project")
    bad["type"] = "array"
    worse = load("day_sheet")
    worse["x-formwork"].pop("name")
    with pytest.raises(DefinitionInvalid) as caught:
        parse_documents("sample", {"p.json": bad, "d.json": worse})
    sources = {e.pointer.split("#")[0] for e in caught.value.errors}
    assert sources == {"p.json", "d.json"}
