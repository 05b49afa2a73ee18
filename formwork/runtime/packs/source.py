"""Read a pack from a folder or a .zip into memory, refusing anything unsafe.

Nothing is extracted to disk: the files are read into a dict, so a hostile archive cannot
write outside a folder (zip slip) or plant a symlink. Sizes are checked on the bytes actually
inflated (a header can lie), the entry count before the central directory is parsed, and the
JSON in a pack is parsed with limits (`load_json`).
"""

from __future__ import annotations

import io
import json
import math
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from formwork.runtime.packs.problems import PackInvalid, Problem

MAX_FILES = 1000
MAX_TOTAL = 50 * 1024 * 1024
MAX_FILE = 10 * 1024 * 1024
# A zip is never much larger than what it holds (stored members plus headers).
MAX_ARCHIVE = MAX_TOTAL + MAX_FILES * 1024
MAX_JSON_DEPTH = 64
MAX_JSON_INT = 2**63 - 1
_EOCD = b"PK\x05\x06"
_EOCD64_LOCATOR = b"PK\x06\x07"
_EOCD64 = b"PK\x06\x06"


@dataclass
class PackSource:
    """The files of a pack, keyed by their relative POSIX path."""

    origin: str
    files: dict[str, bytes] = field(default_factory=dict)

    def text(self, path: str) -> str:
        """Return a file as text (UTF-8)."""
        return self.files[path].decode("utf-8")


def read_pack(path: str | Path) -> PackSource:
    """Return the pack at `path` (a folder or a .zip), or raise PackInvalid."""
    location = Path(path)
    if location.is_dir():
        return _read_folder(location)
    if location.is_file():
        if location.stat().st_size > MAX_ARCHIVE:
            raise _unsafe(str(location), f"the archive is larger than {MAX_ARCHIVE} bytes")
        with location.open("rb") as handle:
            return read_zip(handle.read(MAX_ARCHIVE + 1), str(location))
    raise PackInvalid([Problem("pack.E001", str(path), "", "no such folder or file")])


def _unsafe(origin: str, message: str) -> PackInvalid:
    return PackInvalid([Problem("pack.E080", origin, "", message)])


def _read_folder(root: Path) -> PackSource:
    source = PackSource(str(root))
    total = 0
    for item in sorted(root.rglob("*")):
        relative = item.relative_to(root).as_posix()
        if item.is_symlink():
            raise _unsafe(source.origin, f"symbolic link '{relative}' refused")
        if not item.is_file() or _ignored(relative):
            continue
        size = item.stat().st_size
        total += size
        _check_sizes(source, relative, size, total)
        source.files[relative] = item.read_bytes()
    return source


def _ignored(relative: str) -> bool:
    parts = PurePosixPath(relative).parts
    return any(p.startswith(".") or p == "__pycache__" for p in parts)


def _check_sizes(source: PackSource, name: str, size: int, total: int) -> None:
    if len(source.files) >= MAX_FILES:
        raise _unsafe(source.origin, f"more than {MAX_FILES} files")
    if size > MAX_FILE:
        raise _unsafe(source.origin, f"'{name}' is larger than {MAX_FILE} bytes")
    if total > MAX_TOTAL:
        raise _unsafe(source.origin, f"more than {MAX_TOTAL} bytes unpacked")


def read_zip(data: bytes, origin: str = "upload.zip") -> PackSource:
    """Return the pack in a zip archive's bytes, or raise PackInvalid (nothing is written)."""
    if len(data) > MAX_ARCHIVE:
        raise _unsafe(origin, f"the archive is larger than {MAX_ARCHIVE} bytes")
    # Count the entries from the end record first: parsing a central directory of a million
    # empty entries costs seconds and hundreds of megabytes before any limit could apply.
    declared = _declared_entries(data)
    if declared is not None and declared > MAX_FILES * 2:
        raise _unsafe(origin, f"more than {MAX_FILES} files ({declared} entries)")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zlib.error, ValueError, OSError) as exc:
        raise _unsafe(origin, f"not a zip archive: {exc}") from exc
    with archive:
        # Every entry's name and mode is checked, folders too (a symlinked folder is refused).
        named = [(info, _safe_name(origin, info)) for info in archive.infolist()]
        infos = [info for info, _name in named if not info.is_dir()]
        names = [name for info, name in named if not info.is_dir()]
        if len(infos) > MAX_FILES:
            raise _unsafe(origin, f"more than {MAX_FILES} files")
        _refuse_duplicates(origin, names)
        _check_declared_sizes(origin, infos)
        prefix = _common_folder(names)
        source = PackSource(origin)
        total = 0
        for info, name in zip(infos, names, strict=True):
            relative = name[len(prefix) :]
            if _ignored(relative):
                continue
            content = _read_member(archive, info, origin, MAX_TOTAL - total)
            total += len(content)
            _check_sizes(source, relative, len(content), total)
            source.files[relative] = content
    return source


