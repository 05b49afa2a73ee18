"""Schema migrations: recorded operations, the autodetector that finds them, the executor.

A change of entity definitions becomes a list of operations (DESIGN.md, decision 5), stored as
JSON and applied with Alembic's `Operations` inside the caller's transaction; a step that would
lose data runs only when confirmed.
"""

from formwork.runtime.migrations.autodetector import describe_plan, detect, detect_fields
from formwork.runtime.migrations.context import OperationContext, build_context
from formwork.runtime.migrations.errors import IrreversibleOperation, MigrationError
from formwork.runtime.migrations.executor import apply_operations, plan_losses, revert_operations
from formwork.runtime.migrations.operations import (
    OPERATIONS,
    AddCompositeIndex,
    AddField,
    AddIndex,
    AlterField,
    CreateEntity,
    DropEntity,
    Operation,
    RemoveCompositeIndex,
    RemoveField,
    RemoveIndex,
    RenameEntity,
    RenameField,
)

__all__ = [
    "OPERATIONS",
    "AddCompositeIndex",
    "AddField",
    "AddIndex",
    "AlterField",
    "CreateEntity",
    "DropEntity",
    "IrreversibleOperation",
    "MigrationError",
    "Operation",
    "OperationContext",
    "RemoveCompositeIndex",
    "RemoveField",
    "RemoveIndex",
    "RenameEntity",
    "RenameField",
    "apply_operations",
    "build_context",
    "describe_plan",
    "detect",
    "detect_fields",
    "plan_losses",
    "revert_operations",
]
