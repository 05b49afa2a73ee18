"""Module packs: check, install, enable/disable, customise, upgrade, uninstall, export/import.

Packs are data (JSON, BPMN/DMN, fixtures); nothing in a pack is ever run as Python.
"""

from formwork.runtime.packs.check import CheckedPack, check_pack
from formwork.runtime.packs.exporter import export_pack, import_data
from formwork.runtime.packs.installer import InstallOptions, install_packs, resolve_order
from formwork.runtime.packs.lifecycle import customise, dependants, set_enabled, uninstall
from formwork.runtime.packs.problems import CODES, PackInvalid, PackRefused, Problem
from formwork.runtime.packs.source import PackSource, read_pack, read_zip
from formwork.runtime.packs.store import customisations, effective_files, pack_records

__all__ = [
    "CODES",
    "CheckedPack",
    "InstallOptions",
    "PackInvalid",
    "PackRefused",
    "PackSource",
    "Problem",
    "check_pack",
    "customisations",
    "customise",
    "dependants",
    "effective_files",
    "export_pack",
    "import_data",
    "install_packs",
    "pack_records",
    "read_pack",
    "read_zip",
    "resolve_order",
    "set_enabled",
    "uninstall",
]
