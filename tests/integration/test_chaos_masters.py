"""Lose the master that holds the virtual IP, under a load of retrying tasks.

The other master takes the address over (keepalived), so the UI and the REST API answer
again on it; its scheduler goes on and adopts what the lost one had queued; its DAG
processor takes the lock over if the lost master held it; every task instance ends in
success. Started again, the lost master rejoins without taking the address back.

Times are measured from the kill, never asserted (.lab/measurements.jsonl).
"""

from __future__ import annotations

import time

import pytest

from clusterops.cluster import AirflowAPI, wait_for
from clusterops.lab.hosts import LabSpec
from clusterops.layout import LAYOUT

from .conftest import SMOKE_DAG, lab_host
from .faults import Load, host_lost, record, tries
from .masters import health_answers, parsing, vip_holders

pytestmark = pytest.mark.lab

TASKS = 12


def test_vip_holder_killed_under_load(
    lab: LabSpec, masters: list[str], vip: str, api: AirflowAPI
) -> None:
    [holder] = wait_for("one holder of the virtual IP", lambda: vip_holders(lab, vip) or None, 60)
    survivor = next(name for name in masters if name != holder)
    had_lock = parsing(lab, [holder]) == [holder]
    print(f"    {holder} holds the virtual IP{' and the DAG processor lock' if had_lock else ''}")
    vip_url = f"http://{vip}:{LAYOUT.api_port}"
    load = Load(api, tasks=TASKS)
    load.start(at_least=TASKS)

    with host_lost(lab, holder) as killed:
        wait_for("the API on the virtual IP", lambda: health_answers(vip_url), 90, interval=0.5)
        vip_back = time.monotonic() - killed
        assert vip_holders(lab, vip, [survivor]) == [survivor]  # the lost one is down
        wait_for(
            f"the DAG processor on {survivor}",
            lambda: parsing(lab, [survivor]) or None,
            timeout=120,
        )
        dag_processor = time.monotonic() - killed
        state, holds = load.finish()
        run_seconds = time.monotonic() - load.started
        # New work while one master is down: scheduled and run by the survivor.
        smoke = api.trigger(SMOKE_DAG)
        smoke_state = api.wait_for_run(SMOKE_DAG, smoke, timeout=300)["state"]

    assert state == "success", holds
    assert {ti["state"] for ti in holds} == {"success"}, holds
    assert smoke_state == "success"

    def rejoined() -> bool | None:
        host = lab_host(lab, holder)
        units = [f"airflow-{unit}" for unit in ("api-server", "scheduler", "dag-processor")]
        return True if all(host.service(unit).is_running for unit in units) else None

    wait_for(f"{holder}'s services to run again", rejoined, timeout=300)
    wait_for(f"{holder}'s API server", lambda: health_answers(api_url(lab, holder)), 180)
    # nopreempt: the address stays where it went; one parser still.
    assert vip_holders(lab, vip) == [survivor]
    assert parsing(lab, masters) == [survivor]
    record(
        "vip_holder_killed",
        vip_answers_again_seconds=round(vip_back, 1),
        dag_processor_on_survivor_seconds=round(dag_processor, 1),
        survivor_had_to_take_the_lock=str(had_lock),
        run_seconds=round(run_seconds, 1),
        added_to_run_seconds=round(run_seconds - load.seconds, 1),
        tries=str(tries(holds)),
    )


def api_url(lab: LabSpec, name: str) -> str:
    return f"http://{lab.host(name).address}:{LAYOUT.api_port}"
