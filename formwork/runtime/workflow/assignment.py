"""Who holds a newly ready task: its assignee expression, the initiator's lane, and the
separation of duties (DESIGN.md decision 14).

- A task in an initiator lane (named `initiator`, `submitter`, `发起人` or `申请人`, or listed
  in the binding's `initiator_lanes`) belongs to the submitter.
- Otherwise the submitter may not act on their own request. When the assignee expression
  names them, the binding's (or the task's) `self_approval` rule decides: `escalate` (the
  default: the step goes to the others of its role, or to the role named in
  `{"escalate": role}`), `skip` (the step passes, recorded in the history) or `allow`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from sqlalchemy.orm import Session

from formwork.runtime.models import User
from formwork.runtime.workflow.tasks import properties, ready_tasks

INITIATOR_LANES = frozenset({"initiator", "submitter", "发起人", "申请人"})
RULES = ("escalate", "skip", "allow")


@dataclass(frozen=True)
class Policy:
    """The assignment rules of one instance."""

    submitter: int | None
    self_approval: Any = "escalate"
    initiator_lanes: frozenset[str] = INITIATOR_LANES

    @classmethod
    def of(cls, submitter: int | None, binding: Mapping[str, Any] | None) -> Policy:
        """Return the policy a binding declares for an instance started by `submitter`."""
        binding = binding or {}
        lanes = INITIATOR_LANES | frozenset(binding.get("initiator_lanes") or ())  # by name
        return cls(submitter, binding.get("self_approval") or "escalate", lanes)


def assign(session: Session, workflow: BpmnWorkflow, now: dt.datetime, policy: Policy) -> list[Any]:
    """Fix holder and due time of newly ready tasks (kept in the task's state); return the
    tasks the submitter's `skip` rule passes (the caller completes them)."""
    skipped = []
    for task in ready_tasks(workflow):
        if task.internal_data.get("fw_assigned"):
            continue
        task.internal_data["fw_assigned"] = True
        props = properties(task)
        if getattr(task.task_spec, "lane", None) in policy.initiator_lanes:
            task.internal_data["assignee"] = policy.submitter
        else:
            assignee = None
            if props.get("assignee"):
                value = workflow.script_engine.evaluate(task, props["assignee"])
                assignee = _user_id(session, value)
            if _separate(
                task, assignee, props.get("self_approval") or policy.self_approval, policy
            ):
                skipped.append(task)
        if props.get("due"):
            duration = workflow.script_engine.evaluate(task, props["due"])
            parsed = TimerEventDefinition.parse_iso_duration(str(duration))
            delta = TimerEventDefinition.get_timedelta_from_start(parsed, now)
            task.internal_data["due_at"] = (now + delta).isoformat()
    return skipped


def _separate(task: Any, assignee: int | None, rule: Any, policy: Policy) -> bool:
    """Apply the separation of duties to one task; return True when it is to be skipped."""
    task.internal_data["assignee"] = assignee
    if policy.submitter is None or rule == "allow":
        return False
    task.internal_data["excluded"] = policy.submitter
    if assignee != policy.submitter:
        return False
    if rule == "skip":
        return True
    task.internal_data["assignee"] = None  # escalate: to the others of the role
    role = escalation_role(rule)
    if role:
        task.internal_data["role"] = role
    return False


def escalation_role(rule: Any) -> str | None:
    """Return the role a rule escalates to (`{"escalate": role}` or "escalate:role")."""
    if isinstance(rule, Mapping) and rule.get("escalate"):
        return str(rule["escalate"])
    if isinstance(rule, str) and rule.startswith("escalate:") and rule[9:].strip():
        return rule[9:].strip()
    return None


def rule_problem(rule: Any) -> str | None:
    """Return what is wrong with a `self_approval` rule (None: it is fine)."""
    if rule in RULES or escalation_role(rule):
        return None
    return f"self_approval must be one of {', '.join(RULES)} or 'escalate:<role>', not {rule!r}"


def _user_id(session: Session, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        found = session.scalar(sa.select(User.id).where(User.username == value))
        if found is None:
            raise ValueError(f"the assignee '{value}' is not a user")
        return int(found)
    raise ValueError(f"an assignee must be a user id or a user name, not {value!r}")
