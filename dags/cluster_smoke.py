"""Checks that the cluster works end to end: 24 mapped tasks spread over the workers.

Each task reports the host it ran on, so a run shows which workers took part. The tests
trigger it after every deploy; it is safe to run any time (it reads and writes nothing).
"""

from __future__ import annotations

import logging
import socket
import time

import pendulum
from airflow.sdk import dag, task

TASKS = 24
log = logging.getLogger(__name__)


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["cluster", "smoke"],
    doc_md=__doc__,
)
def cluster_smoke() -> None:
    @task
    def numbers() -> list[int]:
        return list(range(TASKS))

    @task(retries=2)
    def where_am_i(number: int) -> dict[str, object]:
        # Long enough that one worker cannot drain the queue before the other starts.
        time.sleep(1)
        host = socket.getfqdn()
        # Logged, not printed: stdout is buffered and lands after the task in the log.
        log.info("task %d running on %s", number, host)
        return {"number": number, "host": host}

    @task
    def summary(results: list[dict[str, object]]) -> dict[str, int]:
        hosts: dict[str, int] = {}
        for result in results:
            host = str(result["host"])
            hosts[host] = hosts.get(host, 0) + 1
        log.info("%d tasks ran on %d host(s): %s", len(results), len(hosts), hosts)
        return hosts

    summary(where_am_i.expand(number=numbers()))


cluster_smoke()
