"""A timer date written without an offset means the company's time (the kernel clock's
zone, Asia/Shanghai by default), not the server's."""

from __future__ import annotations

import datetime as dt

import pytest

from formwork.runtime.security import system_principal
from formwork.runtime.workflow.deploy import deploy
from tests.workflow.support import instance, service_for

pytestmark = pytest.mark.dates

AT_DATE = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="d" targetNamespace="x">
  <bpmn:process id="at_date" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:intermediateCatchEvent id="wait">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:timerEventDefinition id="t">
        <bpmn:timeDate xsi:type="bpmn:tFormalExpression">meeting</bpmn:timeDate>
      </bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="wait" />
    <bpmn:sequenceFlow id="f2" sourceRef="wait" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>"""


def test_a_date_without_an_offset_is_the_companys_time(app, session, people, clock):
    deploy(session, AT_DATE, principal=system_principal())
    session.commit()
    beijing = clock.local_now().replace(tzinfo=None, microsecond=0) + dt.timedelta(hours=1)
    started = service_for(app, session).start("at_date", {"meeting": beijing.isoformat()})
    session.commit()
    due = instance(session, started.id).timer_due_at
    expected = clock.now().replace(microsecond=0) + dt.timedelta(hours=1)
    assert due.replace(tzinfo=due.tzinfo or dt.UTC) == expected  # not 8 hours later
