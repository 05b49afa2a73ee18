"""Applying changed definitions migrates the tables and keeps the data."""

from __future__ import annotations

import copy

import pytest

from formwork.runtime.errors import DefinitionInvalid, DestructiveChange
from formwork.runtime.models import Migration
from formwork.runtime.records import RecordService
from formwork.runtime.registry import load_registry
from formwork.runtime.schema import apply_definitions
from formwork.runtime.security import system_principal
from tests.conftest import sample_documents


def records(session):
    return RecordService(session, load_registry(session), system_principal())


def project_doc(documents):
    return next(d for p, d in documents.items() if p.endswith("project.json"))


def test_rename_widen_and_add_keep_records(sample, session):
    created = records(session).create(
        "sample.project", {"code": "P1", "name": "一号楼", "contract_value": "99.95"}
    )
    session.commit()
    documents = copy.deepcopy(sample_documents())
    project = project_doc(documents)
    props = project["properties"]
    props["title"] = props.pop("name")
    props["title"]["x-formwork"]["renamed_from"] = "name"
    props["title"]["maxLength"] = 300
    props["contract_value"]["x-formwork"]["scale"] = 4
    props["region"] = {"x-formwork": {"type": "string", "label": {"zh-CN": "区域", "en": "Region"}}}
    project["required"] = ["code", "title"]
    project["x-formwork"]["search"] = ["code", "title"]
    done = apply_definitions(session, "sample", documents)
    session.commit()
    assert any("Rename" in line or "rename" in line for line in done), done
    again = records(session).get("sample.project", created["id"])
    assert again["title"] == "一号楼"
    assert again["contract_value"] == "99.9500"
    assert again["region"] is None
    history = session.query(Migration).order_by(Migration.id).all()
    assert len(history) == 2 and history[-1].operations


def test_destructive_change_needs_confirmation(sample, session):
    records(session).create("sample.project", {"code": "P1", "name": "x"})
    session.commit()
    documents = copy.deepcopy(sample_documents())
    project_doc(documents)["properties"].pop("contract_value")
    records(session).update("sample.project", 1, {"contract_value": "5"}, 1)
    session.commit()
    with pytest.raises(DestructiveChange) as caught:
        apply_definitions(session, "sample", documents)
    session.rollback()
    assert "1" in " ".join(caught.value.losses)
    assert records(session).get("sample.project", 1)["contract_value"] == "5.00"
    apply_definitions(session, "sample", documents, confirm=True)
    session.commit()
    assert "contract_value" not in records(session).get("sample.project", 1)


def test_invalid_definitions_change_nothing(sample, session):
    documents = copy.deepcopy(sample_documents())
    project_doc(documents)["properties"]["code"]["x-formwork"]["type"] = "nope"
    with pytest.raises(DefinitionInvalid):
        apply_definitions(session, "sample", documents)
    session.rollback()
    assert load_registry(session).entity("sample.project").field_map["code"].kind.name == "string"
