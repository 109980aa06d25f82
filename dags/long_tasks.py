"""Tasks that take a while: for checking that removing a worker loses no task.

Trigger with the conf {"tasks": 6, "seconds": 60}, then take a busy worker out with
`scripts/remove_worker.py NAME`: every task should end in success on its first try.
The tasks never retry, so a task killed or lost along the way shows up as failed.
"""

from __future__ import annotations

import logging
import socket
import time

import pendulum
from airflow.sdk import Param, dag, task

log = logging.getLogger(__name__)


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_tasks=64,
    params={
        "tasks": Param(6, type="integer", minimum=1, maximum=200),
        "seconds": Param(60, type="integer", minimum=1, maximum=3600),
    },
    tags=["cluster", "operations"],
    doc_md=__doc__,
)
def long_tasks() -> None:
    @task
    def plan(params: dict[str, int] | None = None) -> list[int]:
        values = params or {}
        return [int(values.get("seconds", 60))] * int(values.get("tasks", 6))

    @task(retries=0)
    def hold(seconds: int) -> str:
        host = socket.getfqdn()
        log.info("holding for %d s on %s", seconds, host)
        time.sleep(seconds)
        log.info("done after %d s on %s", seconds, host)
        return host

    hold.expand(seconds=plan())


long_tasks()
