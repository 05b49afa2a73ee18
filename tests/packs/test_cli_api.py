"""The pack operations through `formwork pack …` and /api/v1/packs (admins only)."""

from __future__ import annotations

import io
import json

from formwork.cli_packs import pack_group
from tests.packs.conftest import PACKS, folder_files, zip_of


def run(app, *args, input=None):
    return app.test_cli_runner().invoke(pack_group, list(args), input=input, catch_exceptions=False)


def test_cli_round_trip(app, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "pack.json").write_text('{"name": "x"}')
    checked = run(app, "check", str(bad))
    assert checked.exit_code != 0 and "pack.E002" in checked.output
    assert run(app, "check", str(PACKS / "site_v1")).exit_code == 0
    installed = run(app, "install", str(PACKS / "costs_v1"), str(PACKS / "site_v1"), "--demo")
    assert installed.exit_code == 0, installed.output
    assert "site installed 1.0.0" in installed.output
    assert "site\t1.0.0\tenabled" in run(app, "list").output
    refused = run(app, "disable", "site")
    assert refused.exit_code != 0 and "costs" in refused.output
    patch = tmp_path / "patch.json"
    patch.write_text(json.dumps({"x-formwork": {"label": {"en": "Job"}}}))
    assert run(app, "customise", "site", "entities/project.json", str(patch)).exit_code == 0
    diff = run(app, "diff", "site").output
    assert "entities/project.json" in diff and '/x-formwork/label/en = "Job"' in diff
    upgraded = run(app, "upgrade", str(PACKS / "site_v2"))
    assert upgraded.exit_code == 0 and "site upgraded to 1.1.0" in upgraded.output
    out = tmp_path / "site.zip"
    assert run(app, "export", "site", "-o", str(out)).exit_code == 0
    first = out.read_bytes()
    run(app, "export", "site", "-o", str(out))
    assert out.read_bytes() == first
    assert run(app, "uninstall", "costs").exit_code == 0
    declined = run(app, "uninstall", "costs", "--purge", input="n\n")
    assert declined.exit_code != 0


def test_cli_import_refuses_a_hostile_zip(app, tmp_path):
    evil = tmp_path / "evil.zip"
    evil.write_bytes(zip_of({**folder_files("costs_v1"), "../escape.json": "{}"}))
    result = run(app, "import", str(evil))
    assert result.exit_code != 0 and "pack.E080" in result.output
    assert "costs" not in run(app, "list").output


def test_rest_pack_admin(sample, users, api_as):
    reader, admin = api_as("reader"), api_as("admin")
    assert reader.get("/api/v1/packs").status_code == 403
    data = zip_of(folder_files("site_v1"))
    upload = {"file": (io.BytesIO(data), "site.zip")}
    response = admin.client.post(
        "/api/v1/packs?demo=1",
        data=upload,
        headers=admin._headers(),
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.get_json()
    assert [p["name"] for p in admin.get("/api/v1/packs").get_json()["items"]] == ["site"]
    assert admin.get("/api/v1/site/day_sheet").get_json()["total"] == 1
    assert admin.post("/api/v1/packs/site/disable").status_code == 200
    assert admin.get("/api/v1/site/day_sheet").status_code == 404
    assert admin.post("/api/v1/packs/site/enable").status_code == 200
    patch = {"file": "entities/project.json", "patch": {"x-formwork": {"label": {"en": "Job"}}}}
    assert admin.patch("/api/v1/packs/site/customisations", patch).status_code == 200
    assert admin.get("/api/v1/packs/site/customisations").get_json() == {
        "entities/project.json": {"x-formwork": {"label": {"en": "Job"}}}
    }
    exported = admin.get("/api/v1/packs/site/export")
    assert exported.mimetype == "application/zip" and exported.data[:2] == b"PK"
    bad = admin.client.post(
        "/api/v1/packs/check",
        data=b"not a zip",
        headers={**admin._headers(), "Content-Type": "application/zip"},
    )
    assert bad.status_code == 422
    assert bad.get_json()["problems"][0]["code"] == "pack.E080"
    assert admin.delete("/api/v1/packs/site?purge=1").status_code == 409
    assert admin.delete("/api/v1/packs/site").status_code == 200
