"""Lose workers under a load of retrying tasks: every task instance still ends in success,
and the tasks the lost worker held run again elsewhere.

- One worker's main process is killed (`kill -9`; systemd starts it again) while the
  other worker is cut off the network; the cut-off worker is plugged back in once its
  tasks run elsewhere, and must take tasks again.
- A worker's host is killed (power cut), then started again.

The recovery time recorded is from the fault to the end of the last task instance the
lost worker held (.lab/measurements.jsonl); it is measured, never asserted.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import pytest

from clusterops.cluster import AirflowAPI, Flower, wait_for
from clusterops.lab.hosts import LabSpec

from .conftest import lab_host
from .faults import Load, consuming, durations, host_lost, network_cut, record, tries

pytestmark = pytest.mark.lab

# Two workers of 8 slots run all 12 at once, about 6 each.
TASKS = 12


@pytest.fixture(scope="module")
def workers(lab: LabSpec) -> list[str]:
    names = lab.group("airflow_worker")
    if len(names) < 2:  # the lost worker's tasks need another worker
        pytest.skip("the lab has fewer than 2 workers")
    return names[:2]


def held_by(holds: list[dict[str, Any]], names: list[str]) -> dict[str, set[int]] | None:
    """The map indexes each worker of `names` runs, once every one of them runs some."""
    found = {name: set[int]() for name in names}
    for ti in holds:
        if ti.get("state") == "running" and ti.get("hostname") in found:
            found[ti["hostname"]].add(int(ti["map_index"]))
    return found if all(found.values()) else None


def spread(load: Load, names: list[str]) -> dict[str, set[int]]:
    held = wait_for(
        f"tasks running on {' and '.join(names)}",
        lambda: held_by(load.holds(), names),
        timeout=120,
    )
    for name, indexes in held.items():
        print(f"    {name} runs map indexes {sorted(indexes)}")
    return held


def retried(load: Load, indexes: set[int]) -> bool | None:
    """True once every task instance of `indexes` is on its second try or later."""
    holds = {int(ti["map_index"]): ti for ti in load.holds()}
    return True if all(int(holds[i]["try_number"]) >= 2 for i in indexes) else None


def done_after(holds: list[dict[str, Any]], indexes: set[int], fault: float) -> float:
    """Seconds from the fault (time.time()) to the end of the last of `indexes`."""
    ends = [
        datetime.fromisoformat(ti["end_date"]).timestamp()
        for ti in holds
        if int(ti["map_index"]) in indexes
    ]
    return round(max(ends) - fault, 1)


def back_and_consuming(flower: Flower, names: list[str]) -> None:
    def alive() -> bool | None:
        answers = flower.alive()
        return True if all(answers.get(f"celery@{name}") for name in names) else None

    wait_for(f"{', '.join(names)} to answer through Flower", alive, timeout=180)
    wait_for(f"{', '.join(names)} to consume 'default'", lambda: consuming(flower, names), 60)


def check_every_task_succeeded(state: str, holds: list[dict[str, Any]], lost: set[int]) -> None:
    assert state == "success", holds
    assert {ti["state"] for ti in holds} == {"success"}, holds
    assert len(holds) == TASKS
    by_index = {int(ti["map_index"]): ti for ti in holds}
    # The fault did hit them: each lost task instance had to run again.
    assert all(int(by_index[i]["try_number"]) >= 2 for i in lost), tries(holds)


def test_worker_process_killed_while_another_is_cut_off(
    lab: LabSpec, workers: list[str], api: AirflowAPI, flower: Flower
) -> None:
    killed_on, cut_on = workers
    load = Load(api, tasks=TASKS)
    load.start(at_least=TASKS)
    held = spread(load, workers)
    worker = lab_host(lab, killed_on)

    with network_cut(lab, cut_on):
        cut = time.time()
        with worker.sudo():
            worker.check_output("systemctl kill --kill-whom=main --signal=KILL airflow-worker")
        killed = time.time()
        # Plugged back in only once the scheduler gave up on its tasks and ran them again.
        wait_for(f"the tasks of {cut_on} to run again", lambda: retried(load, held[cut_on]), 300)
    state, holds = load.finish()

    check_every_task_succeeded(state, holds, held[killed_on] | held[cut_on])
    back_and_consuming(flower, workers)
    record(
        "worker_process_killed_other_cut_off",
        process_killed_tasks_done_seconds=done_after(holds, held[killed_on], killed),
        cut_off_tasks_done_seconds=done_after(holds, held[cut_on], cut),
        slowest_task_seconds=round(max(durations(holds)), 1),
        tasks=TASKS,
        task_seconds=load.seconds,
        tries=str(tries(holds)),
    )


def test_worker_host_killed(
    lab: LabSpec, workers: list[str], api: AirflowAPI, flower: Flower
) -> None:
    victim = workers[0]
    load = Load(api, tasks=TASKS)
    load.start(at_least=TASKS)
    held = spread(load, workers)

    with host_lost(lab, victim):
        killed = time.time()
        state, holds = load.finish()

    check_every_task_succeeded(state, holds, held[victim])
    back_and_consuming(flower, workers)
    record(
        "worker_host_killed",
        lost_tasks_done_seconds=done_after(holds, held[victim], killed),
        tasks=TASKS,
        task_seconds=load.seconds,
        tries=str(tries(holds)),
    )
