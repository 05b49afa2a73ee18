"""The one place that reaches into SpiffWorkflow's internals, pinned to the version it knows.

- Spiff's timer events read the wall clock (`datetime.now(timezone.utc)` inside
  `SpiffWorkflow.bpmn.specs.event_definitions.timer`). A step must see the kernel's clock,
  so that module's `datetime` is replaced by a subclass whose `now()` answers the moment of
  the step being run (a context variable; outside a step, the wall).
- The state serializer's encoder mode is a flag on Spiff's shared registry.

`tests/workflow/test_spiff_adapter.py` pins both behaviours; upgrading SpiffWorkflow means
re-reading this module and those tests.
"""

from __future__ import annotations

import contextvars
import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from typing import Any

from SpiffWorkflow.bpmn.specs.event_definitions import timer as _timer

SUPPORTED = ("3.2.0",)
SPIFF_VERSION = version("SpiffWorkflow")
if SPIFF_VERSION not in SUPPORTED:  # pragma: no cover  (caught by the suite after an upgrade)
    raise ImportError(
        f"formwork.runtime.workflow.spiff knows SpiffWorkflow {', '.join(SUPPORTED)}, "
        f"not {SPIFF_VERSION}: re-check the adapter before upgrading"
    )

_STEP_NOW: contextvars.ContextVar[dt.datetime | None] = contextvars.ContextVar(
    "formwork_step_now", default=None
)


class _StepDatetime(dt.datetime):
    """`datetime` whose `now()` is the moment of the step being run."""

    @classmethod
    def now(cls, tz: dt.tzinfo | None = None) -> Any:  # type: ignore[override]
        """Return the step's moment (in `tz`), or the wall's outside a step."""
        moment = _STEP_NOW.get()
        if moment is None:
            return dt.datetime.now(tz)
        return moment.astimezone(tz) if tz is not None else moment.astimezone().replace(tzinfo=None)


_timer.datetime = _StepDatetime  # type: ignore[misc]


@contextmanager
def step_moment(moment: dt.datetime) -> Iterator[None]:
    """Let Spiff's timers read `moment` as now while the block runs."""
    token = _STEP_NOW.set(moment)
    try:
        yield
    finally:
        _STEP_NOW.reset(token)


@contextmanager
def encoder_mode(registry: Any) -> Iterator[None]:
    """Put Spiff's serializer registry in encoder mode (its task converter relies on it to
    leave data deltas for the JSON encoder); the caller holds the serializer's lock."""
    registry._encoder_mode = True
    try:
        yield
    finally:
        registry._encoder_mode = False
