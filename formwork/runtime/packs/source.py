"""Read a pack from a folder or a .zip into memory, refusing anything unsafe.

Nothing is extracted to disk: the files are read into a dict, so a hostile archive cannot
write outside a folder (zip slip) or plant a symlink.
"""

from __future__ import annotations

import io
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from formwork.runtime.packs.problems import PackInvalid, Problem

MAX_FILES = 1000
MAX_TOTAL = 50 * 1024 * 1024
MAX_FILE = 10 * 1024 * 1024


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
        with location.open("rb") as handle:
            return read_zip(handle.read(), str(location))
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
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise _unsafe(origin, f"not a zip archive: {exc}") from exc
    with archive:
        infos = [i for i in archive.infolist() if not i.is_dir()]
        if len(infos) > MAX_FILES:
            raise _unsafe(origin, f"more than {MAX_FILES} files")
        names = [_safe_name(origin, info) for info in infos]
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
    with archive.open(info) as member:
        content = member.read(limit)
    if len(content) >= limit:
        raise _unsafe(
            origin,
            f"'{info.filename}' unpacks to more than the limit "
            f"({MAX_FILE} bytes a file, {MAX_TOTAL} in all)",
        )
    return content