def _declared_entries(data: bytes) -> int | None:
    """Return the entry count the archive's end record declares (None when there is none)."""
    at = data.rfind(_EOCD, max(0, len(data) - 65_557))
    if at < 0 or at + 22 > len(data):
        return None
    (count,) = struct.unpack_from("<H", data, at + 10)
    locator = at - 20
    if count == 0xFFFF and locator >= 0 and data[locator : locator + 4] == _EOCD64_LOCATOR:
        (offset,) = struct.unpack_from("<Q", data, locator + 8)
        if offset + 40 <= len(data) and data[offset : offset + 4] == _EOCD64:
            (count,) = struct.unpack_from("<Q", data, offset + 32)
    return int(count)


def _check_declared_sizes(origin: str, infos: list[zipfile.ZipInfo]) -> None:
    # Cheap early refusal; the real guard is in _read_member, which counts inflated bytes.
    for info in infos:
        if info.file_size > MAX_FILE:
            raise _unsafe(
                origin,
                f"'{info.filename}' unpacks to more than the limit: it declares "
                f"{info.file_size} bytes (at most {MAX_FILE} a file)",
            )
    total = sum(info.file_size for info in infos)
    if total > MAX_TOTAL:
        raise _unsafe(
            origin,
            f"the archive unpacks to more than the limit: its members declare {total} bytes "
            f"(at most {MAX_TOTAL} in all)",
        )


def _refuse_duplicates(origin: str, names: list[str]) -> None:
    # Two members with one name: tools disagree on which one wins, so a checker could be
    # shown one file and the installer another. Refuse rather than guess.
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise _unsafe(origin, f"'{name}' appears twice in the archive")
        seen.add(name)


def _safe_name(origin: str, info: zipfile.ZipInfo) -> str:
    name = info.filename
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise _unsafe(origin, f"symbolic link '{name}' refused")
    path = PurePosixPath(name.replace("\\", "/"))
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or path.is_absolute():
        raise _unsafe(origin, f"absolute path '{name}' refused")
    if ".." in path.parts:
        raise _unsafe(origin, f"path traversal '{name}' refused")
    if "\x00" in name or any(ord(c) < 32 for c in name):
        raise _unsafe(origin, f"control character in the name {name!r} refused")
    return path.as_posix()


def _common_folder(names: list[str]) -> str:
    # A zip of the folder `cost_center/` holds `cost_center/pack.json`: strip that folder.
    if "pack.json" in names or not names:
        return ""
    first = names[0].split("/", 1)[0] + "/"
    return first if all(n.startswith(first) for n in names) else ""


def _read_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, origin: str, budget: int
) -> bytes:
    # Read at most the budget + 1 bytes: a declared size can lie, the stream cannot.
    limit = min(budget, MAX_FILE) + 1
    try:
        with archive.open(info) as member:
            content = member.read(limit)
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError) as exc:
        # A header that lies about the size ends in a CRC or length error: name the member.
        raise _unsafe(origin, f"'{info.filename}' is damaged: {exc}") from exc
    except (RuntimeError, NotImplementedError) as exc:
        raise _unsafe(origin, f"'{info.filename}' cannot be read: {exc}") from exc
    if len(content) >= limit:
        raise _unsafe(
            origin,
            f"'{info.filename}' unpacks to more than the limit "
            f"({MAX_FILE} bytes a file, {MAX_TOTAL} in all)",
        )
    return content


def load_json(raw: bytes | str, parse_float: Callable[[str], Any] | None = None) -> Any:
    """Return parsed JSON, or raise json.JSONDecodeError saying what is wrong and where.

    Beyond the syntax it refuses what json.loads lets through or crashes on: nesting deeper
    than MAX_JSON_DEPTH (100,000 nested arrays raise RecursionError), numbers that overflow to
    infinity (1e999999), NaN/Infinity, and integers longer than Python converts (4,300 digits).
    """
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    try:
        document = json.loads(
            text,
            parse_float=parse_float or _finite_float,
            parse_int=_bounded_int,
            parse_constant=_no_constant,
        )
    except RecursionError:
        raise json.JSONDecodeError(f"nested deeper than {MAX_JSON_DEPTH} levels", text, 0) from None
    except json.JSONDecodeError:
        raise
    except ValueError as exc:  # e.g. "Exceeds the limit (4300 digits) for integer string ..."
        raise json.JSONDecodeError(f"a number is out of range: {exc}", text, 0) from None
    if _depth_exceeds(document, MAX_JSON_DEPTH):
        raise json.JSONDecodeError(f"nested deeper than {MAX_JSON_DEPTH} levels", text, 0)
    if ("\\ud" in text or "\\uD" in text) and _has_lone_surrogate(document):
        # "\ud800" decodes to a str no database or UTF-8 encoder accepts (a 500 later on).
        raise json.JSONDecodeError("a string holds a lone UTF-16 surrogate", text, 0)
    return document


def _bounded_int(text: str) -> int:
    # Every integer column is 64-bit: a longer number cannot be stored or compared, and past
    # 4,300 digits Python refuses to convert it at all.
    if len(text.lstrip("-")) > 19 or abs(value := int(text)) > MAX_JSON_INT:
        raise ValueError(f"{text[:20]}... does not fit a 64-bit integer")
    return value


def _has_lone_surrogate(document: Any) -> bool:
    stack = [document]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]} does not fit a number")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _depth_exceeds(document: Any, limit: int) -> bool:
    # Iterative, so a deep document cannot exhaust the stack while it is being measured.
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > limit:
                return True
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)
    return False
