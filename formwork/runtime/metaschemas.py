"""The meta-schemas in `schemas/`, loaded once per call site and able to refer to each other."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"


@lru_cache(maxsize=1)
def _registry() -> Registry[Any]:
    resources = []
    for path in sorted(SCHEMA_DIR.glob("*.schema.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        resources.append((document["$id"], Resource.from_contents(document)))
    return Registry().with_resources(resources)  # type: ignore[no-any-return]


@lru_cache(maxsize=32)
def validator(name: str) -> jsonschema.Draft202012Validator:
    """Return a validator for `schemas/<name>` (cached; validators are immutable)."""
    document = json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(document, registry=_registry())


def exists(name: str) -> bool:
    """Return True when `schemas/<name>` exists."""
    return (SCHEMA_DIR / name).is_file()


def pointer(path: Any) -> str:
    """Return a JSON pointer for a jsonschema error path."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def errors(name: str, document: Any) -> list[tuple[str, str]]:
    """Return (JSON pointer, message) for every error of `document` against a meta-schema."""
    found = sorted(validator(name).iter_errors(document), key=lambda e: list(map(str, e.path)))
    return [(pointer(e.absolute_path), e.message) for e in found]
