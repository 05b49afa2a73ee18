"""Install and upgrade packs: dependency order, entities (with migrations), files, roles and
fixtures — all in the caller's transaction, so a failure leaves nothing behind."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from packaging.version import Version
from sqlalchemy.orm import Session

from formwork.runtime.clock import Clock, session_clock
from formwork.runtime.definitions import EntityDef, parse_entity
from formwork.runtime.errors import DefinitionInvalid
from formwork.runtime.models import Customisation, PackFile, PackRecord, RolePermission
from formwork.runtime.packs.check import CheckedPack, check_pack
from formwork.runtime.packs.fixtures import load_fixtures
from formwork.runtime.packs.manifest import Manifest, read_manifest
from formwork.runtime.packs.overlay import Conflict, conflicts, drop, leaves, merge_patch
from formwork.runtime.packs.problems import PackInvalid, PackRefused, Problem
from formwork.runtime.packs.roles import install_roles
from formwork.runtime.packs.source import PackSource
from formwork.runtime.packs.store import base_files, customisations, pack_records, parse
from formwork.runtime.registry import bump_version, load_registry
from formwork.runtime.schema import apply_definitions

RESOLUTIONS = ("keep-mine", "take-theirs")


@dataclass
class InstallOptions:
    """How to install: demo data, data-loss confirmation, conflict resolution, who acts."""

    demo: bool = False
    fixtures: bool = True
    confirm: bool = False
    resolution: str | None = None
    user_id: int | None = None
    report: list[str] = field(default_factory=list)
    clock: Clock | None = None  # the kernel's: what `@today` in demo data means
    services: Mapping[str, Any] | None = None  # the kernel's: what service tasks may call


def install_packs(
    session: Session, sources: list[PackSource], options: InstallOptions | None = None
) -> list[str]:
    """Install or upgrade packs in dependency order; return what was done, one line each."""
    options = options or InstallOptions()
    # Check every pack first, so a broken pack is refused whole before any dependency
    # question. Entities of the other packs of this batch count as known, so a report or
    # row rule naming a dependency installed in the same call passes; everything is
    # checked again against the registry at install.
    manifests = _checked_manifests(session, sources, options.services)
    for name in resolve_order(session, {n: m for n, (m, _s) in manifests.items()}):
        _manifest, source = manifests[name]
        known = load_registry(session).entities
        checked = check_pack(source, known=known, services=options.services)
        install_one(session, checked, options)
    return options.report


def _checked_manifests(
    session: Session, sources: list[PackSource], services: Mapping[str, Any] | None = None
) -> dict[str, tuple[Manifest, PackSource]]:
    """Check each pack of a batch; the entities of the other packs count as known.

    A pack missing a dependency is checked on its own (references into other packs pass),
    so it is refused for its own problems first, else by resolve_order for the dependency.
    """
    known = {**load_registry(session).entities, **_batch_entities(sources)}
    installed = {n for n, r in pack_records(session).items() if r.status == "installed"}
    available = installed | {read_manifest(s).name for s in sources}
    out = {}
    for source in sources:
        complete = set(read_manifest(source).depends) <= available
        checked = check_pack(source, known=known if complete else None, services=services)
        out[checked.manifest.name] = (checked.manifest, source)
    return out


def _batch_entities(sources: list[PackSource]) -> dict[str, EntityDef]:
    """Return the entities the packs of a batch declare (unreadable ones are left to the check)."""
    found: dict[str, EntityDef] = {}
    for source in sources:
        try:
            manifest = read_manifest(source)
            for path in manifest.paths("entities"):
                entity = parse_entity(manifest.name, json.loads(source.text(path)))
                found[entity.key] = entity
        except (PackInvalid, DefinitionInvalid, ValueError, KeyError, TypeError):
            continue  # the pack's own check reports what is wrong with it
    return found


def resolve_order(session: Session, manifests: Mapping[str, Manifest]) -> list[str]:
    """Return pack names in install order; refuse missing, mismatched or cyclic dependencies."""
    installed = {
        n: Version(r.version) for n, r in pack_records(session).items() if r.status == "installed"
    }
    available = {**installed, **{n: m.version for n, m in manifests.items()}}
    problems = []
    for name, manifest in manifests.items():
        for dep, spec in manifest.depends.items():
            if dep not in available:
                problems.append(
                    Problem(
                        "pack.E090",
                        f"{name}/pack.json",
                        f"/depends/{dep}",
                        f"needs pack '{dep}' {spec}, which is not installed",
                        f"install {dep} first or together",
                    )
                )
            elif available[dep] not in spec:
                problems.append(
                    Problem(
                        "pack.E090",
                        f"{name}/pack.json",
                        f"/depends/{dep}",
                        f"needs {dep} {spec}, found {available[dep]}",
                    )
                )
    if problems:
        raise PackRefused("; ".join(str(p) for p in problems))
    return _topological(manifests)


def _topological(manifests: Mapping[str, Manifest]) -> list[str]:
    order: list[str] = []
    visiting: list[str] = []

    def visit(name: str) -> None:
        if name in order or name not in manifests:
            return
        if name in visiting:
            cycle = " → ".join([*visiting[visiting.index(name) :], name])
            raise PackRefused(f"pack.E091 dependency cycle: {cycle}")
        visiting.append(name)
        for dep in sorted(manifests[name].depends):
            visit(dep)
        visiting.pop()
        order.append(name)

    for name in sorted(manifests):
        visit(name)
    return order


def install_one(session: Session, checked: CheckedPack, options: InstallOptions) -> None:
    """Install, re-install or upgrade one checked pack."""
    name, version = checked.name, checked.manifest.version
    record = pack_records(session).get(name)
    if record is not None and record.status == "installed":
        current = Version(record.version)
        if version == current:
            options.report.append(f"{name} {version} is already installed")
            return
        if version < current:
            raise PackRefused(f"pack.E092 {name}: downgrade from {current} to {version} is refused")
    patches = _reconcile(session, checked, options)
    _apply_entities(session, checked, patches, options)
    _store_files(session, checked)
    _deploy_workflows(session, checked, patches, options)
    install_roles(session, name, _effective(checked, "roles", patches))
    verb = "installed" if record is None or record.status != "installed" else "upgraded to"
    _save_record(session, checked, record)
    bump_version(session)
    kinds = [k for k, wanted in (("fixtures", options.fixtures), ("demo", options.demo)) if wanted]
    registry = load_registry(session) if kinds else None  # the definitions are final now
    for kind in kinds:
        for path, document in checked.of_kind(kind):
            count = load_fixtures(
                session, name, document, path, clock=options.clock, registry=registry
            )
            options.report.append(f"{name}: loaded {count} record(s) from {path}")
    options.report.append(f"{name} {verb} {version}")


def _effective(checked: CheckedPack, kind: str, patches: Mapping[str, Any]) -> list[Any]:
    return [
        merge_patch(doc, patches[p]) if patches.get(p) else doc for p, doc in checked.of_kind(kind)
    ]


def _reconcile(session: Session, checked: CheckedPack, options: InstallOptions) -> dict[str, Any]:
    """Return the customisations to re-apply over the new base, or refuse on conflicts."""
    patches = customisations(session, checked.name)
    if not patches:
        return {}
    old = {p: parse(r) for p, r in base_files(session, checked.name).items()}
    found: list[Conflict] = []
    for path, patch in patches.items():
        found += conflicts(path, old.get(path), checked.documents.get(path), patch)
    if found and options.resolution not in RESOLUTIONS:
        raise PackRefused(
            "customisations conflict with the new version:\n"
            + "\n".join(str(c) for c in found)
            + "\nchoose --resolution keep-mine or take-theirs"
        )
    for conflict in found:
        patches = _resolve(session, checked.name, patches, conflict, options)
    return patches


def _resolve(
    session: Session,
    pack: str,
    patches: dict[str, Any],
    conflict: Conflict,
    options: InstallOptions,
) -> dict[str, Any]:
    removed = conflict.reason.startswith("the new version removed")
    if options.resolution == "keep-mine" and not removed:
        options.report.append(f"kept customisation {conflict}")
        return patches
    path = tuple(conflict.pointer.strip("/").split("/"))
    patches = {**patches, conflict.file: drop(patches[conflict.file], path)}
    row = session.get(Customisation, (pack, conflict.file))
    if row is not None:
        row.patch = patches[conflict.file]
    options.report.append(f"dropped customisation {conflict}")
    return patches


def _apply_entities(
    session: Session, checked: CheckedPack, patches: Mapping[str, Any], options: InstallOptions
) -> None:
    documents = {
        path: merge_patch(doc, patches[path]) if patches.get(path) else doc
        for path, doc in checked.entities.items()
    }
    done = apply_definitions(
        session, checked.name, documents, confirm=options.confirm, user_id=options.user_id
    )
    options.report += [f"{checked.name}: {line}" for line in done]


def _deploy_workflows(
    session: Session, checked: CheckedPack, patches: Mapping[str, Any], options: InstallOptions
) -> None:
    """Deploy the pack's processes; an unchanged one stays at its version, a changed one
    becomes a new version (running instances keep theirs)."""
    from formwork.runtime.security import system_principal
    from formwork.runtime.workflow.deploy import deploy

    paths = checked.manifest.paths("workflows")
    texts = {p: patches.get(p) or checked.documents[p] for p in paths}
    dmn = [t for p, t in texts.items() if p.endswith(".dmn")]
    bpmn = {p: t for p, t in texts.items() if p.endswith(".bpmn")}
    forms = {p: checked.documents[p] for p in checked.manifest.paths("forms")}
    for path, text in bpmn.items():
        if path.endswith(".bpmn"):
            library = {p: t for p, t in bpmn.items() if p != path}  # called processes
            row, created = deploy(
                session, text, dmn, principal=system_principal(), pack=checked.name,
                library=library, forms=forms, services=options.services,
            )  # fmt: skip
            if created:
                options.report.append(f"{checked.name}: deployed {row.key} version {row.version}")


def _store_files(session: Session, checked: CheckedPack) -> None:
    session.execute(sa.delete(PackFile).where(PackFile.pack == checked.name))
    for path, kind in checked.manifest.all_paths().items():
        session.add(
            PackFile(pack=checked.name, path=path, kind=kind, content=checked.source.text(path))
        )
    session.flush()


def _save_record(session: Session, checked: CheckedPack, record: PackRecord | None) -> None:
    if record is None:
        record = PackRecord(name=checked.name)
        session.add(record)
        record.enabled = True
    elif record.status != "installed":
        record.enabled = True
    record.version = str(checked.manifest.version)
    record.manifest = dict(checked.manifest.document)
    record.status = "installed"
    record.updated_at = session_clock(session).now()
    session.flush()


def grants_of(session: Session, pack: str) -> list[tuple[str, str, str]]:
    """Return (role, entity, action) grants on the pack's entities."""
    rows = session.execute(
        sa.select(RolePermission.role, RolePermission.entity, RolePermission.action).where(
            RolePermission.entity.like(f"{pack}.%")
        )
    )
    return sorted((str(r), str(e), str(a)) for r, e, a in rows)


def describe_patch(patch: Any) -> list[str]:
    """Return one line per leaf of a customisation patch (for `pack diff`)."""
    return [
        f"/{'/'.join(path)} = {json.dumps(value, ensure_ascii=False)}"
        for path, value in leaves(patch)
    ]
