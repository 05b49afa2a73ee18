"""Every module pack checks clean on its own (its dependencies not installed: names in them
are taken on trust) and with everything it depends on installed."""

from __future__ import annotations

from pathlib import Path

import pytest

from formwork.runtime.packs import check_pack, read_pack
from formwork.runtime.packs.check import PackInvalid
from formwork.runtime.packs.installer import _batch_entities

# Outcomes depend on the clock's date: `make test` runs these again a year ahead.
pytestmark = pytest.mark.dates

MODULE_PACKS = Path(__file__).parents[2] / "module_packs"
NAMES = sorted(p.name for p in MODULE_PACKS.iterdir() if (p / "pack.json").is_file())


@pytest.mark.parametrize("name", NAMES)
def test_a_module_pack_checks_clean_on_its_own(name: str) -> None:
    checked = check_pack(read_pack(MODULE_PACKS / name))
    assert checked.manifest.name == name


def test_the_packs_check_clean_together_and_a_broken_rule_is_still_caught() -> None:
    sources = [read_pack(MODULE_PACKS / name) for name in NAMES]
    known = _batch_entities(sources)
    for source in sources:
        check_pack(source, known)
    source = read_pack(MODULE_PACKS / "labor")
    text = source.files["roles.json"].decode()
    roles = text.replace('"member_of": "labor.crew"', '"member_of": "projects.section"', 1)
    source.files["roles.json"] = roles.encode()
    with pytest.raises(PackInvalid) as caught:
        check_pack(source, known)
    assert "pack.E042" in str(caught.value)
