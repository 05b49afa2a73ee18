"""Problems found in a pack: a stable id, where (file and JSON pointer or element), a hint."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from formwork.runtime.errors import RuntimeFailure

# The stable ids, so people and scripts can look a problem up.
CODES = {
    "pack.E001": "manifest missing or unreadable",
    "pack.E002": "manifest does not match schemas/pack.schema.json",
    "pack.E003": "a file the manifest lists is missing",
    "pack.E004": "a file is not listed in the manifest",
    "pack.E005": "a file type packs may not hold (packs are data, never code)",
    "pack.E006": "not valid JSON",
    "pack.E007": "not valid UTF-8 text",
    "pack.E010": "entity definition invalid",
    "pack.E011": "entity name and file name differ",
    "pack.E012": "reference to an unknown entity",
    "pack.E013": "reference into a pack that is not a declared dependency",
    "pack.E014": "reference filter does not fit (unknown field or source, or values that "
    "cannot be compared)",
    "pack.E020": "layout invalid",
    "pack.E021": "layout names an unknown field",
    "pack.E030": "report invalid",
    "pack.E031": "report names an unknown entity or field",
    "pack.E032": "report names a column, key or chart value no dataset produces",
    "pack.E033": "report expression invalid (refused by the evaluator, or an unknown name)",
    "pack.E034": "report names an unknown parameter or a bad date token",
    "pack.E035": "dashboard invalid",
    "pack.E036": "dashboard names an unknown report, column or entity",
    "pack.E040": "roles invalid",
    "pack.E041": "role names an unknown entity",
    "pack.E042": "row rule does not fit its entity (unknown field, not a reference, no membership)",
    "pack.E043": "field rule names an unknown field",
    "pack.E050": "menu invalid",
    "pack.E051": "menu names an unknown entity, report or dashboard",
    "pack.E060": "XML with a DOCTYPE (entities are refused)",
    "pack.E061": "XML not well-formed",
    "pack.E062": "BPMN/DMN invalid or unsafe (parse error, or an expression the evaluator refuses)",
    "pack.E063": "task form schema invalid (not a JSON Schema of type object)",
    "pack.E064": "process binding, service task or task form refused (an end event without an "
    "outcome, an unknown service or parameter, an entity outside the pack's reach, a form "
    "field that assigns or routes)",
    "pack.E070": "fixture invalid",
    "pack.E071": "fixture names an unknown entity or field",
    "pack.E080": "unsafe archive",
    "pack.E090": "dependency missing or of the wrong version",
    "pack.E091": "dependency cycle",
    "pack.E092": "downgrade refused",
    "pack.E093": "pack name differs from the installed one",
}


@dataclass(frozen=True)
class Problem:
    """One problem with a pack."""

    code: str
    file: str
    where: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        location = f"{self.file}#{self.where}" if self.where else self.file
        hint = f" ({self.hint})" if self.hint else ""
        return f"{self.code} {location}: {self.message}{hint}"

    def as_dict(self) -> dict[str, str]:
        """Return the problem as JSON for the API."""
        return {
            "code": self.code,
            "file": self.file,
            "where": self.where,
            "message": self.message,
            "hint": self.hint,
        }


class PackInvalid(RuntimeFailure):
    """A pack failed its checks; every problem is listed."""

    status = 422
    title = "Invalid pack"
    kind = "pack-invalid"

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class PackRefused(RuntimeFailure):
    """A pack operation is not possible in the current state; the message says why."""

    status = 409
    title = "Pack operation refused"
    kind = "pack-refused"
