"""The workflow tables: versioned definitions, instances, the ready-task projection, history."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from formwork.runtime.models import ID, Base, utcnow

TS = sa.DateTime(timezone=True)


class ProcessDefinition(Base):
    """One deployed version of a process: its BPMN and DMN sources and their hash."""

    __tablename__ = "fw_wf_definitions"
    __table_args__ = (
        sa.UniqueConstraint("key", "version"),
        sa.Index("ix_fw_wf_definitions_hash", "key", "source_hash"),
    )
    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(sa.String(100))
    version: Mapped[int] = mapped_column(sa.Integer())
    name: Mapped[str] = mapped_column(sa.String(200), default="")
    bpmn: Mapped[str] = mapped_column(sa.Text())
    dmn: Mapped[list[Any]] = mapped_column(default=list)
    source_hash: Mapped[str] = mapped_column(sa.String(64))
    binding: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, default=None)
    deployed_at: Mapped[dt.datetime] = mapped_column(TS, default=utcnow)
    deployed_by: Mapped[int | None] = mapped_column(ID, default=None)
    # The module pack that shipped the process (None for one deployed by hand).
    pack: Mapped[str | None] = mapped_column(sa.String(40), default=None, index=True)
    # What the BPMN draws on besides its DMN, resolved at deploy so a version is
    # self-contained: {"bpmn": {name: xml} (called processes), "forms": {name: schema}}.
    resources: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, default=None)


class ProcessInstance(Base):
    """A running or finished process: its state (without the spec) and where it stands."""

    __tablename__ = "fw_wf_instances"
    __table_args__ = (
        sa.Index("ix_fw_wf_instances_record", "entity", "record_id"),
        sa.Index("ix_fw_wf_instances_timer", "status", "timer_due_at"),
    )
    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    definition_id: Mapped[int] = mapped_column(sa.ForeignKey("fw_wf_definitions.id"), index=True)
    process_key: Mapped[str] = mapped_column(sa.String(100), index=True)
    status: Mapped[str] = mapped_column(sa.String(20), default="running")
    entity: Mapped[str | None] = mapped_column(sa.String(100), default=None)
    record_id: Mapped[int | None] = mapped_column(ID, default=None)
    title: Mapped[str] = mapped_column(sa.String(255), default="")
    state: Mapped[str] = mapped_column(sa.Text(), default="")
    lock_version: Mapped[int] = mapped_column(sa.Integer(), default=1)
    steps: Mapped[int] = mapped_column(sa.Integer(), default=0)
    error: Mapped[str | None] = mapped_column(sa.Text(), default=None)
    failed_action: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, default=None)
    # Failed steps in a row, and when the worker may try a failed timer step again.
    attempts: Mapped[int] = mapped_column(sa.Integer(), default=0, server_default="0")
    next_try_at: Mapped[dt.datetime | None] = mapped_column(TS, default=None)
    timer_due_at: Mapped[dt.datetime | None] = mapped_column(TS, default=None)
    started_by: Mapped[int | None] = mapped_column(ID, default=None)
    started_at: Mapped[dt.datetime] = mapped_column(TS, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(TS, default=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column(TS, default=None)
    # What the record got when the instance ended (approved, rejected, withdrawn or a state
    # the binding declares) and the end event that gave it.
    outcome: Mapped[str | None] = mapped_column(sa.String(40), default=None)
    end_event: Mapped[str | None] = mapped_column(sa.String(200), default=None)


class TaskRow(Base):
    """The projection of one user task, so an inbox is one indexed query.

    Rows stay after the task is done (status `completed` or `cancelled`) so that a second
    completion is told the task is gone (409), not that it never existed (404).
    """

    __tablename__ = "fw_wf_tasks"
    __table_args__ = (
        sa.Index("ix_fw_wf_tasks_assignee", "status", "assignee_id", "created_at", "id"),
        sa.Index("ix_fw_wf_tasks_role", "status", "role", "assignee_id", "created_at", "id"),
        sa.Index("ix_fw_wf_tasks_instance", "instance_id", "status"),
    )
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    instance_id: Mapped[int] = mapped_column(
        sa.ForeignKey("fw_wf_instances.id", ondelete="CASCADE")
    )
    process_key: Mapped[str] = mapped_column(sa.String(100))
    step: Mapped[str] = mapped_column(sa.String(200))
    name: Mapped[str] = mapped_column(sa.String(255), default="")
    lane: Mapped[str | None] = mapped_column(sa.String(100), default=None)
    role: Mapped[str | None] = mapped_column(sa.String(64), default=None)
    assignee_id: Mapped[int | None] = mapped_column(ID, default=None)
    # The submitter, who may not act on their own request unless the process allows it.
    excluded_id: Mapped[int | None] = mapped_column(ID, default=None)
    entity: Mapped[str | None] = mapped_column(sa.String(100), default=None)
    record_id: Mapped[int | None] = mapped_column(ID, default=None)
    title: Mapped[str] = mapped_column(sa.String(255), default="")
    status: Mapped[str] = mapped_column(sa.String(20), default="ready")
    created_at: Mapped[dt.datetime] = mapped_column(TS, default=utcnow)
    due_at: Mapped[dt.datetime | None] = mapped_column(TS, default=None)
    done_at: Mapped[dt.datetime | None] = mapped_column(TS, default=None)
    done_by: Mapped[int | None] = mapped_column(ID, default=None)


class HistoryEntry(Base):
    """One action on an instance: who, when, which step, what, and the comment."""

    __tablename__ = "fw_wf_history"
    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    instance_id: Mapped[int] = mapped_column(
        sa.ForeignKey("fw_wf_instances.id", ondelete="CASCADE"), index=True
    )
    task_id: Mapped[str | None] = mapped_column(sa.String(36), default=None)
    step: Mapped[str | None] = mapped_column(sa.String(200), default=None)
    action: Mapped[str] = mapped_column(sa.String(30))
    comment: Mapped[str] = mapped_column(sa.Text(), default="")
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    user_id: Mapped[int | None] = mapped_column(ID, default=None)
    at: Mapped[dt.datetime] = mapped_column(TS, default=utcnow)


class Notification(Base):
    """A message the `notify` service task leaves for a user."""

    __tablename__ = "fw_wf_notifications"
    __table_args__ = (sa.Index("ix_fw_wf_notifications_user", "user_id", "read_at"),)
    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    user_id: Mapped[int | None] = mapped_column(ID, default=None)
    role: Mapped[str | None] = mapped_column(sa.String(64), default=None)
    subject: Mapped[str] = mapped_column(sa.String(255))
    body: Mapped[str] = mapped_column(sa.Text(), default="")
    instance_id: Mapped[int | None] = mapped_column(ID, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(TS, default=utcnow)
    read_at: Mapped[dt.datetime | None] = mapped_column(TS, default=None)


class Job(Base):
    """A unit of background work, claimed by one worker at a time."""

    __tablename__ = "fw_wf_jobs"
    __table_args__ = (sa.Index("ix_fw_wf_jobs_due", "status", "run_at"),)
    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(sa.String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(sa.String(20), default="queued")
    run_at: Mapped[dt.datetime] = mapped_column(TS, default=utcnow)
    attempts: Mapped[int] = mapped_column(sa.Integer(), default=0)
    max_attempts: Mapped[int] = mapped_column(sa.Integer(), default=5)
    error: Mapped[str | None] = mapped_column(sa.Text(), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(TS, default=utcnow)
    done_at: Mapped[dt.datetime | None] = mapped_column(TS, default=None)


class DocumentState(Base):
    """Where one record bound to a process stands: draft, in-approval, approved, rejected,
    withdrawn, cancelled (or a state a pack declares for an end event).

    A record that was never submitted has no row: it is a draft. The state field of the
    record shows the same value; this row is what the platform trusts.
    """

    __tablename__ = "fw_documents"
    __table_args__ = (sa.UniqueConstraint("entity", "record_id", name="uq_fw_documents_record"),)
    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    entity: Mapped[str] = mapped_column(sa.String(100))
    record_id: Mapped[int] = mapped_column(ID)
    state: Mapped[str] = mapped_column(sa.String(40), default="draft")
    instance_id: Mapped[int | None] = mapped_column(ID, default=None)
    # An amendment (变更) is a new draft; each side names the other.
    amended_from: Mapped[int | None] = mapped_column(ID, default=None)
    amended_to: Mapped[int | None] = mapped_column(ID, default=None)
    reason: Mapped[str] = mapped_column(sa.Text(), default="")
    updated_at: Mapped[dt.datetime] = mapped_column(TS, default=utcnow)
    updated_by: Mapped[int | None] = mapped_column(ID, default=None)


class Posting(Base):
    """One change a process made to another record (a cost entry created, a contract's
    changes increased), kept so it happens once per instance and step and can be reversed.

    The unique key (instance, step, key) is the idempotency key: a repeated or retried step
    cannot post twice. A reversal is a posting too, keyed by the posting it reverses.
    """

    __tablename__ = "fw_postings"
    __table_args__ = (
        sa.UniqueConstraint("instance_id", "step", "key", name="uq_fw_postings_once"),
        sa.Index("ix_fw_postings_record", "entity", "record_id"),
    )
    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    instance_id: Mapped[int] = mapped_column(
        sa.ForeignKey("fw_wf_instances.id", ondelete="CASCADE"), index=True
    )
    step: Mapped[str] = mapped_column(sa.String(200))
    key: Mapped[str] = mapped_column(sa.String(100), default="")
    service: Mapped[str] = mapped_column(sa.String(40))
    entity: Mapped[str] = mapped_column(sa.String(100))
    record_id: Mapped[int | None] = mapped_column(ID, default=None)
    # What was posted: created values, the increment, or the values an update replaced.
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    reversal_of: Mapped[int | None] = mapped_column(ID, default=None)
    reversed_by: Mapped[int | None] = mapped_column(ID, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(TS, default=utcnow)


class WaitingEvent(Base):
    """The projection of one message or signal catch event an instance waits at, so a
    delivery finds its instances with one indexed query instead of reading every state.

    `correlation` holds the values the catch event's correlation properties take in the
    instance; `correlation_key` is their canonical text (sorted JSON), indexed with the
    event's kind and name.
    """

    __tablename__ = "fw_wf_waits"
    __table_args__ = (
        sa.Index("ix_fw_wf_waits_event", "kind", "name", "correlation_key"),
        sa.Index("ix_fw_wf_waits_instance", "instance_id"),
    )
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)  # the waiting task
    instance_id: Mapped[int] = mapped_column(
        sa.ForeignKey("fw_wf_instances.id", ondelete="CASCADE")
    )
    process_key: Mapped[str] = mapped_column(sa.String(100))
    step: Mapped[str] = mapped_column(sa.String(200))
    kind: Mapped[str] = mapped_column(sa.String(20))  # message | signal
    name: Mapped[str] = mapped_column(sa.String(255))
    correlation: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    correlation_key: Mapped[str] = mapped_column(sa.String(255), default="{}")
    created_at: Mapped[dt.datetime] = mapped_column(TS, default=utcnow)
