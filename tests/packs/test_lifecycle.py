"""Install, toggle, customise, upgrade and uninstall packs, keeping data and customisations."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from formwork.runtime.errors import ValidationFailed
from formwork.runtime.models import PackRecord, RolePermission
from formwork.runtime.packs import (
    InstallOptions,
    PackRefused,
    PackSource,
    customisations,
    customise,
    install_packs,
    set_enabled,
    uninstall,
)
from formwork.runtime.records import RecordService
from formwork.runtime.registry import load_registry
from formwork.runtime.security import system_principal
from tests.packs.conftest import folder_files, install, source


def records(session):
    return RecordService(session, load_registry(session), system_principal())


def tables(session):
    return set(sa.inspect(session.get_bind()).get_table_names())


def test_install_creates_tables_roles_menu_and_fixtures(site):
    registry = load_registry(site)
    assert {"site.project", "site.day_sheet", "site.day_sheet_line"} <= set(registry.entities)
    assert {"site__project", "site__day_sheet"} <= tables(site)
    grants = set(
        site.execute(
            sa.select(RolePermission.role, RolePermission.entity, RolePermission.action)
        ).all()
    )
    assert ("site_engineer", "site.day_sheet", "create") in grants
    hq = records(site).get("site.project", 1)
    assert hq["code"] == "HQ"
    sheet = records(site).get("site.day_sheet", 1)
    assert sheet["project"] == hq["id"] and sheet["total"] == "350.00"  # demo, lookup by code


def test_same_version_is_a_no_op_and_downgrade_is_refused(site):
    assert install(site, "site_v1") == ["site 1.0.0 is already installed"]
    install(site, "site_v2")
    with pytest.raises(PackRefused, match="downgrade"):
        install(site, "site_v1")


def test_failed_install_leaves_the_database_as_before(app, session):
    files = folder_files("site_v1")
    files["fixtures/projects.json"] = b'{"entity": "project", "records": [{"code": "bad code"}]}'
    before = tables(session)
    with pytest.raises(ValidationFailed) as caught:
        install_packs(session, [PackSource("broken", files)])
    session.rollback()
    assert caught.value.errors[0].pointer.startswith("fixtures/projects.json#/records/0")
    assert tables(session) == before
    assert session.scalar(sa.select(sa.func.count()).select_from(PackRecord)) == 0


def test_dependencies_are_resolved_and_checked(app, session):
    with pytest.raises(PackRefused, match="needs pack 'site'"):
        install(session, "costs_v1")
    session.rollback()
    report = install(session, "costs_v1", "site_v1")
    assert report.index("site installed 1.0.0") < report.index("costs installed 1.0.0")


def test_version_ranges_and_cycles_are_refused(app, session):
    import json

    files = folder_files("costs_v1")
    manifest = json.loads(files["pack.json"])
    manifest["depends"] = {"site": ">=2.0"}
    files["pack.json"] = json.dumps(manifest).encode()
    with pytest.raises(PackRefused, match="needs site >=2.0, found 1.0.0"):
        install_packs(session, [PackSource("c", files), source("site_v1")])
    session.rollback()
    site_files = folder_files("site_v1")
    site_manifest = json.loads(site_files["pack.json"])
    site_manifest["depends"] = {"costs": ">=1"}
    site_files["pack.json"] = json.dumps(site_manifest).encode()
    with pytest.raises(PackRefused, match="cycle"):
        install_packs(session, [PackSource("s", site_files), source("costs_v1")])


def test_disable_keeps_data_and_dependants_block_it(site, api_as):
    install(site, "costs_v1")
    with pytest.raises(PackRefused, match="costs depend on it"):
        set_enabled(site, "site", False)
    set_enabled(site, "costs", False)
    set_enabled(site, "site", False)
    site.commit()
    admin = api_as("admin")
    assert admin.get("/api/v1/site/project").status_code == 404
    assert "/api/v1/site/project" not in admin.get("/api/v1/openapi.json").get_json()["paths"]
    with pytest.raises(PackRefused, match="needs site enabled"):
        set_enabled(site, "costs", True)
    set_enabled(site, "site", True)
    site.commit()
    assert admin.get("/api/v1/site/project").get_json()["total"] == 1


def test_customise_then_upgrade_keeps_records_and_customisations(site):
    customise(
        site,
        "site",
        "entities/project.json",
        {
            "properties": {
                "code": {"x-formwork": {"label": {"en": "Project code"}}},
                "budget": {
                    "x-formwork": {"type": "money", "label": {"zh-CN": "预算", "en": "Budget"}}
                },
            }
        },
    )
    records(site).update("site.project", 1, {"budget": "1000.00"}, 1)
    site.commit()
    assert set(customisations(site, "site")) == {"entities/project.json"}
    report = install(site, "site_v2")
    assert "site upgraded to 1.1.0" in report
    project = records(site).get("site.project", 1)
    assert project["title"] == "总部" and project["budget"] == "1000.00"
    entity = load_registry(site).entity("site.project")
    assert entity.field_map["code"].label("en") == "Project code"
    assert entity.field_map["title"].label("en") == "Title"
    assert "site.visit" in load_registry(site).entities


def test_upgrade_conflicts_are_reported_then_resolved(site):
    customise(
        site,
        "site",
        "entities/project.json",
        {"properties": {"name": {"x-formwork": {"label": {"zh-CN": "工程名称"}}}}},
    )
    customise(
        site, "site", "entities/day_sheet.json", {"properties": {"location": {"maxLength": 300}}}
    )
    site.commit()
    with pytest.raises(PackRefused) as caught:
        install(site, "site_v2")
    message = str(caught.value)
    assert "entities/project.json#/properties/name/x-formwork/label/zh-CN" in message
    assert "removed" in message
    assert "entities/day_sheet.json#/properties/location/maxLength: both changed" in message
    site.rollback()
    report = install(site, "site_v2", resolution="keep-mine")
    assert any(line.startswith("kept customisation entities/day_sheet.json") for line in report)
    assert any(line.startswith("dropped customisation entities/project.json") for line in report)
    sheet = load_registry(site).entity("site.day_sheet")
    assert sheet.field_map["location"].schema["maxLength"] == 300


def test_uninstall_keeps_data_reinstall_brings_it_back_purge_drops(site):
    install(site, "costs_v1")
    with pytest.raises(PackRefused, match="costs depend on it"):
        uninstall(site, "site")
    uninstall(site, "costs")
    assert "kept" in uninstall(site, "site")
    site.commit()
    assert "site__project" in tables(site)
    assert "site.project" not in load_registry(site).entities
    assert (
        site.scalar(
            sa.select(sa.func.count())
            .select_from(RolePermission)
            .where(RolePermission.entity.like("site.%"))
        )
        == 0
    )
    install(site, "site_v1")
    assert records(site).get("site.project", 1)["code"] == "HQ"
    with pytest.raises(PackRefused, match="purge costs first"):
        uninstall(site, "site", purge=True, confirm=True)
    install(site, "costs_v1")
    uninstall(site, "costs", purge=True, confirm=True)
    with pytest.raises(PackRefused, match="confirm"):
        uninstall(site, "site", purge=True)
    uninstall(site, "site", purge=True, confirm=True)
    site.commit()
    assert "site__project" not in tables(site)


def test_options_dataclass_defaults():
    assert InstallOptions().demo is False and InstallOptions().resolution is None
