"""Customisations as an overlay: JSON merge patches (RFC 7386) over a pack's base files.

The effective file = base + patch, computed here and nowhere else. On upgrade the patch is
re-applied to the new base and conflicts are reported, never silently dropped.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

_MISSING = object()


def merge_patch(target: Any, patch: Any) -> Any:
    """Return `target` with the merge patch applied (inputs are not modified)."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def make_patch(base: Any, changed: Any) -> Any:
    """Return the merge patch that turns `base` into `changed`."""
    if not isinstance(base, Mapping) or not isinstance(changed, Mapping):
        return copy.deepcopy(changed)
    patch: dict[str, Any] = {}
    for key in base.keys() - changed.keys():
        patch[key] = None
    for key, value in changed.items():
        if key not in base:
            patch[key] = copy.deepcopy(value)
        elif base[key] != value:
            patch[key] = make_patch(base[key], value)
    return patch


def leaves(patch: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Yield (path, value) for every leaf a merge patch sets or deletes (None)."""
    if isinstance(patch, Mapping) and patch:
        for key, value in patch.items():
            yield from leaves(value, (*path, key))
    else:
        yield path, patch


def value_at(document: Any, path: tuple[str, ...]) -> Any:
    """Return the value at `path`, or the module's missing marker."""
    node = document
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return _MISSING
        node = node[key]
    return node


@dataclass(frozen=True)
class Conflict:
    """A customisation that does not fit the new base."""

    file: str
    pointer: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}#{self.pointer}: {self.reason}"


def conflicts(file: str, old_base: Any, new_base: Any, patch: Any) -> list[Conflict]:
    """Return the customisations of one file that clash with the pack's new version."""
    found = []
    for path, value in leaves(patch):
        pointer = "/" + "/".join(path)
        old, new = value_at(old_base, path), value_at(new_base, path)
        parent_old = value_at(old_base, path[:-1]) if path else old_base
        parent_new = value_at(new_base, path[:-1]) if path else new_base
        if parent_old is not _MISSING and parent_new is _MISSING:
            found.append(
                Conflict(file, pointer, "the new version removed what this customisation changes")
            )
        elif old is not _MISSING and new is not _MISSING and old != new and value != new:
            found.append(
                Conflict(
                    file,
                    pointer,
                    f"both changed it: the new version says "
                    f"{new!r}, the customisation says {value!r}",
                )
            )
    return found


def drop(patch: Any, path: tuple[str, ...]) -> Any:
    """Return the patch without the leaf at `path` (empty objects pruned)."""
    if not path or not isinstance(patch, Mapping):
        return patch
    head, rest = path[0], path[1:]
    result = dict(patch)
    if head in result:
        if rest:
            result[head] = drop(result[head], rest)
            if result[head] == {}:
                del result[head]
        else:
            del result[head]
    return result
