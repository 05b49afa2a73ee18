"""SpiffWorkflow wired to Formwork's safe expression language, and its state-only serializer.

SpiffWorkflow sends every condition, script, timer, multi-instance and DMN expression through
its script engine, whose default is plain ``eval``/``exec``. ``SafeEnvironment`` replaces both
with ``formwork.runtime.expressions``; the engine is not part of the serialized state, so
``attach_engine`` must run after every load (``serializer.restore`` does it). A service task
that fails raises ``ServiceFailed`` with its task, so the step can route it as a BPMN error.
The state is stored in a versioned envelope (``state.py``).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.bpmn.serializer.helpers.encoder import create_encoder
from SpiffWorkflow.spiff.serializer import DEFAULT_CONFIG

from formwork.runtime.expressions import evaluate, run_script
from formwork.runtime.workflow.errors import ServiceFailed
from formwork.runtime.workflow.spiff import encoder_mode
from formwork.runtime.workflow.state import unwrap, wrap

ServiceCall = Callable[[Any, str, dict[str, Any]], Any]


class SafeEnvironment(BasePythonScriptEngineEnvironment):  # type: ignore[misc]
    """Evaluate expressions and run `name = expression` scripts with the safe evaluator."""

    def __init__(self, now: dt.datetime | None = None) -> None:
        super().__init__({})
        self.now = now

    def evaluate(
        self, expression: str, context: Mapping[str, Any], external_context: Any = None
    ) -> Any:
        """Return the value of `expression` over the task data (and any extra names)."""
        names = {**(external_context or {}), **context}
        return evaluate(expression, names, now=self.now)

    def execute(self, script: str, context: dict[str, Any], external_context: Any = None) -> bool:
        """Run a script's lines and store the names it assigns into the task data."""
        names = {**(external_context or {}), **context}
        context.update(run_script(script, names, now=self.now))
        return True

    def call_service(self, context: Any, **kwargs: Any) -> Any:
        """Refuse: service tasks go through the engine, which knows the task."""
        raise RuntimeError("service tasks run through SafeScriptEngine.call_service")


class SafeScriptEngine(PythonScriptEngine):  # type: ignore[misc]
    """The script engine of every Formwork workflow: safe evaluator plus platform services."""

    def __init__(self, services: ServiceCall | None = None, now: dt.datetime | None = None):
        super().__init__(environment=SafeEnvironment(now))
        self.services = services

    def call_service(self, task: Any, **kwargs: Any) -> str:
        """Run a platform service task and return its result as JSON text (Spiff parses it)."""
        if self.services is None:
            raise RuntimeError("no platform services are available to this step")
        params = {k: v["value"] for k, v in (kwargs.get("operation_params") or {}).items()}
        name = str(kwargs.get("operation_name"))
        try:
            result = self.services(task, name, params)
        except Exception as exc:  # noqa: BLE001  (routed as a BPMN error by the step)
            raise ServiceFailed(task, name, exc) from exc
        return json.dumps(result, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"cannot store a {type(value).__name__} in workflow data")


class StateOnlyConverter(BpmnWorkflowConverter):  # type: ignore[misc]
    """Convert a workflow without its process spec; the spec is re-attached on restore."""

    def to_dict(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        """Return the state of a workflow: tasks, data, subprocesses, pending events."""
        dct: dict[str, Any] = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def restore_state(
        self, dct: dict[str, Any], spec: Any, subprocess_specs: Mapping[str, Any]
    ) -> BpmnWorkflow:
        """Rebuild a workflow from its state and a cached spec."""
        workflow = self.target_class(spec, dict(subprocess_specs), deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


class StateSerializer:
    """Turn a workflow into JSON text without its spec, and back (thread-safe, stateless)."""

    def __init__(self) -> None:
        config = dict(DEFAULT_CONFIG)
        config[BpmnWorkflow] = StateOnlyConverter
        registry = BpmnWorkflowSerializer.configure(config)
        registry.register(
            Decimal, lambda v: {"value": str(v)}, lambda v: Decimal(v["value"]), "fw_decimal"
        )
        registry.register(
            dt.date,
            lambda v: {"value": v.isoformat()},
            lambda v: dt.date.fromisoformat(v["value"]),
            "fw_date",
        )
        self.registry = registry
        self._encoder = create_encoder(registry, None)
        self._lock = threading.Lock()
        self.converter: StateOnlyConverter = (
            registry.convert_from_dict["BpmnWorkflow"].args[0].__self__
        )

    def dump(self, workflow: BpmnWorkflow) -> str:
        """Return the workflow's state as JSON text, in the current envelope."""
        # Spiff's task converter leaves data deltas unconverted and relies on the encoder
        # mode of its registry, a flag on the shared object: hence the lock.
        with self._lock, encoder_mode(self.registry):
            dct = self.registry.convert(workflow)
            return json.dumps(wrap(dct), cls=self._encoder, separators=(",", ":"))

    def load(
        self, text: str, spec: Any, subprocess_specs: Mapping[str, Any], engine: SafeScriptEngine
    ) -> BpmnWorkflow:
        """Rebuild a workflow from stored state (any known format, migrated) and its cached
        spec, with the safe engine."""
        workflow = self.converter.restore_state(unwrap(text), spec, subprocess_specs)
        attach_engine(workflow, engine)
        return workflow


def attach_engine(workflow: BpmnWorkflow, engine: SafeScriptEngine) -> None:
    """Give a workflow the safe engine; required after every load.

    Only the top workflow holds an engine: its sub-workflows (embedded and event
    subprocesses, call activities) read the top's (`spiff.py` pins this).
    """
    workflow.script_engine = engine
