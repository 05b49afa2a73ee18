"""The `formwork` command: init, users, tokens, grants, entity check/apply."""

from __future__ import annotations

import json
from pathlib import Path

from formwork.cli import entity_group, init_command, role_group, user_group

SAMPLE = Path(__file__).parent / "entities" / "sample"


def run(app, command, *args):
    return app.test_cli_runner().invoke(command, list(args), catch_exceptions=False)


def test_init_creates_admin_once_and_prints_login(app):
    first = run(app, init_command)
    assert first.exit_code == 0
    assert "Sign in as admin / Fw-" in first.output
    password = (Path(app.config["INSTANCE_PATH"]) / "initial_admin_password").read_text().strip()
    assert password in first.output
    again = run(app, init_command)
    assert again.exit_code == 0 and password in again.output


def test_user_create_token_and_grant(app):
    run(app, init_command)
    result = run(
        app, user_group, "create", "clerk", "--password", "Kerk-pass-12", "--role", "clerk"
    )
    assert result.exit_code == 0, result.output
    weak = run(app, user_group, "create", "weak", "--password", "12345678")
    assert weak.exit_code != 0 and "password must" in weak.output
    dupe = run(app, user_group, "create", "clerk", "--password", "Kerk-pass-12")
    assert dupe.exit_code != 0 and "already exists" in dupe.output
    token = run(app, user_group, "token", "clerk")
    assert token.exit_code == 0 and token.output.startswith("fw_")
    missing = run(app, user_group, "token", "nobody")
    assert missing.exit_code != 0 and "no user 'nobody'" in missing.output
    bad = run(app, role_group, "grant", "clerk", "sample.project", "fly")
    assert bad.exit_code != 0 and "unknown action 'fly'" in bad.output
    assert run(app, role_group, "grant", "clerk", "*", "read").exit_code == 0


def test_entity_check_and_apply(app, tmp_path):
    files = sorted(str(p) for p in SAMPLE.glob("*.json"))
    assert run(app, entity_group, "check", "sample", *files).exit_code == 0
    broken = tmp_path / "broken.json"
    document = json.loads((SAMPLE / "project.json").read_text())
    document["properties"]["code"]["x-formwork"]["type"] = "strng"
    broken.write_text(json.dumps(document))
    result = run(app, entity_group, "check", "sample", str(broken))
    assert result.exit_code != 0
    assert "/properties/code/x-formwork/type" in result.output
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{nope")
    assert "cannot read" in run(app, entity_group, "apply", "sample", str(garbage)).output
    applied = run(app, entity_group, "apply", "sample", *files)
    assert applied.exit_code == 0, applied.output
    listed = run(app, entity_group, "list")
    assert "sample.day_sheet" in listed.output and "点工单" in listed.output
    assert "nothing to change" in run(app, entity_group, "apply", "sample", *files).output


def test_role_grant_with_row_and_field_rules(sample, session):
    app = sample
    run(app, init_command)
    rows = '[{"field": "created_by", "is": "me"}]'
    done = run(
        app, role_group, "grant", "clerk", "sample.project", "read", "update", "--rows", rows
    )
    assert done.exit_code == 0, done.output
    listed = json.loads(run(app, role_group, "list").output)
    clerk = next(r for r in listed if r["name"] == "clerk")
    assert clerk["grants"]["null"][0]["rows"] == [{"field": "created_by", "is": "me"}]
    bad = run(app, role_group, "grant", "clerk", "sample.project", "read", "--rows", "[{")
    assert bad.exit_code != 0 and "not JSON" in bad.output
    wrong = '[{"field": "nope", "is": "me"}]'
    refused = run(app, role_group, "grant", "clerk", "sample.project", "read", "--rows", wrong)
    assert refused.exit_code != 0 and "/permissions/0/rows/0" in refused.output
    fields = '{"contract_value": "hidden"}'
    assert (
        run(
            app, role_group, "grant", "clerk", "sample.project", "read", "--fields", fields
        ).exit_code
        == 0
    )


def test_pack_commands_explain_instead_of_failing(tmp_path):
    from formwork.app import create_app
    from formwork.cli_packs import pack_group

    bare = create_app(
        {"INSTANCE_PATH": str(tmp_path / "i"), "DATABASE_URL": f"sqlite:///{tmp_path / 'b.db'}"}
    )
    runner = bare.test_cli_runner()
    listed = runner.invoke(pack_group, ["list"])
    assert listed.exit_code != 0 and "run `formwork init`" in listed.output
    labor = Path(__file__).parents[1] / "module_packs" / "labor"
    checked = runner.invoke(pack_group, ["check", str(labor)])  # no database needed
    assert checked.exit_code == 0 and "labor 1.0.0: OK" in checked.output
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "pack.json").write_text('{"name": ', encoding="utf-8")
    run(bare, init_command)
    upgraded = runner.invoke(pack_group, ["upgrade", str(broken)])
    assert upgraded.exit_code != 0 and "pack.E001 pack.json" in upgraded.output
