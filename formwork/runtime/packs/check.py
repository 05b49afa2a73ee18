"""Check a pack before anything is installed, collecting every problem (never stopping at
the first), each with a stable id, the file, the JSON pointer and a hint."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from formwork.runtime import metaschemas, reference_filters
from formwork.runtime.definitions import EntityDef, parse_entity, qualify
from formwork.runtime.errors import DefinitionInvalid
from formwork.runtime.packs.manifest import MANIFEST, Manifest, read_manifest
from formwork.runtime.packs.problems import PackInvalid, Problem
from formwork.runtime.packs.source import PackSource, load_json

ALLOWED_SUFFIXES = (".json", ".jsonl", ".bpmn", ".dmn", ".md", ".txt", ".png", ".svg")
DOCTYPE = re.compile(rb"<!DOCTYPE|<!ENTITY", re.IGNORECASE)
SCHEMAS = {
    "layouts": "layout.schema.json",
    "reports": "report.schema.json",
    "dashboards": "dashboard.schema.json",
    "roles": "roles.schema.json",
    "menu": "menu.schema.json",
    "fixtures": "fixture.schema.json",
    "demo": "fixture.schema.json",
}
CODES = {
    "layouts": "pack.E020",
    "reports": "pack.E030",
    "dashboards": "pack.E035",
    "roles": "pack.E040",
    "menu": "pack.E050",
    "fixtures": "pack.E070",
    "demo": "pack.E070",
}


@dataclass
class CheckedPack:
    """A pack that passed its checks, with its files parsed."""

    manifest: Manifest
    source: PackSource
    entities: dict[str, dict[str, Any]] = field(default_factory=dict)
    documents: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """Return the pack's name."""
        return self.manifest.name

    def of_kind(self, kind: str) -> list[tuple[str, Any]]:
        """Return (path, parsed content) of the files of one kind, in load order."""
        return [(p, self.documents[p]) for p in self.manifest.paths(kind)]


