"""The escape suite: what SpiffWorkflow would eval/exec is refused at deploy and at run time."""

from __future__ import annotations

from pathlib import Path

import pytest
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from formwork.runtime.errors import PermissionDenied, ValidationFailed
from formwork.runtime.expressions import ExpressionError
from formwork.runtime.security import Principal, system_principal
from formwork.runtime.workflow.deploy import deploy, parse_process
from formwork.runtime.workflow.engine import SafeEnvironment, SafeScriptEngine, StateSerializer
from formwork.runtime.workflow.models import ProcessDefinition
from tests.workflow.conftest import source

ESCAPES = [
    "().__class__.__base__.__subclasses__()",
    "__import__('os').system('touch /tmp/fw_pwned')",
    "open('/etc/passwd').read()",
    "[c for c in ().__class__.__mro__]",
    "getattr(amount, '__class__')",
    "(lambda: 1)()",
]

HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
  id="d" targetNamespace="http://formwork.dev/bpmn">
  <bpmn:process id="p" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
"""
TAIL = """
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="x" />
    <bpmn:sequenceFlow id="f2" sourceRef="x" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
"""


def process(element: str) -> str:
    return HEAD + element + TAIL


def script_task(script: str) -> str:
    return process(
        f'<bpmn:scriptTask id="x" name="Calc"><bpmn:incoming>f1</bpmn:incoming>'
        f"<bpmn:outgoing>f2</bpmn:outgoing><bpmn:script>{_xml(script)}</bpmn:script></bpmn:scriptTask>"
    )


def gateway(condition: str) -> str:
    return (
        HEAD
        + f"""
    <bpmn:exclusiveGateway id="x" name="Route" default="f2"><bpmn:incoming>f1</bpmn:incoming>
      <bpmn:outgoing>f2</bpmn:outgoing><bpmn:outgoing>f3</bpmn:outgoing></bpmn:exclusiveGateway>
    <bpmn:endEvent id="end2"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f3" sourceRef="x" targetRef="end2">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{_xml(condition)}
      </bpmn:conditionExpression>
    </bpmn:sequenceFlow>"""
        + TAIL
    )


def timer(expression: str) -> str:
    return process(
        f'<bpmn:intermediateCatchEvent id="x" name="Wait"><bpmn:incoming>f1</bpmn:incoming>'
        f'<bpmn:outgoing>f2</bpmn:outgoing><bpmn:timerEventDefinition id="t">'
        f'<bpmn:timeDuration xsi:type="bpmn:tFormalExpression">{_xml(expression)}'
        f"</bpmn:timeDuration>"
        f"</bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>"
    )


def multi_instance(cardinality: str) -> str:
    return process(
        f'<bpmn:userTask id="x" name="Sign"><bpmn:incoming>f1</bpmn:incoming>'
        f"<bpmn:outgoing>f2</bpmn:outgoing><bpmn:multiInstanceLoopCharacteristics>"
        f"<bpmn:loopCardinality>{_xml(cardinality)}</bpmn:loopCardinality>"
        f"</bpmn:multiInstanceLoopCharacteristics></bpmn:userTask>"
    )


def service_param(value: str) -> str:
    return process(
        f'<bpmn:serviceTask id="x" name="Svc"><bpmn:extensionElements>'
        f'<spiffworkflow:serviceTaskOperator id="notify"><spiffworkflow:parameters>'
        f'<spiffworkflow:parameter id="subject" type="str" value="{_xml(value, attr=True)}" />'
        f"</spiffworkflow:parameters></spiffworkflow:serviceTaskOperator></bpmn:extensionElements>"
        f"<bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:serviceTask>"
    )


def prescript(script: str) -> str:
    return process(
        f'<bpmn:userTask id="x" name="Review"><bpmn:extensionElements>'
        f"<spiffworkflow:preScript>{_xml(script)}</spiffworkflow:preScript></bpmn:extensionElements>"
        f"<bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>"
    )


def assignee(expression: str) -> str:
    return process(
        f'<bpmn:userTask id="x" name="Review"><bpmn:extensionElements><spiffworkflow:properties>'
        f'<spiffworkflow:property name="assignee" value="{_xml(expression, attr=True)}" />'
        f"</spiffworkflow:properties></bpmn:extensionElements>"
        f"<bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>"
    )


def _xml(text: str, attr: bool = False) -> str:
    out = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return out.replace('"', "&quot;") if attr else out


def dmn_with(cell: str, output: str = "true") -> str:
    dmn = source("routing.dmn")
    dmn = dmn.replace("&gt;= 100000", _xml(cell))
    return dmn.replace(
        '<outputEntry id="large_out"><text>true</text>',
        f'<outputEntry id="large_out"><text>{_xml(output)}</text>',
    )


BUILDERS = {
    "script": script_task,
    "gateway": gateway,
    "timer": timer,
    "cardinality": multi_instance,
    "service": service_param,
    "prescript": lambda e: prescript(f"y = {e}"),
    "assignee": assignee,
}


@pytest.mark.parametrize("kind", sorted(BUILDERS))
@pytest.mark.parametrize("escape", ESCAPES)
def test_escapes_are_refused_at_deploy_naming_the_element(kind, escape):
    text = BUILDERS[kind](escape if kind != "script" else f"y = {escape}")
    with pytest.raises(ValidationFailed) as caught:
        parse_process(text)
    message = str(caught.value)
    assert "'x'" in message and "line" in message
    assert not Path("/tmp/fw_pwned").exists()


@pytest.mark.parametrize(
    "script",
    [
        "import os",
        "exec('1')",
        "x = 1; y = 2",
        "for i in range(3): pass",
        "x += 1",
        "def f(): pass",
    ],
)
def test_scripts_must_be_name_equals_expression_lines(script):
    with pytest.raises(ValidationFailed, match="element 'x' \\(Calc\\)"):
        parse_process(script_task(script))


@pytest.mark.parametrize("cell", ["< __import__('os').getpid()", "().__class__", "? < open('x')"])
def test_dmn_cells_and_outputs_are_checked(cell):
    with pytest.raises(ValidationFailed, match="DMN cell"):
        parse_process(source("ccb_change.bpmn"), [dmn_with(cell)])
    with pytest.raises(ValidationFailed, match="DMN output"):
        parse_process(source("ccb_change.bpmn"), [dmn_with(">= 100000", cell.lstrip("<? "))])


def test_doctype_and_entities_are_refused():
    xxe = source("ccb_change.bpmn").replace(
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY e SYSTEM "file:///etc/passwd">]>',
    )
    with pytest.raises(ValidationFailed, match="DOCTYPE"):
        parse_process(xxe)
    with pytest.raises(ValidationFailed, match="DOCTYPE"):
        parse_process(source("ccb_change.bpmn"), ["<!DOCTYPE x><x/>"])


def test_parse_errors_name_the_line_and_element():
    with pytest.raises(ValidationFailed, match="line 3"):
        parse_process('<?xml version="1.0"?>\n<a>\n<b></a>')
    broken = source("ccb_change.bpmn").replace('targetRef="cost_review"', 'targetRef="nowhere"')
    with pytest.raises(ValidationFailed) as caught:
        parse_process(broken, [source("routing.dmn")])
    assert "nowhere" in str(caught.value) or "f_to_cost" in str(caught.value)
    with pytest.raises(ValidationFailed, match="element 'route', line 41: No DMN"):
        parse_process(source("ccb_change.bpmn"))
    xsd = source("ccb_change.bpmn").replace(
        "<bpmn:incoming>f_start</bpmn:incoming>", "<bpmn:bogus/>", 1
    )
    with pytest.raises(ValidationFailed, match="line"):
        parse_process(xsd)


def test_the_engine_refuses_escapes_at_run_time_too():
    """A spec that bypassed the deploy check still cannot escape: the engine is the evaluator."""
    env = SafeEnvironment()
    for escape in ESCAPES:
        with pytest.raises(ExpressionError):
            env.evaluate(escape, {"amount": 1})
    with pytest.raises(ExpressionError):
        env.execute("import os", {})
    parsed = parse_process(script_task("y = 1"))
    parsed.spec.task_specs["x"].script = "y = ().__class__.__base__.__subclasses__()"
    workflow = BpmnWorkflow(parsed.spec, script_engine=SafeScriptEngine())
    with pytest.raises(Exception, match="not allowed"):
        workflow.do_engine_steps()


def test_a_restored_workflow_gets_the_safe_engine_back():
    parsed = parse_process(timer("'PT1H'"))
    serializer = StateSerializer()
    workflow = BpmnWorkflow(parsed.spec, script_engine=SafeScriptEngine())
    workflow.do_engine_steps()
    engine = SafeScriptEngine()
    restored = serializer.load(serializer.dump(workflow), parsed.spec, {}, engine)
    assert restored.script_engine is engine
    assert restored.get_tasks(state=TaskState.WAITING)


def test_deploy_is_versioned_and_idempotent(session, app):
    admin = system_principal()
    first, created = deploy(
        session, source("ccb_change.bpmn"), [source("routing.dmn")], principal=admin
    )
    again, created_again = deploy(
        session, source("ccb_change.bpmn"), [source("routing.dmn")], principal=admin
    )
    assert created and not created_again and again.id == first.id
    changed = source("ccb_change.bpmn").replace("现场工程师审核", "现场审核")
    second, created = deploy(session, changed, [source("routing.dmn")], principal=admin)
    assert created and (first.version, second.version) == (1, 2)
    assert session.query(ProcessDefinition).count() == 2
    with pytest.raises(PermissionDenied):
        deploy(session, changed, principal=Principal(5, "clerk", frozenset({"clerk"})))
