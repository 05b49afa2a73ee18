"""What the pages need from installed packs — titles, on/off state, menus and layouts —
read through the pack store (base + customisation) and kept for a few seconds, so this is
not a handful of queries on every request."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from flask import current_app

from formwork.context import get_session

CACHE_KEY = "formwork.web.pack_snapshot"


@dataclass
class PackSnapshot:
    """Installed packs as the pages see them."""

    titles: dict[str, Any] = field(default_factory=dict)
    disabled: set[str] = field(default_factory=set)
    menus: dict[str, dict[str, Any]] = field(default_factory=dict)
    layouts: dict[tuple[str, str, str], Any] = field(default_factory=dict)  # pack, entity, kind
    taken_at: float = 0.0


def snapshot() -> PackSnapshot:
    """Return the current snapshot, re-read at most every REGISTRY_TTL seconds."""
    cached: PackSnapshot | None = current_app.extensions.get(CACHE_KEY)
    ttl = float(current_app.config.get("REGISTRY_TTL", 2))
    if cached is not None and time.monotonic() - cached.taken_at < ttl:
        return cached
    fresh = _read()
    current_app.extensions[CACHE_KEY] = fresh
    return fresh


def _read() -> PackSnapshot:
    from formwork.runtime.packs.store import files_of_kind, pack_records

    session = get_session()
    out = PackSnapshot(taken_at=time.monotonic())
    for name, record in pack_records(session).items():
        out.titles[name] = (record.manifest or {}).get("title")
        if not record.enabled or record.status != "installed":
            out.disabled.add(name)
    for pack, document in files_of_kind(session, "menu"):
        if isinstance(document, dict):
            out.menus[pack] = document
    for pack, document in files_of_kind(session, "layouts"):
        if isinstance(document, dict) and isinstance(document.get("entity"), str):
            kind = "list" if "columns" in document else "form"
            out.layouts[(pack, document["entity"], kind)] = document
    return out
