"""Hostile packs: every trick is refused with a stable pack.E id, naming the file and where.

Already covered elsewhere and not repeated here: `../` and `/abs` names, a symlink member, 1,001
small files, one 60 MB member, not-a-zip, a DOCTYPE and a .py file, each through install
(tests/packs/test_transfer.py); a script task escape in a pack (tests/packs/test_workflows.py);
the XXE problem among many (tests/packs/test_check.py). The expression escapes themselves are
in tests/runtime/test_expressions.py and tests/workflow/test_escape.py; here they arrive inside
pack files.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
from typing import Any

import pytest

from formwork.runtime.packs import PackInvalid, PackSource, check_pack, read_pack, read_zip
from formwork.runtime.packs.source import MAX_FILE, MAX_JSON_DEPTH, load_json
from tests.packs.conftest import folder_files, zip_of
from tests.workflow.conftest import source as bpmn_source
from tests.workflow.test_escape import dmn_with, gateway, script_task

XXE = '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i > 1 else "&lol;" * 10}">'
        for i in range(1, 10)
    )
    + "]>"
)


def refusal(call: Any) -> PackInvalid:
    with pytest.raises(PackInvalid) as caught:
        call()
    return caught.value


def archive_refusal(data: bytes, origin: str = "hostile.zip") -> str:
    """Return the message of the one pack.E080 problem reading the archive gives."""
    error = refusal(lambda: read_zip(data, origin))
    [problem] = error.problems
    assert problem.code == "pack.E080" and problem.file == origin
    return problem.message


def check_problems(files: dict[str, Any]) -> list[Any]:
    raw = {k: v if isinstance(v, bytes) else v.encode("utf-8") for k, v in files.items()}
    return refusal(lambda: check_pack(read_zip(zip_of(raw), "evil.zip"))).problems


def approvals_with(extra: dict[str, Any], workflows: list[str] | None = None) -> dict[str, Any]:
    """Return the approvals test pack with files added (and listed as workflows)."""
    files: dict[str, Any] = folder_files("approvals_v1")
    manifest = json.loads(files["pack.json"])
    if workflows is not None:
        for path in manifest["files"]["workflows"]:
            del files[path]
        manifest["files"]["workflows"] = workflows
    files["pack.json"] = json.dumps(manifest)
    return {**files, **extra}


# --- archive names ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("a/../../evil.json", "path traversal"),
        ("..\\..\\evil.json", "path traversal"),
        ("entities\\..\\..\\evil.json", "path traversal"),
        ("\\windows\\evil.json", "absolute path"),
        ("C:/evil.json", "absolute path"),
        ("C:\\evil.json", "absolute path"),
        ("c:evil.json", "absolute path"),
        ("entities/evil\x07.json", "control character"),
    ],
)
def test_zip_slip_names_are_refused_naming_the_member(name, says):
    message = archive_refusal(zip_of({**folder_files("costs_v1"), name: "{}"}))
    assert says in message and (f"'{name}'" in message or repr(name) in message), message


def test_a_symlink_to_a_folder_is_refused():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("pack.json", folder_files("costs_v1")["pack.json"])
        info = zipfile.ZipInfo("entities/")
        info.external_attr = (0o120777 << 16) | 0x10
        archive.writestr(info, "/etc")
        archive.writestr("entities/cost_entry.json", "{}")
    assert "symbolic link 'entities/'" in archive_refusal(buffer.getvalue())


def test_two_members_with_one_name_are_refused():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("pack.json", folder_files("costs_v1")["pack.json"])
        with pytest.warns(UserWarning):
            archive.writestr("pack.json", b'{"name": "other"}')
    assert "'pack.json' appears twice" in archive_refusal(buffer.getvalue())


def test_a_symlinked_folder_pack_is_refused(tmp_path):
    (tmp_path / "pack.json").write_bytes(folder_files("costs_v1")["pack.json"])
    (tmp_path / "entities").symlink_to("/etc")
    error = refusal(lambda: read_pack(tmp_path))
    assert error.problems[0].code == "pack.E080" and "'entities'" in str(error)


# --- bombs ------------------------------------------------------------------------------------


def test_a_tiny_archive_inflating_past_50_mb_is_refused():
    files = {**folder_files("costs_v1")}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, content in files.items():
            archive.writestr(path, content)
        for i in range(6):  # each under the 10 MB a file, together over 50 MB
            archive.writestr(f"docs/{i}.txt", b"\0" * (9 * 1024 * 1024))
    data = buffer.getvalue()
    assert len(data) < 1024 * 1024
    assert "unpacks to more than the limit" in archive_refusal(data)
    # With headers that understate, the bytes inflated are counted instead.
    understated = bytearray(data)
    at = 0
    while (at := understated.find(b"PK\x01\x02", at)) >= 0:
        if understated[at + 46 : at + 51] == b"docs/":  # the member's name follows the header
            understated[at + 24 : at + 28] = struct.pack("<I", 1)  # its uncompressed size
        at += 4
    message = archive_refusal(bytes(understated))
    assert "'docs/0.txt'" in message


def _lying(declared: int) -> bytes:
    """Return a zip whose one member declares `declared` bytes but inflates to 2 MB."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("pack.json", b" " * (2 * 1024 * 1024))
    data = bytearray(buffer.getvalue())
    real = struct.pack("<I", 2 * 1024 * 1024)
    for at in (data.find(b"PK\x03\x04") + 22, data.find(b"PK\x01\x02") + 24):
        assert data[at : at + 4] == real
        data[at : at + 4] = struct.pack("<I", declared)
    return bytes(data)


