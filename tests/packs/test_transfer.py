"""Export and import: deterministic zips, customisations as a new version, data, and hostile
archives refused with nothing installed."""

from __future__ import annotations

import io
import json
import stat
import zipfile

import pytest
import sqlalchemy as sa

from formwork.runtime.models import PackRecord
from formwork.runtime.packs import (
    InstallOptions,
    PackInvalid,
    PackRefused,
    customise,
    effective_files,
    export_pack,
    import_data,
    install_packs,
    read_zip,
)
from formwork.runtime.records import RecordService
from formwork.runtime.registry import load_registry
from formwork.runtime.security import system_principal
from tests.conftest import database_url
from tests.packs.conftest import folder_files, zip_of


def test_export_is_byte_identical(site):
    assert export_pack(site, "site") == export_pack(site, "site")
    names = zipfile.ZipFile(io.BytesIO(export_pack(site, "site"))).namelist()
    assert names == sorted(names) and "pack.json" in names


def fresh_session(tmp_path, name):
    from sqlalchemy.orm import sessionmaker

    from formwork.runtime.database import create_system_tables, make_engine

    folder = tmp_path / name
    folder.mkdir()
    engine = make_engine(database_url(folder))
    create_system_tables(engine)
    return sessionmaker(engine)()


def test_export_with_customisations_and_data_imports_the_same(site, tmp_path):
    customise(
        site,
        "site",
        "entities/project.json",
        {
            "properties": {
                "budget": {
                    "x-formwork": {"type": "money", "label": {"zh-CN": "预算", "en": "Budget"}}
                }
            }
        },
    )
    RecordService(site, load_registry(site), system_principal()).update(
        "site.project", 1, {"budget": "88.80"}, 1
    )
    site.commit()
    data = export_pack(site, "site", with_customisations=True, with_data=True)
    expected_files = effective_files(site, "site")
    expected_rows = site.execute(sa.text("SELECT code, budget FROM site__project")).all()
    site.close()
    other = fresh_session(tmp_path, "other")  # on PostgreSQL this empties the same schema
    source = read_zip(data)
    install_packs(other, [source], InstallOptions(fixtures=False))
    assert import_data(other, source, "site") >= 3
    other.commit()
    assert other.get(PackRecord, "site").version == "1.0.1"
    assert effective_files(other, "site") == expected_files
    assert other.execute(sa.text("SELECT code, budget FROM site__project")).all() == expected_rows
    created = RecordService(other, load_registry(other), system_principal()).create(
        "site.project", {"code": "NEW", "name": "n"}
    )
    assert created["id"] > 1
    other.rollback()
    other.close()
    other.get_bind().dispose()


def test_imported_data_is_checked_like_a_save_and_refused_whole(site, tmp_path):
    data = export_pack(site, "site", with_data=True)
    site.close()
    files = dict(read_zip(data).files)
    lines = files["data/project.jsonl"].decode().splitlines()
    bad = json.loads(lines[0])
    bad["code"] = "x" * 500  # longer than the field allows
    files["data/project.jsonl"] = "\n".join([json.dumps(bad), "{oops", *lines[1:]]).encode()
    other = fresh_session(tmp_path, "other")
    source = read_zip(zip_of(files))
    install_packs(other, [source], InstallOptions(fixtures=False))
    other.commit()
    with pytest.raises(PackRefused) as refused:
        import_data(other, source, "site")
    message = str(refused.value)
    assert "data/project.jsonl:1/code" in message and "data/project.jsonl:2:" in message
    other.rollback()
    assert other.execute(sa.text("SELECT count(*) FROM site__project")).scalar() == 0
    other.close()
    other.get_bind().dispose()


def bad_zip_cases():
    good = folder_files("costs_v1")
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("pack.json", good["pack.json"])
        archive.writestr("entities/cost_entry.json", b" " * (60 * 1024 * 1024))
    link = io.BytesIO()
    with zipfile.ZipFile(link, "w") as archive:
        info = zipfile.ZipInfo("entities/cost_entry.json")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, "/etc/passwd")
        archive.writestr("pack.json", good["pack.json"])
    many = {f"docs/{i}.md": "x" for i in range(1001)} | good
    doctype = dict(good)
    manifest = json.loads(good["pack.json"])
    manifest["files"]["workflows"] = ["workflows/x.bpmn"]
    doctype["pack.json"] = json.dumps(manifest)
    doctype["workflows/x.bpmn"] = '<?xml version="1.0"?><!DOCTYPE lol [<!ENTITY lol "lol">]><a/>'
    return {
        "traversal": (zip_of({**good, "../../evil.json": "{}"}), "traversal"),
        "absolute": (zip_of({**good, "/etc/cron.d/evil.json": "{}"}), "absolute"),
        "symlink": (link.getvalue(), "symbolic link"),
        "too many files": (zip_of(many), "more than 1000 files"),
        "zip bomb": (bomb.getvalue(), "unpacks to more than"),
        "not a zip": (b"PK\x03\x04 nonsense", "not a zip"),
        "doctype": (zip_of(doctype), "DOCTYPE"),
        "python": (zip_of({**good, "setup.py": "import os"}), "not allowed"),
    }


@pytest.mark.parametrize("case", list(bad_zip_cases()))
def test_hostile_archives_are_refused_and_nothing_is_installed(app, session, case):
    data, message = bad_zip_cases()[case]
    with pytest.raises(PackInvalid) as caught:
        install_packs(session, [read_zip(data, f"{case}.zip")], InstallOptions())
    session.rollback()
    assert message in str(caught.value)
    assert session.scalar(sa.select(sa.func.count()).select_from(PackRecord)) == 0
