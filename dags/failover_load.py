"""Load for fault tests: many tasks that each hold a slot for a while and may retry.

Trigger with the conf {"tasks": 16, "seconds": 45}: the tasks spread over the workers and
run while the test breaks something (a database primary's host, a Redis master's host).
Each task only sleeps and reports where it ran, so running one twice is harmless. A task
that fails for lack of the database or the broker is retried (retries=2), so the run
still succeeds; the tests read each task instance's try number to see whether it had to.
"""

from __future__ import annotations

import logging
import socket
import time
from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, task

log = logging.getLogger(__name__)


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_tasks=64,
    params={
        "tasks": Param(16, type="integer", minimum=1, maximum=200),
        "seconds": Param(45, type="integer", minimum=1, maximum=3600),
    },
    tags=["cluster", "faults"],
    doc_md=__doc__,
)
def failover_load() -> None:
    @task
    def plan(params: dict[str, int] | None = None) -> list[int]:
        values = params or {}
        return [int(values.get("seconds", 45))] * int(values.get("tasks", 16))

    @task(retries=2, retry_delay=timedelta(seconds=10))
    def hold(seconds: int) -> str:
        host = socket.getfqdn()
        log.info("holding for %d s on %s", seconds, host)
        time.sleep(seconds)
        return host

    hold.expand(seconds=plan())


failover_load()
