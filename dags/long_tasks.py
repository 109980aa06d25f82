"""Tasks that only hold a worker slot for a while, for the operations and fault tests.

- `long_tasks`: never retried, so a task killed or lost along the way shows up as failed.
  Trigger with the conf {"tasks": 6, "seconds": 60}, then take a busy worker out with
  `scripts/remove_worker.py NAME`: every task should end in success on its first try.
- `failover_load`: retried (retries=2). Trigger with the conf {"tasks": 16, "seconds": 45}:
  the tasks spread over the workers and run while a test breaks something (a database
  primary's host, a Redis master's host). A task that fails for lack of the database or
  the broker is retried, so the run still succeeds; the tests read each task instance's
  try number to see whether it had to.

Each task only sleeps and reports where it ran, so running one twice is harmless.
"""

from __future__ import annotations

import logging
import socket
import time
from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param, dag, task

log = logging.getLogger(__name__)


def holding_tasks(dag_id: str, tasks: int, seconds: int, retries: int, tag: str) -> DAG:
    """A DAG of `tasks` mapped tasks that sleep `seconds` (both overridable by conf)."""

    @dag(
        dag_id=dag_id,
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        max_active_tasks=64,
        params={
            "tasks": Param(tasks, type="integer", minimum=1, maximum=200),
            "seconds": Param(seconds, type="integer", minimum=1, maximum=3600),
        },
        tags=["cluster", tag],
        doc_md=__doc__,
    )
    def holding() -> None:
        @task
        def plan(params: dict[str, int] | None = None) -> list[int]:
            values = params or {}
            return [int(values.get("seconds", seconds))] * int(values.get("tasks", tasks))

        @task(retries=retries, retry_delay=timedelta(seconds=10))
        def hold(held: int) -> str:
            host = socket.getfqdn()
            log.info("holding for %d s on %s", held, host)
            time.sleep(held)
            log.info("done after %d s on %s", held, host)
            return host

        hold.expand(held=plan())

    return holding()


long_tasks = holding_tasks("long_tasks", tasks=6, seconds=60, retries=0, tag="operations")
failover_load = holding_tasks("failover_load", tasks=16, seconds=45, retries=2, tag="faults")