class _Checker:
    def __init__(
        self,
        source: PackSource,
        manifest: Manifest,
        known: Mapping[str, EntityDef],
        services: Mapping[str, Any] | None = None,
    ) -> None:
        self.source = source
        self.manifest = manifest
        self.known = known
        self.services = services
        self.problems: list[Problem] = []
        self.checked = CheckedPack(manifest, source)
        self.parsed: dict[str, EntityDef] = {}
        self.files: dict[str, str] = {}

    def add(self, code: str, file: str, where: str, message: str, hint: str = "") -> None:
        self.problems.append(Problem(code, file, where, message, hint))

    def run(self) -> CheckedPack:
        self.check_listing()
        self.load_documents()
        self.check_entities()
        if not self.problems:
            self.check_workflows()
        self.check_references()
        self.check_reference_filters()
        self.check_kinds()
        if self.problems:
            raise PackInvalid(self.problems)
        return self.checked

    def check_listing(self) -> None:
        listed = self.manifest.all_paths()
        for path in listed:
            if path not in self.source.files:
                self.add("pack.E003", MANIFEST, "/files", f"'{path}' is listed but missing")
        for path in self.source.files:
            if not path.endswith(ALLOWED_SUFFIXES):
                self.add(
                    "pack.E005",
                    path,
                    "",
                    "file type not allowed in a pack",
                    "packs hold JSON, BPMN/DMN and fixtures only; no code",
                )
            elif path != MANIFEST and path not in listed and not _unlisted_ok(path):
                self.add(
                    "pack.E004",
                    path,
                    "",
                    "not listed in pack.json",
                    "add it under files, or remove it",
                )

    def load_documents(self) -> None:
        for path, kind in self.manifest.all_paths().items():
            raw = self.source.files.get(path)
            if raw is None:
                continue
            if path.endswith((".bpmn", ".dmn")):
                self.check_xml(path, raw)
                self.checked.documents[path] = raw.decode("utf-8", "replace")
                continue
            try:
                document = load_json(raw)
            except UnicodeDecodeError:
                self.add("pack.E007", path, "", "not UTF-8 text")
                continue
            except json.JSONDecodeError as exc:
                self.add("pack.E006", path, f"line {exc.lineno}", exc.msg)
                continue
            self.checked.documents[path] = document
            if kind == "entities":
                self.checked.entities[path] = document

    def check_xml(self, path: str, raw: bytes) -> None:
        if DOCTYPE.search(raw):
            self.add(
                "pack.E060",
                path,
                "",
                "XML with a DOCTYPE or ENTITY is refused",
                "remove the DOCTYPE; entities can read files or explode in size",
            )
            return
        from lxml import etree

        parser = etree.XMLParser(
            resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
        )
        try:
            etree.fromstring(raw, parser)
        except etree.XMLSyntaxError as exc:
            self.add("pack.E061", path, f"line {exc.lineno}", str(exc))

    def check_workflows(self) -> None:
        """Parse each BPMN file (with the pack's DMN tables) and check every expression."""
        from formwork.runtime.errors import ValidationFailed
        from formwork.runtime.workflow.deploy import parse_process

        paths = self.manifest.paths("workflows")
        sources: dict[str, str] = {}
        for path in paths:
            text = self.checked.documents.get(path)
            if not isinstance(text, str):
                return  # unreadable or refused XML is reported already
            sources[path] = text
        dmn = [text for p, text in sources.items() if p.endswith(".dmn")]
        bpmn = {p: text for p, text in sources.items() if p.endswith(".bpmn")}
        forms = self.check_forms()
        for path, text in bpmn.items():
            # Call activities may call the pack's other processes; tasks may name its forms.
            library = {p: t for p, t in bpmn.items() if p != path}
            try:
                parsed = parse_process(text, dmn, library=library, forms=forms)
            except ValidationFailed as exc:
                for error in exc.errors:
                    self.add("pack.E062", path, error.pointer, error.message("en"))
                continue
            self.check_process(path, parsed)

    def check_process(self, path: str, parsed: Any) -> None:
        """Check a process's outcomes (for the entity bound to it), its service tasks (known
        services, parameters, the pack's reach) and its task forms."""
        from formwork.runtime.workflow.process_rules import process_problems
        from formwork.runtime.workflow.services import platform_services

        entities = self.all_entities()
        binding = next(
            (
                {**e.options["workflow"], "entity": key}
                for key, e in self.parsed.items()
                if (e.options.get("workflow") or {}).get("process") == parsed.key
            ),
            None,
        )
        packs = frozenset({self.manifest.name, *self.manifest.depends})
        fields = {k: frozenset(f.name for f in e.fields) for k, e in entities.items()}
        specs = [parsed.spec, *parsed.subprocess_specs.values()]
        services = self.services or platform_services()
        for problem in process_problems(specs, binding, services, packs, fields):
            self.add("pack.E064", path, "", problem)

    def check_forms(self) -> dict[str, Any]:
        """Check each task form file is a JSON Schema of type object; return them by path."""
        from formwork.runtime.workflow.checks import form_schema_problem

        forms = {}
        for path in self.manifest.paths("forms"):
            document = self.checked.documents.get(path)
            if document is None:
                continue
            problem = form_schema_problem(document)
            if problem:
                self.add("pack.E063", path, "", problem)
            forms[path] = document
        return forms

    def check_entities(self) -> None:
        for path, document in self.checked.entities.items():
            try:
                entity = parse_entity(self.manifest.name, document)
            except DefinitionInvalid as exc:
                for error in exc.errors:
                    self.add("pack.E010", path, error.pointer, error.message("en"))
                continue
            expected = PurePosixPath(path).stem
            if entity.name != expected:
                self.add(
                    "pack.E011",
                    path,
                    "/x-formwork/name",
                    f"entity '{entity.name}' is in a file named '{expected}.json'",
                    f"rename the file to {entity.name}.json",
                )
            self.parsed[entity.key] = entity
            self.files[entity.key] = path

    def all_entities(self) -> dict[str, EntityDef]:
        """Return the pack's entities and those of other installed packs."""
        return {
            **{k: e for k, e in self.known.items() if e.pack != self.manifest.name},
            **self.parsed,
        }

    def check_references(self) -> None:
        everything = self.all_entities()
        deps = set(self.manifest.depends)
        for entity in self.parsed.values():
            for field_def in entity.fields:
                for target in field_def.kind.references(field_def, entity):
                    where = f"/properties/{field_def.name}/x-formwork/entity"
                    self.check_target(self.files[entity.key], where, target, everything, deps)

    def check_reference_filters(self) -> None:
        """Check each reference field's `filter` against the entities it names."""
        everything = self.all_entities()
        for entity in self.parsed.values():
            for where, message in reference_filters.definition_problems(entity, everything):
                self.add(
                    "pack.E014",
                    self.files[entity.key],
                    where,
                    message,
                    'e.g. "filter": {"project": "$project"} or {"crew": "$parent.crew"}',
                )

    def check_target(
        self,
        path: str,
        where: str,
        target: str,
        everything: Mapping[str, EntityDef],
        deps: set[str],
    ) -> None:
        pack = target.split(".", 1)[0]
        if pack != self.manifest.name and pack not in deps:
            self.add(
                "pack.E013",
                path,
                where,
                f"reference to '{target}' in pack '{pack}'",
                f'declare "{pack}" under depends in pack.json',
            )
        elif target not in everything and (pack == self.manifest.name or self.known):
            self.add(
                "pack.E012",
                path,
                where,
                f"reference to unknown entity '{target}'",
                _did_you_mean(target, everything),
            )

    def check_kinds(self) -> None:
        for kind, schema in SCHEMAS.items():
            for path in self.manifest.paths(kind):
                document = self.checked.documents.get(path)
                if document is None:
                    continue
                if metaschemas.exists(schema):
                    for where, message in metaschemas.errors(schema, document):
                        self.add(CODES[kind], path, where, message)
                from formwork.runtime.packs import crossref

                for where, code, message, hint in crossref.check(kind, document, self):
                    self.add(code, path, where, message, hint)


def _unlisted_ok(path: str) -> bool:
    # Read-me files, and exported records (read only by `pack import --with-data`).
    return path.endswith((".md", ".txt")) or (path.startswith("data/") and path.endswith(".jsonl"))


def _did_you_mean(target: str, everything: Mapping[str, EntityDef]) -> str:
    bare = target.split(".", 1)[-1]
    same_name = [k for k in everything if k.split(".", 1)[1] == bare]
    close = same_name or difflib.get_close_matches(target, list(everything), n=1)
    return f"did you mean '{close[0]}'?" if close else ""


def check_pack(
    source: PackSource,
    known: Mapping[str, EntityDef] | None = None,
    services: Mapping[str, Any] | None = None,
) -> CheckedPack:
    """Return the checked pack, or raise PackInvalid listing every problem."""
    manifest = read_manifest(source)
    return _Checker(source, manifest, known or {}, services).run()


def entity_key(pack: str, name: str) -> str:
    """Return `pack.name` for an entity named in a pack file (bare names are the pack's)."""
    return qualify(pack, name)
