"""What went wrong in a step, said so that someone can fix it: the step, the element, the cause.

A failing service task becomes a BPMN error (`ServiceFailed`, with an error code the BPMN
can match) that an error boundary event or an error event subprocess may catch; anything
the engine raises otherwise, and an error nothing catches, fails the step with a
`StepFailed` naming the step, the BPMN element and the cause.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from SpiffWorkflow.bpmn.exceptions import WorkflowDataException, WorkflowTaskException
from SpiffWorkflow.exceptions import SpiffWorkflowException

from formwork.runtime.errors import RuntimeFailure
from formwork.runtime.expressions import ExpressionError
from formwork.runtime.workflow.context import StepFailed

MAX_TEXT = 2000


class ServiceError(Exception):
    """Raised by a platform service to fail with a code of its own (the BPMN error code)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class ServiceFailed(Exception):
    """A service task failed; raised through Spiff so the step can route it as a BPMN error."""

    def __init__(self, task: Any, service: str, error: BaseException) -> None:
        super().__init__(f"service '{service}' failed: {_text(error)}")
        self.task = task
        self.service = service
        self.error = error
        self.code = error_code(error)

    def payload(self) -> dict[str, Any]:
        """Return what the catching error event hands to the process (`variableName`)."""
        return {
            "code": self.code,
            "message": _text(self.error),
            "service": self.service,
            "step": element_id(self.task),
        }


class DecisionFailed(SpiffWorkflowException):  # type: ignore[misc]
    """A DMN rule could not be evaluated: which table, rule, input or output, and why."""

    def __init__(self, table: str, rule: str, part: str, expression: str, error: Exception):
        reason = _text(error)
        super().__init__(
            f"decision table '{table}', rule '{rule}', {part} {expression!r}: {reason}"
        )
        self.table, self.rule, self.part, self.expression, self.reason = (
            table, rule, part, expression, reason,
        )  # fmt: skip
        self.task: Any = None


def error_code(error: BaseException) -> str:
    """Return the BPMN error code of a service failure: the code the service declared, the
    runtime failure's kind (`not-found`, `validation`, `conflict`, …), `expression` for an
    expression that failed, `invalid` for a refused value; else the exception's class."""
    if isinstance(error, ServiceError):
        return error.code
    if isinstance(error, RuntimeFailure):
        return str(error.kind)
    if isinstance(error, ExpressionError):
        return "expression"
    if isinstance(error, ValueError | TypeError | LookupError):
        return "invalid"
    return type(error).__name__


def element_id(task: Any) -> str:
    """Return the BPMN id of a task's element (Spiff's name for internal tasks)."""
    spec = task.task_spec
    return str(getattr(spec, "bpmn_id", None) or spec.name)


def step_label(task: Any) -> str:
    """Return the name people see for a task's step (its BPMN name, else its id)."""
    spec = task.task_spec
    return str(getattr(spec, "bpmn_name", None) or element_id(task))


def failure(exc: BaseException, instance_id: int | None = None) -> StepFailed:
    """Return the StepFailed that says where `exc` happened in the process and why."""
    task = getattr(exc, "task", None)
    cause = _cause(exc)
    if task is None:
        return StepFailed(cause[:MAX_TEXT], instance_id, cause=cause, code=_code(exc))
    step, element = step_label(task), element_id(task)
    trail = _trail(task)
    where = f"step '{step}' (element '{element}'{trail})"
    return StepFailed(
        f"{where}: {cause}"[:MAX_TEXT],
        instance_id,
        step=step,
        element=element,
        cause=cause,
        code=_code(exc),
    )


def step_failure(exc: BaseException, instance_id: int | None = None) -> StepFailed:
    """Return the StepFailed of anything the engine raised (an uncaught service error too)."""
    if isinstance(exc, ServiceFailed):
        return uncaught(exc, instance_id)
    return failure(exc, instance_id)


def uncaught(exc: ServiceFailed, instance_id: int | None) -> StepFailed:
    """Return the failure of a service error no boundary event or event subprocess caught."""
    found = failure(exc, instance_id)
    found.args = (f"{found} (BPMN error '{exc.code}' was not caught)",)
    return found


def _code(exc: BaseException) -> str:
    if isinstance(exc, ServiceFailed):
        return exc.code
    inner = _inner(exc)
    return "engine" if inner is exc else error_code(inner)


def _inner(exc: BaseException) -> BaseException:
    """Return the error underneath Spiff's wrappers (its own `exception=` is not kept)."""
    seen = exc
    for _ in range(8):
        nested = getattr(seen, "error", None) if isinstance(seen, ServiceFailed) else None
        nested = nested or seen.__cause__ or seen.__context__
        if nested is None or not isinstance(seen, SpiffWorkflowException | ServiceFailed):
            return seen
        seen = nested
    return seen


def _cause(exc: BaseException) -> str:
    if isinstance(exc, ServiceFailed | DecisionFailed):
        return str(exc)
    inner = _inner(exc)
    if isinstance(inner, DecisionFailed):
        return str(inner)
    own = _spiff_text(exc)
    if inner is exc or isinstance(inner, SpiffWorkflowException):
        return own
    return f"{own}: {_text(inner)}" if own else _text(inner)


def _spiff_text(exc: BaseException) -> str:
    if isinstance(exc, WorkflowDataException):
        return str(exc.args[0]) if exc.args else type(exc).__name__
    if isinstance(exc, WorkflowTaskException | SpiffWorkflowException):
        return str(exc.args[0]) if exc.args else ""
    return _text(exc)


def _text(error: BaseException) -> str:
    text = str(error).strip()
    return text or type(error).__name__


def _trail(task: Any) -> str:
    """Return ', in subprocess …' for a task inside embedded or called processes."""
    names = []
    workflow = task.workflow
    top = workflow.top_workflow
    while workflow is not top:
        holder = top.get_task_from_id(workflow.parent_task_id)
        names.append(f"'{element_id(holder)}'")
        workflow = holder.workflow
    return f", in subprocess {' in '.join(names)}" if names else ""


def problem_fields(exc: StepFailed) -> Mapping[str, Any]:
    """Return the fields a problem response adds for a failed step."""
    fields = {
        "instance_id": exc.instance_id,
        "step": getattr(exc, "step", None),
        "element": getattr(exc, "element", None),
        "cause": getattr(exc, "cause", None),
        "code": getattr(exc, "code", None),
    }
    return {k: v for k, v in fields.items() if v is not None}
