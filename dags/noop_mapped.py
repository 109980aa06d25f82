"""Throughput benchmark: a configurable number of mapped tasks that do nothing.

Trigger with the conf {"tasks": 100} (the default). docs/benchmarks.md compares its run
time on the Celery cluster with the same DAG under the LocalExecutor on one host.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_tasks=64,
    params={"tasks": Param(100, type="integer", minimum=1, maximum=1000)},
    tags=["cluster", "benchmark"],
    doc_md=__doc__,
)
def noop_mapped() -> None:
    @task
    def items(params: dict[str, int] | None = None) -> list[int]:
        return list(range(int((params or {}).get("tasks", 100))))

    @task
    def noop(item: int) -> None:
        return None

    noop.expand(item=items())


noop_mapped()
