"""Helpers of the fault tests: a load of retrying tasks, lab hosts lost and started again,
and the measurements they record.

Every fault test works the same way: start the load (tasks of failover_load spread over
the workers), wait until tasks run, break something, measure the recovery, check that the
run succeeds with every task instance in success, start the broken host again, check it
rejoined. One re-run of site.yml after all of them (test_redeploy.py) must change nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from clusterops import datatier
from clusterops.cluster import AirflowAPI, Flower, wait_for
from clusterops.console import info
from clusterops.lab import engine, hosts
from clusterops.lab.hosts import LabSpec
from clusterops.paths import LAB_STATE_DIR

LOAD_DAG = "failover_load"
# The floor is 8 tasks of 30 s; two workers of 8 slots take 16 at once.
LOAD_TASKS = 16
LOAD_SECONDS = 45
MEASUREMENTS = LAB_STATE_DIR / "measurements.jsonl"


def record(name: str, **numbers: float | int | str) -> None:
    """Print a measurement and append it to .lab/measurements.jsonl (docs/benchmarks.md
    quotes them); never compared with a limit."""
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    line: dict[str, float | int | str] = {"measurement": name, "at": at}
    line.update(numbers)
    MEASUREMENTS.parent.mkdir(parents=True, exist_ok=True)
    with MEASUREMENTS.open("a") as out:
        out.write(json.dumps(line) + "\n")
    info(f"    measured {name}: {numbers}")


@dataclass
class Load:
    api: AirflowAPI
    tasks: int = LOAD_TASKS
    seconds: int = LOAD_SECONDS
    run_id: str = ""
    started: float = field(default=0.0)

    def start(self, at_least: int | None = None) -> None:
        """Trigger the run and wait until `at_least` of its tasks (half by default) run."""
        wait_for(f"DAG {LOAD_DAG} to be parsed", lambda: self.api.dag(LOAD_DAG), timeout=120)
        self.run_id = self.api.trigger(LOAD_DAG, {"tasks": self.tasks, "seconds": self.seconds})
        self.started = time.monotonic()

        def running() -> int | None:
            count = sum(1 for ti in self.holds() if ti.get("state") == "running")
            return count if count >= (self.tasks // 2 if at_least is None else at_least) else None

        count = wait_for("the load's tasks to run", running, timeout=180)
        info(f"    load: {count} of {self.tasks} tasks running")

    def holds(self) -> list[dict[str, Any]]:
        tis = self.api.task_instances(LOAD_DAG, self.run_id)
        return [ti for ti in tis if ti.get("task_id") == "hold"]

    def finish(self, timeout: float = 600) -> tuple[str, list[dict[str, Any]]]:
        """Wait for the run's end; its state and the task instances of `hold`."""
        run = self.api.wait_for_run(LOAD_DAG, self.run_id, timeout=timeout)
        holds = wait_for("the task instances", self.holds, timeout=60)
        return str(run["state"]), holds


def durations(holds: list[dict[str, Any]]) -> list[float]:
    """Each finished task instance's run time, in seconds (its last try's)."""
    return [float(ti["duration"]) for ti in holds if ti.get("duration") is not None]


def consuming(flower: Flower, names: list[str], queue: str = "default") -> bool | None:
    """True once every worker of `names` says (through Flower) that it consumes `queue`."""
    for name in names:
        report = flower.worker(f"celery@{name}") or {}
        queues = {q.get("name") for q in report.get("active_queues") or []}
        if queue not in queues:
            return None
    return True


def tries(holds: list[dict[str, Any]]) -> dict[int, int]:
    """How many task instances needed how many tries."""
    counts: dict[int, int] = {}
    for ti in holds:
        counts[int(ti.get("try_number", 0))] = counts.get(int(ti.get("try_number", 0)), 0) + 1
    return counts


@contextmanager
def _broken(
    lab: LabSpec,
    name: str,
    what: tuple[str, str],
    fault: Callable[..., object],
    repair: Callable[..., object],
) -> Iterator[float]:
    """Apply `fault` to lab host `name`, yield the moment (time.monotonic()), and apply
    `repair` afterwards, whatever happened in between."""
    client = engine.ensure_engine()
    info(f"==> {what[0]} lab host {name}")
    fault(client, lab, name)
    at = time.monotonic()
    try:
        yield at
    finally:
        info(f"==> {what[1]} lab host {name}")
        repair(client, lab, name)


def host_lost(lab: LabSpec, name: str) -> AbstractContextManager[float]:
    """Kill lab host `name` (power cut), then start it again."""
    return _broken(lab, name, ("Killing", "Starting again"), hosts.kill, hosts.start_again)


def network_cut(lab: LabSpec, name: str) -> AbstractContextManager[float]:
    """Take lab host `name` off the network (its processes run on), then plug it back in."""
    return _broken(lab, name, ("Cutting off", "Plugging back in"), hosts.cut_off, hosts.reconnect)


def separate_leaders(
    lab: LabSpec, sentinel_password: str, redis_admin_password: str
) -> tuple[str, str]:
    """Make the Redis master and the PostgreSQL primary live on different hosts (the lab
    puts both tiers on the same three), so that losing one's host tests one failover;
    returns (the primary's host, the master's host). Moves the Redis master when needed,
    as an operator's switchover would (SENTINEL FAILOVER), and waits until every replica
    follows it."""
    names = {lab.host(name).address: name for name in lab.group("redis")}
    members = [lab.host(name).address for name in lab.group("postgres")]
    primary = wait_for("the database's primary", lambda: datatier.leader(members), timeout=60)
    master = wait_for(
        "the Redis master", lambda: datatier.sentinel_master(names, sentinel_password), timeout=60
    )
    if master == primary.host:
        info(f"==> Moving the Redis master away from {primary.name} (SENTINEL FAILOVER)")
        assert datatier.sentinel_failover(names, sentinel_password)

        def moved() -> str | None:
            found = datatier.sentinel_master(names, sentinel_password)
            if found is None or found == master:
                return None
            info_ = datatier.redis_replication(found, redis_admin_password) or {}
            replicas = int(info_.get("connected_slaves", 0))
            return found if replicas == len(names) - 1 else None

        master = wait_for("the new Redis master and its replicas", moved, timeout=90)
    return primary.name, names[master]
