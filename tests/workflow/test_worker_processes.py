"""Two `formwork worker --once` processes against one PostgreSQL database fire each due
timer exactly once: an instance is claimed (FOR UPDATE SKIP LOCKED) and fired in the same
transaction, so the claim holds until the step commits."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from formwork.runtime.workflow.models import HistoryEntry
from tests.workflow.support import deploy_file, service_for

pytestmark = pytest.mark.dates
INSTANCES = 40


def test_two_worker_processes_fire_each_timer_once(app, session, people, clock, tmp_path):
    url = os.environ.get("FORMWORK_TEST_DATABASE_URL", "")
    if not url.startswith("postgresql"):
        pytest.skip("several workers need PostgreSQL (SQLite runs one worker)")
    deploy_file(session, "subprocess.bpmn")
    boss = service_for(app, session)
    ids = []
    for _ in range(INSTANCES):
        ids.append(boss.start("sub_flow", {}).id)
        session.commit()
    moment = clock.now() + dt.timedelta(minutes=61)  # each instance's first timer is due
    workers = [_worker(url, moment, tmp_path / f"w{n}") for n in range(2)]
    for worker in workers:
        out, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err.decode()
    session.rollback()
    fired = dict(
        session.execute(
            sa.select(HistoryEntry.instance_id, sa.func.count())
            .where(HistoryEntry.action == "timer")
            .group_by(HistoryEntry.instance_id)
        ).all()
    )
    assert fired == {iid: 1 for iid in ids}


def _worker(url: str, moment: dt.datetime, folder: Path) -> Any:
    folder.mkdir()
    env = {
        **os.environ,
        "FORMWORK_DATABASE_URL": url,
        "FORMWORK_CLOCK": moment.isoformat(),
        "FORMWORK_INSTANCE_PATH": str(folder),
        "FORMWORK_SECRET_KEY": "test",
    }
    command = [sys.executable, "-c", "from formwork.cli import main; main()", "worker", "--once"]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
