"""Pages for installed module packs: menu groups titled by the pack, the pack's menu order,
disabled packs hidden, and layouts shipped (and customised) in the pack."""

from __future__ import annotations

import json
import re

from formwork.runtime.packs import set_enabled
from tests.packs.conftest import folder_files, install, zip_of
from tests.web.conftest import sign_in


def _menu(html: str) -> list[str]:
    menu = html[html.index('id="nav-site"') :]
    menu = menu[: menu.index("</ul>")]
    return re.findall(r'class="dropdown-item" href="[^"]*">([^<]*)<', menu)


def test_pack_menu_groups_and_disabling(app, session, users):
    install(session, "site_v1", demo=True)
    admin = sign_in(app, "admin")
    html = admin.html("/")
    assert 'id="nav-site"' in html and ">现场管理<" in html
    assert _menu(html)[:2] == ["项目", "点工单"]  # the order of menu.json
    assert admin.get("/app/site/day_sheet").status_code == 200
    set_enabled(session, "site", False)
    session.commit()
    app.extensions.pop("formwork.web.pack_snapshot", None)
    assert 'id="nav-site"' not in admin.html("/")


def test_layout_shipped_in_a_pack_is_used(app, session, users, tmp_path):
    files = folder_files("site_v1")
    manifest = json.loads(files["pack.json"])
    manifest["files"]["layouts"] = ["layouts/project.list.json"]
    files["pack.json"] = json.dumps(manifest, ensure_ascii=False).encode()
    files["layouts/project.list.json"] = json.dumps(
        {"entity": "project", "columns": ["name", "code"], "sort": "-code"}
    ).encode()
    (tmp_path / "site.zip").write_bytes(zip_of(files))
    from formwork.runtime.packs import InstallOptions, install_packs, read_pack

    install_packs(session, [read_pack(tmp_path / "site.zip")], InstallOptions(demo=True))
    session.commit()
    html = sign_in(app, "admin").html("/app/site/project")
    headers = re.findall(r'data-sort="([a-z_]+)"', html)
    assert headers == ["name", "code"]
