"""The stored state of an instance in a versioned envelope, and its migrations.

An instance's state is stored as ``{"format": N, "spiff": "3.2.0", "state": {...}}``:
`format` is the version of Formwork's state layout, `spiff` the SpiffWorkflow release that
wrote it. A row written before the envelope (Formwork 0.1.0) is format 0. Loading runs
every migration from the row's format to `FORMAT`, so SpiffWorkflow (or the layout) can
change while instances are running: an upgrade that changes the state adds a migration
here and a stored state to `tests/workflow/corpus/`, which the suite loads and runs to
completion.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from formwork.runtime.workflow.spiff import SPIFF_VERSION

FORMAT = 1
Migration = Callable[[dict[str, Any]], dict[str, Any]]


class StateFormatError(ValueError):
    """A stored state this Formwork cannot read (written by a newer one, or damaged)."""


def _from_0(state: dict[str, Any]) -> dict[str, Any]:
    """Format 0 → 1: the bare state of SpiffWorkflow 3.2.0 gets its envelope; no change."""
    return state


# MIGRATIONS[n] turns the state of format n into the state of format n + 1.
MIGRATIONS: dict[int, Migration] = {0: _from_0}


def wrap(state: dict[str, Any]) -> dict[str, Any]:
    """Return the envelope of a state in the current format."""
    return {"format": FORMAT, "spiff": SPIFF_VERSION, "state": state}


def unwrap(text: str) -> dict[str, Any]:
    """Return the state of a stored envelope (or bare format-0 state), migrated to `FORMAT`."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise StateFormatError(f"the stored state is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise StateFormatError("the stored state is not a JSON object")
    version, state = read_envelope(document)
    if version > FORMAT:
        raise StateFormatError(
            f"the state was stored in format {version} (SpiffWorkflow "
            f"{document.get('spiff')}); this Formwork reads up to format {FORMAT}"
        )
    for step in range(version, FORMAT):
        state = MIGRATIONS[step](state)
    return state


def read_envelope(document: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Return (format, state) of a stored document; a bare state is format 0."""
    if "format" in document and "state" in document:
        version = document["format"]
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise StateFormatError(f"unknown state format {version!r}")
        state = document["state"]
        if not isinstance(state, dict):
            raise StateFormatError("the envelope holds no state object")
        return version, state
    if "tasks" in document and "root" in document:
        return 0, document
    raise StateFormatError("the stored state is neither an envelope nor a workflow state")
