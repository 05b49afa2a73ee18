"""Spiff extensions: form schema files and instructions are supported; any other extension
Formwork does not implement is refused at check and deploy with the reason, never ignored."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from formwork.runtime.errors import ValidationFailed
from formwork.runtime.packs import PackInvalid, check_pack, read_pack
from formwork.runtime.workflow.deploy import parse_process
from formwork.runtime.workflow.instructions import render
from formwork.runtime.workflow.spiff import find_task
from formwork.runtime.workflow.tasks import form_schema
from tests.web.conftest import sign_in
from tests.workflow.support import (
    PACKS,
    budget_services,
    install_pack,
    instance,
    procure_services,
    ready,
    service_for,
    source,
)


def pack_copy(tmp_path: Path, edit: Any = None) -> Path:
    """Copy the procure pack; `edit` changes the text of its purchase.bpmn."""
    folder = tmp_path / "procure"
    shutil.copytree(PACKS / "procure", folder)
    if edit is not None:
        bpmn = folder / "workflows" / "purchase.bpmn"
        bpmn.write_text(edit(bpmn.read_text("utf-8")), "utf-8")
    return folder


def problems(folder: Path) -> list[str]:
    with pytest.raises(PackInvalid) as caught:
        check_pack(read_pack(folder), services=procure_services())
    return [f"{p.code} {p.file} {p.message}" for p in caught.value.problems]


def test_pack_check_resolves_form_files_and_says_what_is_missing(tmp_path):
    checked = check_pack(read_pack(pack_copy(tmp_path)), services=procure_services())
    assert checked.name == "procure"
    missing = pack_copy(tmp_path / "a", lambda t: t.replace(">quote.json<", ">offer.json<"))
    [found] = problems(missing)
    assert found.startswith("pack.E062 workflows/purchase.bpmn")
    assert "form file 'offer.json' is not in the pack" in found and "files.forms" in found
    broken = pack_copy(tmp_path / "b")
    (broken / "forms" / "quote.json").write_text('{"type": "array"}', "utf-8")
    assert any(p.startswith("pack.E063 forms/quote.json") for p in problems(broken))


REFUSED = [
    (
        "<spiffworkflow:formUiSchemaFilename>quote-ui.json</spiffworkflow:formUiSchemaFilename>",
        "spiffworkflow:formUiSchemaFilename refused: Formwork lays out task forms",
    ),
    (
        "<spiffworkflow:unitTests><spiffworkflow:unitTest id='t'><spiffworkflow:inputJson>{}"
        "</spiffworkflow:inputJson><spiffworkflow:expectedOutputJson>{}"
        "</spiffworkflow:expectedOutputJson></spiffworkflow:unitTest></spiffworkflow:unitTests>",
        "spiffworkflow:unitTests refused: Formwork does not run script unit tests",
    ),
    (
        "<spiffworkflow:properties><spiffworkflow:property name='priority' value='1' />"
        "</spiffworkflow:properties>",
        "spiffworkflow property 'priority' is not one Formwork reads (assignee, due, form, "
        "self_approval)",
    ),
]


@pytest.mark.parametrize(("extension", "reason"), REFUSED)
def test_extensions_formwork_does_not_implement_are_refused_with_the_reason(
    tmp_path, extension, reason
):
    anchor = "<spiffworkflow:formJsonSchemaFilename>"
    folder = pack_copy(tmp_path, lambda t: t.replace(anchor, extension + anchor, 1))
    [found] = problems(folder)
    assert "element 'enter_request'" in found and reason in found


def test_a_form_file_and_a_form_property_on_one_task_are_refused():
    task = '<bpmn:userTask id="cost_review" name="造价工程师审核">\n      <bpmn:extensionElements>'
    named = "<spiffworkflow:formJsonSchemaFilename>cost.json</spiffworkflow:formJsonSchemaFilename>"
    text = source("ccb_change.bpmn").replace(task, task + named)  # it has a form property too
    assert named in text
    with pytest.raises(ValidationFailed, match="both a 'form' property and a formJsonSchema"):
        parse_process(text, [source("routing.dmn")], forms={"cost.json": {"type": "object"}})


def test_unsafe_instruction_placeholders_are_refused_at_deploy():
    text = (PACKS / "procure" / "workflows" / "vendor_check.bpmn").read_text("utf-8")
    unsafe = text.replace("{{ supplier }}", "{{ ().__class__.__base__ }}")
    with pytest.raises(ValidationFailed, match="instructions placeholder refused"):
        parse_process(unsafe)


def test_instructions_are_filled_in_by_the_safe_evaluator_only():
    data = {"item": "<b>steel</b>", "qty": 3}
    text = "Buy {{ qty * 2 }} of {{ item }}. {{ config }} {% for x in y %}{{ __import__ }}"
    assert render(text, data) == "Buy 6 of <b>steel</b>. [?] {% for x in y %}[?]"


def test_the_task_page_shows_instructions_escaped_and_the_form_from_its_file(
    app, session, people, api_for
):
    install_pack(session, "procure", budget_services(app))
    boss = service_for(app, session)
    data = {"item": "<script>alert(1)</script>", "amount": 5, "order_no": "PO-1"}
    started = boss.start("purchase", data)
    session.commit()
    row = ready(session, started.id)["enter_request"]
    task = find_task(boss.read(instance(session, started.id)), row.id)
    assert form_schema(task)["required"] == ["supplier"]  # the pack's forms/quote.json
    page = sign_in(app, "requester").get(f"/app/tasks/{row.id}").get_data(as_text=True)
    assert 'data-testid="instructions"' in page
    assert "Enter the quote for &lt;script&gt;alert(1)&lt;/script&gt; (5 yuan)." in page
    assert "<script>alert(1)</script>" not in page
    shown = api_for("requester").get(f"/api/v1/tasks/{row.id}").json
    assert shown["instructions"] == "Enter the quote for <script>alert(1)</script> (5 yuan)."