def test_a_member_lying_about_its_size_is_refused():
    # Declares 100 bytes, inflates to 2 MB: zipfile stops at the declared size, the CRC fails.
    assert "'pack.json' is damaged" in archive_refusal(_lying(100))
    assert "'pack.json' unpacks to more than the limit: it declares 52428800 bytes" in (
        archive_refusal(_lying(50 * 1024 * 1024))
    )


def test_a_huge_entry_count_is_refused_before_the_directory_is_parsed():
    # An end record declaring 60,000 entries: refused from the 22 bytes alone.
    end = b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, 60000, 60000, 0, 0, 0)
    assert "60000 entries" in archive_refusal(end)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(5000):
            archive.writestr(f"docs/{i}.md", b"")
    assert "more than 1000 files" in archive_refusal(buffer.getvalue())


def test_an_encrypted_member_is_refused_naming_it():
    data = bytearray(zip_of(folder_files("costs_v1")))
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = 0
        while (at := data.find(signature, at)) >= 0:
            data[at + offset] |= 0x01  # the "encrypted" flag bit
            at += 4
    message = archive_refusal(bytes(data))
    assert "cannot be read" in message and ("pack.json" in message or "cost_entry" in message)


def test_an_oversized_single_file_is_refused_naming_it():
    files = {**folder_files("costs_v1"), "docs/readme.md": b"#" * (MAX_FILE + 1)}
    message = archive_refusal(zip_of(files))
    assert "'docs/readme.md' unpacks to more than the limit" in message
    assert f"declares {MAX_FILE + 1} bytes" in message


def test_a_nested_zip_is_refused_as_a_file_type():
    inner = zip_of({"pack.json": "{}"})
    problems = check_problems({**folder_files("costs_v1"), "entities/inner.zip": inner})
    assert [(p.code, p.file) for p in problems] == [("pack.E005", "entities/inner.zip")]


# --- JSON -------------------------------------------------------------------------------------


def _entity_problems(content: bytes) -> list[Any]:
    files = folder_files("approvals_v1")
    files["entities/request.json"] = content
    return [p for p in check_problems(files) if p.file == "entities/request.json"]


