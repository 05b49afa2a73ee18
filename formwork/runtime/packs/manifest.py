"""The pack manifest (`pack.json`): name, version, dependencies and files in load order."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

from formwork.runtime import metaschemas
from formwork.runtime.packs.problems import PackInvalid, Problem
from formwork.runtime.packs.source import PackSource, load_json

MANIFEST = "pack.json"
# Names the REST API uses for its own paths under /api/v1/, so no pack may take them.
RESERVED_NAMES = frozenset(
    {"packs", "files", "tasks", "processes", "fw", "auth", "me", "reports", "dashboards"}
)
KINDS = (
    "entities",
    "layouts",
    "workflows",
    "forms",
    "reports",
    "dashboards",
    "roles",
    "menu",
    "fixtures",
    "demo",
)


@dataclass(frozen=True)
class Manifest:
    """A checked manifest."""

    document: Mapping[str, Any]

    @property
    def name(self) -> str:
        """Return the pack's name."""
        return str(self.document["name"])

    @property
    def version(self) -> Version:
        """Return the pack's version."""
        return Version(self.document["version"])

    @property
    def depends(self) -> dict[str, SpecifierSet]:
        """Return the dependencies with their version ranges."""
        return {n: SpecifierSet(r) for n, r in self.document.get("depends", {}).items()}

    def paths(self, kind: str) -> list[str]:
        """Return the files of one kind, in load order."""
        value = self.document.get("files", {}).get(kind, [])
        return [value] if isinstance(value, str) else list(value)

    def all_paths(self) -> dict[str, str]:
        """Return {path: kind} for every file the manifest lists."""
        return {path: kind for kind in KINDS for path in self.paths(kind)}


def read_manifest(source: PackSource) -> Manifest:
    """Return the checked manifest of a pack, or raise PackInvalid with every problem."""
    if MANIFEST not in source.files:
        raise PackInvalid(
            [
                Problem(
                    "pack.E001",
                    MANIFEST,
                    "",
                    "the pack has no pack.json",
                    "put pack.json at the top of the folder or zip",
                )
            ]
        )
    try:
        document = load_json(source.files[MANIFEST])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PackInvalid([Problem("pack.E001", MANIFEST, "", f"unreadable: {exc}")]) from exc
    problems = [
        Problem("pack.E002", MANIFEST, where, message)
        for where, message in metaschemas.errors("pack.schema.json", document)
    ]
    for name, text in (document.get("depends") or {}).items() if not problems else ():
        try:
            SpecifierSet(text)
        except InvalidSpecifier:
            problems.append(
                Problem(
                    "pack.E002",
                    MANIFEST,
                    f"/depends/{name}",
                    f"'{text}' is not a version range",
                    "e.g. '>=1.0,<2'",
                )
            )
    if document.get("name") in RESERVED_NAMES:
        problems.append(
            Problem(
                "pack.E002",
                MANIFEST,
                "/name",
                f"'{document['name']}' is reserved for the platform's own API",
                "choose another pack name",
            )
        )
    if problems:
        raise PackInvalid(problems)
    return Manifest(document)
