"""The SpiffWorkflow adapter: timers read the step's moment, not the wall (pinned, because it
replaces a name inside Spiff's timer module)."""

from __future__ import annotations

import datetime as dt

from SpiffWorkflow.bpmn.specs.event_definitions import timer

from formwork.runtime.workflow.spiff import SPIFF_VERSION, step_moment


def test_spiff_timers_see_the_step_moment_inside_a_step_only() -> None:
    assert SPIFF_VERSION == "3.2.0"
    moment = dt.datetime(2030, 1, 2, 3, 4, tzinfo=dt.UTC)
    with step_moment(moment):
        assert timer.datetime.now(dt.UTC) == moment
        delta = timer.TimerEventDefinition.get_timedelta_from_start({"hours": 2})
        assert delta == dt.timedelta(hours=2)
    outside = timer.datetime.now(dt.UTC)
    assert abs(outside - dt.datetime.now(dt.UTC)) < dt.timedelta(seconds=5)
    # the module still parses what Spiff stores
    assert timer.TimerEventDefinition.get_datetime("2030-01-02T03:04:00+00:00") == moment
