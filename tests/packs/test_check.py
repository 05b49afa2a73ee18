"""`pack check`: every problem of a pack is collected, with id, place and hint."""

from __future__ import annotations

import json

import pytest

from formwork.runtime.packs import PackInvalid, PackSource, check_pack
from tests.packs.conftest import folder_files, source


def problems_of(files: dict[str, bytes]) -> list:
    with pytest.raises(PackInvalid) as caught:
        check_pack(PackSource("test", files))
    return caught.value.problems


def test_the_test_packs_pass():
    for name in ("site_v1", "site_v2", "costs_v1"):
        checked = check_pack(source(name))
        assert checked.name in ("site", "costs")


def test_every_problem_is_reported_with_id_file_pointer_and_hint():
    files = folder_files("site_v1")
    manifest = json.loads(files["pack.json"])
    manifest["files"]["entities"].append("entities/ghost.json")
    manifest["files"]["workflows"] = ["workflows/approve.bpmn"]
    files["pack.json"] = json.dumps(manifest).encode()
    files["hooks.py"] = b"import os"
    files["stray.json"] = b"{}"
    sheet = json.loads(files["entities/day_sheet.json"])
    sheet["properties"]["project"]["x-formwork"]["entity"] = "projct"
    sheet["properties"]["crew"] = {
        "x-formwork": {
            "type": "reference",
            "entity": "hr.crew",
            "label": {"zh-CN": "班组", "en": "Crew"},
        }
    }
    files["entities/day_sheet.json"] = json.dumps(sheet).encode()
    line = json.loads(files["entities/day_sheet_line.json"])
    line["properties"]["days"]["x-formwork"]["type"] = "float"
    files["entities/day_sheet_line.json"] = json.dumps(line).encode()
    report = json.loads(files["reports/labour_by_project.json"])
    report["measures"][0]["field"] = "totl"
    files["reports/labour_by_project.json"] = json.dumps(report).encode()
    roles = json.loads(files["roles.json"])
    roles["roles"][0]["permissions"][0]["entity"] = "contract"
    files["roles.json"] = json.dumps(roles).encode()
    files["menu.json"] = b'{"items": [{"entity": "nowhere"}, {"report": "nothing"}]}'
    files["fixtures/projects.json"] = b'{"entity": "project", "records": [{"colour": "red"}]}'
    files["workflows/approve.bpmn"] = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM '
        b'"file:///etc/passwd">]><definitions>&e;</definitions>'
    )
    found = {(p.code, p.file) for p in problems_of(files)}
    expected = {
        ("pack.E003", "pack.json"),
        ("pack.E005", "hooks.py"),
        ("pack.E004", "stray.json"),
        ("pack.E012", "entities/day_sheet.json"),
        ("pack.E013", "entities/day_sheet.json"),
        ("pack.E010", "entities/day_sheet_line.json"),
        ("pack.E031", "reports/labour_by_project.json"),
        ("pack.E041", "roles.json"),
        ("pack.E051", "menu.json"),
        ("pack.E071", "fixtures/projects.json"),
        ("pack.E060", "workflows/approve.bpmn"),
    }
    assert expected <= found, expected - found


def test_unknown_reference_names_the_pointer_and_suggests():
    files = folder_files("site_v1")
    sheet = json.loads(files["entities/day_sheet.json"])
    sheet["properties"]["project"]["x-formwork"]["entity"] = "projects"
    files["entities/day_sheet.json"] = json.dumps(sheet).encode()
    [problem] = [p for p in problems_of(files) if p.code == "pack.E012"]
    assert problem.where == "/properties/project/x-formwork/entity"
    assert "did you mean 'site.project'" in problem.hint
    assert str(problem).startswith("pack.E012 entities/day_sheet.json#/properties/project")


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda m: m.pop("version"), "pack.E002"),
        (lambda m: m.update(version="1.0"), "pack.E002"),
        (lambda m: m.update(name="packs"), "pack.E002"),
        (lambda m: m.update(depends={"site": "about one"}), "pack.E002"),
    ],
)
def test_bad_manifests(mutate, code):
    files = folder_files("costs_v1")
    manifest = json.loads(files["pack.json"])
    mutate(manifest)
    files["pack.json"] = json.dumps(manifest).encode()
    assert code in {p.code for p in problems_of(files)}


def test_malformed_json_and_missing_manifest():
    files = folder_files("costs_v1")
    files["entities/cost_entry.json"] = b'{"type": "object",'
    [problem] = problems_of(files)
    assert problem.code == "pack.E006" and problem.where.startswith("line")
    del files["pack.json"]
    assert problems_of(files)[0].code == "pack.E001"


def test_entity_file_name_must_match():
    files = folder_files("costs_v1")
    files["entities/cost_entry.json"] = files["entities/cost_entry.json"].replace(
        b'"name": "cost_entry"', b'"name": "cost_item"'
    )
    assert "pack.E011" in {p.code for p in problems_of(files)}
