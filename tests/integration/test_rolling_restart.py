"""Every Airflow service restarted under load (`playbooks/restart.yml`, the same rolling
plays a deploy runs after a change that needs a restart): the masters one at a time, each
out of HAProxy meanwhile, and the workers one at a time, each drained by its warm shutdown.
The UI and the REST API answer on the virtual IP all along, some worker consumes all along,
and no task instance fails.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from clusterops import runner
from clusterops.cluster import AirflowAPI
from clusterops.lab.hosts import LabSpec
from clusterops.layout import LAYOUT
from clusterops.paths import LAB_INVENTORY

from .conftest import lab_host
from .faults import Load, record, tries
from .masters import health_answers

pytestmark = pytest.mark.lab


@contextmanager
def watched(url: str) -> Iterator[list[float]]:
    """Poll the health endpoint at `url` every 0.5 s while the block runs; yields the
    list that collects the length of each stretch (s) in which it did not answer."""
    gaps: list[float] = []
    stop = threading.Event()

    def poll() -> None:
        down_since: float | None = None
        while not stop.wait(0.5):
            now = time.monotonic()
            if health_answers(url):
                if down_since is not None:
                    gaps.append(now - down_since)
                    down_since = None
            elif down_since is None:
                down_since = now
        if down_since is not None:
            gaps.append(time.monotonic() - down_since)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield gaps
    finally:
        stop.set()
        thread.join(timeout=10)


def restarts(lab: LabSpec, name: str, unit: str, since: float) -> list[tuple[float, float]]:
    """Each (stopping, started) pair of `unit` on host `name` since `since` (epoch s),
    from what systemd itself (PID 1) wrote about the unit in the journal."""
    host = lab_host(lab, name)
    with host.sudo():
        lines = host.check_output(
            f"journalctl -u {unit} -o json --no-pager --since @{int(since)}"
        ).splitlines()
    pairs: list[tuple[float, float]] = []
    stopping: float | None = None
    for entry in map(json.loads, lines):
        if entry.get("_PID") != "1":
            continue  # the service's own output
        text, at = str(entry.get("MESSAGE", "")), int(entry["__REALTIME_TIMESTAMP"]) / 1e6
        if text.startswith("Stopping") and stopping is None:
            stopping = at
        elif text.startswith("Started") and stopping is not None:
            pairs.append((stopping, at))
            stopping = None
    return pairs


def overlaps(spans: dict[str, list[tuple[float, float]]]) -> list[tuple[str, str]]:
    """Pairs of hosts whose restarts overlapped in time."""
    found = []
    names = sorted(spans)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            for a in spans[first]:
                for b in spans[second]:
                    if a[0] < b[1] and b[0] < a[1]:
                        found.append((first, second))
    return found


def test_forced_restart_rolls_through_masters_and_workers(
    lab: LabSpec, masters: list[str], vip: str, api: AirflowAPI
) -> None:
    workers = lab.group("airflow_worker")
    load = Load(api, tasks=8, seconds=30)
    load.start(at_least=8)
    since = time.time() - 1
    started = time.monotonic()
    with watched(f"http://{vip}:{LAYOUT.api_port}") as gaps:
        runner.run_playbook(LAB_INVENTORY, "playbooks/restart.yml", quiet=True)
    deploy = time.monotonic() - started
    state, holds = load.finish()

    master_spans = {m: restarts(lab, m, "airflow-api-server", since) for m in masters}
    worker_spans = {w: restarts(lab, w, "airflow-worker", since) for w in workers}
    assert all(master_spans.values()), master_spans  # every master did restart
    assert all(worker_spans.values()), worker_spans
    assert overlaps(master_spans) == [], master_spans
    assert overlaps(worker_spans) == [], worker_spans
    assert gaps == [], f"the API on the virtual IP did not answer for {gaps} s"
    assert state == "success", holds
    assert {ti["state"] for ti in holds} == {"success"}, holds
    record(
        "rolling_restart",
        deploy_seconds=round(deploy, 1),
        master_restart_seconds=str(
            {m: round(b - a, 1) for m, spans in master_spans.items() for a, b in spans}
        ),
        worker_restart_seconds=str(
            {w: round(b - a, 1) for w, spans in worker_spans.items() for a, b in spans}
        ),
        tries=str(tries(holds)),
    )
