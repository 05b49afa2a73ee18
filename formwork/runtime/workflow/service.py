"""Process instances: start, run one step under a lock, save state and tasks together.

A step is: lock the instance row, load its state (spec from the cache, safe engine attached),
change it, run the engine, fix assignments, save the state, re-project the ready tasks and
write the history — all in the caller's transaction, which the caller commits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from formwork.runtime.clock import Clock, clock_for
from formwork.runtime.errors import (
    Conflict,
    FieldError,
    NotFound,
    PermissionDenied,
    RuntimeFailure,
    ValidationFailed,
)
from formwork.runtime.events import EventBus
from formwork.runtime.registry import Registry
from formwork.runtime.security import Principal, row_condition
from formwork.runtime.workflow.assignment import Policy, assign
from formwork.runtime.workflow.binding import record_data, refresh_record, set_record_state
from formwork.runtime.workflow.compact import compact
from formwork.runtime.workflow.context import StepContext, StepFailed
from formwork.runtime.workflow.deploy import ParsedProcess, SpecCache, latest_definition
from formwork.runtime.workflow.engine import SafeScriptEngine, StateSerializer, attach_engine
from formwork.runtime.workflow.errors import step_failure
from formwork.runtime.workflow.guard import RecordGuard
from formwork.runtime.workflow.jobs import Handler as JobHandler
from formwork.runtime.workflow.lifecycle import IN_APPROVAL, refuse_submit
from formwork.runtime.workflow.messages import event_services, project_waits, send_thrown
from formwork.runtime.workflow.models import ProcessDefinition, ProcessInstance
from formwork.runtime.workflow.outcomes import outcome_of, reached_end
from formwork.runtime.workflow.services import ServiceSpec, default_services
from formwork.runtime.workflow.spiff import step_moment
from formwork.runtime.workflow.steps import record_failure as _record_failure
from formwork.runtime.workflow.steps import run_engine
from formwork.runtime.workflow.tasks import project, step_name
from formwork.runtime.workflow.timers import next_timer

Change = Callable[[BpmnWorkflow, StepContext], None]
MAX_SKIPS = 50  # steps the submitter's `skip` rule may pass in one go


class WorkflowRuntime:
    """Process-wide machinery: parsed specs, serializer, services, job handlers, guard."""

    def __init__(self, services: Mapping[str, ServiceSpec] | None = None) -> None:
        self.jobs: dict[str, JobHandler] = {}  # background job kinds (see jobs.py)
        self.specs = SpecCache()
        self.serializer = StateSerializer()
        self.guard = RecordGuard()
        self.services: dict[str, ServiceSpec] = dict(services or default_services())
        for name, spec in event_services().items():  # send_message, send_signal
            self.services.setdefault(name, spec)

    def register(self, spec: ServiceSpec) -> None:
        """Add (or replace) a service that service tasks may call."""
        self.services[spec.name] = spec


class WorkflowService:
    """Start and advance process instances for one principal in one session."""

    def __init__(
        self,
        session: Session,
        principal: Principal,
        runtime: WorkflowRuntime,
        registry: Registry | None = None,
        events: EventBus | None = None,
        clock: Clock | dt.datetime | None = None,
    ) -> None:
        self.session = session
        self.principal = principal
        self.runtime = runtime
        self.registry = registry
        self.events = events or EventBus()
        self.clock = clock_for(session, clock)
        self._definitions: dict[int, ProcessDefinition] = {}

    @property
    def now(self) -> dt.datetime:
        """Return the moment of this service's steps, from its clock."""
        return self.clock.now()

    def definition(self, definition_id: int) -> ProcessDefinition:
        """Return a stored definition (rows never change, so each is read once per service)."""
        found = self._definitions.get(definition_id)
        if found is None:
            found = self.session.get(ProcessDefinition, definition_id)
            if found is None:
                raise NotFound(f"no process definition {definition_id}")
            self._definitions[definition_id] = found
        return found

    # -- starting -----------------------------------------------------------------------------
    def start(
        self,
        key: str,
        data: Mapping[str, Any] | None = None,
        *,
        entity: str | None = None,
        record_id: int | None = None,
        title: str = "",
    ) -> ProcessInstance:
        """Start the latest version of a process with the given data."""
        definition = latest_definition(self.session, key)
        assert definition is not None
        self._refuse_if_paused(definition, "start")
        instance = ProcessInstance(
            definition_id=definition.id,
            process_key=key,
            status="running",
            entity=entity,
            record_id=record_id,
            title=title[:255],
            started_by=self.principal.user_id,
            started_at=self.now,
            updated_at=self.now,
        )
        self.session.add(instance)
        self.session.flush()
        ctx = self._context(instance, definition)
        parsed = self.runtime.specs.get(definition)
        start_data = dict(data or {})
        if entity is not None and record_id is not None:
            start_data = {**record_data(ctx, entity, record_id), **start_data}
        check_data(start_data, "/data")
        workflow = BpmnWorkflow(
            parsed.spec, dict(parsed.subprocess_specs), script_engine=self._engine(ctx)
        )
        for task in workflow.get_tasks(state=TaskState.READY):
            task.data.update(start_data)
        ctx.history("start", details={"version": definition.version})
        set_record_state(ctx, IN_APPROVAL)
        self._advance(instance, workflow, ctx, lambda wf, c: None)
        return instance

    def submit(self, entity: str, record_id: int) -> ProcessInstance:
        """Start the process bound to an entity for one of its records.

        The entity's `x-formwork.workflow` option names the process; otherwise the newest
        definition deployed with a binding to the entity is used.
        """
        if self.registry is None:
            raise NotFound("no entity definitions are loaded")
        option = self.registry.entity(entity).options.get("workflow") or {}
        if option.get("process"):
            definition = latest_definition(self.session, option["process"])
            assert definition is not None
        else:
            definition = bound_definition(self.session, entity)
        binding = self._binding(definition, entity)
        stored = self._stored_state(entity, record_id, binding)
        refuse_submit(self.session, entity, record_id, binding, stored)
        self._require_submit(entity, record_id)
        title = self._title(entity, record_id, binding)
        return self.start(definition.key, None, entity=entity, record_id=record_id, title=title)

    def _stored_state(self, entity: str, record_id: int, binding: Mapping[str, Any]) -> Any:
        """Return what the record's state field holds (None without one)."""
        assert self.registry is not None
        table = self.registry.meta(entity).table
        name = binding.get("state_field")
        if not name or name not in table.c:
            return None
        return self.session.scalar(sa.select(table.c[name]).where(table.c.id == record_id))

    def _require_submit(self, entity: str, record_id: int) -> None:
        # Submitting is its own action, on the records the principal's rows reach.
        assert self.registry is not None
        self.principal.require(entity, "submit")
        meta = self.registry.meta(entity)
        condition = row_condition(self.registry, self.principal, meta, "submit")
        if condition is None:
            return
        found = self.session.scalar(
            sa.select(meta.table.c.id).where(meta.table.c.id == record_id, condition)
        )
        if found is None:
            raise PermissionDenied(
                f"'{self.principal.username}' may not submit {entity} {record_id}"
            )

    def _title(self, entity: str, record_id: int, binding: Mapping[str, Any]) -> str:
        assert self.registry is not None
        meta = self.registry.meta(entity)
        field_name = binding.get("title") or meta.entity.title_field
        if not field_name or field_name not in meta.table.c:
            return f"{entity} #{record_id}"
        column = meta.table.c[field_name]
        value = self.session.scalar(sa.select(column).where(meta.table.c.id == record_id))
        if (
            value is None
            and self.session.scalar(sa.select(meta.table.c.id).where(meta.table.c.id == record_id))
            is None
        ):
            raise NotFound(f"{entity} {record_id} does not exist")
        return str(value) if value is not None else f"{entity} #{record_id}"

    # -- steps -------------------------------------------------------------------------------
    def step(
        self, instance_id: int, change: Change, *, statuses: tuple[str, ...] = ("running",)
    ) -> ProcessInstance:
        """Run one change on an instance under its lock and save everything."""
        instance = self.lock(instance_id)
        if instance.status not in statuses:
            raise Conflict(f"instance {instance_id} is {instance.status}")
        definition = self.definition(instance.definition_id)
        self._refuse_if_paused(definition, "continue")
        ctx = self._context(instance, definition)
        workflow = self.load(instance, ctx)
        refresh_record(ctx, workflow)  # what a step posts comes from the record as it is now
        self._advance(instance, workflow, ctx, change)
        return instance

    def _refuse_if_paused(self, definition: ProcessDefinition, verb: str) -> None:
        """Refuse to start or move a process whose module pack is switched off.

        Its instances are paused, not lost: they go on when the pack is switched on.
        """
        if self.registry is not None and definition.pack in self.registry.disabled_packs:
            raise Conflict(
                f"cannot {verb} '{definition.key}': pack '{definition.pack}' is "
                "switched off; its running instances are paused"
            )

    def lock(self, instance_id: int) -> ProcessInstance:
        """Lock an instance row for this transaction (FOR UPDATE, plus a version claim)."""
        instance = self.session.scalars(
            sa.select(ProcessInstance)
            .where(ProcessInstance.id == instance_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).first()
        if instance is None:
            raise NotFound(f"no process instance {instance_id}")
        # On SQLite FOR UPDATE is ignored: the claim takes the write lock and fails when
        # another step committed since we read the row.
        try:
            claimed = self.session.execute(
                sa.update(ProcessInstance)
                .where(
                    ProcessInstance.id == instance_id,
                    ProcessInstance.lock_version == instance.lock_version,
                )
                .values(lock_version=instance.lock_version + 1)
                .execution_options(synchronize_session=False)
            )
        except OperationalError as exc:  # SQLite: a writer committed since our snapshot
            if "locked" not in str(exc.orig):
                raise
            raise Conflict(f"instance {instance_id} is being changed by someone else") from exc
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict(f"instance {instance_id} was changed by someone else; reload it")
        set_committed_value(instance, "lock_version", instance.lock_version + 1)
        return instance

    def load(self, instance: ProcessInstance, ctx: StepContext) -> BpmnWorkflow:
        """Return the instance's workflow with the safe engine attached."""
        parsed = self._parsed(instance)
        return self.runtime.serializer.load(
            instance.state, parsed.spec, parsed.subprocess_specs, self._engine(ctx)
        )

    def read(self, instance: ProcessInstance) -> BpmnWorkflow:
        """Return an instance's workflow for reading (no lock; nothing is saved)."""
        definition = self.definition(instance.definition_id)
        return self.load(instance, self._context(instance, definition))

    def _parsed(self, instance: ProcessInstance) -> ParsedProcess:
        definition = self.definition(instance.definition_id)
        return self.runtime.specs.get(definition)

    def advance(
        self,
        instance: ProcessInstance,
        workflow: BpmnWorkflow,
        definition: ProcessDefinition,
        change: Change,
    ) -> None:
        """Run a change on an already locked and loaded workflow (migration) and save it."""
        ctx = self._context(instance, definition)
        attach_engine(workflow, self._engine(ctx))
        self._advance(instance, workflow, ctx, change)

    def _advance(
        self, instance: ProcessInstance, workflow: BpmnWorkflow, ctx: StepContext, change: Change
    ) -> None:
        # No savepoint: a failed step fails the whole transaction, which every caller rolls
        # back (the API and the worker then record the error on the instance).
        try:
            with step_moment(ctx.now, ctx.zone):  # timers read the kernel's clock and zone
                change(workflow, ctx)
                if instance.status == "running":
                    workflow.refresh_timers()
                    self._run_engine(workflow, ctx)
        except RuntimeFailure as exc:
            if isinstance(exc, StepFailed):
                exc.instance_id = instance.id
            raise
        except Exception as exc:  # noqa: BLE001  (any engine error fails the step, naming where)
            raise step_failure(exc, instance.id) from exc
        if instance.status == "running" and workflow.is_completed():
            self._complete(instance, workflow, ctx)
        self._save(instance, workflow, ctx)

    def _run_engine(self, workflow: BpmnWorkflow, ctx: StepContext) -> None:
        """Run the engine until it waits; steps the submitter's `skip` rule passes are
        completed (and recorded) on the way."""
        # The separation of duties is about records: a process started on no record (by an
        # administrator, or a timer) has no submitter to keep away from its steps.
        bound = ctx.instance.record_id is not None
        policy = Policy.of(ctx.instance.started_by if bound else None, ctx.binding)
        for _round in range(MAX_SKIPS):
            run_engine(workflow)  # service failures become BPMN errors
            skipped = assign(self.session, workflow, ctx.now, policy)
            if not skipped:
                return
            for task in skipped:
                ctx.history("skip", task_id=str(task.id), step=step_name(task))
                task.set_data(decision="approve", comment="")
                task.run()
        raise StepFailed(f"more than {MAX_SKIPS} steps skipped in a row", ctx.instance.id)

    def _complete(
        self, instance: ProcessInstance, workflow: BpmnWorkflow, ctx: StepContext
    ) -> None:
        """End an instance that reached an end event with the outcome its binding maps (a
        process on no record just completes)."""
        if instance.entity is None or instance.record_id is None:
            instance.end_event = reached_end(workflow)
            self._finish(instance, ctx, "completed", "completed")
            return
        try:
            end, outcome = outcome_of(workflow, ctx.binding)
        except LookupError as exc:
            raise StepFailed(str(exc), instance.id) from exc
        instance.outcome, instance.end_event = outcome.state, end
        self._finish(instance, ctx, "completed", outcome.state)

    def _finish(self, instance: ProcessInstance, ctx: StepContext, status: str, state: str) -> None:
        instance.status = status
        instance.outcome = state
        instance.ended_at = ctx.now
        ctx.history(
            state, details={"end_event": instance.end_event} if instance.end_event else None
        )
        set_record_state(ctx, state)

    def end(
        self, instance: ProcessInstance, ctx: StepContext, workflow: BpmnWorkflow, status: str
    ) -> None:
        """Cancel what is open and end the instance as rejected or withdrawn."""
        workflow.cancel()
        self._finish(instance, ctx, status, status)

    def _save(self, instance: ProcessInstance, workflow: BpmnWorkflow, ctx: StepContext) -> None:
        compact(workflow)
        lanes = (ctx.binding or {}).get("lanes") or {}
        project(self.session, instance, workflow, lanes, ctx.now)
        send_thrown(ctx, workflow)  # messages and signals for other processes, as jobs
        instance.updated_at = ctx.now
        project_waits(self.session, instance, workflow)
        instance.state = self.runtime.serializer.dump(workflow)
        instance.steps = (instance.steps or 0) + 1
        instance.error = None
        instance.failed_action = None
        instance.attempts, instance.next_try_at = 0, None
        running = instance.status == "running"
        instance.timer_due_at = next_timer(workflow, ctx.zone) if running else None
        self.session.flush()

    def context_for(self, instance: ProcessInstance) -> StepContext:
        """Return the context of an instance for work outside a step (a cancellation)."""
        return self._context(instance, self.definition(instance.definition_id))

    def _context(self, instance: ProcessInstance, definition: ProcessDefinition) -> StepContext:
        binding = self._binding(definition, instance.entity)
        return StepContext(
            self.session,
            self.principal,
            self.registry,
            self.events,
            instance,
            self.now,
            binding,
            zone=self.clock.zone.key,
            reach=self._reach(definition, binding),
        )

    def _reach(self, definition: ProcessDefinition, binding: Mapping[str, Any]) -> frozenset[str]:
        """Return the entities the process may act on (its pack's and its dependencies'; a
        process deployed by hand: those of its bound entity's pack)."""
        if self.registry is None:
            return frozenset()
        bound = str(binding.get("entity") or "")
        known = bound in self.registry.entities
        pack = definition.pack
        if pack is None and known:
            pack = self.registry.entity(bound).pack
        reach = self.registry.reach_of(pack)
        return reach | {bound} if known else reach

    def binding(self, instance: ProcessInstance) -> dict[str, Any]:
        """Return the effective binding of an instance's process."""
        return self._binding(self.definition(instance.definition_id), instance.entity)

    def _binding(self, definition: ProcessDefinition, entity: str | None) -> dict[str, Any]:
        """Return the effective binding: the definition's, then the entity's workflow option."""
        binding = dict(definition.binding or {})
        if entity is not None and self.registry is not None and entity in self.registry.entities:
            option = self.registry.entity(entity).options.get("workflow") or {}
            if option.get("process") == definition.key:
                binding.update({k: v for k, v in option.items() if k != "process"})
                binding["entity"] = entity
        return binding

    def _engine(self, ctx: StepContext) -> SafeScriptEngine:
        def call(task: Any, name: str, params: dict[str, Any]) -> Any:
            service = self.runtime.services.get(name)
            if service is None:
                raise ValueError(f"unknown service '{name}'")
            ctx.element, ctx.run = step_name(task), str(task.id)  # a posting's key
            try:
                # A savepoint: when a boundary event catches the failure, nothing the
                # failed service wrote is kept.
                with self.session.begin_nested():
                    return service(ctx, params)
            finally:
                ctx.element, ctx.run = None, ""

        return SafeScriptEngine(call, ctx.clock.local_now())


def bound_definition(session: Session, entity: str) -> ProcessDefinition:
    """Return the newest definition bound to an entity, or raise NotFound."""
    rows = session.scalars(
        sa.select(ProcessDefinition).order_by(
            ProcessDefinition.key, ProcessDefinition.version.desc()
        )
    ).all()
    latest: dict[str, ProcessDefinition] = {}
    for row in rows:
        latest.setdefault(row.key, row)
    for row in latest.values():
        if (row.binding or {}).get("entity") == entity:
            return row
    raise NotFound(f"no process is bound to '{entity}'")


def record_failure(
    session: Session, instance_id: int, message: str, action: Mapping[str, Any] | None = None
) -> None:
    """Show a failed step's error on the instance (call after rolling the step back).

    `action` is what the retry action will run again (see `steps.record_failure`).
    """
    _record_failure(session, instance_id, message, action)


def check_data(data: Any, pointer: str, depth: int = 0) -> None:
    """Refuse data a process cannot hold: reserved keys (`typename`, `_…`) or deep nesting."""
    if depth > 16:
        raise ValidationFailed([FieldError(pointer, "invalid", {"detail": "nested too deeply"})])
    if isinstance(data, dict):
        for key, value in data.items():
            if not isinstance(key, str) or key == "typename" or key.startswith("_"):
                detail = f"the key {key!r} is reserved"
                raise ValidationFailed(
                    [FieldError(f"{pointer}/{key}", "invalid", {"detail": detail})]
                )
            check_data(value, f"{pointer}/{key}", depth + 1)
    elif isinstance(data, list):
        for index, value in enumerate(data):
            check_data(value, f"{pointer}/{index}", depth + 1)
    elif isinstance(data, float):
        raise ValidationFailed([FieldError(pointer, "invalid", {"detail": "use exact numbers"})])
