"""DMN decision tables whose failures say which rule, which input or output, and why.

Spiff's decision engine reports a failing cell as "Rule failed on row 2". `DecisionEngine`
evaluates the same table (through the same safe script engine) and raises
`DecisionFailed` naming the table, the rule id, the input expression or output and the
reason. `use_decision_engine` puts it on every business rule task of a parsed process.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from SpiffWorkflow.dmn.engine.DMNEngine import DMNEngine
from SpiffWorkflow.dmn.specs.model import HitPolicy

from formwork.runtime.workflow.errors import DecisionFailed


class DecisionEngine(DMNEngine):  # type: ignore[misc]
    """Spiff's DMN engine with failures that name the rule, the expression and the cause."""

    def decide(self, task: Any) -> list[Any]:
        """Return the rules that match the task's data (the first one for UNIQUE tables)."""
        matched = []
        for rule in self.decision_table.rules:
            if self._matches(rule, task):
                matched.append(rule)
                if self.decision_table.hit_policy == HitPolicy.UNIQUE.value:
                    break
        return matched

    def result(self, task: Any) -> dict[str, Any]:
        """Return the decision's outputs for the task's data."""
        matched = self.decide(task)
        if self.decision_table.hit_policy == HitPolicy.COLLECT.value:
            result: dict[str, Any] = {}
            for rule in matched:
                for key, value in self._outputs(rule, task).items():
                    result.setdefault(key, []).append(value)
            return result
        return self._outputs(matched[0], task) if matched else {}

    def _matches(self, rule: Any, task: Any) -> bool:
        for entry in rule.inputEntries:
            expression = entry.input.expression or ""
            for cell in entry.lhs:
                if cell is None:
                    continue
                if not expression:
                    missing = ValueError("the input has no expression")
                    raise self._failed(task, rule, "input", entry.input.label or "", missing)
                try:
                    if not self.evaluate(expression, cell, task):
                        return False
                except Exception as exc:  # noqa: BLE001  (named below, then raised)
                    raise self._failed(
                        task, rule, f"input {expression!r}, cell", cell, exc
                    ) from exc
        return True

    def _outputs(self, rule: Any, task: Any) -> dict[str, Any]:
        try:
            return dict(rule.output_as_dict(task))
        except Exception as exc:  # noqa: BLE001  (named below, then raised)
            texts = ", ".join(e.text for e in rule.outputEntries if e.text)
            raise self._failed(task, rule, "output", texts, exc) from exc

    def _failed(
        self, task: Any, rule: Any, part: str, expression: str, exc: Exception
    ) -> DecisionFailed:
        table = self.decision_table
        failed = DecisionFailed(table.name or table.id, rule.id, part, expression, _reason(exc))
        failed.task = task
        return failed


def _reason(exc: Exception) -> Exception:
    """Return the error under Spiff's "Error evaluating expression" wrapper."""
    inner = exc.__cause__ or exc.__context__
    return inner if isinstance(inner, Exception) else exc


def use_decision_engine(specs: Iterable[Any]) -> None:
    """Replace the DMN engine of every business rule task in the given process specs."""
    for spec in specs:
        for task_spec in spec.task_specs.values():
            engine = getattr(task_spec, "dmnEngine", None)
            if engine is not None and not isinstance(engine, DecisionEngine):
                task_spec.dmnEngine = DecisionEngine(engine.decision_table)