@pytest.mark.parametrize(
    ("content", "code", "says"),
    [
        ('{"a": "caf\xe9"}'.encode("latin-1"), "pack.E007", "not UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "pack.E006", "nested deeper than"),
        (b'{"a":' * 100 + b"1" + b"}" * 100, "pack.E006", "nested deeper than"),
        (b'{"a": ' + b"9" * 5000 + b"}", "pack.E006", "out of range"),
        (b'{"a": 1e999999}', "pack.E006", "out of range"),
        (b'{"a": NaN}', "pack.E006", "NaN"),
        (b'{"a": 1', "pack.E006", "Expecting"),
    ],
)
def test_hostile_json_is_refused_naming_the_file(content, code, says):
    [problem] = _entity_problems(content)
    assert problem.code == code and says in problem.message, problem


def test_a_recursion_bomb_in_the_manifest_is_refused():
    files = {**folder_files("costs_v1"), "pack.json": b"[" * 100_000 + b"]" * 100_000}
    [problem] = check_problems(files)
    assert problem.code == "pack.E001" and problem.file == "pack.json"
    assert "nested deeper" in problem.message


def test_load_json_keeps_room_for_real_documents():
    assert load_json(json.dumps({"a": [[{"b": 1.5}]] * 3}).encode()) == {"a": [[{"b": 1.5}]] * 3}
    nested: Any = 1
    for _ in range(MAX_JSON_DEPTH - 1):
        nested = [nested]
    assert load_json(json.dumps(nested)) == nested


# --- XML --------------------------------------------------------------------------------------


def _with_header(text: str, header: str) -> str:
    return text.replace('<?xml version="1.0" encoding="UTF-8"?>', header, 1)


@pytest.mark.parametrize(
    "header",
    [
        XXE,
        LAUGHS,
        '<?xml version="1.0"?><!DOCTYPE definitions>',
        '<?xml version="1.0"?><!DOCTYPE d SYSTEM "http://example.invalid/x.dtd">',
    ],
    ids=["xxe", "billion-laughs", "doctype-alone", "external-dtd"],
)
@pytest.mark.parametrize("kind", ["bpmn", "dmn"])
def test_xml_entities_and_doctypes_are_refused_naming_the_file(kind, header):
    bpmn = bpmn_source("ccb_change.bpmn")
    dmn = bpmn_source("routing.dmn")
    if kind == "bpmn":
        bpmn = _with_header(bpmn, header)
    else:
        dmn = _with_header(dmn, header)
    files = approvals_with(
        {"workflows/ccb.bpmn": bpmn, "workflows/routing.dmn": dmn},
        ["workflows/ccb.bpmn", "workflows/routing.dmn"],
    )
    found = [p for p in check_problems(files) if p.code == "pack.E060"]
    assert [p.file for p in found] == [
        f"workflows/{'ccb.bpmn' if kind == 'bpmn' else 'routing.dmn'}"
    ]
    assert "DOCTYPE" in found[0].message


def test_a_doctype_in_utf16_is_refused_too():
    text = _with_header(bpmn_source("ccb_change.bpmn"), '<?xml version="1.0" encoding="UTF-16"?>')
    text = text.replace("<bpmn:definitions", XXE.split("?>")[1] + "<bpmn:definitions", 1)
    files = approvals_with({"workflows/ccb.bpmn": text.encode("utf-16")}, ["workflows/ccb.bpmn"])
    problems = [p for p in check_problems(files) if p.file == "workflows/ccb.bpmn"]
    assert problems and {p.code for p in problems} <= {"pack.E060", "pack.E061", "pack.E062"}


# --- expressions inside pack files ------------------------------------------------------------

ESCAPES = [
    "().__class__.__base__.__subclasses__()",
    "'{0.__class__}'.format(1)",
    "(lambda: 1)()",
    "[c for c in ().__class__.__mro__]",
    "__import__('os')",
    "getattr(1, '__class__')",
    "1" + " + 1" * 2000,
]
# Resource bombs such as 9**9**9 and 'a' * 10**10 are valid syntax: the evaluator refuses them
# when they run (tests/runtime/test_expressions.py::test_escape_is_refused), not the check.


@pytest.mark.parametrize("escape", ESCAPES)
def test_escapes_in_computed_fields_and_rules_are_refused_with_the_pointer(escape):
    files = folder_files("site_v1")
    sheet = json.loads(files["entities/day_sheet.json"])
    sheet["properties"]["total"]["x-formwork"]["expression"] = escape
    sheet["x-formwork"]["rules"][0]["expression"] = escape
    files["entities/day_sheet.json"] = json.dumps(sheet).encode()
    problems = [p for p in check_problems(files) if p.file == "entities/day_sheet.json"]
    where = {p.where for p in problems}
    assert {p.code for p in problems} == {"pack.E010"}, problems
    assert "/properties/total/x-formwork/expression" in where, where
    assert any(w.startswith("/x-formwork/rules/0") for w in where), where


@pytest.mark.parametrize("escape", ESCAPES)
@pytest.mark.parametrize("place", ["gateway", "script", "dmn-cell", "dmn-output"])
def test_escapes_in_workflows_are_refused_naming_the_element(place, escape):
    bpmn, dmn = bpmn_source("ccb_change.bpmn"), bpmn_source("routing.dmn")
    if place == "gateway":
        bpmn = gateway(escape)
    elif place == "script":
        bpmn = script_task(f"y = {escape}")
    elif place == "dmn-cell":
        dmn = dmn_with(f"< {escape}")
    else:
        dmn = dmn_with(">= 100000", escape)
    files = approvals_with(
        {"workflows/p.bpmn": bpmn, "workflows/routing.dmn": dmn},
        ["workflows/p.bpmn", "workflows/routing.dmn"],
    )
    problems = check_problems(files)
    assert {(p.code, p.file) for p in problems} == {("pack.E062", "workflows/p.bpmn")}
    text = " ".join(p.message for p in problems)
    element = "'x'" if place in ("gateway", "script") else "DMN"
    assert element in text and "line" in text, text


def test_a_pack_folder_is_checked_like_a_zip(tmp_path):
    (tmp_path / "pack.json").write_bytes(b"[" * 100_000 + b"]" * 100_000)
    error = refusal(lambda: check_pack(read_pack(tmp_path)))
    assert error.problems[0].code == "pack.E001"
    assert isinstance(read_pack(tmp_path), PackSource)
