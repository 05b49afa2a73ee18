"""Keep a step's cost flat: cut the finished past off the top of a long task tree.

SpiffWorkflow keeps every task it ever ran; in a process that loops (返工, resubmission) the
tree grows with each round, and loading, running and saving grow with it. When the part of
the tree that all open tasks share lies deeper than ``KEEP`` levels, the finished tasks above
that margin are dropped and the tree is re-rooted. The history stays in ``fw_wf_history``
and ``fw_wf_tasks``; only a return (退回) to a step older than the margin becomes impossible.
"""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

KEEP = 40
_FINISHED = TaskState.COMPLETED | TaskState.CANCELLED | TaskState.ERROR


def compact(workflow: BpmnWorkflow, keep: int = KEEP) -> int:
    """Drop finished tasks more than `keep` levels above the open ones; return how many."""
    root = workflow.task_tree
    open_tasks = [t for t in workflow.tasks.values() if not t.state & _FINISHED]
    if not open_tasks:
        return 0
    path = _path(open_tasks[0])  # root first
    index = {task.id: depth for depth, task in enumerate(path)}
    shared = len(path) - 1
    for task in open_tasks[1:]:
        shared = min(shared, _meet(task, index))
    cut = shared - keep
    if cut <= 1:
        return 0
    new_top = path[cut]
    dropped = _drop_above(workflow, root, new_top)
    root._children = [new_top.id]
    new_top._parent = root.id
    if workflow.last_task is not None and workflow.last_task.id not in workflow.tasks:
        workflow.last_task = new_top
    return dropped


def _path(task: Any) -> list[Any]:
    chain = []
    while task is not None:
        chain.append(task)
        task = task.parent
    return chain[::-1]


def _meet(task: Any, index: dict[Any, int]) -> int:
    while task is not None:
        if task.id in index:
            return index[task.id]
        task = task.parent
    return 0


def _drop_above(workflow: BpmnWorkflow, root: Any, new_top: Any) -> int:
    """Remove every task between the root and `new_top`, with their finished side branches."""
    keep_ids = {new_top.id}
    stack = [workflow.tasks[child] for child in root._children if child in workflow.tasks]
    dropped = 0
    while stack:
        task = stack.pop()
        if task.id in keep_ids:
            continue
        stack.extend(workflow.tasks[c] for c in task._children if c in workflow.tasks)
        del workflow.tasks[task.id]
        workflow.subprocesses.pop(task.id, None)
        dropped += 1
    return dropped
